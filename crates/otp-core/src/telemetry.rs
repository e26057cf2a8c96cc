//! What the Worker's logs and metrics may hold, as rules: the masked form of a phone number,
//! free text with its digit runs masked, the code flow's metric names, and the median of a
//! time-to-verify histogram. The Worker's `log` and `store::metrics` apply them.

use crate::rules::country::calling_code;

/// `text` with each run of four or more ASCII digits replaced by `#`: a provider answer or a
/// storage error that echoes a phone number or a code loses it; statuses and small counts
/// (three digits at most) stay readable.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_digit() {
            run += 1;
            continue;
        }
        flush(&mut out, &text[i - run..i]);
        run = 0;
        out.push(c);
    }
    flush(&mut out, &text[text.len() - run..]);
    out
}

fn flush(out: &mut String, run: &str) {
    out.push_str(if run.len() >= 4 { "#" } else { run });
}

/// A phone number (E.164 digits) as its calling code and last two digits, `+20…89`: enough to
/// tell numbers apart in a support case, never enough to call one.
pub fn mask(digits: &str) -> String {
    let cc = calling_code(digits).unwrap_or("");
    let tail = digits.get(digits.len().saturating_sub(2)..).unwrap_or("");
    format!("+{cc}…{tail}")
}

/// The country dimension of a metric: the number's calling code, `other` when it has none.
pub fn country(digits: &str) -> &'static str {
    calling_code(digits).unwrap_or("other")
}

/// The HTTP status a provider answered, read from a delivery error's text (`… answered 400 …`).
pub fn status_of(why: &str) -> Option<u16> {
    let at = why.as_bytes().windows(9).position(|w| w == b"answered ")?;
    why.get(at + 9..at + 12)?.parse().ok()
}

/// The code flow's events, each counted in total, per channel and per country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeEvent {
    /// A code was issued and queued for delivery.
    Sent,
    /// A provider accepted a code's message.
    Delivered,
    /// A code's delivery failed for good on the last channel of the chain.
    Failed,
    /// A code's delivery failed on one channel and moved to the next.
    Fallback,
    /// A code was entered right.
    Verified,
    /// A wrong code was entered.
    Wrong,
    /// Wrong codes locked the recipient out.
    Lockout,
    /// A send was refused by a budget, the country allowlist or a number-range cap.
    BudgetRefused,
}

impl CodeEvent {
    /// Every event, in the order of the metrics document.
    pub const ALL: [CodeEvent; 8] = [
        CodeEvent::Sent,
        CodeEvent::Delivered,
        CodeEvent::Failed,
        CodeEvent::Fallback,
        CodeEvent::Verified,
        CodeEvent::Wrong,
        CodeEvent::Lockout,
        CodeEvent::BudgetRefused,
    ];

    /// The counter's name: `code.sent`, `code.delivered`, …
    pub fn name(self) -> &'static str {
        match self {
            CodeEvent::Sent => "code.sent",
            CodeEvent::Delivered => "code.delivered",
            CodeEvent::Failed => "code.failed",
            CodeEvent::Fallback => "code.fallback",
            CodeEvent::Verified => "code.verified",
            CodeEvent::Wrong => "code.wrong",
            CodeEvent::Lockout => "code.lockout",
            CodeEvent::BudgetRefused => "code.budget_refused",
        }
    }
}

/// Upper bounds (seconds) of the time-to-verify histogram's buckets; a last, open bucket
/// (`inf`) holds the rest.
pub const VERIFY_BUCKETS: [i64; 12] = [5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];

/// Prefix of the time-to-verify histogram's counters: `code.ttv@le:30`, `code.ttv@le:inf`.
pub const VERIFY_HISTOGRAM: &str = "code.ttv@le:";

/// The histogram counter that `seconds` to verify falls in.
pub fn verify_bucket(seconds: i64) -> String {
    match VERIFY_BUCKETS.iter().find(|&&b| seconds <= b) {
        Some(b) => format!("{VERIFY_HISTOGRAM}{b}"),
        None => format!("{VERIFY_HISTOGRAM}inf"),
    }
}

/// The counters one code event adds: the total, `@ch:<channel>` and `@cc:<country>`.
pub fn code_counters(event: CodeEvent, channel: &str, country: &str) -> [String; 3] {
    let name = event.name();
    [
        name.to_owned(),
        format!("{name}@ch:{channel}"),
        format!("{name}@cc:{country}"),
    ]
}

