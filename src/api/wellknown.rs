//! The public keys that verify the service's tokens, where any JWT library looks for them:
//! `GET /.well-known/jwks.json` (a JWK Set: each ES256 key with its `kid`, `alg` and `use`) and
//! `GET /.well-known/openid-configuration` (the issuer and the JWKS URL). With the edge
//! middleware on, both live under its prefix like every service route, beside the token's
//! `iss` (`https://site/_otp`); the site's own `/.well-known/` stays the site's.
//!
//! Both are public and cacheable: `Cache-Control: public`, readable from any origin.

use super::outcome::{self, Outcome};
use super::tokens;
use otp_core::web::token;
use worker::{Env, Request, Response, Result};

/// How long a verifier or cache may keep the key set, in seconds. A new key is published at
/// least this long before it signs (docs/configuration.md, rotation).
pub const MAX_AGE: u32 = 600;

/// Routes `GET /.well-known/{name}` (other methods are the router's 404, as for `/health`).
pub async fn handle(req: Request, env: &Env, name: &str) -> Result<Response> {
    let body = match name {
        "jwks.json" => match tokens::jwks(env).await {
            Ok(jwks) => jwks,
            Err(problem) => return outcome::whatotp(Outcome::Config(problem)),
        },
        "openid-configuration" => {
            let url = req.url()?;
            token::openid_configuration(&tokens::issuer(env, &url))
        }
        _ => return outcome::not_found(),
    };
    let mut resp = Response::ok(body)?;
    let h = resp.headers_mut();
    h.set("content-type", "application/json")?;
    h.set("cache-control", &format!("public, max-age={MAX_AGE}"))?;
    h.set("access-control-allow-origin", "*")?;
    Ok(resp)
}
