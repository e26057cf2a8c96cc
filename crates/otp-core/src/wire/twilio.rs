//! Twilio request signatures (`X-Twilio-Signature`), so the Worker can trust inbound SMS and
//! WhatsApp webhooks and status callbacks from Twilio.
//!
//! Twilio signs the full URL it requested followed by every POST parameter's name and value,
//! sorted by name (byte order), with HMAC-SHA1 keyed by the account's auth token.

use crate::mac::{sha1_mac, B64_LENIENT};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Mac;
use url::{Position, Url};

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

fn mac_of(auth_token: &[u8], url: &str, params: &[(String, String)]) -> hmac::Hmac<sha1::Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Repeated names keep a stable order by value, as Twilio's own libraries sort them.
    sorted.sort_unstable();
    let mut mac = sha1_mac(auth_token);
    mac.update(url.as_bytes());
    for (key, value) in sorted {
        mac.update(key.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The expected `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, url + sorted name+value)).
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac_of(auth_token, url, params).finalize().into_bytes())
}

/// The URL as given, then with its port removed and with the scheme's default port added:
/// Twilio may sign either form, and its own validators accept both.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Ok(parsed) = Url::parse(url) {
        let before = &parsed[..Position::BeforePort];
        let after = &parsed[Position::AfterPort..];
        let mut candidates = vec![format!("{before}{after}")];
        if let Some(port) = parsed.port_or_known_default() {
            candidates.push(format!("{before}:{port}{after}"));
        }
        for c in candidates {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// True when `header` is the signature of this request (constant-time comparison); false when
/// it is missing or malformed.
pub fn verify(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    let Some(Ok(tag)) = header.map(|h| B64_LENIENT.decode(h.trim())) else {
        return false;
    };
    if tag.len() != 20 {
        return false;
    }
    url_variants(url).iter().fold(false, |ok, candidate| {
        ok | mac_of(auth_token, candidate, params)
            .verify_slice(&tag)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn params() -> Vec<(String, String)> {
        [
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Twilio's documented example (auth token `12345`); the expected value recomputed with
    /// Python: `base64.b64encode(hmac.new(b"12345", (URL + "".join(k + p[k] for k in
    /// sorted(p))).encode(), hashlib.sha1).digest())`.
    const EXPECTED: &str = "GvWf1cFY/Q7PnoempGyD5oXAezc=";

    #[test]
    fn signs_twilios_documented_example() {
        assert_eq!(signature(b"12345", URL, &params()), EXPECTED);
    }

    #[test]
    fn verifies_twilios_documented_example() {
        assert!(verify(b"12345", URL, &params(), Some(EXPECTED)));
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut reversed = params();
        reversed.reverse();
        assert_eq!(signature(b"12345", URL, &reversed), EXPECTED);
    }

    #[test]
    fn any_change_fails() {
        let mut changed = params();
        changed[0].1 = "1235".into();
        assert!(!verify(b"12345", URL, &changed, Some(EXPECTED)));
        assert!(!verify(b"12346", URL, &params(), Some(EXPECTED)));
        assert!(!verify(
            b"12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params(),
            Some(EXPECTED)
        ));
        let mut extra = params();
        extra.push(("Body".into(), "".into()));
        // An empty value still adds its name to the signed string.
        assert!(!verify(b"12345", URL, &extra, Some(EXPECTED)));
    }

    #[test]
    fn missing_or_malformed_headers_fail() {
        for header in [
            None,
            Some(""),
            Some("!!!"),
            Some("GvWf1cFY"),
            Some("GvWf1cFY/Q7PnoempGyD5oXAezc=AAAA"),
        ] {
            assert!(!verify(b"12345", URL, &params(), header), "{header:?}");
        }
    }

    #[test]
    fn the_default_port_may_be_signed_or_not() {
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        let signed_with_port = signature(b"12345", with_port, &params());
        assert!(verify(b"12345", URL, &params(), Some(&signed_with_port)));
        assert!(verify(b"12345", with_port, &params(), Some(EXPECTED)));
        // Another port is another URL.
        let other = signature(
            b"12345",
            "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
            &params(),
        );
        assert!(!verify(b"12345", URL, &params(), Some(&other)));
    }

    /// Computed with Python as above (`sorted` over the pairs), for a WhatsApp inbound message with a repeated name.
    #[test]
    fn repeated_names_are_sorted_by_value() {
        let p: Vec<(String, String)> = [
            ("MediaUrl", "b"),
            ("Body", "Give me link [NFBNWZSF] é"),
            ("MediaUrl", "a"),
            ("From", "whatsapp:+14155238886"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            signature(b"12345", "https://example.com/twilio", &p),
            REPEATED
        );
    }
    const REPEATED: &str = "1/MVdA4hhTn2eaYBnerSbO5dDFU=";
}

// Sending through the Messages API and reading its answers and status callbacks: Twilio
// answers a send with JSON (`sid` on success, `code` and `message` on failure) and reports
// delivery to `StatusCallback` as form fields `MessageStatus` and `ErrorCode`.

/// True for a Messaging Service SID (`MG` and 32 hex digits), sent instead of `From`.
fn is_messaging_service_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("MG") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `To`/`From` address: digits get their `+`, alphanumeric sender ids stay as they are,
/// and WhatsApp addresses get the `whatsapp:` prefix (once).
fn address(number: &str, whatsapp: bool) -> String {
    let bare = number.trim();
    let bare = bare.strip_prefix("whatsapp:").unwrap_or(bare);
    let digits = bare.strip_prefix('+').unwrap_or(bare);
    let e164 = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{digits}")
    } else {
        bare.to_owned()
    };
    if whatsapp {
        format!("whatsapp:{e164}")
    } else {
        e164
    }
}

/// The form of a Messages API send: `To`, `From` (`MessagingServiceSid` when `from` is one),
/// `Body`, and `StatusCallback` when given; numbers in `+` E.164, `whatsapp:`-prefixed for
/// WhatsApp.
pub fn message_form(
    to: &str,
    from: &str,
    body: &str,
    status_callback: Option<&str>,
    whatsapp: bool,
) -> Vec<(String, String)> {
    let from = if is_messaging_service_sid(from.trim()) {
        ("MessagingServiceSid".to_owned(), from.trim().to_owned())
    } else {
        ("From".to_owned(), address(from, whatsapp))
    };
    let mut form = vec![
        ("To".to_owned(), address(to, whatsapp)),
        from,
        ("Body".to_owned(), body.to_owned()),
    ];
    if let Some(url) = status_callback {
        form.push(("StatusCallback".to_owned(), url.to_owned()));
    }
    form
}

/// `application/x-www-form-urlencoded` of the pairs in order (spaces as `+`, UTF-8
/// percent-encoded).
pub fn form_encode(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

pub use crate::wire::provider::Delivery;

/// The delivery state of a Twilio `MessageStatus` with its `ErrorCode`; `None` for statuses of
/// inbound messages and unknown ones.
pub fn delivery_status(status: &str, error_code: Option<&str>) -> Option<Delivery> {
    Some(match status.trim() {
        "queued" | "accepted" | "scheduled" | "sending" => Delivery::Queued,
        "sent" => Delivery::Sent,
        "delivered" => Delivery::Delivered,
        "read" => Delivery::Read,
        failed @ ("failed" | "undelivered" | "canceled") => {
            let reason = error_code
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .unwrap_or(failed);
            Delivery::Failed(format!("twilio {reason}"))
        }
        _ => return None,
    })
}

/// Twilio errors that the same request will meet again: bad or unreachable recipients, opt-outs,
/// blocked regions, WhatsApp recipients that cannot be reached this way.
const PERMANENT_ERRORS: &[i64] = &[
    20003, // authentication failed
    20404, // account or resource not found
    21211, // invalid To number
    21212, // invalid From number
    21408, // region not enabled for this account
    21601, // To is not SMS-capable
    21606, // From is not a valid SMS-capable number of this account
    21608, // trial account: To is not verified
    21610, // recipient replied STOP
    21612, // no route between these To and From
    21614, // To is not a mobile number
    21617, // body too long
    63003, // WhatsApp: To is not a WhatsApp user
    63007, // WhatsApp: no sender for this From
    63016, // WhatsApp: free-form message outside the 24-hour window
    63024, // WhatsApp: invalid recipient
];

/// Twilio errors worth retrying later: rate limits and queue or service trouble.
const TEMPORARY_ERRORS: &[i64] = &[
    20429, // too many requests
    20500, // internal error
    20503, // service unavailable
    30001, // queue overflow
    63018, // WhatsApp: rate limit exceeded
];

/// True when a failed send should not be retried on this channel (fall back instead):
/// known permanent codes and other 4xx; false for known temporary codes, 408, 429 and 5xx.
pub fn error_is_permanent(http_status: u16, code: Option<i64>) -> bool {
    crate::wire::provider::error_is_permanent(http_status, code, PERMANENT_ERRORS, TEMPORARY_ERRORS)
}

/// The `(code, message)` of a Messages API error body (`{"code": 21211, "message": …}`).
pub fn send_error(raw_body: &[u8]) -> Option<(i64, String)> {
    let body: serde_json::Value = crate::json::from_bytes(raw_body)?;
    crate::wire::provider::code_and_message(&body)
}

/// The message SID (`SM…`) of a successful Messages API answer.
pub fn message_sid(raw_body: &[u8]) -> Option<String> {
    let body: serde_json::Value = crate::json::from_bytes(raw_body)?;
    body.get("sid")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod send_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn sms_form_has_e164_numbers_and_the_callback() {
        let form = message_form(
            "14155550100",
            "+15005550006",
            "123456 is your code",
            Some("https://otp.example.com/webhooks/twilio"),
            false,
        );
        assert_eq!(
            pairs(&form),
            [
                ("To", "+14155550100"),
                ("From", "+15005550006"),
                ("Body", "123456 is your code"),
                ("StatusCallback", "https://otp.example.com/webhooks/twilio"),
            ]
        );
    }

    #[test]
    fn whatsapp_form_prefixes_both_numbers_once() {
        let form = message_form("+20123456789", "whatsapp:+14155238886", "hi", None, true);
        assert_eq!(
            pairs(&form),
            [
                ("To", "whatsapp:+20123456789"),
                ("From", "whatsapp:+14155238886"),
                ("Body", "hi"),
            ]
        );
    }

    #[test]
    fn sender_ids_and_messaging_services_are_kept() {
        let form = message_form("447700900123", "Acme", "hi", None, false);
        assert_eq!(pairs(&form)[1], ("From", "Acme"));
        let sid = "MG9752274e9e519418a7406176694466fa";
        let form = message_form("447700900123", sid, "hi", None, true);
        assert_eq!(pairs(&form)[0], ("To", "whatsapp:+447700900123"));
        assert_eq!(pairs(&form)[1], ("MessagingServiceSid", sid));
    }

    #[test]
    fn form_encoding_uses_plus_for_spaces() {
        let form = message_form(
            "14155550100",
            "15005550006",
            "Code: 12 34 & more é\n\n@example.com #1234",
            None,
            true,
        );
        assert_eq!(
            form_encode(&form),
            "To=whatsapp%3A%2B14155550100&From=whatsapp%3A%2B15005550006\
             &Body=Code%3A+12+34+%26+more+%C3%A9%0A%0A%40example.com+%231234"
        );
        assert_eq!(form_encode(&[]), "");
    }

    #[test]
    fn status_callbacks_map_to_delivery_states() {
        let cases = [
            ("queued", None, Some(Delivery::Queued)),
            ("accepted", None, Some(Delivery::Queued)),
            ("sending", None, Some(Delivery::Queued)),
            ("sent", None, Some(Delivery::Sent)),
            ("delivered", None, Some(Delivery::Delivered)),
            ("read", None, Some(Delivery::Read)),
            (
                "failed",
                Some("30008"),
                Some(Delivery::Failed("twilio 30008".into())),
            ),
            (
                "undelivered",
                Some("30003"),
                Some(Delivery::Failed("twilio 30003".into())),
            ),
            (
                "undelivered",
                Some(""),
                Some(Delivery::Failed("twilio undelivered".into())),
            ),
            (
                "failed",
                None,
                Some(Delivery::Failed("twilio failed".into())),
            ),
            ("received", None, None),
            ("bogus", None, None),
        ];
        for (status, code, expected) in cases {
            assert_eq!(delivery_status(status, code), expected, "{status}");
        }
    }

    #[test]
    fn permanent_errors_are_told_from_temporary_ones() {
        for code in [21211, 21408, 21610, 21612, 21614, 63003, 63016] {
            assert!(error_is_permanent(400, Some(code)), "{code}");
        }
        assert!(error_is_permanent(401, Some(20003)));
        assert!(error_is_permanent(400, None));
        assert!(error_is_permanent(404, Some(12345)));
        assert!(!error_is_permanent(429, Some(20429)));
        assert!(!error_is_permanent(400, Some(20429)));
        assert!(!error_is_permanent(429, None));
        assert!(!error_is_permanent(408, None));
        assert!(!error_is_permanent(500, None));
        assert!(!error_is_permanent(503, Some(20503)));
        assert!(!error_is_permanent(201, None));
    }

    /// The shapes of Twilio's documented Messages API answers.
    #[test]
    fn send_answers_are_read() {
        let error = br#"{"code": 21211, "message": "Invalid 'To' Phone Number: +1555", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        assert_eq!(
            send_error(error),
            Some((21211, "Invalid 'To' Phone Number: +1555".into()))
        );
        let ok = br#"{"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued", "to": "+14155550100"}"#;
        assert_eq!(
            message_sid(ok).as_deref(),
            Some("SM1f0e8ae6ade43cb3c0ce4525424e404f")
        );
        assert_eq!(send_error(ok), None);
        assert_eq!(message_sid(error), None);
        assert_eq!(send_error(b"<html>"), None);
    }
}
