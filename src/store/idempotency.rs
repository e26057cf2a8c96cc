//! The Durable Object that remembers one `Idempotency-Key` of a send endpoint (WhatOTP's
//! send and messages/send, Hypersender's request-code).
//!
//! One object per (instance, API key, idempotency key) holds the fingerprint of the request
//! that first used the key and, once that request succeeded, its response (which never holds
//! a code). `begin` decides with no `await` between reading and writing, so of two concurrent
//! requests with one key exactly one sends; the other is told the first is in progress. The
//! rules (valid keys, fingerprints, same vs conflicting) are `otp_core::rules::idempotency`'s.

use super::table;
use super::{call, stub, unknown_op, Op, IDEMPOTENCY};
use otp_core::rules::idempotency::{compare, Replay, TTL_SECS};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// Seconds after which a request that began but never finished (its isolate went away) no
/// longer holds its key: a retry then runs afresh.
const IN_PROGRESS_LEASE: i64 = 60;

/// A request with a key arrives: claim the key, or learn what became of its first use.
#[derive(Debug, Serialize, Deserialize)]
pub struct BeginMsg {
    pub fingerprint: String,
}

/// What `begin` decided.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", try_from = "BeginWire")]
pub enum Begin {
    /// The key is new (or expired): the caller handles the request, then finishes or aborts.
    Fresh,
    /// The same request succeeded before: answer with its response, send nothing.
    Replay { status: u16, body: String },
    /// The same request is being handled right now.
    InProgress,
    /// The key was used for a different request.
    Conflict,
}

/// A [`Begin`] as the Worker reads it back: one flat record of the same JSON shape, so serde
/// does not buffer the fields and compile its internally-tagged machinery for this one enum.
#[derive(Deserialize)]
struct BeginWire {
    outcome: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: Option<String>,
}

impl TryFrom<BeginWire> for Begin {
    type Error = &'static str;

    fn try_from(w: BeginWire) -> std::result::Result<Self, Self::Error> {
        Ok(match w.outcome.as_str() {
            "fresh" => Self::Fresh,
            "replay" => Self::Replay {
                status: w.status.ok_or("missing field `status`")?,
                body: w.body.ok_or("missing field `body`")?,
            },
            "in_progress" => Self::InProgress,
            "conflict" => Self::Conflict,
            _ => return Err("unknown begin outcome"),
        })
    }
}

/// The claimed request succeeded: keep its response for replays.
#[derive(Debug, Serialize, Deserialize)]
pub struct FinishMsg {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// The claimed request failed: free the key so a retry can run.
#[derive(Debug, Serialize, Deserialize)]
pub struct AbortMsg {
    pub fingerprint: String,
}

/// The one record of the object.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// `otp_core::rules::idempotency::fingerprint` of the first request.
    fingerprint: String,
    /// Unix seconds when the key was first used; it is remembered for `TTL_SECS` from then.
    started_at: i64,
    /// The first request's successful response; `None` while it is being handled.
    response: Option<Stored>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    status: u16,
    body: String,
}

const KEY: &str = "entry";

/// How much later than its entry a send may file its idempotency key with the recipient (the
/// send runs between the two).
const FILED_SLACK_SECS: i64 = 120;

/// A key claimed for one request: finish it with the response, or abort to free the key.
pub struct Claim {
    stub: worker::Stub,
    fingerprint: String,
}

/// The object that remembers `key` within `scope`.
pub fn object_name(scope: &str, key: &str) -> String {
    format!("{scope}:{}", otp_core::secret::token_hash_hex(key))
}

/// Claims `key` within `scope` (instance and credential) for a request with `fingerprint`.
pub async fn claim(
    env: &Env,
    scope: &str,
    key: &str,
    fingerprint: String,
) -> Result<(Begin, Claim)> {
    let stub = stub(env, IDEMPOTENCY, &object_name(scope, key))?;
    let begin: Begin = call(
        &stub,
        Op::Begin,
        &BeginMsg {
            fingerprint: fingerprint.clone(),
        },
    )
    .await?;
    Ok((begin, Claim { stub, fingerprint }))
}

impl Claim {
    /// Keeps the successful response (which must hold no code) for replays.
    pub async fn finish(self, status: u16, body: String) {
        let msg = FinishMsg {
            fingerprint: self.fingerprint,
            status,
            body,
        };
        if let Err(e) = call::<_, serde_json::Value>(&self.stub, Op::Finish, &msg).await {
            crate::log::Line::new("idempotency.error")
                .str("op", "finish")
                .text("error", &e.to_string())
                .error();
        }
    }

    /// Frees the key after a failure, so a corrected retry can run.
    pub async fn abort(self) {
        let msg = AbortMsg {
            fingerprint: self.fingerprint,
        };
        if let Err(e) = call::<_, serde_json::Value>(&self.stub, Op::Abort, &msg).await {
            crate::log::Line::new("idempotency.error")
                .str("op", "abort")
                .text("error", &e.to_string())
                .error();
        }
    }
}

