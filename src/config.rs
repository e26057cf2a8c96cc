//! The deploy's configuration and secrets, read from the Worker's environment once per isolate.
//!
//! Instances come from the `INSTANCES` var (config as code in `wrangler.toml`), the edge
//! middleware from `MIDDLEWARE`; credentials come from secrets: `OTP_PEPPER` (codes and every
//! derived key come from it), `API_TOKENS` (per instance, the SHA-256 of each valid API token),
//! `INSTANCE_SECRETS` (provider credentials, HS256 token keys), `TOKEN_SIGNING_KEYS` (the ES256
//! keys that sign verification tokens) and `COOKIE_KEY`. A missing or
//! malformed one is a [`ConfigProblem`], answered with a clear 503, never a panic. Every key
//! the service derives is derived here, through [`otp_core::Secret::derive`].
//!
//! May import: `otp-core`, `worker` and `crate::log`. Everything else may import it.

use otp_core::config::{InstanceConfig, InstanceSecrets, ServiceConfig};
use otp_core::secret::token_matches;
use otp_core::web::middleware::{MiddlewareConfig, Mount};
use otp_core::web::token::{parse_signing_keys, KeyMaterial};
use otp_core::Secret;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use worker::Env;

/// Names of the bindings this module reads.
pub const INSTANCES_VAR: &str = "INSTANCES";
pub const PEPPER_SECRET: &str = "OTP_PEPPER";
pub const TOKENS_SECRET: &str = "API_TOKENS";

/// A deploy that cannot serve: which setting is missing or wrong, for the operator.
#[derive(Debug, Clone)]
pub struct ConfigProblem(pub String);

thread_local! {
    /// The parsed `INSTANCES` of this isolate: configuration changes only with a deploy, and
    /// a deploy starts new isolates, so it is parsed once per isolate.
    static INSTANCES_CACHE: std::cell::RefCell<Option<Result<Rc<ServiceConfig>, ConfigProblem>>> =
        const { std::cell::RefCell::new(None) };
}

/// The instances of this deploy: `INSTANCES` as a TOML array of tables (an object var) or a
/// JSON string; absent means no instance. Shared, not copied, per request.
pub fn instances(env: &Env) -> Result<Rc<ServiceConfig>, ConfigProblem> {
    INSTANCES_CACHE.with(|cache| {
        cache
            .borrow_mut()
            .get_or_insert_with(|| parse_instances(env).map(Rc::new))
            .clone()
    })
}

fn parse_instances(env: &Env) -> Result<ServiceConfig, ConfigProblem> {
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

/// One configured instance, shared with this isolate's parsed `INSTANCES` (never copied).
#[derive(Clone)]
pub struct Instance {
    config: Rc<ServiceConfig>,
    index: usize,
}

impl std::ops::Deref for Instance {
    type Target = InstanceConfig;

    fn deref(&self) -> &InstanceConfig {
        &self.config.instances[self.index]
    }
}

/// The instance with this id (any case), if configured.
pub fn instance(env: &Env, id: &str) -> Result<Option<Instance>, ConfigProblem> {
    let config = instances(env)?;
    Ok(config
        .instances
        .iter()
        .position(|i| i.id.eq_ignore_ascii_case(id))
        .map(|index| Instance { config, index }))
}

/// Seconds a number's data is kept after its last activity in `id` (`retention_days`).
pub fn retention_secs(env: &Env, id: &str) -> i64 {
    instance(env, id).ok().flatten().map_or(
        i64::from(otp_core::config::DEFAULT_RETENTION_DAYS) * 86_400,
        |i| i.retention_secs(),
    )
}

/// The instances of this deploy, each as a shared handle.
pub fn each_instance(env: &Env) -> Result<Vec<Instance>, ConfigProblem> {
    let config = instances(env)?;
    Ok((0..config.instances.len())
        .map(|index| Instance {
            config: config.clone(),
            index,
        })
        .collect())
}

/// The pepper codes (and every derived key) come from.
pub fn pepper(env: &Env) -> Result<Secret, ConfigProblem> {
    PEPPER_CACHE.with(|cache| {
        cache
            .borrow_mut()
            .get_or_insert_with(|| {
                let value = env
                    .secret(PEPPER_SECRET)
                    .map_err(|_| ConfigProblem(format!("secret {PEPPER_SECRET} is not set")))?
                    .to_string();
                Secret::new(value.into_bytes())
                    .map_err(|e| ConfigProblem(format!("secret {PEPPER_SECRET}: {e}")))
            })
            .clone()
    })
}

thread_local! {
    /// The pepper of this isolate (secrets change only with a deploy).
    static PEPPER_CACHE: std::cell::RefCell<Option<Result<Secret, ConfigProblem>>> =
        const { std::cell::RefCell::new(None) };
}

/// Instance id -> SHA-256 hex digests of its API tokens.
type TokenTable = HashMap<String, Vec<String>>;

thread_local! {
    /// The parsed `API_TOKENS` of this isolate (secrets change only with a deploy too).
    static TOKENS_CACHE: std::cell::RefCell<Option<Result<TokenTable, ConfigProblem>>> =
        const { std::cell::RefCell::new(None) };
}

fn parse_tokens(env: &Env) -> Result<TokenTable, ConfigProblem> {
    let raw = env
        .secret(TOKENS_SECRET)
        .map_err(|_| ConfigProblem(format!("secret {TOKENS_SECRET} is not set")))?
        .to_string();
    serde_json::from_str(&raw).map_err(|_| {
        ConfigProblem(format!(
            "secret {TOKENS_SECRET} must be a JSON object: instance id -> list of SHA-256 hex"
        ))
    })
}

/// True when `token` is one of `instance`'s API tokens.
pub fn token_is_valid(env: &Env, instance: &str, token: &str) -> Result<bool, ConfigProblem> {
    TOKENS_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let table = cache
            .get_or_insert_with(|| parse_tokens(env))
            .as_ref()
            .map_err(Clone::clone)?;
        let hashes = table
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(instance))
            .map(|(_, h)| h.as_slice())
            .unwrap_or(&[]);
        Ok(token_matches(token, hashes))
    })
}

