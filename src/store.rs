//! The narrow storage interface the API surfaces see: "start a challenge", "attempt a code",
//! "look a challenge up". Only the recipient's Durable Object knows SQL and decides; KV keeps
//! the write-once record that finds a challenge's object from its uuid.

use otp_core::rules::challenge::{Attempt, Challenge, NewChallenge, Refusal};
use otp_core::{CodeSpec, Recipient};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit, Result, Stub};

/// Durable Object namespace binding of [`crate::RecipientObject`].
pub const RECIPIENTS: &str = "RECIPIENTS";
/// KV binding of the challenge records.
pub const CHALLENGES_KV: &str = "CHALLENGES";

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
    pub options: otp_core::rules::challenge::SendOptions,
    /// A resend cooldown in seconds that applies on top of the instance's (the widget's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<i64>,
}

impl StartMsg {
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
}

/// A free-text message for a recipient (a link-flow reply), queued once per `key`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendMsg {
    pub instance: String,
    pub recipient: String,
    pub key: String,
    pub text: String,
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
    pub created_at: String,
}

/// Why a send was refused: by the instance's abuse checks, or by the recipient's limits.
pub enum Refused {
    Guard(crate::guard::Refused),
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
    fn stub(&self, instance: &str, recipient: &Recipient) -> Result<Stub> {
        self.env
            .durable_object(RECIPIENTS)?
            .get_by_name(&object_name(instance, recipient))
    }

    async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        instance: &str,
        recipient: &Recipient,
        op: &str,
        msg: &Q,
    ) -> Result<A> {
        call_object(&self.stub(instance, recipient)?, op, msg).await
    }

    /// Starts a challenge unless a limit refuses it.
    pub async fn start(
        &self,
        instance: &str,
        recipient: &Recipient,
        msg: &StartMsg,
    ) -> Result<std::result::Result<Challenge, Refusal>> {
        self.call(instance, recipient, "start", msg).await
    }

    /// Runs the abuse checks of [`crate::guard`], then starts a code challenge and writes its
    /// KV record: what every send surface does. A test number gets its fixed code here.
    pub async fn start_guarded(
        &self,
        inst: &otp_core::config::InstanceConfig,
        recipient: &Recipient,
        mut msg: StartMsg,
    ) -> Result<std::result::Result<Challenge, Refused>> {
        use crate::guard::{check, Allowed};
        match check(
            self.env,
            inst,
            recipient,
            msg.options.test,
            crate::http::now(),
        )
        .await?
        {
            Ok(Allowed::Send) => {}
            Ok(Allowed::TestNumber(code)) => msg.options.fixed_code = Some(code),
            Err(refused) => return Ok(Err(Refused::Guard(refused))),
        }
        Ok(self
            .start_recorded(&inst.id, recipient, &msg)
            .await?
            .map_err(Refused::Limit))
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
        let now = crate::http::now();
        let record = ChallengeRecord {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            kind: "code".into(),
            link_code: None,
            created_at: now,
            expires_at: now + msg.ttl,
        };
        let (started, recorded) = futures_util::future::join(
            self.start(instance, recipient, msg),
            put_record(self.env, &msg.id, &record, now),
        )
        .await;
        let challenge = match started? {
            Ok(c) => c,
            Err(refusal) => return Ok(Err(refusal)),
        };
        recorded?;
        Ok(Ok(challenge))
    }

    /// Checks a code against the recipient's latest challenge.
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
        };
        self.call(instance, recipient, "attempt", &msg).await
    }

    /// Queues a free-text message for the recipient (once per `key`).
    pub async fn send(
        &self,
        instance: &str,
        recipient: &Recipient,
        key: &str,
        text: &str,
        test: bool,
    ) -> Result<()> {
        let msg = SendMsg {
            instance: instance.into(),
            recipient: recipient.digits().into(),
            // A test message is marked in its key: delivered to the outbox, never a provider.
            key: if test {
                format!("{TEST_MESSAGE}{key}")
            } else {
                key.into()
            },
            text: text.into(),
        };
        let _: serde_json::Value = self.call(instance, recipient, "send", &msg).await?;
        Ok(())
    }

    /// Applies a delivery receipt to the recipient's message `provider_id`.
    pub async fn receipt(
        &self,
        instance: &str,
        recipient: &Recipient,
        msg: &ReceiptMsg,
    ) -> Result<()> {
        let _: serde_json::Value = self.call(instance, recipient, "receipt", msg).await?;
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
        self.call(instance, recipient, "get", &msg).await
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
        self.call(instance, recipient, "outbox", &msg).await
    }
}

/// Sends one internal JSON request to a Durable Object and decodes its JSON answer.
pub async fn call_object<Q: Serialize, A: DeserializeOwned>(
    stub: &Stub,
    op: &str,
    msg: &Q,
) -> Result<A> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&serde_json::to_string(msg)?)));
    let req = Request::new_with_init(&format!("https://object/{op}"), &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "durable object answered {} to {op}: {}",
            resp.status_code(),
            resp.text().await.unwrap_or_default()
        )));
    }
    resp.json().await
}

/// Durable Object namespace binding of [`crate::LinkObject`].
pub const LINKS: &str = "LINKS";

/// The object that owns the link challenge with this code.
pub fn link_stub(env: &Env, instance: &str, code: &str) -> Result<Stub> {
    env.durable_object(LINKS)?
        .get_by_name(&format!("{}:link:{code}", instance.to_ascii_lowercase()))
}

/// The Durable Object name of (instance, recipient): the canonical digits, so every spelling
/// of a number reaches the same object.
pub fn object_name(instance: &str, recipient: &Recipient) -> String {
    format!("{}:{}", instance.to_ascii_lowercase(), recipient.digits())
}

/// The write-once KV record that finds a challenge from its uuid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRecord {
    pub instance: String,
    /// Canonical digits; empty for a link challenge nobody was named for.
    pub recipient: String,
    /// `code` or `link`.
    pub kind: String,
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
pub async fn put_record(env: &Env, uuid: &str, record: &ChallengeRecord, now: i64) -> Result<()> {
    let ttl = (record.expires_at - now + otp_core::rules::challenge::RETENTION).max(60) as u64;
    env.kv(CHALLENGES_KV)?
        .put(&record_key(uuid), serde_json::to_string(record)?)?
        .expiration_ttl(ttl)
        .execute()
        .await?;
    Ok(())
}

/// Reads a challenge's record.
pub async fn get_record(env: &Env, uuid: &str) -> Result<Option<ChallengeRecord>> {
    Ok(env.kv(CHALLENGES_KV)?.get(&record_key(uuid)).json().await?)
}
