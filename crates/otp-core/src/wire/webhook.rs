//! Standard Webhooks (standardwebhooks.com) signatures for the callbacks this service sends.
//!
//! A receiver checks a callback with any Standard Webhooks library: the `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers carry the message id, the Unix time
//! and `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. This module signs, verifies
//! (for tests and for receivers written in Rust) and states the retry schedule; sending is
//! the Worker's job.

use crate::mac::{sha256_mac, B64_LENIENT};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Mac;
use std::fmt;

/// Header carrying the message id (the same id on every retry, for deduplication).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the Unix time of this attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The tolerance Standard Webhooks libraries use for the timestamp, in seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

const PREFIX: &str = "whsec_";

/// A webhook signing key; its `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Shortest key [`WebhookSecret::parse`] accepts, in bytes (the spec's recommended minimum).
    pub const MIN_LEN: usize = 24;

    /// Parses `whsec_<base64>` or bare base64 (padding optional) of at least
    /// [`WebhookSecret::MIN_LEN`] bytes.
    pub fn parse(s: &str) -> Result<Self, WebhookError> {
        let s = s.trim();
        let b64 = s.strip_prefix(PREFIX).unwrap_or(s);
        let bytes = B64_LENIENT
            .decode(b64)
            .map_err(|_| WebhookError::InvalidSecret)?;
        if bytes.len() < Self::MIN_LEN {
            return Err(WebhookError::InvalidSecret);
        }
        Ok(Self(bytes))
    }

    /// Wraps raw key bytes (random bytes from the caller when creating a key).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key as `whsec_<base64>`, the form receivers paste into their library.
    pub fn to_whsec(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The key's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    fn tag(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = sha256_mac(&self.0);
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a secret or a signed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret is not base64 (after an optional `whsec_`) or is too short.
    InvalidSecret,
    /// The header holds no `v1,` signature.
    NoSignature,
    /// No `v1,` signature matches.
    BadSignature,
    /// The timestamp is further in the past than the tolerance.
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance.
    TimestampTooNew,
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidSecret => {
                "webhook secret must be whsec_ followed by base64 of at least 24 bytes"
            }
            Self::NoSignature => "webhook signature header holds no v1 signature",
            Self::BadSignature => "webhook signature does not match",
            Self::TimestampTooOld => "webhook timestamp is too old",
            Self::TimestampTooNew => "webhook timestamp is too far in the future",
        })
    }
}

impl std::error::Error for WebhookError {}

/// The `webhook-signature` value for one attempt: `v1,<base64 HMAC-SHA256>`.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.tag(msg_id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// Checks a `webhook-signature` header (several space-separated `v1,<sig>` entries allowed,
/// other versions ignored) and that `timestamp` is within `tolerance_secs` of `now`.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), WebhookError> {
    // An overflowing difference is as far out of tolerance as it gets.
    match now.checked_sub(timestamp) {
        Some(age) if age > tolerance_secs => return Err(WebhookError::TimestampTooOld),
        Some(age) if age < tolerance_secs.saturating_neg() => {
            return Err(WebhookError::TimestampTooNew)
        }
        None if now > timestamp => return Err(WebhookError::TimestampTooOld),
        None => return Err(WebhookError::TimestampTooNew),
        Some(_) => {}
    }
    let mac = secret.tag(msg_id, timestamp, body);
    let mut seen_v1 = false;
    for entry in signature_header.split_ascii_whitespace() {
        let Some(("v1", sig)) = entry.split_once(',') else {
            continue;
        };
        seen_v1 = true;
        let Ok(sig) = B64_LENIENT.decode(sig) else {
            continue;
        };
        // `verify_slice` compares in constant time.
        if mac.clone().verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(if seen_v1 {
        WebhookError::BadSignature
    } else {
        WebhookError::NoSignature
    })
}

/// Standard Webhooks' recommended gaps between attempts, in seconds: immediately, 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h.
const RECOMMENDED_GAPS: [i64; 8] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000];

/// The wait before each attempt (the first is 0), each gap multiplied by `scale` and rounded,
/// but never under 1 s (a `scale` that is not a positive number gives 1 s gaps).
pub fn retry_delays(scale: f64) -> Vec<i64> {
    RECOMMENDED_GAPS
        .iter()
        .enumerate()
        .map(|(i, &gap)| {
            if i == 0 {
                return 0;
            }
            let scaled = (gap as f64 * scale).round();
            // `as` saturates (and maps NaN to 0), so no scale can overflow.
            (scaled as i64).max(1)
        })
        .collect()
}

