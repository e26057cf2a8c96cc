//! The verification token: proof, handed to the integrator's backend, that a phone number was
//! verified. It is a plain HS256 JWT (RFC 7519) so any standard JWT library can check it with
//! the shared key; `kid` names the key so keys can rotate.
//!
//! The header and claims are serialized by hand in a fixed order, so a token is a pure function
//! of its inputs and the known-answer tests pin it byte for byte.

use crate::mac::{hmac_sha256, sha256_mac};
use crate::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Longest token [`verify`] reads, in bytes; real ones are a few hundred.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The token's claims, serialized in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the service's public base URL.
    pub iss: String,
    /// Subject: what was verified (the recipient).
    pub sub: String,
    /// Audience: the integrator the token is for.
    pub aud: String,
    /// Token id: the challenge uuid, so a backend can refuse a replay.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (the token is refused from this second on).
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON with the expected claims, or too long.
    Malformed,
    /// The header's `alg` is not `HS256` (or it lists `crit` extensions).
    UnsupportedAlgorithm,
    /// No key has the header's `kid`.
    UnknownKey,
    /// The signature does not match.
    BadSignature,
    /// `now` is at or past `exp`.
    Expired,
    /// `aud` is not the expected audience.
    WrongAudience,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "token is malformed",
            Self::UnsupportedAlgorithm => "token algorithm must be hs256",
            Self::UnknownKey => "token key id is unknown",
            Self::BadSignature => "token signature does not match",
            Self::Expired => "token has expired",
            Self::WrongAudience => "token is for another audience",
        })
    }
}

impl std::error::Error for TokenError {}

/// A JSON string literal; `Value`'s `Display` cannot fail, unlike `serde_json::to_string`.
fn json_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn header_json(kid: &str) -> String {
    format!(r#"{{"alg":"HS256","typ":"JWT","kid":{}}}"#, json_str(kid))
}

fn claims_json(c: &Claims) -> String {
    format!(
        r#"{{"iss":{},"sub":{},"aud":{},"jti":{},"iat":{},"exp":{}}}"#,
        json_str(&c.iss),
        json_str(&c.sub),
        json_str(&c.aud),
        json_str(&c.jti),
        c.iat,
        c.exp
    )
}

/// Signs `claims` as an HS256 JWT whose header is `{"alg":"HS256","typ":"JWT","kid":<kid>}`.
pub fn sign(key: &Secret, kid: &str, claims: &Claims) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json(kid)),
        URL_SAFE_NO_PAD.encode(claims_json(claims))
    );
    let tag = hmac_sha256(key.expose(), &[signing_input.as_bytes()]);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Checks a token against the keys (`(kid, key)` pairs, several during a rotation) and
