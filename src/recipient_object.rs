//! The Durable Object that owns one recipient of one instance: its challenges, its limits and
//! its pending deliveries. It is the only place that decides whether a code is right, and it
//! decides with no `await` between reading and writing its state, so "used once" and
//! "attempts left" hold under any concurrency.

use crate::channel::{Channel, DeliveryError, Outbound, Outbox, WhatsappCloud, OUTBOX_SCHEMA};
use crate::object_store;
use crate::scheduler::{Job, Jobs, SCHEMA as JOBS_SCHEMA};
use crate::service;
use crate::store::{AttemptMsg, GetMsg, SendMsg, StartMsg};
use otp_core::challenge::{Attempt, RecipientState};
use otp_core::config::{ChannelKind, InstanceConfig};
use otp_core::schedule::retry_delay;
use otp_core::template::render;
use otp_core::Recipient;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use worker::{
    console_error, durable_object, DurableObject, Env, Request, Response, Result, SqlStorage,
    State, Storage,
};

/// Free-text messages waiting for delivery (link-flow replies), keyed for deduplication.
const MESSAGES_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages (
    key TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
)";

/// How long a queued job waits for its immediate delivery before the alarm takes over.
const LEASE_MS: i64 = 30_000;

/// Delivery attempts before a message is given up.
const DELIVERY_ATTEMPTS: u32 = 8;

/// Who this object belongs to, stored at its first challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    instance: String,
    recipient: String,
}

#[durable_object]
pub struct RecipientObject {
    state: State,
    env: Env,
    schema_ready: Cell<bool>,
}

impl DurableObject for RecipientObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            schema_ready: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.ensure_schema()?;
        let path = req.path();
        let body = req.text().await?;
        match path.as_str() {
            "/start" => self.start(serde_json::from_str(&body)?).await,
            "/attempt" => self.attempt(serde_json::from_str(&body)?),
            "/send" => self.queue_message(serde_json::from_str(&body)?).await,
            "/get" => {
                let msg: GetMsg = serde_json::from_str(&body)?;
                Response::from_json(&self.load()?.get(&msg.id))
            }
            #[cfg(feature = "dev")]
            "/outbox" => self.outbox(serde_json::from_str(&body)?),
            _ => Response::error("unknown operation", 404),
        }
    }

    /// Runs every due job. Never panics and never returns `Err` for a job's own failure: each
    /// job keeps its attempt count and is rescheduled here, so the alarm is always re-armed.
    async fn alarm(&self) -> Result<Response> {
        if let Err(e) = self.ensure_schema() {
            console_error!("recipient object: schema: {e}");
            return Err(e);
        }
        let now_ms = crate::http::now() * 1000;
        let courier = self.courier();
        let due = Jobs::new(&self.sql()).due(now_ms)?;
        for job in due {
            courier.run(&job, now_ms).await?;
        }
        Jobs::new(&self.sql()).arm(&self.state.storage()).await?;
        Response::ok("")
    }
}