/// The median time to verify, in seconds, from the histogram's counts (`count(bound)`, `None`
/// bound for the open bucket): interpolated linearly inside the bucket the middle verification
/// falls in, the open bucket read as its lower bound. `None` when nothing was verified.
pub fn median_seconds(count: impl Fn(Option<i64>) -> i64) -> Option<f64> {
    let counts: Vec<i64> = VERIFY_BUCKETS
        .iter()
        .map(|&b| count(Some(b)))
        .chain(std::iter::once(count(None)))
        .collect();
    let total: i64 = counts.iter().sum();
    if total <= 0 {
        return None;
    }
    let half = total as f64 / 2.0;
    let mut seen = 0.0;
    let mut lower = 0.0;
    for (i, &n) in counts.iter().enumerate() {
        let Some(&upper) = VERIFY_BUCKETS.get(i) else {
            return Some(lower);
        };
        let upper = upper as f64;
        if n > 0 && seen + n as f64 >= half {
            return Some(lower + (upper - lower) * (half - seen) / n as f64);
        }
        seen += n as f64;
        lower = upper;
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn scrub_masks_runs_of_four_or_more_digits_and_keeps_statuses() {
        for (input, want) in [
            ("", ""),
            (
                "whatsapp answered 400 (code 131026): bad 201234567890",
                "whatsapp answered 400 (code #): bad #",
            ),
            ("code 1234 sent", "code # sent"),
            ("at 127.0.0.1:8787/v1", "at 127.0.0.1:#/v1"),
            ("+20-123-4567", "+20-123-#"),
            ("trailing 98765", "trailing #"),
            ("٣٤٥٦٧ non-ASCII digits stay", "٣٤٥٦٧ non-ASCII digits stay"),
            ("é1234é", "é#é"),
        ] {
            assert_eq!(scrub(input), want, "{input}");
        }
    }

    #[test]
    fn mask_keeps_the_calling_code_and_the_last_two_digits() {
        assert_eq!(mask("201234567890"), "+20…90");
        assert_eq!(mask("14155550123"), "+1…23");
        assert_eq!(mask("9"), "+…9");
        assert!(!mask("201234567890").contains("12345"));
    }

    #[test]
    fn country_is_the_calling_code_or_other() {
        assert_eq!(country("201234567890"), "20");
        assert_eq!(country("447700900123"), "44");
        assert_eq!(country("999"), "other");
    }

    #[test]
    fn status_is_read_after_answered() {
        assert_eq!(status_of("whatsapp answered 400 (code 1): x"), Some(400));
        assert_eq!(status_of("sender webhook answered 503"), Some(503));
        assert_eq!(status_of("no answer within 100 ms"), None);
        assert_eq!(status_of("answered 4"), None);
    }

    #[test]
    fn verify_buckets_are_upper_bounds() {
        assert_eq!(verify_bucket(0), "code.ttv@le:5");
        assert_eq!(verify_bucket(5), "code.ttv@le:5");
        assert_eq!(verify_bucket(6), "code.ttv@le:10");
        assert_eq!(verify_bucket(600), "code.ttv@le:600");
        assert_eq!(verify_bucket(601), "code.ttv@le:inf");
    }

    #[test]
    fn counters_name_the_total_the_channel_and_the_country() {
        assert_eq!(
            code_counters(CodeEvent::Verified, "whatsapp", "20"),
            [
                "code.verified",
                "code.verified@ch:whatsapp",
                "code.verified@cc:20"
            ]
        );
    }

    #[test]
    fn median_interpolates_inside_the_middle_bucket() {
        let hist = |pairs: &'static [(Option<i64>, i64)]| {
            move |b: Option<i64>| pairs.iter().find(|(k, _)| *k == b).map_or(0, |(_, n)| *n)
        };
        assert_eq!(median_seconds(hist(&[])), None);
        // Two in (0, 5], two in (10, 15]: the middle is the end of the first bucket.
        assert_eq!(
            median_seconds(hist(&[(Some(5), 2), (Some(15), 2)])),
            Some(5.0)
        );
        // Four in (20, 30]: halfway through it.
        assert_eq!(median_seconds(hist(&[(Some(30), 4)])), Some(25.0));
        // One fast, three slow in (60, 90].
        assert_eq!(
            median_seconds(hist(&[(Some(5), 1), (Some(90), 3)])),
            Some(70.0)
        );
        // Everything past the last bound: its lower bound.
        assert_eq!(median_seconds(hist(&[(None, 3)])), Some(600.0));
    }
}
