//! The Durable Object that owns one WhatsApp-link challenge, named by (instance, link code)
//! so an inbound message finds it from the code alone. It decides the claim, the
//! confirmation and the expiry (`otp_core::rules::link_state`), and its scheduler sends the replies
//! (through the recipient's object, the same outbound queue as codes) and the signed
//! callbacks, which are persisted before anything else happens and retried until delivered
//! or given up.

use super::jobs::{Job, JobKind, Jobs, Outcome, Runner, SCHEMA as JOBS_SCHEMA};
use super::recipient::{Recipients, SendMsg};
use super::records::{self, ChallengeRecord, RecordKind};
use super::{call, stub, table, unknown_op, Op, LINKS};
use crate::channels::{callbacks, Form};
use crate::{clock, config};
use otp_core::rules::link_state::{Confirm, Inbound, LinkChallenge};
use otp_core::rules::schedule::Retry;
use otp_core::rules::template::render;
use otp_core::web::login::login_token;
use otp_core::Recipient;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

/// Attempts at handing a reply to the recipient's object before giving up.
const REPLY_ATTEMPTS: u32 = 8;

/// A new challenge for this object.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateMsg {
    pub challenge: LinkChallenge,
}

/// A text message that carried this object's code.
#[derive(Debug, Serialize, Deserialize)]
pub struct InboundMsg {
    /// Sender, canonical digits.
    pub from: String,
    /// Provider message id (deduplication).
    pub msg_id: String,
    pub text: String,
    /// The service's public origin, for the login URL.
    pub origin: String,
}

/// A confirmation of the login URL for challenge `id`, or with `deny` its refusal ("this
/// wasn't me").
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfirmMsg {
    pub id: String,
    #[serde(default)]
    pub deny: bool,
}

/// What confirming did, with the challenge as it now is.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfirmReply {
    pub result: Confirm,
    pub challenge: LinkChallenge,
}

/// A reply to send to a chat.
#[derive(Debug, Serialize, Deserialize)]
struct ReplyJob {
    to: String,
    /// `success`, `failed` or `expired`.
    which: String,
    /// Deduplication key in the recipient's queue.
    key: String,
    origin: String,
}

/// A callback to the site, fixed when enqueued so every retry sends the same bytes under the
/// same `webhook-id`.
#[derive(Debug, Serialize, Deserialize)]
struct CallbackJob {
    url: String,
    webhook_id: String,
    body: String,
}

/// A link challenge as `/get` and `/open` answer it.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkView {
    pub challenge: Option<LinkChallenge>,
    pub callbacks: CallbackLog,
}

/// What happened to each callback, for the status lookup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallbackLog {
    pub success: Option<String>,
    pub failed: Option<String>,
}

#[durable_object]
pub struct LinkObject {
    state: State,
    env: Env,
    schema: table::Schema,
}

impl DurableObject for LinkObject {
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
            Some(Op::Create) => self.create(serde_json::from_str(&body)?).await,
            Some(Op::Inbound) => self.inbound(serde_json::from_str(&body)?).await,
            Some(Op::Confirm) => self.confirm(serde_json::from_str(&body)?).await,
            Some(op @ (Op::Get | Op::Open)) => {
                let view = LinkView {
                    challenge: self.load()?,
                    callbacks: table::read(&self.sql(), "callbacks")?.unwrap_or_default(),
                };
                if let (Some(c), Op::Open) = (&view.challenge, op) {
                    // The login page was shown: counted once per challenge (click-through).
                    let sql = self.sql();
                    if table::read::<bool>(&sql, "opened")?.is_none() {
                        table::write(&sql, "opened", &true)?;
                        self.count(&c.instance, &[("links_opened", 1)]);
                    }
                }
                Response::from_json(&view)
            }
            Some(Op::Erase) => {
                let msg: super::recipient::GetMsg = serde_json::from_str(&body)?;
                self.erase(msg.recipient).await
            }
            _ => unknown_op(),
        }
    }

    /// Runs due jobs; a job's failure is rescheduled on its own schedule, never a panic.
    async fn alarm(&self) -> Result<Response> {
        self.ensure_schema()?;
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        jobs.run_due(self, clock::now_ms()).await?;
        jobs.settle(&self.state.storage(), &self.env, &self.schema)
            .await?;
        Response::ok("")
    }
}