impl RecipientObject {
    fn courier(&self) -> Courier {
        Courier {
            storage: self.state.storage(),
            env: self.env.clone(),
        }
    }

    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.courier().write(key, value)
    }

    fn load(&self) -> Result<RecipientState> {
        self.courier().load()
    }

    fn instance(&self, id: &str) -> Result<InstanceConfig> {
        self.courier().instance(id)
    }

    fn ensure_schema(&self) -> Result<()> {
        if !self.schema_ready.get() {
            // One call: SQLite runs the statements in order.
            let schema = [
                object_store::SCHEMA,
                JOBS_SCHEMA,
                MESSAGES_SCHEMA,
                OUTBOX_SCHEMA,
            ]
            .join(";\n");
            self.sql().exec(&schema, None)?;
            self.schema_ready.set(true);
        }
        Ok(())
    }

    async fn start(&self, msg: StartMsg) -> Result<Response> {
        let instance = self.instance(&msg.instance)?;
        let now = crate::http::now();
        let mut state = self.load()?;
        // An object that never had a challenge has no owner recorded yet.
        let first = state == RecipientState::default();
        let result = state
            .start(now, &instance.limits, msg.new_challenge())
            .cloned();
        if result.is_ok() {
            self.write("state", &state)?;
            if first {
                self.write(
                    "meta",
                    &Meta {
                        instance: instance.id.clone(),
                        recipient: msg.recipient.clone(),
                    },
                )?;
            }
            self.queue_and_send_now("deliver", &msg.id, now).await?;
        }
        Response::from_json(&result)
    }

    /// Persists a job, arms the alarm as a safety net one lease away, and delivers right
    /// after the response. A job is delivered at least once: by this immediate run, or by
    /// the alarm if the isolate went away first.
    async fn queue_and_send_now(&self, kind: &str, target: &str, now: i64) -> Result<()> {
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        let id = jobs.enqueue(kind, target, now * 1000 + LEASE_MS)?;
        jobs.arm(&self.state.storage()).await?;
        let job = Job {
            id,
            kind: kind.to_owned(),
            target: target.to_owned(),
            attempts: 0,
        };
        self.state.wait_until(self.courier().run_now(job));
        Ok(())
    }

    fn attempt(&self, msg: AttemptMsg) -> Result<Response> {
        let instance = self.instance(&msg.instance)?;
        let pepper = service::pepper(&self.env).map_err(|p| worker::Error::RustError(p.0))?;
        let recipient = Recipient::parse(&msg.recipient)
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let now = crate::http::now();
        let mut state = self.load()?;
        let outcome = state.attempt(now, &instance.limits, |c| {
            c.code(&pepper, &instance.id, &recipient)
                .matches_input(c.spec, &msg.code)
        });
        if matches!(outcome, Attempt::Validated { .. } | Attempt::Wrong { .. }) {
            self.write("state", &state)?;
        }
        Response::from_json(&outcome)
    }

    /// Queues a free-text message (a link-flow reply). The same `key` is queued once, so a
    /// retried request never sends twice.
    async fn queue_message(&self, msg: SendMsg) -> Result<Response> {
        let now = crate::http::now();
        let sql = self.sql();
        if object_store::read::<Meta>(&sql, "meta")?.is_none() {
            self.write(
                "meta",
                &Meta {
                    instance: msg.instance.clone(),
                    recipient: msg.recipient.clone(),
                },
            )?;
        }
        let inserted = sql
            .exec(
                "INSERT OR IGNORE INTO messages (key, instance, text, created_at) VALUES (?, ?, ?, ?)",
                vec![msg.key.clone().into(), msg.instance.into(), msg.text.into(), now.into()],
            )?
            .rows_written()
            > 0;
        if inserted {
            self.queue_and_send_now("message", &msg.key, now).await?;
        }
        Response::from_json(&serde_json::json!({ "queued": inserted }))
    }

    /// The outbox, newest first, with each code derived again for display.
    #[cfg(feature = "dev")]
    fn outbox(&self, msg: GetMsg) -> Result<Response> {
        #[derive(Deserialize)]
        struct OutRow {
            challenge_id: String,
            text_template: String,
            created_at: f64,
        }
        let instance = self.instance(&msg.instance)?;
        let pepper = service::pepper(&self.env).map_err(|p| worker::Error::RustError(p.0))?;
        let recipient = Recipient::parse(&msg.recipient)
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let state = self.load()?;
        let rows: Vec<OutRow> = self
            .sql()
            .exec(
                "SELECT challenge_id, text_template, created_at FROM outbox WHERE recipient = ? ORDER BY id DESC",
                vec![recipient.digits().into()],
            )?
            .to_array()?;
        let messages: Vec<crate::store::OutboxMessage> = rows
            .into_iter()
            .map(|row| {
                let code = state.get(&row.challenge_id).map(|c| {
                    c.code(&pepper, &instance.id, &recipient)
                        .reveal()
                        .to_owned()
                });
                crate::store::OutboxMessage {
                    to: recipient.e164(),
                    text: render(
                        &row.text_template,
                        &[("code", code.as_deref().unwrap_or("(expired)"))],
                    ),
                    created_at: otp_core::time::iso8601(row.created_at as i64),
                }
            })
            .collect();
        Response::from_json(&messages)
    }
}

/// The part of the object that delivers: owned handles to its storage and environment, so a
/// delivery can run after the response (`wait_until`) as well as from the alarm.
struct Courier {
    storage: Storage,
    env: Env,
}

impl Courier {
    fn sql(&self) -> SqlStorage {
        self.storage.sql()
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        object_store::read(&self.sql(), key)
    }

    fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        object_store::write(&self.sql(), key, value)
    }

    fn load(&self) -> Result<RecipientState> {
        Ok(self.read("state")?.unwrap_or_default())
    }

    fn instance(&self, id: &str) -> Result<InstanceConfig> {
        let config = service::instances(&self.env).map_err(|p| worker::Error::RustError(p.0))?;
        config
            .instance(id)
            .cloned()
            .ok_or_else(|| worker::Error::RustError(format!("unknown instance {id}")))
    }

    /// Delivers queued free-text message `job.target`.
    async fn deliver_message(&self, job: &Job) -> std::result::Result<(), DeliveryError> {
        #[derive(Deserialize)]
        struct Queued {
            instance: String,
            text: String,
        }
        let internal = |e: worker::Error| DeliveryError::Retryable(e.to_string());
        let sql = self.sql();
        let rows: Vec<Queued> = sql
            .exec(
                "SELECT instance, text FROM messages WHERE key = ?",
                vec![job.target.clone().into()],
            )
            .and_then(|c| c.to_array())
            .map_err(internal)?;
        let Some(queued) = rows.into_iter().next() else {
            return Ok(());
        };
        let meta: Meta = self
            .read("meta")
            .map_err(internal)?
            .ok_or_else(|| DeliveryError::Permanent("object has no owner".into()))?;
        let recipient = Recipient::parse(&meta.recipient)
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let instance = self
            .instance(&queued.instance)
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let msg = Outbound {
            to: &recipient,
            challenge_id: &job.target,
            text_template: &queued.text,
            code: None,
        };
        self.send_through(&instance, &msg, crate::http::now())
            .await?;
        // The text may hold a login URL: keep it no longer than needed (the key stays, so a
        // late duplicate request is still recognised).
        sql.exec(
            "UPDATE messages SET text = '' WHERE key = ?",
            vec![job.target.clone().into()],
        )
        .map_err(internal)?;
        Ok(())
    }

    /// Delivers challenge `job.target`'s message through the instance's channel.
    async fn deliver(&self, job: &Job) -> std::result::Result<(), DeliveryError> {
        let internal = |e: worker::Error| DeliveryError::Retryable(e.to_string());
        let meta: Meta = self
            .read("meta")
            .map_err(internal)?
            .ok_or_else(|| DeliveryError::Permanent("object has no owner".into()))?;
        let now = crate::http::now();
        let state = self.load().map_err(internal)?;
        let Some(challenge) = state.get(&job.target).filter(|c| c.is_open(now)).cloned() else {
            return Ok(()); // superseded, expired or gone: a stale code is never sent
        };
        let instance = self
            .instance(&meta.instance)
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let recipient = Recipient::parse(&meta.recipient)
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let minutes = ((challenge.expires_at - challenge.created_at + 59) / 60).to_string();
        let name = challenge.name.as_deref().unwrap_or(&instance.name);
        let text_template = render(
            &instance.messages.code,
            &[("name", name), ("minutes", &minutes)],
        );
        let pepper = service::pepper(&self.env).map_err(|p| DeliveryError::Retryable(p.0))?;
        let code = challenge.code(&pepper, &instance.id, &recipient);
        let msg = Outbound {
            to: &recipient,
            challenge_id: &challenge.id,
            text_template: &text_template,
            code: Some(code.reveal()),
        };
        self.send_through(&instance, &msg, now).await?;
        // Reload: other requests may have run while the channel was awaited.
        let mut state = self.load().map_err(internal)?;
        if state.mark_sent(&challenge.id, crate::http::now()) {
            self.write("state", &state).map_err(internal)?;
        }
        Ok(())
    }

    /// Hands a message to the instance's channel.
    async fn send_through(
        &self,
        instance: &InstanceConfig,
        msg: &Outbound<'_>,
        now: i64,
    ) -> std::result::Result<(), DeliveryError> {
        match instance.channel {
            ChannelKind::Outbox => {
                let sql = self.sql();
                Outbox { sql: &sql, now }.send(msg).await
            }
            ChannelKind::Whatsapp => {
                let secrets = service::instance_secrets(&self.env, &instance.id)
                    .map_err(|p| DeliveryError::Retryable(p.0))?;
                let (Some(config), Some(token)) = (
                    instance.whatsapp.as_ref(),
                    secrets.whatsapp_access_token.as_deref(),
                ) else {
                    return Err(DeliveryError::Permanent(
                        "whatsapp channel needs [whatsapp] config and whatsapp_access_token".into(),
                    ));
                };
                WhatsappCloud {
                    config,
                    access_token: token,
                }
                .send(msg)
                .await
            }
        }
    }

    fn give_up(&self, job: &Job, why: &str) -> Result<()> {
        console_error!("delivery of challenge {} given up: {why}", job.target);
        let mut state = self.load()?;
        if state.mark_undeliverable(&job.target, crate::http::now(), why) {
            self.write("state", &state)?;
        }
        Ok(())
    }

    /// Runs one job and records its outcome: done, rescheduled with backoff, or given up.
    async fn run(&self, job: &Job, now_ms: i64) -> Result<()> {
        let outcome = match job.kind.as_str() {
            "deliver" => self.deliver(job).await,
            "message" => self.deliver_message(job).await,
            other => Err(DeliveryError::Permanent(format!(
                "unknown job kind {other}"
            ))),
        };
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        match outcome {
            Ok(()) => jobs.finish(job.id),
            Err(DeliveryError::Retryable(why)) => {
                match retry_delay(job.attempts as u32 + 1, DELIVERY_ATTEMPTS) {
                    Some(delay) => jobs.retry_at(job.id, now_ms + delay * 1000, &why),
                    None => {
                        self.give_up(job, &why)?;
                        jobs.finish(job.id)
                    }
                }
            }
            Err(DeliveryError::Permanent(why)) => {
                self.give_up(job, &why)?;
                jobs.finish(job.id)
            }
        }
    }

    /// Delivers a just-queued job right away, after the response; the alarm set when it
    /// was queued stays as the safety net should this isolate go away first.
    async fn run_now(self, job: Job) {
        let now_ms = crate::http::now() * 1000;
        let result = async {
            self.run(&job, now_ms).await?;
            Jobs::new(&self.sql()).arm(&self.storage).await
        };
        if let Err(e) = result.await {
            console_error!("immediate delivery of job {}: {e}", job.id);
        }
    }
}
