//! Secrets (the pepper codes are derived from, signing keys) in a type that never prints them.

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
    fn short_secrets_are_refused() {
        assert_eq!(Secret::new(*b"short"), Err(SecretTooShort));
    }
}
