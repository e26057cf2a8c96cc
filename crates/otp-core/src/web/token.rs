//! The verification token: proof, handed to the integrator's backend, that a phone number was
//! verified. It is a JWT (RFC 7519) any standard library checks. By default it is **ES256**
//! (ECDSA P-256 with SHA-256): the Worker signs with a private key only it holds and publishes
//! the public keys as a JWKS, so a backend can check a token but never mint one. **HS256**
//! (a key shared with every verifying backend, any of which could then mint tokens) stays as a
//! per-instance opt-in for deployments that already rely on it. `kid` names the key, so keys
//! rotate with two live at once.
//!
//! Everything here is pure: the header and claims, serialized by hand in a fixed order so a
//! signing input is a function of its inputs and the known-answer tests pin it byte for byte;
//! the compact JWS around a signature; the header check that pins the algorithm before any
//! signature is looked at; the claim checks; HMAC for HS256; and the JWK, JWKS and discovery
//! documents. The ECDSA sign and verify run in the Worker, through WebCrypto (`src/keys.rs`).
//! WebCrypto's ECDSA signature is already the raw `r || s` that JWS wants (RFC 7518 §3.4), so
//! no DER conversion is needed in either direction.

use crate::mac::{hmac_sha256, sha256_mac};
use crate::Secret;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Longest token [`parse`] reads, in bytes; real ones are a few hundred.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Lifetime of a verification token, in seconds.
pub const TOKEN_TTL: i64 = 600;

/// Length of an ES256 signature: `r || s`, 32 bytes each.
pub const ES256_SIGNATURE_LEN: usize = 64;

/// How an instance's tokens are signed (`token_alg` in its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256, keys in `TOKEN_SIGNING_KEYS`, public keys in the JWKS.
    #[default]
    Es256,
    /// HMAC-SHA256 with a key in `INSTANCE_SECRETS.<instance>.token_keys` that every verifying
    /// backend holds too: weaker, kept for existing deployments.
    Hs256,
}

/// Read as a plain string: a derived enum deserializer costs the Worker a kilobyte of Wasm.
impl<'de> Deserialize<'de> for Alg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "ES256" => Ok(Self::Es256),
            "HS256" => Ok(Self::Hs256),
            _ => Err(serde::de::Error::custom(
                "token_alg must be \"ES256\" or \"HS256\"",
            )),
        }
    }
}

impl Alg {
    /// The JOSE name (`alg` of the header).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
        }
    }
}

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

impl Claims {
    /// The claims of a token issued at `iat`: it expires [`TOKEN_TTL`] seconds later.
    pub fn issued(iss: String, sub: String, aud: String, jti: String, iat: i64) -> Self {
        Self {
            iss,
            sub,
            aud,
            jti,
            iat,
            exp: iat.saturating_add(TOKEN_TTL),
        }
    }
}

/// True while a token issued at `iat` is still valid at `now`: a verified session hands its
/// token out again (same claims) until then, and never a new one after.
pub fn still_valid(iat: i64, now: i64) -> bool {
    now < iat.saturating_add(TOKEN_TTL)
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON with the expected claims, or too long.
    Malformed,
    /// The header's `alg` is not the one the instance signs with (or it lists `crit`).
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
            Self::UnsupportedAlgorithm => "token algorithm is not the one this instance signs with",
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

fn header_json(alg: Alg, kid: &str) -> String {
    format!(
        r#"{{"alg":"{}","typ":"JWT","kid":{}}}"#,
        alg.as_str(),
        json_str(kid)
    )
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

/// What gets signed: `base64url(header).base64url(claims)`, the header
/// `{"alg":<alg>,"typ":"JWT","kid":<kid>}`.
pub fn signing_input(alg: Alg, kid: &str, claims: &Claims) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json(alg, kid)),
        URL_SAFE_NO_PAD.encode(claims_json(claims))
    )
}

