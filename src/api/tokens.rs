//! Verification tokens: the proof, handed to a page and checked by the site's backend, that a
//! phone number was verified. The login link and the widget both mint them here.

use crate::{clock, config};
use otp_core::config::InstanceConfig;
use otp_core::web::token::{self, Claims};
use otp_core::Secret;
use worker::Env;

/// Lifetime of a verification token, in seconds.
pub const TOKEN_TTL: i64 = 600;

/// Signs a verification token for `sub` (`+digits`), whose id is the challenge `jti`: a JWT for
/// the instance (`aud`), from this service (`iss`), valid [`TOKEN_TTL`] seconds. `key` is
/// [`config::token_key`]'s, fetched before the challenge was spent.
pub fn sign(
    env: &Env,
    key: &Secret,
    inst: &InstanceConfig,
    request_url: &worker::Url,
    sub: String,
    jti: &str,
) -> String {
    let now = clock::now();
    let claims = Claims {
        iss: config::public_origin(env, request_url),
        sub,
        aud: inst.id.clone(),
        jti: jti.to_owned(),
        iat: now,
        exp: now + TOKEN_TTL,
    };
    token::sign(key, &inst.token_kid, &claims)
}
