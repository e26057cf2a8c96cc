//! The write-once KV records that find a challenge's Durable Object from its uuid (the status
//! lookup, WhatOTP sessions). Written once, at creation, with an expiry a day past the
//! challenge's; never updated, never the authority on single use. Beside them, each
//! challenge's entry in its instance's list ([`Listed`]), kept for the instance's retention
//! window, and both deleted when the number is erased ([`forget`]).

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

/// Writes a challenge's record once, kept until a day after it expires.
pub async fn put(env: &Env, uuid: &str, record: &ChallengeRecord, now: i64) -> Result<()> {
    let ttl = record.expires_at - now + otp_core::rules::challenge::RETENTION;
    let json = serde_json::to_string(record)?;
    kv_put(env, &record_key(uuid), &json, ttl, None).await
}

/// One `put` through the binding's own method with a string and `{expirationTtl, metadata}`:
/// worker's builder serializes its options with serde-wasm-bindgen and formats numbers,
/// several KB of Wasm for one call.
async fn kv_put(env: &Env, key: &str, value: &str, ttl: i64, meta: Option<&str>) -> Result<()> {
    use js_sys::{Function, Object, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    let kv = Reflect::get(env.as_ref(), &CHALLENGES_KV.into())?;
    let put: Function = Reflect::get(&kv, &"put".into())?.dyn_into()?;
    let options = Object::new();
    let ttl = JsValue::from(ttl.max(60) as f64);
    Reflect::set(&options, &"expirationTtl".into(), &ttl)?;
    if let Some(m) = meta {
        Reflect::set(&options, &"metadata".into(), &js_sys::JSON::parse(m)?)?;
    }
    let done: Promise = put
        .call3(&kv, &key.into(), &JsValue::from_str(value), &options)?
        .dyn_into()?;
    js_sys::futures::JsFuture::from(done).await?;
    Ok(())
}

/// A challenge as its instance's list shows it (`GET /api/otp/v2/{instance}/challenges`):
/// kept as the metadata of a key `list:<instance>:<newest first>:<uuid>` for the instance's
/// retention window after it expires. Never a code, never the whole number.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub kind: RecordKind,
    /// The number's last 4 digits; empty for a link nobody was named for.
    pub last4: String,
    pub created_at: i64,
    pub expires_at: i64,
}

fn list_prefix(instance: &str) -> String {
    format!("list:{}:", instance.to_ascii_lowercase())
}

fn list_key(instance: &str, uuid: &str, created_at: i64) -> String {
    // Keys list in byte order: the time counted down lists the newest first.
    let down = 9_999_999_999 - created_at;
    format!(
        "{}{down:010}:{}",
        list_prefix(instance),
        uuid.to_ascii_lowercase()
    )
}

/// Lists a new challenge in its instance's list, for `keep` seconds after it expires.
pub async fn put_listed(
    env: &Env,
    instance: &str,
    uuid: &str,
    l: &Listed,
    keep: i64,
) -> Result<()> {
    let ttl = l.expires_at - crate::clock::now() + keep;
    let key = list_key(instance, uuid, l.created_at);
    kv_put(env, &key, "", ttl, Some(&serde_json::to_string(l)?)).await
}

/// The last 4 digits of a number, for [`Listed::last4`].
pub fn last4(digits: &str) -> String {
    digits[digits.len().saturating_sub(4)..].to_owned()
}

/// One page of an instance's list, newest first: `(uuid, entry)`s and the cursor of the next
/// page (none after the last).
pub async fn list(
    env: &Env,
    instance: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<(String, Listed)>, Option<String>)> {
    use js_sys::{Function, Object, Promise, Reflect};
    use wasm_bindgen::JsCast;
    let kv = Reflect::get(env.as_ref(), &CHALLENGES_KV.into())?;
    let list: Function = Reflect::get(&kv, &"list".into())?.dyn_into()?;
    let options = Object::new();
    Reflect::set(&options, &"prefix".into(), &list_prefix(instance).into())?;
    Reflect::set(&options, &"limit".into(), &f64::from(limit).into())?;
    if let Some(c) = cursor {
        Reflect::set(&options, &"cursor".into(), &c.into())?;
    }
    let done: Promise = list.call1(&kv, &options)?.dyn_into()?;
    let page = js_sys::futures::JsFuture::from(done).await?;
    // Read as a `Value` (its parser is linked anyway): no decoder of its own for one call.
    let page: serde_json::Value =
        serde_json::from_str(&String::from(js_sys::JSON::stringify(&page)?))?;
    let items = page["keys"].as_array().map_or(&[][..], Vec::as_slice);
    let items = items
        .iter()
        .filter_map(|k| {
            let m = &k["metadata"];
            let listed = Listed {
                kind: if m["kind"] == "link" {
                    RecordKind::Link
                } else {
                    RecordKind::Code
                },
                last4: m["last4"].as_str()?.to_owned(),
                created_at: m["created_at"].as_i64()?,
                expires_at: m["expires_at"].as_i64()?,
            };
            Some((k["name"].as_str()?.rsplit(':').next()?.to_owned(), listed))
        })
        .collect();
    let next = (page["list_complete"] != true)
        .then(|| page["cursor"].as_str().map(str::to_owned))
        .flatten();
    Ok((items, next))
}

/// Deletes a challenge's record and its list entry; the number of keys deleted.
pub async fn forget(env: &Env, instance: &str, uuid: &str, created_at: i64) -> Result<u32> {
    let kv = env.kv(CHALLENGES_KV)?;
    for key in [record_key(uuid), list_key(instance, uuid, created_at)] {
        kv.delete(&key).await?;
    }
    Ok(2)
}

/// Deletes the record of a message (`recorded` messages have no list entry).
pub async fn forget_record(env: &Env, id: &str) -> Result<u32> {
    env.kv(CHALLENGES_KV)?.delete(&record_key(id)).await?;
    Ok(1)
}

/// Reads a challenge's record.
pub async fn get(env: &Env, uuid: &str) -> Result<Option<ChallengeRecord>> {
    Ok(env.kv(CHALLENGES_KV)?.get(&record_key(uuid)).json().await?)
}
