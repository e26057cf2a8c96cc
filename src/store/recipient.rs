//! The Durable Object that owns one recipient of one instance: its challenges, its limits and
//! its pending deliveries, and the typed calls the API surfaces make into it ([`Recipients`]).
//! It is the only place that decides whether a code is right, and it decides with no `await`
//! between reading and writing its state, so "used once" and "attempts left" hold under any
//! concurrency.

use super::jobs::{Job, JobKind, Jobs, Outcome, Runner, SCHEMA as JOBS_SCHEMA};
use super::observe;
use super::records::{self, ChallengeRecord, RecordKind};
use super::{call, stub, table, unknown_op, Op, RECIPIENTS};
use crate::channels::{self, DeliveryError, Form, Outbound, OUTBOX_SCHEMA};
use crate::log::Line;
use crate::{clock, config};
use otp_core::config::ChannelKind;
use otp_core::rules::challenge::{
    Attempt, Challenge, NewChallenge, RecipientState, Refusal, SendOptions,
};
use otp_core::rules::schedule::Retry;
use otp_core::rules::template::render;
use otp_core::{CodeSpec, Recipient};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State, Storage,
};

/// The Durable Object name of (instance, recipient): the canonical digits, so every spelling
/// of a number reaches the same object.
pub fn object_name(instance: &str, recipient: &Recipient) -> String {
    format!("{}:{}", instance.to_ascii_lowercase(), recipient.digits())
}

/// The request to start a challenge, as sent to the recipient's object.
#[derive(Debug, Serialize, Deserialize)]
pub struct StartMsg {
    pub instance: String,
    pub recipient: String,
    pub id: String,
    pub spec: CodeSpec,
    pub name: Option<String>,
    pub ttl: i64,
    /// Locale, preferred channel, test mode, fixed code of a test number.
    #[serde(default)]
    pub options: SendOptions,
    /// A resend cooldown in seconds that applies on top of the instance's (the widget's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<i64>,
    /// The idempotency object that keeps this send's response (it names the number), filed
    /// in the recipient's index for erasure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idem: Option<String>,
}

impl StartMsg {
    /// A code challenge for `recipient` with a fresh id: what every send surface starts.
    pub fn code(
        instance: &str,
        recipient: &Recipient,
        spec: CodeSpec,
        ttl: i64,
        options: SendOptions,
    ) -> Result<Self> {
        Ok(Self {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            id: super::new_id()?,
            spec,
            name: None,
            ttl,
            options,
            cooldown: None,
            idem: None,
        })
    }

    /// The core's view of the new challenge.
    pub fn new_challenge(&self) -> NewChallenge {
        NewChallenge {
            id: self.id.clone(),
            kind: otp_core::rules::challenge::Kind::Code,
            spec: self.spec,
            name: self.name.clone(),
            ttl: self.ttl,
            options: self.options.clone(),
        }
    }
}

/// An attempt at the recipient's latest code.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttemptMsg {
    pub instance: String,
    pub recipient: String,
    pub code: String,
    /// When set, the attempt counts only if this challenge is still the latest.
    #[serde(default)]
    pub expected: Option<String>,
    /// Without `expected`: the test mode whose latest code is checked (a test key's
    /// validation never sees a live code, nor a live key's a test code).
    #[serde(default)]
    pub test: bool,
}

/// A free-text message for a recipient (a link-flow reply), queued once per `key`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendMsg {
    pub instance: String,
    pub recipient: String,
    pub key: String,
    pub text: String,
    /// What it is beside its text (a link reply's button, an operator's approved template).
    #[serde(default)]
    pub form: Form,
    /// Unix seconds after which it is dropped rather than delivered.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// A KV record names the number under this message's key (a WhatOTP message): filed in the
    /// index, for erasure.
    #[serde(default)]
    pub recorded: bool,
    /// The idempotency object that keeps this send's response, for erasure.
    #[serde(default)]
    pub idem: Option<String>,
}