/// Secret holding per-instance credentials (`docs/configuration.md`).
pub const INSTANCE_SECRETS: &str = "INSTANCE_SECRETS";

/// The credentials of one instance; an absent secret or entry is an empty set, so each
/// feature that needs a credential names it when refusing.
pub fn instance_secrets(env: &Env, instance: &str) -> Result<InstanceSecrets, ConfigProblem> {
    SECRETS_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let table = cache
            .get_or_insert_with(|| parse_instance_secrets(env))
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(table
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(instance))
            .map(|(_, s)| s.clone())
            .unwrap_or_default())
    })
}

thread_local! {
    /// The parsed `INSTANCE_SECRETS` of this isolate (secrets change only with a deploy).
    static SECRETS_CACHE: std::cell::RefCell<Option<Result<HashMap<String, InstanceSecrets>, ConfigProblem>>> =
        const { std::cell::RefCell::new(None) };
}

fn parse_instance_secrets(env: &Env) -> Result<HashMap<String, InstanceSecrets>, ConfigProblem> {
    let Ok(raw) = env.secret(INSTANCE_SECRETS) else {
        return Ok(HashMap::new());
    };
    // serde's message may quote the offending value, which is a secret: log only the
    // position, answer with a fixed message.
    serde_json::from_str(&raw.to_string()).map_err(|e| {
        crate::log::Line::new("config.problem")
            .str("secret", INSTANCE_SECRETS)
            .num("line", e.line() as i64)
            .num("column", e.column() as i64)
            .error();
        ConfigProblem(format!(
            "secret {INSTANCE_SECRETS} must be a JSON object: instance id -> credentials (docs/configuration.md)"
        ))
    })
}

/// The key that signs one-time login URLs, derived from the pepper (one secret fewer to
/// manage; rotating the pepper voids open login URLs along with open codes).
pub fn login_key(env: &Env) -> Result<Secret, ConfigProblem> {
    derived_key(env, "edge-otp/login-key/v1")
}

/// The key that seals widget session ids and derives poll secrets: the login key's sibling.
pub fn widget_key(env: &Env) -> Result<Secret, ConfigProblem> {
    derived_key(env, "edge-otp/widget-key/v1")
}

/// A key derived from the pepper for one purpose (`label`), so no two purposes share a key.
fn derived_key(env: &Env, label: &str) -> Result<Secret, ConfigProblem> {
    Ok(pepper(env)?.derive(label.as_bytes()))
}

/// The secret the middleware's cookie key is derived from (at least 32 bytes).
pub const COOKIE_KEY_SECRET: &str = "COOKIE_KEY";

/// The key that signs the middleware's cookies: derived from `COOKIE_KEY`.
pub fn cookie_key(env: &Env) -> Result<Secret, ConfigProblem> {
    let raw = env
        .secret(COOKIE_KEY_SECRET)
        .map_err(|_| ConfigProblem(format!("secret {COOKIE_KEY_SECRET} is not set")))?
        .to_string();
    let secret = Secret::new(raw.into_bytes())
        .map_err(|e| ConfigProblem(format!("secret {COOKIE_KEY_SECRET}: {e}")))?;
    Ok(otp_core::web::middleware::cookie_key(&secret))
}

/// The HS256 key that signs the verification tokens of `inst` (an instance with
/// `token_alg = "HS256"`): `INSTANCE_SECRETS.<id>.token_keys[token_kid]`. Fetched before a
/// challenge is spent, so a missing key never costs a code.
pub fn token_key(env: &Env, inst: &InstanceConfig) -> Result<Secret, ConfigProblem> {
    instance_secrets(env, &inst.id)?
        .token_keys
        .get(&inst.token_kid)
        .and_then(|k| Secret::new(k.as_bytes().to_vec()).ok())
        .ok_or_else(|| {
            ConfigProblem(format!(
                "HS256 verification tokens need INSTANCE_SECRETS.{}.token_keys.{} (at least 32 bytes)",
                inst.id, inst.token_kid
            ))
        })
}