/// The compact JWS: the signing input, a dot, the signature in base64url.
pub fn assemble(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Signs `claims` as an HS256 JWT whose header is `{"alg":"HS256","typ":"JWT","kid":<kid>}`.
pub fn sign_hs256(key: &Secret, kid: &str, claims: &Claims) -> String {
    let input = signing_input(Alg::Hs256, kid, claims);
    let tag = hmac_sha256(key.expose(), &[input.as_bytes()]);
    assemble(&input, &tag)
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// A token whose shape and header passed, its signature not yet checked.
#[derive(Debug)]
pub struct Unverified<'a> {
    /// The key the header names.
    pub kid: String,
    /// What the signature covers (`header.claims`, as received).
    pub signing_input: &'a str,
    /// The decoded signature (for ES256, exactly [`ES256_SIGNATURE_LEN`] bytes).
    pub signature: Vec<u8>,
    claims_b64: &'a str,
}

/// Splits a token and checks its header: `alg` must be exactly `alg` (the instance's, never
/// the token's choice), no `crit`, a `kid`. The signature is checked by the caller (HMAC here,
/// ECDSA through WebCrypto), then [`Unverified::claims`] reads the claims.
pub fn parse(token: &str, alg: Alg) -> Result<Unverified<'_>, TokenError> {
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
        .and_then(|json| crate::json::from_bytes(&json))
        .ok_or(TokenError::Malformed)?;
    if header.alg != alg.as_str() || header.crit.is_some() {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| TokenError::Malformed)?;
    if alg == Alg::Es256 && signature.len() != ES256_SIGNATURE_LEN {
        return Err(TokenError::BadSignature);
    }
    Ok(Unverified {
        kid,
        signing_input: &token[..header_b64.len() + 1 + claims_b64.len()],
        signature,
        claims_b64,
    })
}

impl Unverified<'_> {
    /// The claims, once the signature is known to be ours: for `aud`, not expired at `now`.
    pub fn claims(&self, aud: &str, now: i64) -> Result<Claims, TokenError> {
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(self.claims_b64)
            .ok()
            .and_then(|json| crate::json::from_bytes(&json))
            .ok_or(TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims.aud != aud {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }
}

/// Checks an HS256 token against the keys (`(kid, key)` pairs, several during a rotation) and
/// returns its claims when it is signed by the key its `kid` names, for `aud`, and not expired
/// at `now`.
pub fn verify_hs256(
    keys: &[(String, Secret)],
    token: &str,
    aud: &str,
    now: i64,
) -> Result<Claims, TokenError> {
    let t = parse(token, Alg::Hs256)?;
    let (_, key) = keys
        .iter()
        .find(|(k, _)| *k == t.kid)
        .ok_or(TokenError::UnknownKey)?;
    let mut mac = sha256_mac(key.expose());
    mac.update(t.signing_input.as_bytes());
    // `verify_slice` compares in constant time (and refuses a tag of the wrong length).
    mac.verify_slice(&t.signature)
        .map_err(|_| TokenError::BadSignature)?;
    t.claims(aud, now)
}

// ---- keys: the private JWK a deploy holds, the public JWK it publishes ----------------------

/// Length of a P-256 coordinate or private scalar, in bytes.
const P256_LEN: usize = 32;

/// A P-256 private key as a JWK (RFC 7518 §6.2.2): `kty` `EC`, `crv` `P-256`, `x`, `y`, `d`.
/// Other members (`kid`, `alg`, `use`, `key_ops`, `ext`) are ignored.
#[derive(Clone, PartialEq, Eq)]
pub struct EcPrivateJwk {
    kty: String,
    crv: String,
    x: String,
    y: String,
    d: String,
}

impl fmt::Debug for EcPrivateJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcPrivateJwk(***)")
    }
}

fn is_p256_part(s: &str) -> bool {
    URL_SAFE_NO_PAD.decode(s).is_ok_and(|b| b.len() == P256_LEN)
}

