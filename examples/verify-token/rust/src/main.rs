//! Checks an edge-otp verification token the way a site's backend would, with `jsonwebtoken`.
//!
//! Usage: verify-token-example <token> <key> <audience> <issuer>
//! (or env TOKEN, TOKEN_KEY, AUDIENCE, ISSUER). `<key>` is the instance's token key
//! (`INSTANCE_SECRETS.<instance>.token_keys.<kid>`), or the whole `token_keys` object as JSON,
//! `{"k1": "...", "k0": "..."}`, to pick the key by the token's `kid` during a rotation.
//! Prints the verified phone (`+…`) and exits 0, or prints the library's error and exits 1.

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::process::ExitCode;

/// The claims edge-otp signs (`iss`, `aud`, `exp` and `iat` are checked by `Validation`).
#[derive(Debug, Deserialize)]
pub struct Claims {
    /// The verified phone, `+` and digits.
    pub sub: String,
    /// The challenge id: remember it until `exp` and refuse it a second time (replay).
    pub jti: String,
}

/// The key(s) a backend holds: one key, or `token_keys` by kid.
pub enum Keys {
    One(String),
    ByKid(HashMap<String, String>),
}

/// Verifies `token` and returns its claims: HS256 only, for `audience` (the instance id), from
/// `issuer` (the service's public URL), not expired.
pub fn verify_phone_token(
    token: &str,
    keys: &Keys,
    audience: &str,
    issuer: &str,
) -> Result<Claims, Box<dyn std::error::Error>> {
    let key = match keys {
        Keys::One(key) => key,
        Keys::ByKid(by_kid) => {
            // The header is read unverified only to choose the key; decode() then checks it.
            let kid = decode_header(token)?.kid.ok_or("token has no kid")?;
            by_kid.get(&kid).ok_or(format!("unknown kid {kid:?}"))?
        }
    };
    let mut validation = Validation::new(Algorithm::HS256); // pins the algorithm
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 0; // the token lives 600 s; the default allows 60 s more
    let key = DecodingKey::from_secret(key.as_bytes())?;
    Ok(decode::<Claims>(token, &key, &validation)?.claims)
}

fn arg(args: &[String], i: usize, env: &str) -> Option<String> {
    args.get(i).cloned().or_else(|| std::env::var(env).ok())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(token), Some(key), Some(audience), Some(issuer)) = (
        arg(&args, 0, "TOKEN"),
        arg(&args, 1, "TOKEN_KEY"),
        arg(&args, 2, "AUDIENCE"),
        arg(&args, 3, "ISSUER"),
    ) else {
        eprintln!("usage: verify-token-example <token> <key> <audience> <issuer>");
        return ExitCode::from(2);
    };
    let keys = if key.trim_start().starts_with('{') {
        match serde_json::from_str(&key) {
            Ok(by_kid) => Keys::ByKid(by_kid),
            Err(e) => {
                eprintln!("token_keys is not a JSON object of strings: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        Keys::One(key)
    };
    match verify_phone_token(token.trim(), &keys, &audience, &issuer) {
        Ok(claims) => {
            println!("{}", claims.sub);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("refused: {e}");
            ExitCode::FAILURE
        }
    }
}