/// Every HS256 token key of `instance` with its `kid`, for checking a token (rotation: several).
pub fn token_keys(env: &Env, instance: &str) -> Result<Vec<(String, Secret)>, ConfigProblem> {
    Ok(instance_secrets(env, instance)?
        .token_keys
        .iter()
        .filter_map(|(kid, k)| Some((kid.clone(), Secret::new(k.as_bytes().to_vec()).ok()?)))
        .collect())
}

/// The secret holding the deploy's ES256 signing keys (`docs/configuration.md`).
pub const SIGNING_KEYS_SECRET: &str = "TOKEN_SIGNING_KEYS";

/// The deploy's ES256 signing keys, `kid` -> private key, as written (a private JWK or PKCS#8);
/// `crate::keys` imports them into WebCrypto once per isolate. Absent: none.
pub fn signing_keys(env: &Env) -> Result<Vec<(String, KeyMaterial)>, ConfigProblem> {
    let Ok(raw) = env.secret(SIGNING_KEYS_SECRET) else {
        return Ok(Vec::new());
    };
    parse_signing_keys(&raw.to_string())
        .map_err(|why| ConfigProblem(format!("secret {SIGNING_KEYS_SECRET}: {why}")))
}

/// A plain var, if set.
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
}

/// Callbacks may reach loopback addresses: only in dev builds, only when
/// `ALLOW_LOOPBACK_CALLBACKS = "true"` (the end-to-end tests' receiver listens on 127.0.0.1).
pub fn allow_loopback_callbacks(env: &Env) -> bool {
    cfg!(feature = "dev") && var(env, "ALLOW_LOOPBACK_CALLBACKS").as_deref() == Some("true")
}

/// The deadline of every outbound request (providers, callbacks, Turnstile), in milliseconds:
/// `OUTBOUND_TIMEOUT_MS` (100 to 30,000), 10 s by default. Tests shorten it.
pub fn outbound_timeout_ms(env: &Env) -> u32 {
    var(env, "OUTBOUND_TIMEOUT_MS")
        .and_then(|v| v.parse::<u32>().ok())
        .map(|ms| ms.clamp(100, 30_000))
        .unwrap_or(10_000)
}

/// Multiplier on the callback retry schedule (`CALLBACK_RETRY_SCALE`, default 1; tests use a
/// small value so a schedule of days takes seconds).
pub fn callback_retry_scale(env: &Env) -> f64 {
    var(env, "CALLBACK_RETRY_SCALE")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0)
}

/// The service's public origin (`PUBLIC_URL`), else the origin the request came in on.
pub fn public_origin(env: &Env, request_url: &worker::Url) -> String {
    var(env, "PUBLIC_URL")
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| request_url.origin().ascii_serialization())
}

/// The var holding the middleware's configuration (a JSON object); absent or empty: off.
pub const MIDDLEWARE_VAR: &str = "MIDDLEWARE";

thread_local! {
    /// The parsed `MIDDLEWARE` of this isolate (it changes only with a deploy).
    static MIDDLEWARE_CACHE: std::cell::RefCell<Option<Result<Option<Rc<MiddlewareConfig>>, ConfigProblem>>> =
        const { std::cell::RefCell::new(None) };
}

/// This deploy's edge middleware, `None` when it only serves the API.
pub fn middleware(env: &Env) -> Result<Option<Rc<MiddlewareConfig>>, ConfigProblem> {
    MIDDLEWARE_CACHE.with(|cache| {
        cache
            .borrow_mut()
            .get_or_insert_with(|| parse_middleware(env).map(|c| c.map(Rc::new)))
            .clone()
    })
}

fn parse_middleware(env: &Env) -> Result<Option<MiddlewareConfig>, ConfigProblem> {
    let raw = js_sys::Reflect::get(env, &MIDDLEWARE_VAR.into()).unwrap_or(JsValue::UNDEFINED);
    let json = if raw.is_undefined() || raw.is_null() {
        return Ok(None);
    } else if let Some(s) = raw.as_string() {
        s
    } else {
        js_sys::JSON::stringify(&raw)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| ConfigProblem(format!("var {MIDDLEWARE_VAR} is not valid JSON")))?
    };
    if json.trim().is_empty() {
        return Ok(None);
    }
    MiddlewareConfig::from_json(&json)
        .map(Some)
        .map_err(|e| ConfigProblem(e.0))
}

/// The service's public base for URLs it hands out (login links): its origin, plus the
/// middleware's prefix when the request came in under it.
pub fn service_base(env: &Env, url: &worker::Url) -> String {
    let origin = public_origin(env, url);
    match middleware(env) {
        Ok(Some(cfg)) => match cfg.mount(url.host_str().unwrap_or_default(), url.path()) {
            Mount::Prefix(_) => format!("{origin}{}", cfg.prefix),
            _ => origin,
        },
        _ => origin,
    }
}