/// Where the status of a message that has a form or a deadline is kept (by its key without the
/// test marker): a JSON object with `status` (`queued`, `sent`: a provider accepted it,
/// `expired`: dropped, not handed over in time, or `failed`: given up), `expires_at`,
/// `channel`, `sent_at`, and `form`, cleared once the message leaves the queue (a button may
/// hold a login URL). A JSON value rather than a struct: a few fields, no deserializer.
fn status_key(key: &str) -> String {
    ["m:", key.trim_start_matches(TEST_MESSAGE)].concat()
}

/// A provider's delivery receipt (`sent`, `delivered`, `read`, `failed`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ReceiptMsg {
    pub provider_id: String,
    pub status: String,
    pub error: Option<String>,
}

/// Key prefix of a message sent with a test credential.
pub const TEST_MESSAGE: &str = "test:";

/// A lookup of one challenge.
#[derive(Debug, Serialize, Deserialize)]
pub struct GetMsg {
    pub instance: String,
    pub recipient: String,
    pub id: String,
}

/// A message the dev outbox holds, as a phone would show it.
#[cfg(feature = "dev")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub to: String,
    pub text: String,
    /// `text`, `cta_url` or `template`: what a WhatsApp channel would have sent.
    pub kind: String,
    pub created_at: String,
}

/// Why a send was refused: by the instance's abuse checks, or by the recipient's limits.
pub enum Refused {
    Guard(super::budget::Refused),
    Limit(Refusal),
}

/// Talks to the recipient Durable Objects.
pub struct Recipients<'a> {
    env: &'a Env,
}

impl<'a> Recipients<'a> {
    pub fn new(env: &'a Env) -> Self {
        Self { env }
    }