/// Attempts at handing a reply to the recipient's object, or at expiring, before giving up.
const EXPIRE_ATTEMPTS: u32 = 5;

fn retry(e: impl std::fmt::Display) -> Outcome {
    Outcome::Retry(e.to_string())
}

impl Runner for LinkObject {
    async fn run(&self, job: &Job) -> Outcome {
        let ran = match job.kind {
            JobKind::Expire => self.expire().await,
            JobKind::Reply => self.reply(job).await,
            JobKind::Callback => self.callback(job).await,
            other => Err(Outcome::GiveUp(format!(
                "{} is not a link job",
                other.as_str()
            ))),
        };
        ran.err().unwrap_or(Outcome::Done)
    }

    fn retry(&self, kind: JobKind) -> Retry {
        match kind {
            JobKind::Callback => Retry::Webhook {
                scale: config::callback_retry_scale(&self.env),
            },
            JobKind::Expire => Retry::Doubling {
                attempts: EXPIRE_ATTEMPTS,
            },
            _ => Retry::Doubling {
                attempts: REPLY_ATTEMPTS,
            },
        }
    }

    fn gave_up(&self, job: &Job, why: &str) -> Result<()> {
        crate::log::Line::new("job.given_up")
            .str("kind", job.kind.as_str())
            .text("error", why)
            .error();
        if job.kind == JobKind::Callback {
            if let Ok(cb) = serde_json::from_str::<CallbackJob>(&job.target) {
                self.log_callback(&cb.webhook_id, &format!("given_up: {why}"))?;
            }
        }
        Ok(())
    }
}

impl LinkObject {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    fn ensure_schema(&self) -> Result<()> {
        let schema = [table::SCHEMA, JOBS_SCHEMA].join(";\n");
        self.schema.ensure(&self.sql(), &schema)
    }

    /// Records activity: the object is kept the instance's retention window from now.
    fn touch(&self, jobs: &Jobs<'_>, instance: &str) -> Result<()> {
        jobs.touch(clock::now() + config::retention_secs(&self.env, instance))
    }

    /// `Op::Erase`: deletes the object if its challenge was named for or claimed by `digits`.
    async fn erase(&self, digits: String) -> Result<Response> {
        let mine = self.load()?.is_some_and(|c| {
            [&c.expected, &c.claimed_by]
                .iter()
                .any(|d| d.as_deref() == Some(digits.as_str()))
        });
        if mine {
            self.schema.wipe(&self.state.storage()).await?;
        }
        Response::from_json(&serde_json::json!(mine))
    }

    fn load(&self) -> Result<Option<LinkChallenge>> {
        table::read(&self.sql(), "link")
    }

    fn save(&self, c: &LinkChallenge) -> Result<()> {
        table::write(&self.sql(), "link", c)
    }

    async fn create(&self, msg: CreateMsg) -> Result<Response> {
        let now = clock::now();
        if self.load()?.is_some_and(|old| old.is_open(now)) {
            // The code is taken by an open challenge: the caller draws another code.
            return Response::from_json(&serde_json::json!({ "created": false }));
        }
        let sql = self.sql();
        Jobs::new(&sql).clear()?;
        sql.exec("DELETE FROM kv WHERE k = 'opened'", None)?;
        table::write(&sql, "callbacks", &CallbackLog::default())?;
        self.save(&msg.challenge)?;
        let jobs = Jobs::new(&sql);
        jobs.enqueue(
            JobKind::Expire,
            &msg.challenge.id,
            msg.challenge.expires_at * 1000,
        )?;
        self.touch(&jobs, &msg.challenge.instance)?;
        jobs.arm(&self.state.storage(), &self.env).await?;
        self.count(&msg.challenge.instance, &[("links_generated", 1)]);
        Response::from_json(&serde_json::json!({ "created": true }))
    }

