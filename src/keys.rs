//! The deploy's ES256 signing keys, held as WebCrypto keys: the runtime's `crypto.subtle` does
//! the ECDSA P-256 arithmetic, so the Worker's Wasm carries no elliptic-curve code of its own.
//!
//! `TOKEN_SIGNING_KEYS` (read by `config::signing_keys`) is imported once per isolate: each
//! private key for signing (not extractable), its public half for verifying and for the JWKS.
//! Before a key is trusted it signs a probe that its public half must verify, so the JWKS never
//! publishes a key that does not match the one that signs.
//!
//! May import: `config`, `otp-core`, `worker`. Used by `api` (tokens, the well-known routes).

use crate::config::{self, ConfigProblem, SIGNING_KEYS_SECRET};
use js_sys::{Array, Promise, Uint8Array, JSON};
use otp_core::web::token::{EcPrivateJwk, EcPublicJwk, KeyMaterial};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn import_key(
        format: &str,
        key: &JsValue,
        algorithm: &JsValue,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = exportKey, catch)]
    fn export_key(format: &str, key: &JsValue) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = sign, catch)]
    fn subtle_sign(
        algorithm: &JsValue,
        key: &JsValue,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &Uint8Array,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
}

/// `{"name":"ECDSA",<member>}`: the import and the sign/verify parameters.
fn ecdsa(member: &str) -> JsValue {
    JSON::parse(&format!(r#"{{"name":"ECDSA",{member}}}"#)).unwrap_or(JsValue::NULL)
}

fn usages(usage: &str) -> Array {
    Array::of1(&JsValue::from_str(usage))
}

/// Awaits a WebCrypto call, whether it threw or its promise rejected.
async fn run(call: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(call?).await
}

/// Imports a JWK (as JSON text) for one usage.
async fn import_jwk(jwk: &str, usage: &str, extractable: bool) -> Result<JsValue, JsValue> {
    let jwk = JSON::parse(jwk)?;
    run(import_key(
        "jwk",
        &jwk,
        &ecdsa(r#""namedCurve":"P-256""#),
        extractable,
        &usages(usage),
    ))
    .await
}

/// A PKCS#8 key as a private JWK: WebCrypto reads the DER (and refuses another curve or kind),
/// then exports the JWK, whose `x` and `y` the JWKS publishes.
async fn pkcs8_to_jwk(der: &[u8]) -> Result<EcPrivateJwk, String> {
    let refused = |_| "is not a P-256 private key in PKCS#8".to_owned();
    let key = run(import_key(
        "pkcs8",
        &Uint8Array::from(der).into(),
        &ecdsa(r#""namedCurve":"P-256""#),
        true,
        &usages("sign"),
    ))
    .await
    .map_err(refused)?;
    let jwk = run(export_key("jwk", &key)).await.map_err(refused)?;
    let text = JSON::stringify(&jwk)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    EcPrivateJwk::from_json(&text).map_err(str::to_owned)
}

/// ECDSA P-256 / SHA-256 over `data`: the 64-byte `r || s` (JWS's form).
pub async fn sign(key: &JsValue, data: &[u8]) -> Result<Vec<u8>, JsValue> {
    let sig = run(subtle_sign(
        &ecdsa(r#""hash":"SHA-256""#),
        key,
        &Uint8Array::from(data),
    ))
    .await?;
    Ok(Uint8Array::new(&sig).to_vec())
}

/// True when `signature` (`r || s`) is `key`'s over `data`.
pub async fn verify(key: &JsValue, signature: &[u8], data: &[u8]) -> bool {
    run(subtle_verify(
        &ecdsa(r#""hash":"SHA-256""#),
        key,
        &Uint8Array::from(signature),
        &Uint8Array::from(data),
    ))
    .await
    .is_ok_and(|ok| ok.is_truthy())
}

/// One signing key, imported.
pub struct SigningKey {
    /// Its `kid`.
    pub kid: String,
    /// Its public half, as published.
    pub public: EcPublicJwk,
    /// The private `CryptoKey` (usage `sign`, not extractable).
    pub private: JsValue,
    /// The public `CryptoKey` (usage `verify`).
    pub verifier: JsValue,
}

/// The deploy's signing keys, in `kid` order.
pub struct KeySet(Vec<SigningKey>);

impl KeySet {
    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.0.iter().find(|k| k.kid == kid)
    }

    /// Every key, for the JWKS.
    pub fn all(&self) -> &[SigningKey] {
        &self.0
    }
}

thread_local! {
    /// This isolate's imported keys (secrets change only with a deploy, which starts new
    /// isolates). Two first requests may both import; the second result replaces the first.
    static KEYS: RefCell<Option<Result<Rc<KeySet>, ConfigProblem>>> = const { RefCell::new(None) };
}

/// The deploy's signing keys, imported once per isolate. An absent `TOKEN_SIGNING_KEYS` is an
/// empty set (a deploy whose instances all use HS256 needs none).
pub async fn key_set(env: &Env) -> Result<Rc<KeySet>, ConfigProblem> {
    if let Some(cached) = KEYS.with(|k| k.borrow().clone()) {
        return cached;
    }
    let loaded = load(env).await.map(Rc::new);
    KEYS.with(|k| *k.borrow_mut() = Some(loaded.clone()));
    loaded
}

async fn load(env: &Env) -> Result<KeySet, ConfigProblem> {
    let mut keys = Vec::new();
    for (kid, material) in config::signing_keys(env)? {
        let problem =
            |why: &str| ConfigProblem(format!("secret {SIGNING_KEYS_SECRET}: key {kid} {why}"));
        let jwk = match material {
            KeyMaterial::Jwk(jwk) => jwk,
            KeyMaterial::Pkcs8(der) => pkcs8_to_jwk(&der).await.map_err(|w| problem(&w))?,
        };
        let public = jwk.public();
        let private = import_jwk(&jwk.to_json(), "sign", false)
            .await
            .map_err(|_| problem("is not a valid P-256 private key"))?;
        let verifier = import_jwk(&public.to_json(), "verify", true)
            .await
            .map_err(|_| problem("has x and y that are not a P-256 point"))?;
        // The published half must verify what the private half signs (a JWK whose x and y
        // belong to another key would otherwise publish a key that checks nothing).
        let probe = format!("edge-otp key check {kid}");
        let sig = sign(&private, probe.as_bytes())
            .await
            .map_err(|_| problem("cannot sign"))?;
        if !verify(&verifier, &sig, probe.as_bytes()).await {
            return Err(problem("has x and y that do not belong to its d"));
        }
        keys.push(SigningKey {
            kid,
            public,
            private,
            verifier,
        });
    }
    Ok(KeySet(keys))
}
