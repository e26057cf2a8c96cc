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
    sorted.sort();
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