    async fn inbound(&self, msg: InboundMsg) -> Result<Response> {
        let now = clock::now();
        let Some(mut c) = self.load()? else {
            return Response::from_json(&Inbound::Duplicate);
        };
        let from =
            Recipient::parse(&msg.from).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let outcome = c.on_inbound(now, &from, &msg.msg_id, &msg.text);
        self.save(&c)?;
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        let reply = |which: &str, key: String| -> Result<()> {
            let job = ReplyJob {
                to: from.digits().into(),
                which: which.into(),
                key,
                origin: msg.origin.clone(),
            };
            jobs.enqueue(JobKind::Reply, &serde_json::to_string(&job)?, now * 1000)
                .map(drop)
        };
        match &outcome {
            Inbound::Claimed => {
                reply("success", format!("link:{}:success", c.id))?;
                self.count(&c.instance, &[("links_claimed", 1)]);
            }
            Inbound::Reminded => reply("success", format!("link:{}:success:{}", c.id, msg.msg_id))?,
            Inbound::Rejected { now_failed, .. } => {
                reply("failed", format!("link:{}:failed:{}", c.id, msg.msg_id))?;
                self.count(&c.instance, &[("failed_attempts", 1)]);
                if *now_failed {
                    self.enqueue_callback(&jobs, &c, now)?;
                    self.count(&c.instance, &[("links_failed", 1)]);
                }
            }
            Inbound::Expired { now_expired } => {
                reply("expired", format!("link:{}:expired:{}", c.id, msg.msg_id))?;
                if *now_expired {
                    self.enqueue_callback(&jobs, &c, now)?;
                    self.count(&c.instance, &[("links_expired", 1)]);
                }
            }
            Inbound::Duplicate => {}
        }
        if outcome != Inbound::Duplicate {
            self.touch(&jobs, &c.instance)?;
            jobs.arm(&self.state.storage(), &self.env).await?;
        }
        Response::from_json(&outcome)
    }

    async fn confirm(&self, msg: ConfirmMsg) -> Result<Response> {
        let now = clock::now();
        let Some(mut c) = self.load()?.filter(|c| c.id == msg.id) else {
            return Response::error("unknown challenge", 404);
        };
        let was_open = c.is_open(now);
        let result = if msg.deny {
            c.deny(now)
        } else {
            c.confirm(now)
        };
        self.save(&c)?;
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        self.touch(&jobs, &c.instance)?;
        let expired_now = result == Confirm::Expired && was_open;
        if result == Confirm::Denied {
            self.count(&c.instance, &[("links_failed", 1)]);
        }
        if matches!(result, Confirm::Verified | Confirm::Denied) || expired_now {
            self.enqueue_callback(&jobs, &c, now)?;
            jobs.arm(&self.state.storage(), &self.env).await?;
        }
        if result == Confirm::Verified {
            let seconds = c.verified_at.unwrap_or(now) - c.created_at;
            self.count(
                &c.instance,
                &[
                    ("links_verified", 1),
                    ("verification_seconds_total", seconds),
                ],
            );
        } else if expired_now {
            self.count(&c.instance, &[("links_expired", 1)]);
        }
        Response::from_json(&ConfirmReply {
            result,
            challenge: c,
        })
    }

    /// Persists the callback for the challenge's outcome (success when verified, failed
    /// otherwise), if the site asked for one.
    fn enqueue_callback(&self, jobs: &Jobs<'_>, c: &LinkChallenge, now: i64) -> Result<()> {
        let (kind, url) = if c.verified_at.is_some() {
            ("success", c.callbacks.success.as_ref())
        } else {
            ("failed", c.callbacks.failed.as_ref())
        };
        let Some(url) = url else { return Ok(()) };
        let job = CallbackJob {
            url: url.clone(),
            webhook_id: format!("msg_{}_{kind}", c.id.replace('-', "")),
            body: c.callback_body(),
        };
        let mut log: CallbackLog = table::read(&self.sql(), "callbacks")?.unwrap_or_default();
        let entry = if kind == "success" {
            &mut log.success
        } else {
            &mut log.failed
        };
        *entry = Some("pending".into());
        table::write(&self.sql(), "callbacks", &log)?;
        jobs.enqueue(JobKind::Callback, &serde_json::to_string(&job)?, now * 1000)
            .map(drop)
    }

