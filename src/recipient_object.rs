//! The Durable Object that owns one recipient of one instance: its challenges, its limits and
//! its pending deliveries. It is the only place that decides whether a code is right, and it
//! decides with no `await` between reading and writing its state, so "used once" and
//! "attempts left" hold under any concurrency.

use crate::channel::{
    Channel, DeliveryError, Outbound, Outbox, TwilioChannel, WebhookSender, WhatsappCloud,
    OUTBOX_SCHEMA,
};
use crate::object_store;
use crate::scheduler::{Job, Jobs, SCHEMA as JOBS_SCHEMA};
use crate::service;
use crate::store::{AttemptMsg, GetMsg, ReceiptMsg, SendMsg, StartMsg};
use otp_core::config::{ChannelKind, InstanceConfig};
use otp_core::rules::challenge::{Attempt, RecipientState};
use otp_core::rules::schedule::retry_delay;
use otp_core::rules::template::render;
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
            "/receipt" => self.receipt(serde_json::from_str(&body)?).await,
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
        let mut policy = instance.limits;
        if let Some(cooldown) = msg.cooldown {
            policy.resend_cooldown = policy.resend_cooldown.max(cooldown);
        }
        let result = state.start(now, &policy, msg.new_challenge()).cloned();
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

    /// A provider's delivery receipt for one of this recipient's messages: `delivered` and
    /// `read` are recorded; a failure falls back to the next channel or fails the challenge.
    async fn receipt(&self, msg: ReceiptMsg) -> Result<Response> {
        let mut state = self.load()?;
        let Some(id) = state.on_receipt(&msg.provider_id, &msg.status) else {
            return Response::from_json(&serde_json::json!({ "matched": false }));
        };
        self.write("state", &state)?;
        if msg.status == "failed" {
            let why = msg
                .error
                .as_deref()
                .unwrap_or("the provider reported a failure");
            if self.courier().fall_back_or_fail(&id, why)? {
                Jobs::new(&self.sql()).arm(&self.state.storage()).await?;
            }
        }
        Response::from_json(&serde_json::json!({ "matched": true }))
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
        let is_right = |c: &otp_core::Challenge| {
            c.code(&pepper, &instance.id, &recipient)
                .matches_input(c.spec, &msg.code)
        };
        let outcome = match &msg.expected {
            Some(id) => state.attempt_for(now, &instance.limits, id, is_right),
            None => state.attempt(now, &instance.limits, is_right),
        };
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

/// The channel a challenge is delivered through: the one it fell back to, else the first of
/// the chain matching the caller's preferred medium (`whatsapp`, `sms`), else the first.
fn current_channel(c: &otp_core::Challenge, chain: &[ChannelKind]) -> ChannelKind {
    let named = c
        .channel
        .as_deref()
        .and_then(|n| chain.iter().find(|k| k.as_str() == n));
    let preferred = c
        .options
        .channel
        .as_deref()
        .and_then(|m| chain.iter().find(|k| k.medium() == m));
    *named
        .or(preferred)
        .or(chain.first())
        .unwrap_or(&ChannelKind::Outbox)
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
        // Replies answer a WhatsApp message: through the instance's first channel; a test
        // credential's message only to the outbox.
        let kind = if job.target.starts_with(crate::store::TEST_MESSAGE) {
            ChannelKind::Outbox
        } else {
            instance.chain()[0]
        };
        self.send_through(&instance, kind, &msg, crate::http::now())
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
        if challenge.options.fixed_code.is_some() {
            // A configured test number: no delivery at all, and said so in the log.
            worker::console_log!(
                "test number {} used for challenge {}",
                recipient.e164(),
                challenge.id
            );
            let mut state = self.load().map_err(internal)?;
            if state.mark_accepted(&challenge.id, now, "test_number", None) {
                self.write("state", &state).map_err(internal)?;
            }
            return Ok(());
        }
        let kind = if challenge.options.test {
            ChannelKind::Outbox // a test key never reaches a provider
        } else {
            current_channel(&challenge, &instance.chain())
        };
        let minutes = ((challenge.expires_at - challenge.created_at + 59) / 60).to_string();
        let name = challenge.name.as_deref().unwrap_or(&instance.name);
        let locale = challenge.options.locale.as_deref();
        let text_template = render(
            instance.messages.code_text(locale),
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
        let provider_id = self.send_through(&instance, kind, &msg, now).await?;
        // Reload: other requests may have run while the channel was awaited.
        let mut state = self.load().map_err(internal)?;
        if state.mark_accepted(
            &challenge.id,
            crate::http::now(),
            kind.as_str(),
            provider_id,
        ) {
            self.write("state", &state).map_err(internal)?;
        }
        Ok(())
    }

    /// Hands a message to one channel of the instance; the provider's message id on success.
    async fn send_through(
        &self,
        instance: &InstanceConfig,
        kind: ChannelKind,
        msg: &Outbound<'_>,
        now: i64,
    ) -> std::result::Result<Option<String>, DeliveryError> {
        let missing = |what: &str| {
            DeliveryError::Permanent(format!("the {} channel needs {what}", kind.as_str()))
        };
        let secrets = || {
            service::instance_secrets(&self.env, &instance.id)
                .map_err(|p| DeliveryError::Retryable(p.0))
        };
        match kind {
            ChannelKind::Outbox => {
                let sql = self.sql();
                Outbox { sql: &sql, now }.send(msg).await
            }
            ChannelKind::Whatsapp => {
                let secrets = secrets()?;
                let config = instance
                    .whatsapp
                    .as_ref()
                    .ok_or_else(|| missing("[whatsapp]"))?;
                let token = secrets
                    .whatsapp_access_token
                    .as_deref()
                    .ok_or_else(|| missing("whatsapp_access_token"))?;
                WhatsappCloud {
                    config,
                    access_token: token,
                }
                .send(msg)
                .await
            }
            ChannelKind::TwilioSms | ChannelKind::TwilioWhatsapp => {
                let secrets = secrets()?;
                let config = instance
                    .twilio
                    .as_ref()
                    .ok_or_else(|| missing("[twilio]"))?;
                let token = secrets
                    .twilio_auth_token
                    .as_deref()
                    .ok_or_else(|| missing("twilio_auth_token"))?;
                let status_callback = service::var(&self.env, "PUBLIC_URL").map(|base| {
                    format!(
                        "{}/webhooks/twilio/{}",
                        base.trim_end_matches('/'),
                        instance.id
                    )
                });
                TwilioChannel {
                    config,
                    auth_token: token,
                    whatsapp: kind == ChannelKind::TwilioWhatsapp,
                    web_otp_domain: instance.web_otp_domain.as_deref(),
                    status_callback,
                }
                .send(msg)
                .await
            }
            ChannelKind::Webhook => {
                let secrets = secrets()?;
                let config = instance
                    .webhook
                    .as_ref()
                    .ok_or_else(|| missing("[webhook]"))?;
                let secret = secrets
                    .sender_secret
                    .as_deref()
                    .and_then(|s| otp_core::wire::webhook::WebhookSecret::parse(s).ok())
                    .ok_or_else(|| missing("a valid sender_secret"))?;
                let kind = if msg.code.is_some() {
                    "code"
                } else {
                    "message"
                };
                WebhookSender {
                    url: &config.url,
                    secret: &secret,
                    kind,
                }
                .send(msg)
                .await
            }
        }
    }

    /// After a delivery failed for good on one channel: hands the challenge to the next
    /// channel of the chain (a fresh code; the previous one stops working), or, at the end of
    /// the chain, marks it undeliverable. True when it fell back (a new job is queued).
    fn fall_back_or_fail(&self, challenge_id: &str, why: &str) -> Result<bool> {
        let now = crate::http::now();
        let mut state = self.load()?;
        let meta: Option<Meta> = self.read("meta")?;
        let next = state.get(challenge_id).zip(meta).and_then(|(c, meta)| {
            let instance = self.instance(&meta.instance).ok()?;
            let chain = instance.chain();
            let current = current_channel(c, &chain);
            let at = chain.iter().position(|k| *k == current)?;
            chain.get(at + 1).copied()
        });
        match next {
            Some(kind) if !state.get(challenge_id).is_some_and(|c| c.options.test) => {
                if state.fall_back(challenge_id, now, kind.as_str()) {
                    console_error!(
                        "challenge {challenge_id}: falling back to {} after: {why}",
                        kind.as_str()
                    );
                    self.write("state", &state)?;
                    Jobs::new(&self.sql()).enqueue("deliver", challenge_id, now * 1000)?;
                    return Ok(true);
                }
                Ok(false)
            }
            _ => {
                console_error!("delivery of challenge {challenge_id} given up: {why}");
                if state.mark_undeliverable(challenge_id, now, why) {
                    self.write("state", &state)?;
                }
                Ok(false)
            }
        }
    }

    fn give_up(&self, job: &Job, why: &str) -> Result<()> {
        if job.kind == "deliver" {
            self.fall_back_or_fail(&job.target, why)?;
        } else {
            console_error!("{} job {} given up: {why}", job.kind, job.target);
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