/// returns its claims when it is an HS256 JWT signed by the key its `kid` names, for `aud`,
/// and not expired at `now`.
pub fn verify(
    keys: &[(String, Secret)],
    token: &str,
    aud: &str,
    now: i64,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Malformed)?;
    if header.alg != "HS256" || header.crit.is_some() {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let (_, key) = keys
        .iter()
        .find(|(k, _)| *k == kid)
        .ok_or(TokenError::UnknownKey)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = sha256_mac(key.expose());
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(claims_b64.as_bytes());
    // `verify_slice` compares in constant time (and refuses a tag of the wrong length).
    mac.verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    // The claims are only parsed once they are known to be ours.
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Malformed)?;
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if claims.aud != aud {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn key() -> Secret {
        Secret::new(*b"edge-otp-token-key-0123456789abcdef").unwrap()
    }

    fn old_key() -> Secret {
        Secret::new(*b"older-token-key-0123456789abcdef!").unwrap()
    }

    fn keys() -> Vec<(String, Secret)> {
        vec![("2026-01".into(), key()), ("2025-12".into(), old_key())]
    }

    fn claims() -> Claims {
        Claims {
            iss: "https://otp.example.com".into(),
            sub: "20123456789".into(),
            aud: "shop.example".into(),
            jti: "a0b5df6a-b491-4190-80a5-38d85a2a4836".into(),
            iat: 1767225600,
            exp: 1767226200,
        }
    }

    /// Produced with Python's stdlib: `json.dumps(obj, separators=(",", ":"),
    /// ensure_ascii=False)` of the header and claims in the same order, base64url without
    /// padding, HMAC-SHA256 over `header.claims`; `jose` 6.2.18's `jwtVerify` accepts it.
    const KAT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjIwMjYtMDEifQ.eyJpc3MiOiJodHRwczovL290cC5leGFtcGxlLmNvbSIsInN1YiI6IjIwMTIzNDU2Nzg5IiwiYXVkIjoic2hvcC5leGFtcGxlIiwianRpIjoiYTBiNWRmNmEtYjQ5MS00MTkwLTgwYTUtMzhkODVhMmE0ODM2IiwiaWF0IjoxNzY3MjI1NjAwLCJleHAiOjE3NjcyMjYyMDB9.5g5oUHXUQTiNoy97tvNjXFpA6YQGXtCrxQJ30WzsLps";

    /// The same Python recipe with escapes and non-ASCII in the header and claims:
    /// kid `k"1\<tab>`, sub `Zoë 😀 \u0001`, iss `edge-otp`, aud `a`, jti `j`, iat -5, exp 0.
    const KAT_ESCAPES: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImtcIjFcXFx0In0.eyJpc3MiOiJlZGdlLW90cCIsInN1YiI6Ilpvw6sg8J-YgCBcdTAwMDEiLCJhdWQiOiJhIiwianRpIjoiaiIsImlhdCI6LTUsImV4cCI6MH0.kdGP0d7zyiUyTnjZ-um7_nkWsR759Xlv3FcboTM-ig4";

    /// Produced by `jose` 6.2.18 (Node): `new SignJWT({sub: "+4915112345678", jti: ...})
    /// .setProtectedHeader({alg: "HS256", kid: "2025-12"}).setIssuer(...).setAudience(...)
    /// .setIssuedAt(1767225600).setExpirationTime(1767226200).sign(old key)`: no `typ`, and
    /// claims in another order.
    const JOSE: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjIwMjUtMTIifQ.eyJzdWIiOiIrNDkxNTExMjM0NTY3OCIsImp0aSI6ImYxZTJkM2M0LTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMiIsImlzcyI6Imh0dHBzOi8vb3RwLmV4YW1wbGUuY29tIiwiYXVkIjoic2hvcC5leGFtcGxlIiwiaWF0IjoxNzY3MjI1NjAwLCJleHAiOjE3NjcyMjYyMDB9.PB5GqcDoL_AQ54Jju3Jq22g4176rCDu2wNPuigpPlBM";

    const NOW: i64 = 1767225700;

    #[test]
    fn signs_the_known_answer() {
        assert_eq!(sign(&key(), "2026-01", &claims()), KAT);
    }

    #[test]
    fn escapes_strings_as_json_does() {
        let c = Claims {
            iss: "edge-otp".into(),
            sub: "Zoë 😀 \u{1}".into(),
            aud: "a".into(),
            jti: "j".into(),
            iat: -5,
            exp: 0,
        };
        assert_eq!(sign(&key(), "k\"1\\\t", &c), KAT_ESCAPES);
        assert_eq!(claims_json(&c), serde_json::to_string(&c).unwrap());
    }

    #[test]
    fn verifies_its_own_and_the_independent_token() {
        assert_eq!(verify(&keys(), KAT, "shop.example", NOW), Ok(claims()));
        let t = sign(&old_key(), "2025-12", &claims());
        assert_eq!(verify(&keys(), &t, "shop.example", NOW), Ok(claims()));
    }

    #[test]
    fn verifies_a_token_signed_by_jose() {
        assert_eq!(
            verify(&keys(), JOSE, "shop.example", NOW),
            Ok(Claims {
                iss: "https://otp.example.com".into(),
                sub: "+4915112345678".into(),
                aud: "shop.example".into(),
                jti: "f1e2d3c4-0000-4000-8000-000000000002".into(),
                iat: 1767225600,
                exp: 1767226200,
            })
        );
    }

    #[test]
    fn the_key_is_chosen_by_kid() {
        // Signed with the old key but naming the current one.
        let t = sign(&old_key(), "2026-01", &claims());
        assert_eq!(
            verify(&keys(), &t, "shop.example", NOW),
            Err(TokenError::BadSignature)
        );
        let t = sign(&key(), "2024-01", &claims());
        assert_eq!(
            verify(&keys(), &t, "shop.example", NOW),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            verify(&[], KAT, "shop.example", NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let c = claims();
        assert!(verify(&keys(), KAT, "shop.example", c.exp - 1).is_ok());
        assert_eq!(
            verify(&keys(), KAT, "shop.example", c.exp),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&keys(), KAT, "shop.example", i64::MAX),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_audience_is_refused() {
        assert_eq!(
            verify(&keys(), KAT, "shop.example.org", NOW),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            verify(&keys(), KAT, "", NOW),
            Err(TokenError::WrongAudience)
        );
    }

    fn with_header(header: &str, key: &Secret) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims_json(&claims()))
        );
        let tag = hmac_sha256(key.expose(), &[input.as_bytes()]);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    #[test]
    fn algorithms_other_than_hs256_are_refused() {
        for header in [
            r#"{"alg":"none","kid":"2026-01"}"#,
            r#"{"alg":"HS512","kid":"2026-01"}"#,
            r#"{"alg":"RS256","kid":"2026-01"}"#,
            r#"{"alg":"hs256","kid":"2026-01"}"#,
            r#"{"alg":"HS256","kid":"2026-01","crit":["b64"],"b64":false}"#,
        ] {
            assert_eq!(
                verify(&keys(), &with_header(header, &key()), "shop.example", NOW),
                Err(TokenError::UnsupportedAlgorithm),
                "{header}"
            );
        }
        // `alg: none` with an empty signature, the classic downgrade.
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"2026-01"}"#),
            URL_SAFE_NO_PAD.encode(claims_json(&claims()))
        );
        assert_eq!(
            verify(&keys(), &unsigned, "shop.example", NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
        assert_eq!(
            verify(
                &keys(),
                &with_header(r#"{"alg":"HS256"}"#, &key()),
                "shop.example",
                NOW
            ),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn tampered_tokens_fail_the_signature() {
        let parts: Vec<&str> = KAT.split('.').collect();
        let other_claims = URL_SAFE_NO_PAD.encode(claims_json(&Claims {
            exp: i64::MAX,
            ..claims()
        }));
        let forged = format!("{}.{}.{}", parts[0], other_claims, parts[2]);
        assert_eq!(
            verify(&keys(), &forged, "shop.example", NOW),
            Err(TokenError::BadSignature)
        );
        let mut sig = parts[2].to_string();
        sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
        let flipped = format!("{}.{}.{}", parts[0], parts[1], sig);
        assert_eq!(
            verify(&keys(), &flipped, "shop.example", NOW),
            Err(TokenError::BadSignature)
        );
        let short = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
        assert_eq!(
            verify(&keys(), &short, "shop.example", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let parts: Vec<&str> = KAT.split('.').collect();
        let cases = [
            String::new(),
            "a.b".into(),
            format!("{KAT}.x"),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            format!("!{}", KAT),
            format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("[]"), parts[1], parts[2]),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ];
        for t in cases {
            assert_eq!(
                verify(&keys(), &t, "shop.example", NOW),
                Err(TokenError::Malformed),
                "{t}"
            );
        }
        // Correctly signed, but the claims lack `jti` or are not an object.
        for body in [
            r#"{"iss":"i","sub":"s","aud":"shop.example","iat":1,"exp":9999999999}"#,
            r#"{"iss":"i","sub":"s","aud":["shop.example"],"jti":"j","iat":1,"exp":9999999999}"#,
            r#"{"iss":"i","sub":"s","aud":"shop.example","jti":"j","iat":1,"exp":9.5e9}"#,
            "null",
        ] {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header_json("2026-01")),
                URL_SAFE_NO_PAD.encode(body)
            );
            let tag = hmac_sha256(key().expose(), &[input.as_bytes()]);
            let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag));
            assert_eq!(
                verify(&keys(), &t, "shop.example", NOW),
                Err(TokenError::Malformed),
                "{body}"
            );
        }
    }
}
