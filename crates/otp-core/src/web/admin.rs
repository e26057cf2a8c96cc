//! The operator page's credential: `ADMIN_TOKEN` holds the SHA-256 hex of one or more operator
//! tokens (comma-separated, for rotation), checked like the API tokens; a browser that
//! presented a token gets a session cookie `<expiry>.<HMAC>` keyed with that secret, so the
//! token itself never sits in a cookie and rotating the secret ends every session.

use crate::mac::{ct_eq, hex_decode, hmac_sha256};
use crate::secret::token_matches;

/// The session cookie's name.
pub const COOKIE: &str = "otp_admin";
/// A session's lifetime, in seconds (8 hours).
pub const SESSION_SECS: i64 = 8 * 3600;

/// True when `token` is one of the operator tokens whose hashes `secret` lists.
pub fn token_is_valid(secret: &str, token: &str) -> bool {
    let hashes: Vec<String> = secret.split(',').map(str::to_owned).collect();
    !token.is_empty() && token_matches(token, &hashes)
}

fn mac(secret: &str, expires: i64) -> [u8; 32] {
    hmac_sha256(
        secret.as_bytes(),
        &[
            b"edge-otp/admin-session/v1|",
            expires.to_string().as_bytes(),
        ],
    )
}

/// A session cookie value that expires at `expires` (Unix seconds).
pub fn session(secret: &str, expires: i64) -> String {
    let hex: String = mac(secret, expires)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{expires}.{hex}")
}

/// True when `value` is a session made with `secret` that has not expired at `now`.
pub fn session_is_valid(secret: &str, value: &str, now: i64) -> bool {
    let Some((expires, hex)) = value.split_once('.') else {
        return false;
    };
    let (Ok(expires), Some(given)) = (expires.parse::<i64>(), hex_decode(hex)) else {
        return false;
    };
    expires > now && ct_eq(&given, &mac(secret, expires))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::token_hash_hex;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn tokens_match_their_hash_in_a_comma_separated_list() {
        let secret = format!("{}, {}", token_hash_hex("old"), token_hash_hex("new"));
        assert!(token_is_valid(&secret, "old"));
        assert!(token_is_valid(&secret, "new"));
        assert!(!token_is_valid(&secret, "other"));
        assert!(!token_is_valid(&secret, ""));
        assert!(!token_is_valid("", ""));
    }

    #[test]
    fn a_session_opens_until_it_expires_and_only_with_its_secret() {
        let s = session("k1", 1000);
        assert!(session_is_valid("k1", &s, 999));
        assert!(!session_is_valid("k1", &s, 1000));
        assert!(!session_is_valid("k2", &s, 999));
        let forged = format!("2000{}", &s[4..]);
        assert!(!session_is_valid("k1", &forged, 999));
        for junk in ["", ".", "1000", "x.y", "1000.zz"] {
            assert!(!session_is_valid("k1", junk, 0), "{junk}");
        }
    }
}
