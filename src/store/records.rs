//! The write-once KV records that find a challenge's Durable Object from its uuid (the status
//! lookup, WhatOTP sessions). Written once, at creation, with an expiry a day past the
//! challenge's; never updated, never the authority on single use.

use serde::{Deserialize, Serialize};
use worker::{Env, Result};

/// KV binding of the challenge records.
pub const CHALLENGES_KV: &str = "CHALLENGES";

/// What kind of challenge a record finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A code, in the recipient's object.
    Code,
    /// A WhatsApp link, in the object its link code names.
    Link,
    /// A WhatOTP message (`msg_…`), in the recipient's object: not a challenge.
    Message,
}

/// The record of one challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRecord {
    pub instance: String,
    /// Canonical digits; empty for a link challenge nobody was named for.
    pub recipient: String,
    pub kind: RecordKind,
    /// The link code (link challenges only): names the link's object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_code: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

fn record_key(uuid: &str) -> String {
    format!("challenge:{}", uuid.to_ascii_lowercase())
}

/// Writes a challenge's record once, kept until a day after it expires. Called through the
/// binding's own `put` with a string and `{expirationTtl}`: worker's builder serializes its
/// options with serde-wasm-bindgen and formats numbers, several KB of Wasm for one call.
pub async fn put(env: &Env, uuid: &str, record: &ChallengeRecord, now: i64) -> Result<()> {
    use js_sys::{Function, Object, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    let ttl = (record.expires_at - now + otp_core::rules::challenge::RETENTION).max(60);
    let kv = Reflect::get(env.as_ref(), &CHALLENGES_KV.into())?;
    let put: Function = Reflect::get(&kv, &"put".into())?.dyn_into()?;
    let options = Object::new();
    Reflect::set(
        &options,
        &"expirationTtl".into(),
        &JsValue::from(ttl as f64),
    )?;
    let json = JsValue::from_str(&serde_json::to_string(record)?);
    let done: Promise = put
        .call3(&kv, &record_key(uuid).into(), &json, &options)?
        .dyn_into()?;
    js_sys::futures::JsFuture::from(done).await?;
    Ok(())
}

/// Reads a challenge's record.
pub async fn get(env: &Env, uuid: &str) -> Result<Option<ChallengeRecord>> {
    Ok(env.kv(CHALLENGES_KV)?.get(&record_key(uuid)).json().await?)
}
