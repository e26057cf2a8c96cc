//! One way to parse JSON bytes: as UTF-8 text through `serde_json::from_str`.
//!
//! The Worker's runtime crates parse with `from_str`; parsing bytes with `from_slice` as well
//! would compile serde_json's whole parser, and each type's visitor, a second time for the
//! other reader (about 10 KB gzip of Wasm). JSON text is UTF-8 (RFC 8259), so reading the bytes
//! as text first refuses nothing a byte parser would accept.

use serde::de::DeserializeOwned;

/// `raw` parsed as JSON into `T`; `None` when it is not UTF-8 or not a `T`.
pub fn from_bytes<T: DeserializeOwned>(raw: &[u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(raw).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn parses_text_and_refuses_what_is_not_utf8_or_not_json() {
        assert_eq!(
            from_bytes::<Value>(br#"{"a":1}"#),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(from_bytes::<Value>(b"{\"a\":\"\xff\"}"), None);
        assert_eq!(from_bytes::<Value>(b"{"), None);
        assert_eq!(from_bytes::<u8>(b"300"), None);
    }
}
