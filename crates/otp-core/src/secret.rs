//! Secrets (the pepper codes are derived from, signing keys) in a type that never prints them.

use sha2::{Digest, Sha256};
use std::fmt;

/// Secret bytes whose `Debug` prints `***`, so a secret cannot leak through a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Shortest secret accepted as a pepper or signing key, in bytes.
    pub const MIN_LEN: usize = 32;

    /// Wraps secret bytes; refuses ones shorter than [`Secret::MIN_LEN`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretTooShort> {
        let bytes = bytes.into();
        if bytes.len() < Self::MIN_LEN {
            return Err(SecretTooShort);
        }
        Ok(Self(bytes))
    }

    /// The secret's bytes, for keying a MAC.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A key for one purpose, derived from this one: HMAC-SHA256(self, `label`). Every key the
    /// service derives (login links, widget sessions, cookies) comes from here, each under its
    /// own label, so no two purposes share a key.
    pub fn derive(&self, label: &[u8]) -> Secret {
        Secret(crate::mac::hmac_sha256(&self.0, &[label]).to_vec())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret was shorter than [`Secret::MIN_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretTooShort;

impl fmt::Display for SecretTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret must be at least {} bytes", Secret::MIN_LEN)
    }
}

/// SHA-256 of an API token, as lowercase hex: what the `API_TOKENS` secret stores, so a
/// leaked configuration never holds a usable token.
pub fn token_hash_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `token` hashes to one of `hashes_hex` (several allow rotation). Each comparison
/// is constant-time; malformed entries never match.
pub fn token_matches(token: &str, hashes_hex: &[String]) -> bool {
    let presented = token_hash_hex(token);
    hashes_hex.iter().fold(false, |found, h| {
        let h = h.trim().to_ascii_lowercase();
        found | crate::mac::ct_eq(h.as_bytes(), presented.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = Secret::new(*b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{s:?}"), "***");
    }

    #[test]
    fn token_hash_known_answer() {
        // `printf %s edge-otp | sha256sum`
        assert_eq!(
            token_hash_hex("edge-otp"),
            "e532924dca5d12af436aa4230264b052fbc98be85645dc01dadc7f0a5df4aaa8"
        );
    }

    #[test]
    fn tokens_match_only_their_hash() {
        let hashes = vec!["nonsense".to_string(), token_hash_hex("t1").to_uppercase()];
        assert!(token_matches("t1", &hashes));
        assert!(!token_matches("t2", &hashes));
        assert!(!token_matches("t1", &[]));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(Secret::new(*b"short"), Err(SecretTooShort));
    }
}
