//! The deploy's configuration and secrets, read from the Worker's environment.
//!
//! Instances come from the `INSTANCES` var (config as code in `wrangler.toml`); credentials
//! come from secrets: `OTP_PEPPER` (codes are derived from it) and `API_TOKENS` (per instance,
//! the SHA-256 of each valid API token). A missing or malformed one is a [`ConfigProblem`],
//! answered with a clear 503, never a panic.

use otp_core::config::{InstanceSecrets, ServiceConfig};
use otp_core::secret::token_matches;
use otp_core::Secret;
use std::collections::HashMap;
use wasm_bindgen::JsValue;
use worker::Env;

/// Names of the bindings this module reads.
pub const INSTANCES_VAR: &str = "INSTANCES";
pub const PEPPER_SECRET: &str = "OTP_PEPPER";
pub const TOKENS_SECRET: &str = "API_TOKENS";

/// A deploy that cannot serve: which setting is missing or wrong, for the operator.
#[derive(Debug, Clone)]
pub struct ConfigProblem(pub String);

/// The instances of this deploy: `INSTANCES` as a TOML array of tables (an object var) or a
/// JSON string; absent means no instance.
pub fn instances(env: &Env) -> Result<ServiceConfig, ConfigProblem> {
    let raw = js_sys::Reflect::get(env, &INSTANCES_VAR.into()).unwrap_or(JsValue::UNDEFINED);
    let parsed = if raw.is_undefined() {
        Ok(ServiceConfig::default())
    } else if let Some(json) = raw.as_string() {
        ServiceConfig::from_json(&json)
    } else {
        let json = js_sys::JSON::stringify(&raw)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| ConfigProblem(format!("var {INSTANCES_VAR} is not valid JSON")))?;
        ServiceConfig::from_json(&json)
    };
    parsed.map_err(|e| ConfigProblem(e.0))
}

/// The pepper codes are derived from.
pub fn pepper(env: &Env) -> Result<Secret, ConfigProblem> {
    let value = env
        .secret(PEPPER_SECRET)
        .map_err(|_| ConfigProblem(format!("secret {PEPPER_SECRET} is not set")))?
        .to_string();
    Secret::new(value.into_bytes())
        .map_err(|e| ConfigProblem(format!("secret {PEPPER_SECRET}: {e}")))
}

/// True when `token` is one of `instance`'s API tokens.
pub fn token_is_valid(env: &Env, instance: &str, token: &str) -> Result<bool, ConfigProblem> {
    let raw = env
        .secret(TOKENS_SECRET)
        .map_err(|_| ConfigProblem(format!("secret {TOKENS_SECRET} is not set")))?
        .to_string();
    let table: HashMap<String, Vec<String>> = serde_json::from_str(&raw).map_err(|_| {
        ConfigProblem(format!(
            "secret {TOKENS_SECRET} must be a JSON object: instance id -> list of SHA-256 hex"
        ))
    })?;
    let hashes = table
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(instance))
        .map(|(_, h)| h.as_slice())
        .unwrap_or(&[]);
    Ok(token_matches(token, hashes))
}

/// Secret holding per-instance credentials (`docs/configuration.md`).
pub const INSTANCE_SECRETS: &str = "INSTANCE_SECRETS";

/// The credentials of one instance; an absent secret or entry is an empty set, so each
/// feature that needs a credential names it when refusing.
pub fn instance_secrets(env: &Env, instance: &str) -> Result<InstanceSecrets, ConfigProblem> {
    let Ok(raw) = env.secret(INSTANCE_SECRETS) else {
        return Ok(InstanceSecrets::default());
    };
    let table: HashMap<String, InstanceSecrets> = serde_json::from_str(&raw.to_string())
        .map_err(|e| ConfigProblem(format!("secret {INSTANCE_SECRETS} is not valid: {e}")))?;
    Ok(table
        .into_iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(instance))
        .map(|(_, s)| s)
        .unwrap_or_default())
}