    async fn expire(&self) -> std::result::Result<(), Outcome> {
        let now = clock::now();
        let Some(mut c) = self.load().map_err(retry)? else {
            return Ok(());
        };
        if !c.expire(now) {
            return Ok(());
        }
        self.save(&c).map_err(retry)?;
        self.count(&c.instance, &[("links_expired", 1)]);
        let sql = self.sql();
        let jobs = Jobs::new(&sql);
        self.enqueue_callback(&jobs, &c, now).map_err(retry)?;
        // Tell a user who got the link but never confirmed it.
        if let Some(to) = c.claimed_by.clone() {
            let job = ReplyJob {
                to,
                which: "expired".into(),
                key: format!("link:{}:expired", c.id),
                origin: String::new(),
            };
            jobs.enqueue(
                JobKind::Reply,
                &serde_json::to_string(&job).map_err(retry)?,
                now * 1000,
            )
            .map_err(retry)?;
        }
        Ok(())
    }

    async fn reply(&self, job: &Job) -> std::result::Result<(), Outcome> {
        let r: ReplyJob =
            serde_json::from_str(&job.target).map_err(|e| Outcome::GiveUp(e.to_string()))?;
        let c = self
            .load()
            .map_err(retry)?
            .ok_or_else(|| Outcome::GiveUp("no challenge".into()))?;
        let template = match r.which.as_str() {
            "success" => &c.messages.success,
            "failed" => &c.messages.failed,
            _ => &c.messages.expired,
        };
        let link = if r.which == "success" {
            let key = config::login_key(&self.env).map_err(|p| retry(p.0))?;
            format!(
                "{}/login/{}",
                r.origin,
                login_token(&key, &c.instance, &c.code, &c.id)
            )
        } else {
            String::new()
        };
        let text = render(
            template,
            &[("link", &link), ("name", &c.name), ("code", &c.code)],
        );
        let to = Recipient::parse(&r.to).map_err(|e| Outcome::GiveUp(e.to_string()))?;
        if r.key == format!("link:{}:success", c.id) {
            // The first claim: the claimant's object files this link, for erasure.
            let link = (c.code.as_str(), c.id.as_str(), c.created_at);
            super::privacy::note(&self.env, &c.instance, &to, link)
                .await
                .map_err(retry)?;
        }
        let mut msg = SendMsg::new(&c.instance, &to, &r.key, &text, false);
        if !link.is_empty() {
            // On WhatsApp the login URL is also a button (`cta_url`); elsewhere the text.
            let label = config::instance(&self.env, &c.instance)
                .ok()
                .flatten()
                .map(|i| i.link.button_text.clone())
                .unwrap_or_else(|| "Log in".into());
            msg.form = Form::button(label, link);
        }
        Recipients::new(&self.env)
            .queue(&to, msg)
            .await
            .map_err(retry)
    }

    async fn callback(&self, job: &Job) -> std::result::Result<(), Outcome> {
        let cb: CallbackJob =
            serde_json::from_str(&job.target).map_err(|e| Outcome::GiveUp(e.to_string()))?;
        let c = self
            .load()
            .map_err(retry)?
            .ok_or_else(|| Outcome::GiveUp("no challenge".into()))?;
        let secrets = config::instance_secrets(&self.env, &c.instance).map_err(|p| retry(p.0))?;
        let secret = secrets
            .webhook_secret
            .as_deref()
            .ok_or_else(|| Outcome::GiveUp("instance has no webhook_secret".into()))
            .and_then(|s| {
                otp_core::wire::webhook::WebhookSecret::parse(s)
                    .map_err(|e| Outcome::GiveUp(e.to_string()))
            })?;
        let net = crate::channels::Net::of(&self.env);
        callbacks::deliver(&secret, &cb.url, &cb.webhook_id, &cb.body, net)
            .await
            .map_err(Outcome::from)?;
        self.log_callback(&cb.webhook_id, "delivered")
            .map_err(retry)
    }

