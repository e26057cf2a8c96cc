//! Erasure of one number from an instance (`DELETE /api/otp/v2/{instance}/recipients/{chatId}`):
//! everything that holds it, found through the index its recipient object keeps (the codes'
//! KV records and list entries, the link objects it was named for or claimed, the
//! idempotency entries of the sends to it), then the recipient object itself.
//! The recipient object goes last, so an erasure cut short can simply be run again.

use super::recipient::{object_name, GetMsg};
use super::{call, link, records, stub, Op, IDEMPOTENCY, RECIPIENTS};
use otp_core::Recipient;
use serde::Serialize;
use serde_json::Value;
use worker::{Env, Result};

/// What an erasure removed, by kind; all zero when nothing was left.
#[derive(Debug, Default, Serialize)]
pub struct Erased {
    /// The recipient's object (its challenges, limits, messages, index): 0 or 1.
    pub recipients: u32,
    /// Code challenges of the window, whose KV records and list entries went.
    pub code_challenges: u32,
    /// Link challenges it was named for or claimed (their objects).
    pub link_challenges: u32,
    /// Queued or sent messages (texts are already blank once delivered).
    pub messages: u32,
    /// KV keys deleted: records (of codes, links and messages) and list entries.
    pub records: u32,
    /// Idempotency entries of the sends to it.
    pub idempotency_keys: u32,
}

fn msg(instance: &str, recipient: &Recipient, id: String) -> GetMsg {
    GetMsg {
        instance: instance.into(),
        recipient: recipient.digits().into(),
        id,
    }
}

/// Files link `uuid` (with `code`, made at `created_at`) in the recipient's index, for a later
/// erasure.
pub async fn note(
    env: &Env,
    instance: &str,
    recipient: &Recipient,
    (code, uuid, created_at): (&str, &str, i64),
) -> Result<()> {
    let stub = stub(env, RECIPIENTS, &object_name(instance, recipient))?;
    let entry = format!("l:{code}:{uuid}@{created_at}");
    let _: Value = call(&stub, Op::Note, &msg(instance, recipient, entry)).await?;
    Ok(())
}

/// Removes everything about `recipient` in `instance`; idempotent. Written with one call
/// site per kind of request (async code is copied at every `await`).
pub async fn erase(env: &Env, instance: &str, recipient: &Recipient) -> Result<Erased> {
    let own = stub(env, RECIPIENTS, &object_name(instance, recipient))?;
    let erase = |name: &str| msg(instance, recipient, name.to_owned());
    let index: Value = call(&own, Op::Index, &erase("")).await?;
    let mut out = Erased::default();
    for item in index.as_array().map_or(&[][..], Vec::as_slice) {
        let (Some(entry), Some(at)) = (item[0].as_str(), item[1].as_i64()) else {
            continue;
        };
        // `c:<uuid>`, `l:<link code>:<uuid>`, `r:<message id>`, `i:<idempotency object>`.
        let (kind, rest) = entry.split_once(':').unwrap_or_default();
        if kind == "r" {
            out.records += records::forget_record(env, rest).await?;
            continue;
        }
        let (code, uuid) = rest.split_once(':').unwrap_or(("", rest));
        let object = match kind {
            "l" => Some((link::link_stub(env, instance, code)?, code.to_owned())),
            // With when it was filed: the entry goes only if it is the send's (idempotency.rs).
            "i" => Some((stub(env, IDEMPOTENCY, rest)?, format!("{rest}@{at}"))),
            _ => None,
        };
        if let Some((object, name)) = object {
            let gone: Value = call(&object, Op::Erase, &erase(&name)).await?;
            let gone = u32::from(gone == true);
            match kind {
                "l" => out.link_challenges += gone,
                _ => out.idempotency_keys += gone,
            }
        } else {
            out.code_challenges += 1;
        }
        if kind != "i" {
            out.records += records::forget(env, instance, uuid, at).await?;
        }
    }
    let held: Value = call(&own, Op::Erase, &erase("")).await?;
    out.recipients = u32::from(held["held"] == true);
    out.messages = held["messages"].as_u64().unwrap_or(0) as u32;
    Ok(out)
}