    /// The object that owns every challenge and limit of `recipient` in `instance`.
    async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        instance: &str,
        recipient: &Recipient,
        op: Op,
        msg: &Q,
    ) -> Result<A> {
        let stub = stub(self.env, RECIPIENTS, &object_name(instance, recipient))?;
        call(&stub, op, msg).await
    }

    /// Starts a challenge unless a limit refuses it.
    pub async fn start(
        &self,
        instance: &str,
        recipient: &Recipient,
        msg: &StartMsg,
    ) -> Result<std::result::Result<Challenge, Refusal>> {
        self.call(instance, recipient, Op::Start, msg).await
    }

    /// Runs the abuse checks of [`super::budget`], then starts a code challenge and writes its
    /// KV record: what every send surface does. A test number gets its fixed code here. The
    /// budgets are charged only for a send that happens: when the recipient's object refuses
    /// (locked, cooling down, capped) or cannot be reached, their units are given back.
    pub async fn start_guarded(
        &self,
        inst: &otp_core::config::InstanceConfig,
        recipient: &Recipient,
        mut msg: StartMsg,
        source: super::budget::Source<'_>,
    ) -> Result<std::result::Result<Challenge, Refused>> {
        use super::budget::{check, refund, Allowed, Charge};
        let test = msg.options.test;
        let charge = match check(self.env, inst, recipient, test, source, clock::now()).await? {
            Ok(Allowed::Send(charge)) => charge,
            Ok(Allowed::TestNumber(code)) => {
                msg.options.fixed_code = Some(code);
                Charge::default()
            }
            Err(refused) => return Ok(Err(Refused::Guard(refused))),
        };
        let started = self.start_recorded(&inst.id, recipient, &msg).await;
        if !matches!(started, Ok(Ok(_))) && !charge.is_empty() {
            refund(self.env, &charge).await;
        }
        Ok(started?.map_err(Refused::Limit))
    }

    /// Starts a code challenge and writes its KV record.
    pub async fn start_recorded(
        &self,
        instance: &str,
        recipient: &Recipient,
        msg: &StartMsg,
    ) -> Result<std::result::Result<Challenge, Refusal>> {
        // The record is written while the object decides: its uuid is random and only handed
        // out on success, so the record of a refused challenge is unreachable and just expires.
        let now = clock::now();
        let record = ChallengeRecord {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            kind: RecordKind::Code,
            link_code: None,
            created_at: now,
            expires_at: now + msg.ttl,
        };
        let (started, recorded) = futures_util::future::join(
            self.start(instance, recipient, msg),
            records::put(self.env, &msg.id, &record, now),
        )
        .await;
        let challenge = match started? {
            Ok(c) => c,
            Err(refusal) => return Ok(Err(refusal)),
        };
        recorded?;
        Ok(Ok(challenge))
    }

    /// Counts a message that is not a code (a login link named for the recipient) under the
    /// recipient's send limits: refused while locked out, cooling down or at the send cap.
    pub async fn count_send(
        &self,
        instance: &str,
        recipient: &Recipient,
    ) -> Result<std::result::Result<(), Refusal>> {
        let msg = GetMsg {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            id: String::new(),
        };
        self.call(instance, recipient, Op::CountSend, &msg).await
    }

    /// Checks a code against the recipient's latest challenge, or, with `expected`, against
    /// that challenge (a session): decided in one call to the object.
    pub async fn attempt(
        &self,
        instance: &str,
        recipient: &Recipient,
        code: &str,
        expected: Option<&str>,
    ) -> Result<Attempt> {
        let msg = AttemptMsg {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            code: code.into(),
            expected: expected.map(str::to_owned),
            test: false,
        };
        self.call(instance, recipient, Op::Attempt, &msg).await
    }

    /// Checks a code against the recipient's latest challenge of test mode `test`
    /// (validate-code, which names no challenge).
    pub async fn validate(
        &self,
        instance: &str,
        recipient: &Recipient,
        code: &str,
        test: bool,
    ) -> Result<Attempt> {
        let msg = AttemptMsg {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            code: code.into(),
            expected: None,
            test,
        };
        self.call(instance, recipient, Op::Attempt, &msg).await
    }

    /// Queues `msg` (with its form and deadline) for the recipient, once per key.
    pub async fn queue(&self, recipient: &Recipient, msg: SendMsg) -> Result<()> {
        let _: serde_json::Value = self
            .call(&msg.instance.clone(), recipient, Op::Send, &msg)
            .await?;
        Ok(())
    }

    /// The status of message `id` (one with a form or a deadline), if kept.
    pub async fn message_status(
        &self,
        instance: &str,
        recipient: &Recipient,
        id: &str,
    ) -> Result<Option<Value>> {
        let msg = GetMsg {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            id: status_key(id),
        };
        self.call(instance, recipient, Op::Get, &msg).await
    }

    /// Applies a delivery receipt to the recipient's message `provider_id`.
    pub async fn receipt(
        &self,
        instance: &str,
        recipient: &Recipient,
        msg: &ReceiptMsg,
    ) -> Result<()> {
        let _: serde_json::Value = self.call(instance, recipient, Op::Receipt, msg).await?;
        Ok(())
    }

    /// One challenge of the recipient, if still kept.
    pub async fn get(
        &self,
        instance: &str,
        recipient: &Recipient,
        id: &str,
    ) -> Result<Option<Challenge>> {
        let msg = GetMsg {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            id: id.into(),
        };
        self.call(instance, recipient, Op::Get, &msg).await
    }

    /// What the dev outbox holds for the recipient, newest first.
    #[cfg(feature = "dev")]
    pub async fn outbox(
        &self,
        instance: &str,
        recipient: &Recipient,
    ) -> Result<Vec<OutboxMessage>> {
        let msg = GetMsg {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            id: String::new(),
        };
        self.call(instance, recipient, Op::Outbox, &msg).await
    }
}

impl SendMsg {
    /// A text message; a test message is marked in its key: delivered to the outbox, never a
    /// provider.
    pub fn new(instance: &str, recipient: &Recipient, key: &str, text: &str, test: bool) -> Self {
        Self {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            key: if test {
                format!("{TEST_MESSAGE}{key}")
            } else {
                key.into()
            },
            text: text.into(),
            form: Form::default(),
            expires_at: None,
            recorded: false,
            idem: None,
        }
    }
}

/// Free-text messages waiting for delivery (link-flow replies), keyed for deduplication.
const MESSAGES_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages (
    key TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
)";

/// How long a queued job waits for its immediate delivery before the alarm takes over: the
/// runner's lease, so the alarm never starts a send the immediate run is still waiting on.
const LEASE_MS: i64 = super::jobs::LEASE_MS;

/// Entries an object's index keeps (the newest).
const INDEX_KEPT: usize = 200;

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
    schema: table::Schema,
}

