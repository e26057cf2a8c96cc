//! The WhatsApp-link flow's texts: the message the user is asked to send, the `wa.me` link that
//! pre-fills it, and reading the code back out of what arrives.
//!
//! The user taps `https://wa.me/<business number>?text=<prompt> [CODE] - DO NOT CHANGE THIS
//! MESSAGE` and sends it; the inbound webhook finds `[CODE]` in the text. WhatsApp may trim or
//! re-space the text, so the comparison with what was sent collapses whitespace and nothing else.

use url::form_urlencoded::byte_serialize;

/// The warning after the code in every pre-filled message.
pub const SUFFIX: &str = " - DO NOT CHANGE THIS MESSAGE";

/// Length of a link code (`RDYFQUBX`).
const CODE_LEN: usize = 8;

/// The message the user is asked to send: `"{prompt} [{code}] - DO NOT CHANGE THIS MESSAGE"`,
/// a `{code}` placeholder in the prompt filled in with the code.
pub fn prefilled_text(prompt: &str, code: &str) -> String {
    let prompt = crate::rules::template::render(prompt, &[("code", code)]);
    format!("{prompt} [{code}]{SUFFIX}")
}

/// `https://wa.me/<digits>?text=<text>`, the text form-encoded (spaces as `+`, UTF-8
/// percent-encoded); characters other than digits in the number are dropped.
pub fn wa_me_link(business_number_digits: &str, text: &str) -> String {
    let digits: String = business_number_digits
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let encoded: String = byte_serialize(text.as_bytes()).collect();
    format!("https://wa.me/{digits}?text={encoded}")
}

/// The first bracketed run of exactly 8 ASCII uppercase letters in `text` (`[RDYFQUBX]`), without brackets.
pub fn find_code(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    text.match_indices('[').find_map(|(open, _)| {
        let close = open + CODE_LEN + 1;
        let inner = bytes.get(open + 1..close)?;
        if bytes.get(close) == Some(&b']') && inner.iter().all(u8::is_ascii_uppercase) {
            text.get(open + 1..close)
        } else {
            None
        }
    })
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when `received` is [`prefilled_text`]`(prompt, code)` up to leading, trailing and
/// repeated whitespace; any other change (a word, a letter's case, the code) makes it false.
pub fn is_unaltered(received: &str, prompt: &str, code: &str) -> bool {
    collapse_whitespace(received) == collapse_whitespace(&prefilled_text(prompt, code))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const PROMPT: &str = "Give me link to login at Hypersender";

    #[test]
    fn reproduces_the_documented_link() {
        assert_eq!(
            wa_me_link("20123456789", &prefilled_text(PROMPT, "NFBNWZSF")),
            "https://wa.me/20123456789?text=Give+me+link+to+login+at+Hypersender+%5BNFBNWZSF%5D+-+DO+NOT+CHANGE+THIS+MESSAGE"
        );
    }

    /// Expected value from Python: `"https://wa.me/20123456789?text=" +
    /// urllib.parse.quote_plus(text)`.
    #[test]
    fn non_ascii_is_utf8_percent_encoded() {
        let text = prefilled_text("أرسل لي رابط الدخول إلى متجري 🛒", "ABCDEFGH");
        assert_eq!(
            wa_me_link("+20 123 456 789", &text),
            "https://wa.me/20123456789?text=%D8%A3%D8%B1%D8%B3%D9%84+%D9%84%D9%8A+%D8%B1%D8%A7%D8%A8%D8%B7+%D8%A7%D9%84%D8%AF%D8%AE%D9%88%D9%84+%D8%A5%D9%84%D9%89+%D9%85%D8%AA%D8%AC%D8%B1%D9%8A+%F0%9F%9B%92+%5BABCDEFGH%5D+-+DO+NOT+CHANGE+THIS+MESSAGE"
        );
    }

    #[test]
    fn characters_that_would_break_the_query_are_encoded() {
        assert_eq!(
            wa_me_link("1", "a&b=c#d+e%f?g/h"),
            "https://wa.me/1?text=a%26b%3Dc%23d%2Be%25f%3Fg%2Fh"
        );
    }

    #[test]
    fn prefilled_text_has_the_documented_shape() {
        assert_eq!(
            prefilled_text(PROMPT, "NFBNWZSF"),
            "Give me link to login at Hypersender [NFBNWZSF] - DO NOT CHANGE THIS MESSAGE"
        );
    }

    #[test]
    fn code_in_the_prompt_is_filled_in() {
        let text = prefilled_text("Log in to Acme with {code}", "NFBNWZSF");
        assert_eq!(
            text,
            "Log in to Acme with NFBNWZSF [NFBNWZSF] - DO NOT CHANGE THIS MESSAGE"
        );
        assert!(is_unaltered(
            &text,
            "Log in to Acme with {code}",
            "NFBNWZSF"
        ));
        assert_eq!(find_code(&text), Some("NFBNWZSF"));
    }

    #[test]
    fn finds_the_first_well_formed_code() {
        let cases: &[(&str, Option<&str>)] = &[
            (&prefilled_text(PROMPT, "NFBNWZSF"), Some("NFBNWZSF")),
            ("[ABCDEFGH]", Some("ABCDEFGH")),
            (
                "x [abcdefgh] [ABCDEFG] [ABCDEFGHI] [ABCD1FGH] [QWERTYUI] [ZZZZZZZZ]",
                Some("QWERTYUI"),
            ),
            ("[[ABCDEFGH]]", Some("ABCDEFGH")),
            ("مرحبا [ÀBCDEFGH] [ABCDEFGH]", Some("ABCDEFGH")),
            ("[ABCDEFGH", None),
            ("ABCDEFGH]", None),
            ("[ABCDEFG", None),
            ("[ÉÉÉÉ]", None),
            ("[", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(find_code(text), *expected, "{text}");
        }
    }

    #[test]
    fn unaltered_allows_only_whitespace_changes() {
        let sent = prefilled_text(PROMPT, "NFBNWZSF");
        let cases = [
            (sent.clone(), true),
            (format!("  {sent}\n"), true),
            (sent.replace(' ', "  "), true),
            (sent.replace("] -", "]\u{a0}-"), true),
            (sent.replace("Hypersender", "Hypersendr"), false),
            (sent.replace("NFBNWZSF", "NFBNWZSE"), false),
            (sent.to_lowercase(), false),
            (sent.replace(" - DO NOT CHANGE THIS MESSAGE", ""), false),
            (format!("{sent}."), false),
            (format!("Hi {sent}"), false),
            (sent.replace("[NFBNWZSF]", "NFBNWZSF"), false),
            (String::new(), false),
        ];
        for (received, expected) in cases {
            assert_eq!(
                is_unaltered(&received, PROMPT, "NFBNWZSF"),
                expected,
                "{received:?}"
            );
        }
    }
}
