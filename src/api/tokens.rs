//! Verification tokens: the proof, handed to a page and checked by the site's backend, that a
//! phone number was verified. The login link and the widget mint them here, the middleware's
//! session endpoint checks them here, and the JWKS that lets any backend check them is
//! written here.
//!
//! An instance signs with its `token_alg`: ES256 (the default) with the deploy key its
//! `token_kid` names, through WebCrypto (`crate::keys`); or HS256 with its own shared key, an
//! opt-in kept for existing deployments. The token's rules live in `otp_core::web::token`.

use crate::config::{self, ConfigProblem, SIGNING_KEYS_SECRET};
use crate::keys;
use otp_core::config::InstanceConfig;
use otp_core::web::token::{self, Alg, Claims, TokenError};
use otp_core::Secret;
use wasm_bindgen::JsValue;
use worker::Env;

pub use otp_core::web::token::TOKEN_TTL;

/// What signs an instance's tokens, found before a challenge is spent so that a missing or
/// broken key never costs a code.
pub enum Signer {
    /// ECDSA P-256: the deploy key's `kid` and its private `CryptoKey`.
    Es256 { kid: String, key: JsValue },
    /// HMAC-SHA256 with the instance's shared key.
    Hs256 { kid: String, key: Secret },
}

/// The signer of `inst`'s tokens.
pub async fn signer(env: &Env, inst: &InstanceConfig) -> Result<Signer, ConfigProblem> {
    let kid = inst.token_kid.clone();
    match inst.token_alg {
        Alg::Hs256 => Ok(Signer::Hs256 {
            key: config::token_key(env, inst)?,
            kid,
        }),
        Alg::Es256 => {
            let set = keys::key_set(env).await?;
            let key = set.get(&kid).ok_or_else(|| {
                ConfigProblem(format!(
                    "ES256 verification tokens need {SIGNING_KEYS_SECRET}.{kid} (token_kid of instance {}; an instance that keeps its HS256 key sets token_alg = \"HS256\")",
                    inst.id
                ))
            })?;
            Ok(Signer::Es256 {
                key: key.private.clone(),
                kid,
            })
        }
    }
}

/// The `iss` of this service's tokens: its public origin, plus the middleware's prefix when it
/// runs in front of a site (so `{iss}/.well-known/openid-configuration` is where its keys are).
pub fn issuer(env: &Env, request_url: &worker::Url) -> String {
    config::service_base(env, request_url)
}

/// Signs a verification token for `sub` (`+digits`), whose id is the challenge `jti`: for the
/// instance (`aud`), from this service (`iss`), issued at `iat` and valid [`TOKEN_TTL`]
/// seconds from then.
pub async fn sign(
    signer: &Signer,
    env: &Env,
    inst: &InstanceConfig,
    request_url: &worker::Url,
    sub: String,
    jti: &str,
    iat: i64,
) -> worker::Result<String> {
    let iss = issuer(env, request_url);
    let claims = Claims::issued(iss, sub, inst.id.clone(), jti.to_owned(), iat);
    Ok(match signer {
        Signer::Hs256 { kid, key } => token::sign_hs256(key, kid, &claims),
        Signer::Es256 { kid, key } => {
            let input = token::signing_input(Alg::Es256, kid, &claims);
            let signature = keys::sign(key, input.as_bytes()).await?;
            token::assemble(&input, &signature)
        }
    })
}

/// Why a presented token was not accepted.
pub enum Refused {
    /// The token: malformed, another algorithm, unknown key, bad signature, expired, other
    /// audience.
    Token(TokenError),
    /// The deploy cannot check tokens (a key setting is missing or broken).
    Config(ConfigProblem),
}

impl From<TokenError> for Refused {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

impl From<ConfigProblem> for Refused {
    fn from(p: ConfigProblem) -> Self {
        Self::Config(p)
    }
}

/// Checks a token for `inst` at `now`: its algorithm must be the instance's, its `kid` one of
/// the deploy's keys (ES256; every key, so tokens signed before a rotation still pass) or of the
/// instance's HS256 keys, its signature good, its `aud` the instance, its `exp` ahead.
pub async fn verify(
    env: &Env,
    inst: &InstanceConfig,
    presented: &str,
    now: i64,
) -> Result<Claims, Refused> {
    match inst.token_alg {
        Alg::Hs256 => {
            let keys = config::token_keys(env, &inst.id)?;
            Ok(token::verify_hs256(&keys, presented, &inst.id, now)?)
        }
        Alg::Es256 => {
            let t = token::parse(presented, Alg::Es256)?;
            let set = keys::key_set(env).await?;
            let key = set.get(&t.kid).ok_or(TokenError::UnknownKey)?;
            if !keys::verify(&key.verifier, &t.signature, t.signing_input.as_bytes()).await {
                return Err(TokenError::BadSignature.into());
            }
            Ok(t.claims(&inst.id, now)?)
        }
    }
}

/// The deploy's public keys as a JWK Set (every key of `TOKEN_SIGNING_KEYS`).
pub async fn jwks(env: &Env) -> Result<String, ConfigProblem> {
    let set = keys::key_set(env).await?;
    let entries: Vec<String> = set
        .all()
        .iter()
        .map(|k| k.public.published(&k.kid))
        .collect();
    Ok(token::jwks(&entries))
}