impl DurableObject for RecipientObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            schema: table::Schema::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.ensure_schema()?;
        let op = Op::of(&req);
        let body = req.text().await?;
        match op {
            Some(Op::Start) => self.start(serde_json::from_str(&body)?).await,
            // Both may start the object's retention: its alarm is armed after either.
            Some(op @ (Op::CountSend | Op::Note)) => {
                let msg: GetMsg = serde_json::from_str(&body)?;
                let resp = match op {
                    Op::CountSend => self.count_send(msg)?,
                    _ => self.note_op(msg)?,
                };
                Jobs::new(&self.sql())
                    .arm(&self.state.storage(), &self.env)
                    .await?;
                Ok(resp)
            }
            Some(Op::Attempt) => self.attempt(serde_json::from_str(&body)?),
            Some(Op::Send) => self.queue_message(serde_json::from_str(&body)?).await,
            Some(Op::Receipt) => self.receipt(serde_json::from_str(&body)?).await,
            Some(Op::Get) => {
                let msg: GetMsg = serde_json::from_str(&body)?;
                if msg.id.starts_with("m:") {
                    let status: Option<Value> = table::read(&self.sql(), &msg.id)?;
                    return Response::from_json(&status);
                }
                Response::from_json(&self.load()?.get(&msg.id))
            }
            #[cfg(feature = "dev")]
            Some(Op::Outbox) => self.outbox(serde_json::from_str(&body)?),
            Some(Op::Index) => Response::from_json(&self.index()?),
            Some(Op::Erase) => self.erase().await,
            _ => unknown_op(),
        }
    }

    /// Runs every due job. Never panics and never returns `Err` for a job's own failure: each
    /// job keeps its attempt count and is rescheduled here, so the alarm is always re-armed.
    async fn alarm(&self) -> Result<Response> {
        if let Err(e) = self.ensure_schema() {
            crate::log::fault("storage.error", &e);
            return Err(e);
        }
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        jobs.run_due(&self.courier(), clock::now_ms()).await?;
        jobs.settle(&self.state.storage(), &self.env, &self.schema)
            .await?;
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

    fn instance(&self, id: &str) -> Result<config::Instance> {
        self.courier().instance(id)
    }

    fn ensure_schema(&self) -> Result<()> {
        // One call: SQLite runs the statements in order.
        let schema = [table::SCHEMA, JOBS_SCHEMA, MESSAGES_SCHEMA, OUTBOX_SCHEMA].join(";\n");
        self.schema.ensure(&self.sql(), &schema)
    }

    async fn start(&self, msg: StartMsg) -> Result<Response> {
        let instance = self.instance(&msg.instance)?;
        let now = clock::now();
        let mut state = self.load()?;
        // An object that never had a challenge has no owner recorded yet.
        let first = state == RecipientState::default();
        let mut policy = instance.limits;
        if let Some(cooldown) = msg.cooldown {
            policy.resend_cooldown = policy.resend_cooldown.max(cooldown);
        }
        let result = state.start(now, &policy, msg.new_challenge()).cloned();
        observe::started(&self.env, &instance, &msg.recipient, &result);
        // The challenge whose code goes out: the new one, or the live one sent again.
        if let Ok(challenge) = &result {
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
            let mut refs = vec![format!("c:{}", challenge.id)];
            refs.extend(msg.idem.iter().map(|i| format!("i:{i}")));
            self.note(&refs, challenge.created_at, &instance)?;
            if challenge.id == msg.id {
                self.list(&instance, challenge, &msg.recipient);
            }
            self.queue_and_send_now(JobKind::Deliver, &challenge.id, now)
                .await?;
        }
        Response::from_json(&result)
    }

    /// Counts a non-code send toward the recipient's limits (`RecipientState::count_send`).
    fn count_send(&self, msg: GetMsg) -> Result<Response> {
        let instance = self.instance(&msg.instance)?;
        let mut state = self.load()?;
        let first = state == RecipientState::default();
        let result = state.count_send(clock::now(), &instance.limits);
        if result.is_ok() {
            self.write("state", &state)?;
            if first {
                self.write(
                    "meta",
                    &Meta {
                        instance: instance.id.clone(),
                        recipient: msg.recipient,
                    },
                )?;
            }
            self.touch(&instance)?;
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
        observe::receipt(&id, &msg);
        self.write("state", &state)?;
        if msg.status == "failed" {
            let why = msg
                .error
                .as_deref()
                .unwrap_or("the provider reported a failure");
            if self.courier().fall_back_or_fail(&id, why)? {
                Jobs::new(&self.sql())
                    .arm(&self.state.storage(), &self.env)
                    .await?;
            }
        }
        Response::from_json(&serde_json::json!({ "matched": true }))
    }

    /// Persists a job, arms the alarm as a safety net one lease away, and delivers right
    /// after the response. A job is delivered at least once: by this immediate run, or by
    /// the alarm if the isolate went away first.
    async fn queue_and_send_now(&self, kind: JobKind, target: &str, now: i64) -> Result<()> {
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        let id = jobs.enqueue(kind, target, now * 1000 + LEASE_MS)?;
        jobs.arm(&self.state.storage(), &self.env).await?;
        let job = Job {
            id,
            kind,
            target: target.to_owned(),
            attempts: 0,
        };
        self.state.wait_until(self.courier().run_now(job));
        Ok(())
    }

    fn attempt(&self, msg: AttemptMsg) -> Result<Response> {
        let instance = self.instance(&msg.instance)?;
        let pepper = config::pepper(&self.env).map_err(|p| worker::Error::RustError(p.0))?;
        let recipient = Recipient::parse(&msg.recipient)
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let now = clock::now();
        let mut state = self.load()?;
        let is_right = |c: &otp_core::Challenge| {
            c.code(&pepper, &instance.id, &recipient)
                .matches_input(c.spec, &msg.code)
        };
        let outcome = match &msg.expected {
            Some(id) => state.attempt_for(now, &instance.limits, id, is_right),
            None => state.attempt_as(now, &instance.limits, msg.test, is_right),
        };
        observe::attempted(&self.env, &instance, &msg.recipient, &outcome, now);
        if matches!(outcome, Attempt::Validated { .. } | Attempt::Wrong { .. }) {
            self.write("state", &state)?;
            self.touch(&instance)?;
        }
        Response::from_json(&outcome)
    }

    /// Queues a free-text message (a link-flow reply). The same `key` is queued once, so a
    /// retried request never sends twice.
    async fn queue_message(&self, msg: SendMsg) -> Result<Response> {
        let now = clock::now();
        let instance = self.instance(&msg.instance)?;
        let sql = self.sql();
        if table::read::<Meta>(&sql, "meta")?.is_none() {
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
            // `r:<message id>` (its KV record) and `i:<object>`, for erasure.
            let mut refs: Vec<String> = msg.idem.iter().map(|i| format!("i:{i}")).collect();
            if msg.recorded {
                refs.push(format!("r:{}", msg.key.trim_start_matches(TEST_MESSAGE)));
            }
            // Filing records the activity too: one write of the retention lapse either way.
            if refs.is_empty() {
                self.touch(&instance)?;
            } else {
                self.note(&refs, now, &instance)?;
            }
            if msg.expires_at.is_some() || msg.form != Form::default() {
                let status = serde_json::json!({
                    "status": "queued",
                    "expires_at": msg.expires_at,
                    "form": msg.form.0,
                });
                self.write(&status_key(&msg.key), &status)?;
            }
            self.queue_and_send_now(JobKind::Message, &msg.key, now)
                .await?;
        }
        Response::from_json(&serde_json::json!({ "queued": inserted }))
    }

    /// Records activity: the object's data is kept the instance's retention window from now.
    fn touch(&self, instance: &config::Instance) -> Result<()> {
        Jobs::new(&self.sql()).touch(clock::now() + instance.retention_secs())
    }

    /// What else holds this number, for erasure: `c:<uuid>` (a code's KV record and list
    /// entry), `l:<link code>:<uuid>` (a link's object, record and list entry), `r:<id>` (a
    /// message's KV record), `i:<object>` (an idempotency entry), each as `[entry, filed at]`. Kept as a `Value`:
    /// its parser and printer are linked anyway.
    fn index(&self) -> Result<Vec<serde_json::Value>> {
        Ok(table::read(&self.sql(), "index")?.unwrap_or_default())
    }

    /// Files `refs` in the [`Self::index`] and records the activity. Entries older than the
    /// retention window (plus the day a record outlives its challenge) are dropped, and at
    /// most [`INDEX_KEPT`] kept.
    fn note(&self, refs: &[String], at: i64, instance: &config::Instance) -> Result<()> {
        let now = clock::now();
        let keep = instance.retention_secs() + otp_core::rules::challenge::RETENTION;
        let mut index = self.index()?;
        index.retain(|e| e[1].as_i64().is_some_and(|t| t + keep > now));
        for r in refs {
            if !index.iter().any(|e| e[0] == r.as_str()) {
                index.push(serde_json::json!([r, at]));
            }
        }
        index.drain(..index.len().saturating_sub(INDEX_KEPT));
        self.write("index", &index)?;
        self.touch(instance)
    }

    /// `Op::Note`: a link named for or claimed by this number (`id` is the index entry).
    fn note_op(&self, msg: GetMsg) -> Result<Response> {
        let instance = self.instance(&msg.instance)?;
        // `<entry>@<created at>`: the time names the link's list entry.
        let (entry, at) = msg.id.rsplit_once('@').unwrap_or((&msg.id, ""));
        let at = at.parse().unwrap_or_else(|_| clock::now());
        self.note(&[entry.to_owned()], at, &instance)?;
        Response::from_json(&serde_json::json!(true))
    }

    /// Lists a new code challenge in its instance's list, after the response.
    fn list(&self, instance: &config::Instance, c: &Challenge, digits: &str) {
        let listed = records::Listed {
            kind: RecordKind::Code,
            last4: records::last4(digits),
            created_at: c.created_at,
            expires_at: c.expires_at,
        };
        let (env, id, uuid) = (self.env.clone(), instance.id.clone(), c.id.clone());
        let keep = instance.retention_secs();
        self.state.wait_until(async move {
            if let Err(e) = records::put_listed(&env, &id, &uuid, &listed, keep).await {
                Line::new("record.list_failed")
                    .str("challenge", &uuid)
                    .text("error", &e.to_string())
                    .error();
            }
        });
    }

    /// `Op::Erase`: deletes everything the object holds; says whether it held anything and
    /// how many messages.
    async fn erase(&self) -> Result<Response> {
        #[derive(Deserialize)]
        struct N {
            n: f64,
        }
        let sql = self.sql();
        let count = |q: &str| sql.exec(q, None).and_then(|c| c.one::<N>()).map(|r| r.n);
        let held = count("SELECT COUNT(*) AS n FROM kv")? > 0.0;
        let messages = count("SELECT COUNT(*) AS n FROM messages")?;
        self.schema.wipe(&self.state.storage()).await?;
        Response::from_json(&serde_json::json!({ "held": held, "messages": messages as u64 }))
    }

    /// The outbox, newest first, with each code derived again for display.
    #[cfg(feature = "dev")]
    fn outbox(&self, msg: GetMsg) -> Result<Response> {
        #[derive(Deserialize)]
        struct OutRow {
            challenge_id: String,
            text_template: String,
            created_at: f64,
            #[serde(default)]
            kind: Option<String>,
        }
        let instance = self.instance(&msg.instance)?;
        let pepper = config::pepper(&self.env).map_err(|p| worker::Error::RustError(p.0))?;
        let recipient = Recipient::parse(&msg.recipient)
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let state = self.load()?;
        let rows: Vec<OutRow> = self
            .sql()
            .exec(
                "SELECT * FROM outbox WHERE recipient = ? ORDER BY id DESC",
                vec![recipient.digits().into()],
            )?
            .to_array()?;
        let messages: Vec<OutboxMessage> = rows
            .into_iter()
            .map(|row| {
                let code = state.get(&row.challenge_id).map(|c| {
                    c.code(&pepper, &instance.id, &recipient)
                        .reveal()
                        .to_owned()
                });
                OutboxMessage {
                    kind: row.kind.unwrap_or_else(|| "text".into()),
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
        table::read(&self.sql(), key)
    }

    fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        table::write(&self.sql(), key, value)
    }

    fn load(&self) -> Result<RecipientState> {
        Ok(self.read("state")?.unwrap_or_default())
    }

    fn instance(&self, id: &str) -> Result<config::Instance> {
        config::instance(&self.env, id)
            .map_err(|p| worker::Error::RustError(p.0))?
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
        let key = status_key(&job.target);
        let mut status: Option<Value> = self.read(&key).map_err(internal)?;
        let now = clock::now();
        if let Some(s) = status.as_mut().filter(|s| s["status"] == "queued") {
            if s["expires_at"].as_i64().is_some_and(|at| now >= at) {
                // Not handed over in time: dropped, and its status says so.
                self.end_message(&job.target, s, "expired", None)
                    .map_err(internal)?;
                return Ok(());
            }
        }
        let words = status.as_ref().and_then(|s| s["form"].as_array());
        let form = Form(words.map_or_else(Vec::new, |w| {
            w.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        }));
        let msg = Outbound {
            to: &recipient,
            challenge_id: &job.target,
            text_template: &queued.text,
            code: None,
            form: &form,
        };
        // Replies answer a WhatsApp message: through the instance's first channel; a test
        // credential's message only to the outbox.
        let kind = if job.target.starts_with(TEST_MESSAGE) {
            ChannelKind::Outbox
        } else {
            instance.chain()[0]
        };
        let t0 = clock::now_ms();
        let sent = channels::deliver(&self.env, &instance, kind, &msg, &sql, clock::now()).await;
        observe::delivery(&self.env, &instance.id, kind.as_str(), &msg, t0, &sent);
        sent?;
        if let Some(s) = status.as_mut() {
            s["sent_at"] = clock::now().into();
            self.end_message(&job.target, s, "sent", Some(kind.as_str()))
                .map_err(internal)?;
        }
        // The text may hold a login URL: keep it no longer than needed (the key stays, so a
        // late duplicate request is still recognised).
        sql.exec(
            "UPDATE messages SET text = '' WHERE key = ?",
            vec![job.target.clone().into()],
        )
        .map_err(internal)?;
        Ok(())
    }

    /// Records how message `key` left the queue, and forgets its form and text.
    fn end_message(
        &self,
        key: &str,
        s: &mut Value,
        status: &str,
        channel: Option<&str>,
    ) -> Result<()> {
        s["status"] = status.into();
        s["channel"] = channel.into();
        s["form"] = Value::Null;
        self.write(&status_key(key), s)?;
        self.sql().exec(
            "UPDATE messages SET text = '' WHERE key = ?",
            vec![key.into()],
        )?;
        Ok(())
    }

    /// Delivers challenge `job.target`'s message through the instance's channel.
    async fn deliver(&self, job: &Job) -> std::result::Result<(), DeliveryError> {
        let internal = |e: worker::Error| DeliveryError::Retryable(e.to_string());
        let meta: Meta = self
            .read("meta")
            .map_err(internal)?
            .ok_or_else(|| DeliveryError::Permanent("object has no owner".into()))?;
        let now = clock::now();
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
            Line::new("code.test_number")
                .str("challenge", &challenge.id)
                .to(recipient.digits())
                .info();
            let mut state = self.load().map_err(internal)?;
            if state.mark_accepted(&challenge.id, now, "test_number", None) {
                self.write("state", &state).map_err(internal)?;
            }
            return Ok(());
        }
        let kind = if challenge.options.test {
            ChannelKind::Outbox // a test key never reaches a provider
        } else {
            channels::current_channel(&challenge, &instance.chain())
        };
        let minutes = ((challenge.expires_at - challenge.created_at + 59) / 60).to_string();
        let name = challenge.name.as_deref().unwrap_or(&instance.name);
        let locale = challenge.options.locale.as_deref();
        let text_template = render(
            instance.messages.code_text(locale),
            &[("name", name), ("minutes", &minutes)],
        );
        let pepper = config::pepper(&self.env).map_err(|p| DeliveryError::Retryable(p.0))?;
        let code = challenge.code(&pepper, &instance.id, &recipient);
        let msg = Outbound {
            to: &recipient,
            challenge_id: &challenge.id,
            text_template: &text_template,
            code: Some(code.reveal()),
            form: &Form::default(),
        };
        let t0 = clock::now_ms();
        let sent = channels::deliver(&self.env, &instance, kind, &msg, &self.sql(), now).await;
        observe::delivery(&self.env, &instance.id, kind.as_str(), &msg, t0, &sent);
        let provider_id = sent?;
        // Reload: other requests may have run while the channel was awaited.
        let mut state = self.load().map_err(internal)?;
        if state.mark_accepted(&challenge.id, clock::now(), kind.as_str(), provider_id) {
            self.write("state", &state).map_err(internal)?;
        }
        Ok(())
    }

    /// After a delivery failed for good on one channel: hands the challenge to the next
    /// channel of the chain (a fresh code; the previous one stops working), or, at the end of
    /// the chain, marks it undeliverable. True when it fell back (a new job is queued).
    fn fall_back_or_fail(&self, challenge_id: &str, why: &str) -> Result<bool> {
        let now = clock::now();
        let mut state = self.load()?;
        let meta: Option<Meta> = self.read("meta")?;
        // Instance, channel and recipient, for the log and the metrics.
        let mut seen = (String::new(), "", String::new());
        let next = state.get(challenge_id).zip(meta).and_then(|(c, meta)| {
            let instance = self.instance(&meta.instance).ok()?;
            let chain = instance.chain();
            let current = channels::current_channel(c, &chain);
            seen = (
                instance.id.clone(),
                observe::channel(c, &instance),
                meta.recipient,
            );
            let at = chain.iter().position(|k| *k == current)?;
            chain.get(at + 1).copied()
        });
        match next {
            Some(kind) if !state.get(challenge_id).is_some_and(|c| c.options.test) => {
                if state.fall_back(challenge_id, now, kind.as_str()) {
                    observe::gave_up(
                        &self.env,
                        (&seen.0, challenge_id),
                        seen.1,
                        Some(kind.as_str()),
                        &seen.2,
                        why,
                    );
                    self.write("state", &state)?;
                    Jobs::new(&self.sql()).enqueue(JobKind::Deliver, challenge_id, now * 1000)?;
                    return Ok(true);
                }
                Ok(false)
            }
            _ => {
                observe::gave_up(
                    &self.env,
                    (&seen.0, challenge_id),
                    seen.1,
                    None,
                    &seen.2,
                    why,
                );
                if state.mark_undeliverable(challenge_id, now, why) {
                    self.write("state", &state)?;
                }
                Ok(false)
            }
        }
    }

    /// Delivers a just-queued job right away, after the response; the alarm set when it
    /// was queued stays as the safety net should this isolate go away first.
    async fn run_now(self, job: Job) {
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        let result = async {
            jobs.run(&self, &job, clock::now_ms()).await?;
            jobs.arm(&self.storage, &self.env).await
        };
        if let Err(e) = result.await {
            Line::new("job.error")
                .num("job", job.id)
                .text("error", &e.to_string())
                .error();
        }
    }
}

impl Runner for Courier {
    async fn run(&self, job: &Job) -> Outcome {
        let delivered = match job.kind {
            JobKind::Deliver => self.deliver(job).await,
            JobKind::Message => self.deliver_message(job).await,
            other => Err(DeliveryError::Permanent(format!(
                "{} is not a recipient job",
                other.as_str()
            ))),
        };
        delivered.map_or_else(Outcome::from, |()| Outcome::Done)
    }

    fn retry(&self, _kind: JobKind) -> Retry {
        Retry::Doubling {
            attempts: DELIVERY_ATTEMPTS,
        }
    }

    fn gave_up(&self, job: &Job, why: &str) -> Result<()> {
        if job.kind == JobKind::Deliver {
            self.fall_back_or_fail(&job.target, why)?;
        } else {
            Line::new("job.given_up")
                .str("kind", job.kind.as_str())
                .str("message", &job.target)
                .text("error", why)
                .error();
            if let Some(mut s) = self.read::<Value>(&status_key(&job.target))? {
                self.end_message(&job.target, &mut s, "failed", None)?;
            }
            // Its text may hold a login URL: kept no longer than a delivered one's.
            self.sql().exec(
                "UPDATE messages SET text = '' WHERE key = ?",
                vec![job.target.clone().into()],
            )?;
        }
        Ok(())
    }
}