impl EcPrivateJwk {
    /// Reads a private JWK from JSON text; `Err` says what is wrong without quoting the key.
    pub fn from_json(json: &str) -> Result<Self, &'static str> {
        Self::from_value(&serde_json::from_str(json).unwrap_or(Value::Null))
    }

    /// Reads a private JWK from a JSON value (through `Value` rather than a derived
    /// deserializer: the Worker carries `Value`'s already, and its Wasm size is budgeted).
    pub fn from_value(v: &Value) -> Result<Self, &'static str> {
        let member = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(kty), Some(crv), Some(x), Some(y), Some(d)) = (
            member("kty"),
            member("crv"),
            member("x"),
            member("y"),
            member("d"),
        ) else {
            return Err("is not a JWK with kty, crv, x, y and d");
        };
        let jwk = Self { kty, crv, x, y, d };
        jwk.check()?;
        Ok(jwk)
    }

    fn check(&self) -> Result<(), &'static str> {
        if self.kty != "EC" || self.crv != "P-256" {
            return Err("must be an EC key on P-256 (kty EC, crv P-256)");
        }
        if !(is_p256_part(&self.x) && is_p256_part(&self.y) && is_p256_part(&self.d)) {
            return Err("x, y and d must each be 32 bytes in base64url");
        }
        Ok(())
    }

    /// The JWK to import for signing (WebCrypto `importKey("jwk", …)`).
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"kty":"EC","crv":"P-256","x":{},"y":{},"d":{}}}"#,
            json_str(&self.x),
            json_str(&self.y),
            json_str(&self.d)
        )
    }

    /// Its public half.
    pub fn public(&self) -> EcPublicJwk {
        EcPublicJwk {
            x: self.x.clone(),
            y: self.y.clone(),
        }
    }
}

/// A P-256 public key: what the JWKS publishes and what verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcPublicJwk {
    x: String,
    y: String,
}

impl EcPublicJwk {
    /// The JWK to import for verifying (WebCrypto `importKey("jwk", …)`).
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"kty":"EC","crv":"P-256","x":{},"y":{}}}"#,
            json_str(&self.x),
            json_str(&self.y)
        )
    }

    /// Its JWKS entry (RFC 7517 §4): the key, its `kid`, `alg` ES256, `use` sig.
    pub fn published(&self, kid: &str) -> String {
        format!(
            r#"{{"kty":"EC","crv":"P-256","x":{},"y":{},"kid":{},"alg":"ES256","use":"sig"}}"#,
            json_str(&self.x),
            json_str(&self.y),
            json_str(kid)
        )
    }
}

/// A JWK Set (RFC 7517 §5) of [`EcPublicJwk::published`] entries.
pub fn jwks(entries: &[String]) -> String {
    format!(r#"{{"keys":[{}]}}"#, entries.join(","))
}

/// The OpenID-style discovery document: the issuer, where its keys are, and the algorithm.
pub fn openid_configuration(issuer: &str) -> String {
    format!(
        r#"{{"issuer":{},"jwks_uri":{},"id_token_signing_alg_values_supported":["ES256"]}}"#,
        json_str(issuer),
        json_str(&format!("{issuer}/.well-known/jwks.json"))
    )
}

/// One signing key of `TOKEN_SIGNING_KEYS`, as the operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// A private JWK.
    Jwk(EcPrivateJwk),
    /// A PKCS#8 `PrivateKeyInfo` (DER), from a `-----BEGIN PRIVATE KEY-----` PEM or its base64
    /// body; WebCrypto reads it and says whether it is a P-256 key.
    Pkcs8(Vec<u8>),
}

/// True for a `kid` that reads the same in a header, a JWKS and a log line.
fn kid_ok(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn pkcs8_der(text: &str) -> Result<Vec<u8>, &'static str> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let text = text.trim();
    let body = if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        return Err("is a SEC1 key: convert it with `openssl pkcs8 -topk8 -nocrypt`");
    } else if let Some(rest) = text.strip_prefix(BEGIN) {
        rest.strip_suffix(END)
            .ok_or("is a PEM without its END line")?
    } else if text.starts_with("-----") {
        return Err("is a PEM of another kind: a PKCS#8 PRIVATE KEY is needed");
    } else {
        text
    };
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map_err(|_| "is neither a private JWK nor a PKCS#8 key in PEM or base64")
}