/// Seconds after the first attempt at which each attempt is due (the first is 0), following
/// Standard Webhooks' recommended schedule multiplied by `scale` (see [`retry_delays`]).
pub fn retry_schedule(scale: f64) -> Vec<i64> {
    retry_delays(scale)
        .into_iter()
        .scan(0i64, |at, gap| {
            *at = at.saturating_add(gap);
            Some(*at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    /// The Standard Webhooks libraries' own test vector; recomputed with Python's `hmac`
    /// (`base64.b64encode(hmac.new(key, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + body,
    /// hashlib.sha256).digest())`) and with the `standardwebhooks` npm package.
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        assert_eq!(sign(&secret(), MSG_ID, TS, BODY), SIGNATURE);
    }

    #[test]
    fn verifies_the_standard_webhooks_test_vector() {
        assert_eq!(
            verify(&secret(), MSG_ID, TS, BODY, SIGNATURE, TS, 300),
            Ok(())
        );
    }

    /// Produced by the `standardwebhooks` npm package (1.1.1):
    /// `new Webhook(SECRET).sign("msg_2", new Date(1700000000 * 1000), '{"a":"é"}')`.
    #[test]
    fn matches_the_npm_library_on_other_input() {
        let body = r#"{"a":"é"}"#.as_bytes();
        assert_eq!(sign(&secret(), "msg_2", 1_700_000_000, body), NPM_SIG);
        assert_eq!(
            verify(
                &secret(),
                "msg_2",
                1_700_000_000,
                body,
                NPM_SIG,
                1_700_000_000,
                300
            ),
            Ok(())
        );
    }
    const NPM_SIG: &str = "v1,B+bOh3psNk00nPHQuBusSRDthL0iupORt9wgIafc17c=";

    #[test]
    fn any_matching_entry_among_several_is_enough() {
        let header = format!("v1,Zm9v v2,abc {SIGNATURE} v1,bm90LWJhc2U2NA");
        assert_eq!(
            verify(&secret(), MSG_ID, TS, BODY, &header, TS, 300),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_id_or_timestamp_is_refused() {
        let v =
            |id: &str, ts: i64, body: &[u8]| verify(&secret(), id, ts, body, SIGNATURE, ts, 300);
        assert_eq!(
            v(MSG_ID, TS, br#"{"test": 2432232315}"#),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(v("msg_other", TS, BODY), Err(WebhookError::BadSignature));
        assert_eq!(v(MSG_ID, TS + 1, BODY), Err(WebhookError::BadSignature));
    }

    #[test]
    fn headers_without_a_v1_signature_are_refused() {
        for header in [
            "",
            "   ",
            "v1a,abc",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert_eq!(
                verify(&secret(), MSG_ID, TS, BODY, header, TS, 300),
                Err(WebhookError::NoSignature),
                "{header:?}"
            );
        }
        for header in [
            "v1,",
            "v1,!!!",
            "v1,g0hM9SsE",
            "v1,G0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert_eq!(
                verify(&secret(), MSG_ID, TS, BODY, header, TS, 300),
                Err(WebhookError::BadSignature),
                "{header:?}"
            );
        }
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let v = |now: i64| verify(&secret(), MSG_ID, TS, BODY, SIGNATURE, now, 300);
        assert_eq!(v(TS + 300), Ok(()));
        assert_eq!(v(TS - 300), Ok(()));
        assert_eq!(v(TS + 301), Err(WebhookError::TimestampTooOld));
        assert_eq!(v(TS - 301), Err(WebhookError::TimestampTooNew));
        assert_eq!(
            verify(&secret(), MSG_ID, i64::MIN, BODY, SIGNATURE, i64::MAX, 300),
            Err(WebhookError::TimestampTooOld)
        );
        assert_eq!(
            verify(&secret(), MSG_ID, i64::MAX, BODY, SIGNATURE, i64::MIN, 300),
            Err(WebhookError::TimestampTooNew)
        );
    }

    #[test]
    fn secrets_parse_with_or_without_prefix_and_round_trip() {
        let bare = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(bare, secret());
        assert_eq!(secret().to_whsec(), SECRET);
        let key = WebhookSecret::from_bytes(vec![7; 32]);
        assert_eq!(WebhookSecret::parse(&key.to_whsec()), Ok(key.clone()));
        // Padding is optional: 32 bytes encode to 43 characters and one `=`.
        let unpadded = key.to_whsec().trim_end_matches('=').to_string();
        assert_eq!(WebhookSecret::parse(&unpadded), Ok(key));
    }

    #[test]
    fn malformed_or_short_secrets_are_refused() {
        for s in [
            "",
            "whsec_",
            "whsec_!!!!",
            "whsec_c2hvcnQ=",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        ] {
            assert_eq!(
                WebhookSecret::parse(s),
                Err(WebhookError::InvalidSecret),
                "{s:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(format!("{:?}", secret()), "***");
    }

    #[test]
    fn retry_schedule_follows_the_recommended_gaps() {
        assert_eq!(
            retry_schedule(1.0),
            vec![0, 5, 305, 2105, 9305, 27305, 63305, 99305]
        );
        assert_eq!(retry_delays(1.0), RECOMMENDED_GAPS.to_vec());
    }

    #[test]
    fn scaled_retries_keep_at_least_a_second_between_attempts() {
        assert_eq!(retry_delays(0.001), vec![0, 1, 1, 2, 7, 18, 36, 36]);
        assert_eq!(retry_schedule(0.001), vec![0, 1, 2, 4, 11, 29, 65, 101]);
        for scale in [0.0, -1.0, f64::NAN] {
            assert_eq!(
                retry_schedule(scale),
                vec![0, 1, 2, 3, 4, 5, 6, 7],
                "{scale}"
            );
        }
        assert_eq!(retry_schedule(f64::INFINITY).last(), Some(&i64::MAX));
    }
}
