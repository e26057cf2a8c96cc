//! `Idempotency-Key` rules for the send endpoints: which keys are valid, how a request is
//! fingerprinted, and what a repeated key means.
//!
//! A key is remembered for [`TTL_SECS`] with the fingerprint of the request that first used
//! it. The same key with the same method, path and raw body replays the first response (which
//! never stores a code; the replay derives it again); the same key with anything else is a
//! conflict. Assumed: callers scope keys themselves (per instance and API key) and pass the
//! body byte for byte as received, so a re-encoded but equal JSON body counts as different.

use sha2::{Digest, Sha256};

/// How long a key is remembered, in seconds (24 hours).
pub const TTL_SECS: i64 = 86_400;

/// Longest key accepted, in bytes.
const KEY_MAX: usize = 255;

/// True for 1-255 printable ASCII characters (space to `~`) that neither start nor end with
/// a space.
pub fn valid_key(key: &str) -> bool {
    (1..=KEY_MAX).contains(&key.len())
        && key.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !key.starts_with(' ')
        && !key.ends_with(' ')
}

/// Lowercase hex SHA-256 of method, path and body, each preceded by its length as 8
/// big-endian bytes, so no two different triples share an encoding.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request with an already-seen key should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The key is new (or expired): handle the request and store its fingerprint.
    Fresh,
    /// Same key, same request: answer with the stored response and send nothing.
    Same,
    /// Same key, different request: refuse it.
    Conflict,
}

/// Compares a request's fingerprint with the one stored under its key, if any.
pub fn compare(stored_fingerprint: Option<&str>, fingerprint: &str) -> Replay {
    match stored_fingerprint {
        None => Replay::Fresh,
        Some(stored) if stored == fingerprint => Replay::Same,
        Some(_) => Replay::Conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn keys_are_printable_ascii_without_outer_spaces() {
        for key in [
            "a",
            "order-42",
            "3f2c9a1e-7d4b-4e8a-9c1f-0b2a3c4d5e6f",
            "with inner space",
            "~!@#$%^&*()",
        ] {
            assert!(valid_key(key), "{key:?}");
        }
        assert!(valid_key(&"k".repeat(255)));
        for key in ["", " a", "a ", " ", "tab\there", "new\nline", "é", "\u{7f}"] {
            assert!(!valid_key(key), "{key:?}");
        }
        assert!(!valid_key(&"k".repeat(256)));
    }

    /// Expected value computed with Python: `hashlib.sha256(b"".join(len(p).to_bytes(8,
    /// "big") + p for p in [b"POST", b"/v1/otp/send", b'{"to":"+14155550100"}'])).hexdigest()`.
    #[test]
    fn fingerprint_known_answer() {
        assert_eq!(
            fingerprint("POST", "/v1/otp/send", br#"{"to":"+14155550100"}"#),
            "7ca25a0a80c51629486facc0898e7402ddaaa0d3d978039e095b3a0fd7a9199f"
        );
    }

    #[test]
    fn fingerprint_separates_the_parts() {
        let a = fingerprint("POST", "/v1/otp/send", b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint("POST", "/v1/otp/send", b"{}"));
        assert_ne!(a, fingerprint("POST", "/v1/otp/send", b"{} "));
        assert_ne!(a, fingerprint("PUT", "/v1/otp/send", b"{}"));
        assert_ne!(a, fingerprint("POST", "/v1/otp/verify", b"{}"));
        // Moving bytes between parts changes the fingerprint.
        assert_ne!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/ab", b"")
        );
        assert_ne!(
            fingerprint("POST/", "a", b""),
            fingerprint("POST", "/a", b"")
        );
    }

    #[test]
    fn compare_tells_fresh_same_and_conflict() {
        let fp = fingerprint("POST", "/v1/otp/send", b"{}");
        let other = fingerprint("POST", "/v1/otp/send", b"{ }");
        assert_eq!(compare(None, &fp), Replay::Fresh);
        assert_eq!(compare(Some(&fp), &fp), Replay::Same);
        assert_eq!(compare(Some(&other), &fp), Replay::Conflict);
    }
}