/// Parses the `TOKEN_SIGNING_KEYS` secret: a JSON object, `kid` -> private key (a JWK object,
/// or a PKCS#8 PEM string). `Err` names the kid and the problem, never a key.
pub fn parse_signing_keys(json: &str) -> Result<Vec<(String, KeyMaterial)>, String> {
    let map: serde_json::Map<String, Value> = serde_json::from_str(json)
        .map_err(|_| "must be a JSON object: kid -> private key".to_owned())?;
    let mut keys = Vec::with_capacity(map.len());
    for (kid, value) in map {
        if !kid_ok(&kid) {
            return Err(format!(
                "kid {} must be 1-64 letters, digits, '.', '_' or '-'",
                json_str(&kid)
            ));
        }
        let material = match &value {
            Value::Object(_) => EcPrivateJwk::from_value(&value).map(KeyMaterial::Jwk),
            Value::String(s) => pkcs8_der(s).map(KeyMaterial::Pkcs8),
            _ => Err("must be a private JWK object or a PKCS#8 PEM string"),
        }
        .map_err(|why| format!("key {kid} {why}"))?;
        keys.push((kid, material));
    }
    Ok(keys)
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
    /// .setIssuedAt(1767225600).setExpirationTime(1767226200).sign_hs256(old key)`: no `typ`, and
    /// claims in another order.
    const JOSE: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjIwMjUtMTIifQ.eyJzdWIiOiIrNDkxNTExMjM0NTY3OCIsImp0aSI6ImYxZTJkM2M0LTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMiIsImlzcyI6Imh0dHBzOi8vb3RwLmV4YW1wbGUuY29tIiwiYXVkIjoic2hvcC5leGFtcGxlIiwiaWF0IjoxNzY3MjI1NjAwLCJleHAiOjE3NjcyMjYyMDB9.PB5GqcDoL_AQ54Jju3Jq22g4176rCDu2wNPuigpPlBM";

    const NOW: i64 = 1767225700;

    #[test]
    fn signs_the_known_answer() {
        assert_eq!(sign_hs256(&key(), "2026-01", &claims()), KAT);
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
        assert_eq!(sign_hs256(&key(), "k\"1\\\t", &c), KAT_ESCAPES);
        assert_eq!(claims_json(&c), serde_json::to_string(&c).unwrap());
    }

    #[test]
    fn verifies_its_own_and_the_independent_token() {
        assert_eq!(
            verify_hs256(&keys(), KAT, "shop.example", NOW),
            Ok(claims())
        );
        let t = sign_hs256(&old_key(), "2025-12", &claims());
        assert_eq!(verify_hs256(&keys(), &t, "shop.example", NOW), Ok(claims()));
    }

    #[test]
    fn verifies_a_token_signed_by_jose() {
        assert_eq!(
            verify_hs256(&keys(), JOSE, "shop.example", NOW),
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
        let t = sign_hs256(&old_key(), "2026-01", &claims());
        assert_eq!(
            verify_hs256(&keys(), &t, "shop.example", NOW),
            Err(TokenError::BadSignature)
        );
        let t = sign_hs256(&key(), "2024-01", &claims());
        assert_eq!(
            verify_hs256(&keys(), &t, "shop.example", NOW),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            verify_hs256(&[], KAT, "shop.example", NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let c = claims();
        assert!(verify_hs256(&keys(), KAT, "shop.example", c.exp - 1).is_ok());
        assert_eq!(
            verify_hs256(&keys(), KAT, "shop.example", c.exp),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_hs256(&keys(), KAT, "shop.example", i64::MAX),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_audience_is_refused() {
        assert_eq!(
            verify_hs256(&keys(), KAT, "shop.example.org", NOW),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            verify_hs256(&keys(), KAT, "", NOW),
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
            r#"{"alg":"ES256","kid":"2026-01"}"#,
            r#"{"alg":"hs256","kid":"2026-01"}"#,
            r#"{"alg":"HS256","kid":"2026-01","crit":["b64"],"b64":false}"#,
        ] {
            assert_eq!(
                verify_hs256(&keys(), &with_header(header, &key()), "shop.example", NOW),
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
            verify_hs256(&keys(), &unsigned, "shop.example", NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
        assert_eq!(
            verify_hs256(
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
            verify_hs256(&keys(), &forged, "shop.example", NOW),
            Err(TokenError::BadSignature)
        );
        let mut sig = parts[2].to_string();
        sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
        let flipped = format!("{}.{}.{}", parts[0], parts[1], sig);
        assert_eq!(
            verify_hs256(&keys(), &flipped, "shop.example", NOW),
            Err(TokenError::BadSignature)
        );
        let short = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
        assert_eq!(
            verify_hs256(&keys(), &short, "shop.example", NOW),
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
                verify_hs256(&keys(), &t, "shop.example", NOW),
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
                URL_SAFE_NO_PAD.encode(header_json(Alg::Hs256, "2026-01")),
                URL_SAFE_NO_PAD.encode(body)
            );
            let tag = hmac_sha256(key().expose(), &[input.as_bytes()]);
            let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag));
            assert_eq!(
                verify_hs256(&keys(), &t, "shop.example", NOW),
                Err(TokenError::Malformed),
                "{body}"
            );
        }
    }

    // ---- ES256 ----------------------------------------------------------------------------

    /// A P-256 key made by Node's `crypto.generateKeyPairSync("ec", {namedCurve: "P-256"})`,
    /// exported as a JWK and as PKCS#8 (PEM and DER).
    const EC_JWK: &str = r#"{"kty":"EC","x":"E4r52DNVpqAKAk5f5nurg2miAnXh9zJbbcTMT2QQFb0","y":"pUL7UecnMLMC8fNyCpsnq_sxEXPIe7f20jYWe8xKjl4","crv":"P-256","d":"zg_7z8DIqi39V5EZHoqKLA8R-kAWsTy_akvUCeZ5Sgc"}"#;
    const EC_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzg/7z8DIqi39V5EZ\nHoqKLA8R+kAWsTy/akvUCeZ5SgehRANCAAQTivnYM1WmoAoCTl/me6uDaaICdeH3\nMlttxMxPZBAVvaVC+1HnJzCzAvHzcgqbJ6v7MRFzyHu39tI2FnvMSo5e\n-----END PRIVATE KEY-----\n";
    const EC_DER_B64: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzg/7z8DIqi39V5EZHoqKLA8R+kAWsTy/akvUCeZ5SgehRANCAAQTivnYM1WmoAoCTl/me6uDaaICdeH3MlttxMxPZBAVvaVC+1HnJzCzAvHzcgqbJ6v7MRFzyHu39tI2FnvMSo5e";

    /// Signed by `jose` 6.2.18 (Node) with [`EC_JWK`]: `new SignJWT(claims)
    /// .setProtectedHeader({alg: "ES256", typ: "JWT", kid: "2026-01"}).sign(key)`, the claims
    /// of [`es_claims`] in that order. Its signature is WebCrypto's raw `r || s`.
    const ES_KAT: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjIwMjYtMDEifQ.eyJpc3MiOiJodHRwczovL290cC5leGFtcGxlLmNvbSIsInN1YiI6IisyMDEyMzQ1Njc4OSIsImF1ZCI6InNob3AuZXhhbXBsZSIsImp0aSI6ImEwYjVkZjZhLWI0OTEtNDE5MC04MGE1LTM4ZDg1YTJhNDgzNiIsImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI2MjAwfQ.a3dfQ59kd6VVXl3VfMZWEhQKvfFqELdoFPk8s7ynbed8AT6bTZ-59cRFjk0tjpQ1cQb09ZANVZaQ3-DYcFPeYg";

    fn es_claims() -> Claims {
        Claims::issued(
            "https://otp.example.com".into(),
            "+20123456789".into(),
            "shop.example".into(),
            "a0b5df6a-b491-4190-80a5-38d85a2a4836".into(),
            1767225600,
        )
    }

    #[test]
    fn the_es256_signing_input_and_jws_match_jose_byte_for_byte() {
        let input = signing_input(Alg::Es256, "2026-01", &es_claims());
        let (jose_input, jose_sig) = ES_KAT.rsplit_once('.').unwrap();
        assert_eq!(input, jose_input);
        let sig = URL_SAFE_NO_PAD.decode(jose_sig).unwrap();
        assert_eq!(sig.len(), ES256_SIGNATURE_LEN);
        assert_eq!(assemble(&input, &sig), ES_KAT);
    }

    #[test]
    fn an_es256_token_parses_into_what_webcrypto_verifies() {
        let t = parse(ES_KAT, Alg::Es256).unwrap();
        assert_eq!(t.kid, "2026-01");
        assert_eq!(t.signing_input, ES_KAT.rsplit_once('.').unwrap().0);
        assert_eq!(t.signature.len(), 64);
        assert_eq!(t.claims("shop.example", NOW), Ok(es_claims()));
        assert_eq!(t.claims("other", NOW), Err(TokenError::WrongAudience));
        assert_eq!(
            t.claims("shop.example", es_claims().exp),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn the_algorithm_is_the_instances_never_the_tokens() {
        // An ES256 instance refuses HS256 (the classic "HMAC with the public key" confusion),
        // `none`, and any other spelling; an HS256 instance refuses ES256.
        let (_, claims_b64) = ES_KAT.split_once('.').unwrap();
        let claims_b64 = claims_b64.split('.').next().unwrap();
        for alg in ["HS256", "none", "es256", "ES384", "EdDSA", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"2026-01"}}"#));
            let t = format!(
                "{header}.{claims_b64}.{}",
                URL_SAFE_NO_PAD.encode([7u8; 64])
            );
            assert_eq!(
                parse(&t, Alg::Es256).unwrap_err(),
                TokenError::UnsupportedAlgorithm,
                "{alg}"
            );
            let unsigned = format!("{header}.{claims_b64}.");
            assert_eq!(
                parse(&unsigned, Alg::Es256).unwrap_err(),
                TokenError::UnsupportedAlgorithm,
                "{alg}"
            );
        }
        assert_eq!(
            parse(ES_KAT, Alg::Hs256).unwrap_err(),
            TokenError::UnsupportedAlgorithm
        );
        assert_eq!(
            verify_hs256(&keys(), ES_KAT, "shop.example", NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
        let crit = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"k","crit":["exp"]}"#);
        let t = format!("{crit}.{claims_b64}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
        assert_eq!(
            parse(&t, Alg::Es256).unwrap_err(),
            TokenError::UnsupportedAlgorithm
        );
    }

    #[test]
    fn an_es256_signature_of_another_length_is_refused_before_webcrypto() {
        let (input, _) = ES_KAT.rsplit_once('.').unwrap();
        for len in [0, 63, 65, 72] {
            let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(vec![1u8; len]));
            assert_eq!(
                parse(&t, Alg::Es256).unwrap_err(),
                TokenError::BadSignature,
                "{len}"
            );
        }
        let no_kid = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#),
            ES_KAT.split_once('.').unwrap().1
        );
        assert_eq!(
            parse(&no_kid, Alg::Es256).unwrap_err(),
            TokenError::UnknownKey
        );
    }

    #[test]
    fn claims_are_issued_for_the_token_lifetime() {
        let c = es_claims();
        assert_eq!(c.exp - c.iat, TOKEN_TTL);
        assert!(still_valid(c.iat, c.iat));
        assert!(still_valid(c.iat, c.exp - 1));
        assert!(!still_valid(c.iat, c.exp));
        assert!(!still_valid(i64::MAX, i64::MAX));
    }

    #[test]
    fn the_public_jwk_is_the_private_one_without_d() {
        let jwk = EcPrivateJwk::from_json(EC_JWK).unwrap();
        // Node's `createPublicKey(key).export({format: "jwk"})` gives the same x and y.
        assert_eq!(
            jwk.public().published("2026-01"),
            r#"{"kty":"EC","crv":"P-256","x":"E4r52DNVpqAKAk5f5nurg2miAnXh9zJbbcTMT2QQFb0","y":"pUL7UecnMLMC8fNyCpsnq_sxEXPIe7f20jYWe8xKjl4","kid":"2026-01","alg":"ES256","use":"sig"}"#
        );
        assert_eq!(
            jwk.public().to_json(),
            r#"{"kty":"EC","crv":"P-256","x":"E4r52DNVpqAKAk5f5nurg2miAnXh9zJbbcTMT2QQFb0","y":"pUL7UecnMLMC8fNyCpsnq_sxEXPIe7f20jYWe8xKjl4"}"#
        );
        let again: Value = serde_json::from_str(&jwk.to_json()).unwrap();
        assert_eq!(again, serde_json::from_str::<Value>(EC_JWK).unwrap());
        assert_eq!(format!("{jwk:?}"), "EcPrivateJwk(***)");
        assert_eq!(
            jwks(&[jwk.public().published("a"), jwk.public().published("b")]),
            format!(
                r#"{{"keys":[{},{}]}}"#,
                jwk.public().published("a"),
                jwk.public().published("b")
            )
        );
        assert_eq!(jwks(&[]), r#"{"keys":[]}"#);
    }

    #[test]
    fn the_discovery_document_names_the_issuer_and_its_jwks() {
        assert_eq!(
            openid_configuration("https://shop.example/_otp"),
            r#"{"issuer":"https://shop.example/_otp","jwks_uri":"https://shop.example/_otp/.well-known/jwks.json","id_token_signing_alg_values_supported":["ES256"]}"#
        );
    }

    #[test]
    fn signing_keys_are_jwks_or_pkcs8_by_kid() {
        let der = STANDARD.decode(EC_DER_B64).unwrap();
        let json = serde_json::json!({
            "k2": serde_json::from_str::<Value>(EC_JWK).unwrap(),
            "k1": EC_PEM,
            "k0": EC_DER_B64,
        })
        .to_string();
        let keys = parse_signing_keys(&json).unwrap();
        assert_eq!(
            keys,
            vec![
                ("k0".to_owned(), KeyMaterial::Pkcs8(der.clone())),
                ("k1".to_owned(), KeyMaterial::Pkcs8(der)),
                (
                    "k2".to_owned(),
                    KeyMaterial::Jwk(EcPrivateJwk::from_json(EC_JWK).unwrap())
                ),
            ]
        );
        assert_eq!(parse_signing_keys("{}").unwrap(), vec![]);
    }

    #[test]
    fn bad_signing_keys_are_named_by_kid_never_quoted() {
        let secret = "zg_7z8DIqi39V5EZHoqKLA8R-kAWsTy_akvUCeZ5Sgc";
        let cases = [
            ("[]", "must be a JSON object"),
            (r#"{"k1": 5}"#, "key k1 must be a private JWK"),
            (
                &format!(
                    r#"{{"k1": {{"kty":"EC","crv":"P-384","x":"{secret}","y":"{secret}","d":"{secret}"}}}}"#
                ),
                "key k1 must be an EC key on P-256",
            ),
            (
                &format!(r#"{{"k1": {{"kty":"EC","crv":"P-256","x":"{secret}","y":"{secret}"}}}}"#),
                "key k1 is not a JWK",
            ),
            (
                &format!(
                    r#"{{"k1": {{"kty":"EC","crv":"P-256","x":"{secret}","y":"AAAA","d":"{secret}"}}}}"#
                ),
                "key k1 x, y and d must each be 32 bytes",
            ),
            (r#"{"k1": "not base64 at all!"}"#, "key k1 is neither"),
            (
                r#"{"k1": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"}"#,
                "key k1 is a SEC1 key",
            ),
            (
                r#"{"k1": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}"#,
                "key k1 is a PEM of another kind",
            ),
            (
                r#"{"k1": "-----BEGIN PRIVATE KEY-----\nAAAA"}"#,
                "without its END",
            ),
            (r#"{"": "AAAA"}"#, "kid \"\" must be"),
            (r#"{"a b": "AAAA"}"#, "kid \"a b\" must be"),
        ];
        for (json, want) in cases {
            let err = parse_signing_keys(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
            assert!(!err.contains(secret), "{err}");
        }
    }
}
