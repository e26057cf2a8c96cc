//! Checks an edge-otp verification token the way a site's backend would, with `jsonwebtoken`.
//!
//! Usage: verify-token-example <token> <jwks-url> <audience> <issuer>
//! (or env TOKEN, JWKS_URL, AUDIENCE, ISSUER). `<jwks-url>` is the service's public key set,
//! `<issuer>/.well-known/jwks.json`; `<audience>` is the instance id; `<issuer>` the service's
//! public URL (the token's `iss`). Prints the verified phone (`+…`) and exits 0, or prints the
//! library's error and exits 1.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The claims edge-otp signs (`iss`, `aud`, `exp` and `iat` are checked by `Validation`).
#[derive(Debug, Deserialize)]
pub struct Claims {
    /// The verified phone, `+` and digits.
    pub sub: String,
    /// The challenge id: remember it until `exp` and refuse it a second time (replay).
    pub jti: String,
}

type Error = Box<dyn std::error::Error>;

/// The service's public keys (its JWK Set), fetched on first use and cached; a token naming a
/// `kid` the cache lacks (a key rotation) fetches them again, at most once a minute. Keep one
/// per process.
pub struct ServiceKeys {
    url: String,
    set: JwkSet,
    fetched: Option<Instant>,
}

impl ServiceKeys {
    pub fn new(jwks_url: &str) -> Self {
        Self {
            url: jwks_url.to_owned(),
            set: JwkSet { keys: Vec::new() },
            fetched: None,
        }
    }

    /// The key `kid` names.
    pub fn key(&mut self, kid: &str) -> Result<DecodingKey, Error> {
        let stale = self
            .fetched
            .is_none_or(|at| at.elapsed() > Duration::from_secs(60));
        if self.set.find(kid).is_none() && stale {
            self.set = ureq::get(&self.url).call()?.body_mut().read_json()?;
            self.fetched = Some(Instant::now());
        }
        let jwk = self
            .set
            .find(kid)
            .ok_or_else(|| format!("no key in the service's JWKS has kid {kid:?}"))?;
        Ok(DecodingKey::from_jwk(jwk)?)
    }
}

/// Verifies `token` and returns its claims: ES256 only, signed by the key its `kid` names, for
/// `audience` (the instance id), from `issuer`, not expired.
pub fn verify_phone_token(
    token: &str,
    keys: &mut ServiceKeys,
    audience: &str,
    issuer: &str,
) -> Result<Claims, Error> {
    // The header is read unverified only to choose the key; decode() then checks it all.
    let kid = decode_header(token)?.kid.ok_or("token has no kid")?;
    let key = keys.key(&kid)?;
    let mut validation = Validation::new(Algorithm::ES256); // pins the algorithm
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 0; // the token lives 600 s; the default allows 60 s more
    Ok(decode::<Claims>(token, &key, &validation)?.claims)
}

fn arg(args: &[String], i: usize, env: &str) -> Option<String> {
    args.get(i).cloned().or_else(|| std::env::var(env).ok())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(token), Some(jwks_url), Some(audience), Some(issuer)) = (
        arg(&args, 0, "TOKEN"),
        arg(&args, 1, "JWKS_URL"),
        arg(&args, 2, "AUDIENCE"),
        arg(&args, 3, "ISSUER"),
    ) else {
        eprintln!("usage: verify-token-example <token> <jwks-url> <audience> <issuer>");
        return ExitCode::from(2);
    };
    let mut keys = ServiceKeys::new(&jwks_url);
    match verify_phone_token(token.trim(), &mut keys, &audience, &issuer) {
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