#[durable_object]
pub struct IdempotencyObject {
    state: State,
    schema: table::Schema,
}

impl DurableObject for IdempotencyObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            schema: table::Schema::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // The body is read first: an `await` between reading the entry and writing it would
        // let two concurrent requests both see the key as new.
        let body = req.text().await?;
        let sql = self.state.storage().sql();
        self.schema.ensure(&sql, table::SCHEMA)?;
        let now = crate::clock::now();
        let entry: Option<Entry> =
            table::read(&sql, KEY)?.filter(|e: &Entry| now - e.started_at < TTL_SECS);
        match Op::of(&req) {
            Some(Op::Begin) => {
                let msg: BeginMsg = serde_json::from_str(&body)?;
                let decided = match &entry {
                    None => None,
                    Some(e) => match (compare(Some(&e.fingerprint), &msg.fingerprint), &e.response)
                    {
                        (Replay::Same, Some(r)) => Some(Begin::Replay {
                            status: r.status,
                            body: r.body.clone(),
                        }),
                        (Replay::Same, None) if now - e.started_at < IN_PROGRESS_LEASE => {
                            Some(Begin::InProgress)
                        }
                        (Replay::Conflict, _) => Some(Begin::Conflict),
                        // Abandoned mid-request: this retry takes the key over.
                        (Replay::Same | Replay::Fresh, _) => None,
                    },
                };
                if let Some(decided) = decided {
                    return Response::from_json(&decided);
                }
                table::write(
                    &sql,
                    KEY,
                    &Entry {
                        fingerprint: msg.fingerprint,
                        started_at: now,
                        response: None,
                    },
                )?;
                // Forget the key when it expires (the state above is already written).
                self.state
                    .storage()
                    .set_alarm(std::time::Duration::from_secs(TTL_SECS as u64))
                    .await?;
                Response::from_json(&Begin::Fresh)
            }
            Some(Op::Finish) => {
                let msg: FinishMsg = serde_json::from_str(&body)?;
                if let Some(mut e) = entry.filter(|e| e.fingerprint == msg.fingerprint) {
                    if e.response.is_none() {
                        e.response = Some(Stored {
                            status: msg.status,
                            body: msg.body,
                        });
                        table::write(&sql, KEY, &e)?;
                    }
                }
                Response::from_json(&serde_json::json!({"ok": true}))
            }
            Some(Op::Abort) => {
                let msg: AbortMsg = serde_json::from_str(&body)?;
                if entry.is_some_and(|e| e.fingerprint == msg.fingerprint && e.response.is_none()) {
                    sql.exec("DELETE FROM kv WHERE k = ?", vec![KEY.into()])?;
                }
                Response::from_json(&serde_json::json!({"ok": true}))
            }
            Some(Op::Erase) => {
                // The number's index filed this key (`id` is `<object>@<filed at>`) when the
                // send it guards ran: the entry goes if it is that send's, not a later reuse of
                // the key once it had expired (which starts at least TTL_SECS later).
                let msg: super::recipient::GetMsg = serde_json::from_str(&body)?;
                let filed_at = msg
                    .id
                    .rsplit_once('@')
                    .and_then(|(_, at)| at.parse::<i64>().ok());
                let held = table::read::<Entry>(&sql, KEY)?.is_some_and(|e| {
                    filed_at.is_some_and(|at| e.started_at <= at + FILED_SLACK_SECS)
                });
                if held {
                    self.schema.wipe(&self.state.storage()).await?;
                }
                Response::from_json(&serde_json::json!(held))
            }
            _ => unknown_op(),
        }
    }

    /// Drops the key once it has expired (or re-arms, should it have been taken over later).
    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        let sql = storage.sql();
        self.schema.ensure(&sql, table::SCHEMA)?;
        let entry: Option<Entry> = table::read(&sql, KEY)?;
        let now = crate::clock::now();
        match entry {
            Some(e) if now - e.started_at < TTL_SECS => {
                let left = (e.started_at + TTL_SECS - now).max(1) as u64;
                storage
                    .set_alarm(std::time::Duration::from_secs(left))
                    .await?;
            }
            _ => storage.delete_all().await?,
        }
        Response::ok("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_reads_back_as_written() {
        for begin in [
            Begin::Fresh,
            Begin::Replay {
                status: 201,
                body: "{}".into(),
            },
            Begin::InProgress,
            Begin::Conflict,
        ] {
            let json = serde_json::to_string(&begin).unwrap();
            let back: Begin = serde_json::from_str(&json).unwrap();
            assert_eq!(format!("{back:?}"), format!("{begin:?}"), "{json}");
        }
        assert!(serde_json::from_str::<Begin>(r#"{"outcome":"replay","status":200}"#).is_err());
    }
}
