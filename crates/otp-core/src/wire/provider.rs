//! What every delivery provider's answers reduce to: where a message stands, and whether a
//! failed send is worth retrying on the same channel or should fall back to the next one.
//!
//! Each provider module ([`crate::wire::twilio`], [`crate::wire::meta`]) maps its own statuses and error
//! codes onto these; only codes a provider documents are listed there, and an unlisted code is
//! judged by its HTTP status alone (4xx permanent, except 408 and 429; 5xx temporary).

use serde_json::Value;

/// Where a sent message stands, as a provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the provider, not yet handed to the carrier or WhatsApp.
    Queued,
    /// Handed on; not yet confirmed on the handset.
    Sent,
    /// On the handset.
    Delivered,
    /// Opened (WhatsApp only).
    Read,
    /// Will not arrive: `"<provider> <error>"` (`twilio 30003`, `meta 131026: …`).
    Failed(String),
}

/// True when a failed send should not be retried: a code in `permanent`, or, for a code in
/// neither list, a 4xx other than 408 and 429.
pub(crate) fn error_is_permanent(
    http_status: u16,
    code: Option<i64>,
    permanent: &[i64],
    temporary: &[i64],
) -> bool {
    match code {
        Some(code) if permanent.contains(&code) => true,
        Some(code) if temporary.contains(&code) => false,
        _ => (400..500).contains(&http_status) && !matches!(http_status, 408 | 429),
    }
}

/// The integer `code` and string `message` (empty when absent) of a JSON error object.
pub(crate) fn code_and_message(error: &Value) -> Option<(i64, String)> {
    let code = error.get("code")?.as_i64()?;
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    Some((code, message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn listed_codes_decide_before_the_http_status() {
        let (permanent, temporary) = (&[1][..], &[2][..]);
        assert!(error_is_permanent(500, Some(1), permanent, temporary));
        assert!(!error_is_permanent(400, Some(2), permanent, temporary));
    }

    #[test]
    fn unlisted_codes_are_judged_by_the_http_status() {
        for status in [400, 401, 403, 404, 422] {
            assert!(error_is_permanent(status, Some(3), &[], &[]), "{status}");
            assert!(error_is_permanent(status, None, &[], &[]), "{status}");
        }
        for status in [200, 202, 302, 408, 429, 500, 502, 503] {
            assert!(!error_is_permanent(status, None, &[], &[]), "{status}");
        }
    }

    #[test]
    fn error_objects_give_code_and_message() {
        assert_eq!(
            code_and_message(&json!({"code": 7, "message": "m"})),
            Some((7, "m".into()))
        );
        assert_eq!(code_and_message(&json!({"code": 7})), Some((7, "".into())));
        assert_eq!(code_and_message(&json!({"code": "7"})), None);
        assert_eq!(code_and_message(&json!({"message": "m"})), None);
    }
}