    /// Counts events in the instance's metrics after the response.
    fn count(&self, instance: &str, counts: &[(&'static str, i64)]) {
        super::metrics::log_link(instance, self.load().ok().flatten().map(|c| c.id), counts);
        let (env, instance, counts) = (self.env.clone(), instance.to_owned(), counts.to_vec());
        self.state
            .wait_until(async move { super::metrics::add(&env, &instance, &counts).await });
    }

    fn log_callback(&self, webhook_id: &str, what: &str) -> Result<()> {
        let sql = self.sql();
        let mut log: CallbackLog = table::read(&sql, "callbacks")?.unwrap_or_default();
        let entry = if webhook_id.ends_with("_success") {
            &mut log.success
        } else {
            &mut log.failed
        };
        *entry = Some(what.into());
        table::write(&sql, "callbacks", &log)
    }
}

/// Creates a link challenge in the object its fresh code names, and writes its KV record.
/// `make` builds the challenge from a uuid and a code; on the rare collision of a code with
/// an open challenge, a new code is drawn. Returns the uuid and the code.
pub async fn create(
    env: &Env,
    instance: &str,
    recipient: Option<&otp_core::Recipient>,
    (created_at, expires_at): (i64, i64),
    make: impl Fn(String, String) -> LinkChallenge,
) -> Result<(String, String)> {
    use otp_core::rules::code::from_random;
    for _ in 0..4 {
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let (id_bytes, code_bytes) = bytes.split_at(16);
        let Some(code) = from_random(code_bytes, otp_core::CodeSpec::LINK) else {
            continue;
        };
        let id = otp_core::ids::uuid_v4(id_bytes.try_into().unwrap_or_default());
        let code = code.reveal().to_owned();
        let challenge = make(id.clone(), code.clone());
        let created: serde_json::Value = call(
            &link_stub(env, instance, &code)?,
            Op::Create,
            &CreateMsg { challenge },
        )
        .await?;
        if created["created"] != true {
            continue;
        }
        file(
            env,
            instance,
            recipient,
            &id,
            &code,
            (created_at, expires_at),
        )
        .await?;
        return Ok((id, code));
    }
    Err(worker::Error::RustError(
        "no free link code after 4 draws".into(),
    ))
}

/// Writes a new link's KV record and list entry, and files it with the recipient it was named
/// for (for erasure). Boxed: [`create`] is generic, this part need not be copied per caller.
fn file<'a>(
    env: &'a Env,
    instance: &'a str,
    recipient: Option<&'a otp_core::Recipient>,
    id: &'a str,
    code: &'a str,
    (created_at, expires_at): (i64, i64),
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>> {
    Box::pin(async move {
        let record = ChallengeRecord {
            instance: instance.into(),
            recipient: recipient.map(|r| r.digits().to_owned()).unwrap_or_default(),
            kind: RecordKind::Link,
            link_code: Some(code.into()),
            created_at,
            expires_at,
        };
        let listed = records::Listed {
            kind: RecordKind::Link,
            last4: records::last4(&record.recipient),
            created_at,
            expires_at,
        };
        let keep = config::retention_secs(env, instance);
        let (put, listed) = futures_util::future::join(
            records::put(env, id, &record, created_at),
            records::put_listed(env, instance, id, &listed, keep),
        )
        .await;
        put?;
        listed?;
        if let Some(r) = recipient {
            super::privacy::note(env, instance, r, (code, id, created_at)).await?;
        }
        Ok(())
    })
}

/// The object that owns the link challenge with this code.
pub fn link_stub(env: &Env, instance: &str, code: &str) -> Result<worker::Stub> {
    stub(
        env,
        LINKS,
        &format!("{}:link:{code}", instance.to_ascii_lowercase()),
    )
}

/// The link challenge with this code and its callbacks' fate (`Op::Open` also counts the
/// login page as opened).
pub async fn view(env: &Env, instance: &str, code: &str, op: Op) -> Result<LinkView> {
    call(&link_stub(env, instance, code)?, op, &serde_json::json!({})).await
}

/// Confirms the login URL of challenge `id` (verified once), or with `deny` refuses it;
/// callbacks persisted.
pub async fn confirm(
    env: &Env,
    instance: &str,
    code: &str,
    msg: &ConfirmMsg,
) -> Result<ConfirmReply> {
    call(&link_stub(env, instance, code)?, Op::Confirm, msg).await
}

/// Hands an inbound message that carried `code` to its link's object.
pub async fn inbound(env: &Env, instance: &str, code: &str, msg: &InboundMsg) -> Result<()> {
    let _: serde_json::Value = call(&link_stub(env, instance, code)?, Op::Inbound, msg).await?;
    Ok(())
}
