//! Erasure of one number from an instance (`DELETE /api/otp/v2/{instance}/recipients/{chatId}`):
//! everything that holds it, found through the index its recipient object keeps (the codes'
//! KV records and list entries, the link objects it was named for or claimed, the
//! idempotency entries whose kept response names it), then the recipient object itself.
//! The recipient object goes last, so an erasure cut short can simply be run again.

use super::recipient::{object_name, GetMsg};
use super::{call, idempotency, link, records, stub, Op, RECIPIENTS};
use otp_core::Recipient;
use serde::Serialize;
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
    /// KV keys deleted: records and list entries.
    pub records: u32,
    /// Idempotency entries whose kept response named it.
    pub idempotency_keys: u32,
}

fn msg(instance: &str, recipient: &Recipient, id: String) -> GetMsg {
    GetMsg {
        instance: instance.into(),
        recipient: recipient.digits().into(),
        id,
    }
}

/// Files `entry` (`l:<link code>:<uuid>`) in the recipient's index, for a later erasure.
pub async fn note(env: &Env, instance: &str, recipient: &Recipient, entry: String) -> Result<()> {
    let stub = stub(env, RECIPIENTS, &object_name(instance, recipient))?;
    let _: bool = call(&stub, Op::Note, &msg(instance, recipient, entry)).await?;
    Ok(())
}

/// Removes everything about `recipient` in `instance`; idempotent.
pub async fn erase(env: &Env, instance: &str, recipient: &Recipient) -> Result<Erased> {
    let stub = stub(env, RECIPIENTS, &object_name(instance, recipient))?;
    let index: Vec<(String, i64)> =
        call(&stub, Op::Index, &msg(instance, recipient, String::new())).await?;
    let mut out = Erased::default();
    let digits = recipient.digits();
    for (entry, at) in index {
        let Some((kind, rest)) = entry.split_once(':') else {
            continue;
        };
        let uuid = match kind {
            "c" => {
                out.code_challenges += 1;
                rest
            }
            "l" => {
                let Some((code, uuid)) = rest.split_once(':') else {
                    continue;
                };
                out.link_challenges += u32::from(link::erase(env, instance, code, digits).await?);
                uuid
            }
            _ => {
                out.idempotency_keys += u32::from(idempotency::erase(env, rest, digits).await?);
                continue;
            }
        };
        out.records += records::forget(env, instance, uuid, at).await? as u32;
    }
    let (held, messages): (bool, f64) =
        call(&stub, Op::Erase, &msg(instance, recipient, String::new())).await?;
    out.recipients = u32::from(held);
    out.messages = messages as u32;
    Ok(out)
}
