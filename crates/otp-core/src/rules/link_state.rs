//! The WhatsApp-link challenge's state machine (generate-link).
//!
//! `pending` -> the right chat sends the unaltered prefilled message -> `claimed` (the reply
//! with the one-time login URL goes out) -> the login URL is confirmed -> `verified`; or
//! `failed` (too many wrong senders or altered messages) or `expired`. Like
//! [`crate::rules::challenge`], every transition is a method taking `now`, called by the link's
//! Durable Object with no `await` between load and save.

use crate::rules::link::is_unaltered;
use crate::rules::recipient::Recipient;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Message ids remembered for deduplication (Meta delivers at least once, out of order).
pub const SEEN_KEPT: usize = 64;

/// Stored status of a link challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// Waiting for the user's WhatsApp message.
    Pending,
    /// The message arrived; the login URL was sent and awaits confirmation.
    Claimed,
    /// The login URL was confirmed: done, once.
    Verified,
    /// Too many wrong senders or altered messages.
    Failed,
    /// Its lifetime ran out before verification.
    Expired,
}

impl LinkStatus {
    /// The name in the extension's status body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Verified => "verified",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// The name in Hypersender bodies (`pending|verified|failed|expired`): claimed is pending.
    pub fn hypersender(self) -> &'static str {
        match self {
            Self::Claimed => "pending",
            other => other.as_str(),
        }
    }
}

/// The texts of a link challenge; `prompt` is final, the others keep `{link}`, `{name}`,
/// `{code}` placeholders until sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkMessages {
    pub prompt: String,
    pub success: String,
    pub failed: String,
    pub expired: String,
}

/// Default texts of a link challenge, when the request gives none.
pub const DEFAULT_PROMPT: &str = "Give me link to login at {name}";
pub const DEFAULT_SUCCESS: &str = "Here is your login link for {name}: {link}";
pub const DEFAULT_FAILED: &str = "Login to {name} failed. Please try again.";
pub const DEFAULT_EXPIRED: &str = "This {name} login link has expired. Please request a new one.";

impl LinkMessages {
    /// The texts a request asked for, each missing one by its default; `{name}` of the prompt
    /// filled in with `name` (the prompt is final).
    pub fn or_defaults(
        name: &str,
        prompt: Option<&str>,
        success: Option<&str>,
        failed: Option<&str>,
        expired: Option<&str>,
    ) -> Self {
        Self {
            prompt: crate::rules::template::render(
                prompt.unwrap_or(DEFAULT_PROMPT),
                &[("name", name)],
            ),
            success: success.unwrap_or(DEFAULT_SUCCESS).into(),
            failed: failed.unwrap_or(DEFAULT_FAILED).into(),
            expired: expired.unwrap_or(DEFAULT_EXPIRED).into(),
        }
    }
}

/// Where the site wants to hear about the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callbacks {
    pub success: Option<String>,
    pub failed: Option<String>,
}

/// One link challenge, as its Durable Object stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkChallenge {
    /// Random v4 UUID.
    pub id: String,
    /// Owning instance.
    pub instance: String,
    /// The 8 uppercase letters in the prefilled message; public (it is in the wa.me link).
    pub code: String,
    /// App name for `{name}`.
    pub name: String,
    /// Unix seconds at creation.
    pub created_at: i64,
    /// Unix seconds from which nothing more happens.
    pub expires_at: i64,
    /// When generate-link named a chat, only that chat (digits) may claim.
    pub expected: Option<String>,
    /// Texts.
    pub messages: LinkMessages,
    /// Callback URLs.
    pub callbacks: Callbacks,
    /// Stored status; see [`LinkChallenge::status`] for the clock's part.
    pub stage: LinkStatus,
    /// The chat (digits) that claimed it.
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub failed_at: Option<i64>,
    /// Why it failed or expired (`expired`, `too_many_failures`).
    pub failure: Option<String>,
    /// Wrong senders and altered messages so far (saturating).
    pub failures: u32,
    /// Failures that end it.
    pub max_failures: u32,
    /// Provider message ids already handled, newest last.
    pub seen: Vec<String>,
    /// Started by the browser widget: the page that started it collects the token by polling,
    /// so the login page ends with "return to the page" rather than a redirect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub widget: bool,
    /// Where the login was started, as the edge placed the starting request ("Cairo, EG"),
    /// at most [`crate::web::login::MAX_ORIGIN_LEN`] characters; shown on the confirm page so
    /// a user sent someone else's link can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_near: Option<String>,
    /// The starting browser, family and system ("Chrome on Android"), bounded likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_with: Option<String>,
}

/// Why an inbound message did not claim the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// generate-link named another chat.
    WrongSender,
    /// The prefilled text was changed.
    Altered,
    /// Someone else claimed it first.
    ClaimedByAnother,
    /// Verified or failed already.
    Closed,
}

/// What an inbound message did; the Durable Object turns it into replies and callbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Inbound {
    /// First claim: reply with the success message (its `{link}`).
    Claimed,
    /// The claimant wrote again (a new message, not a redelivery): send the link again.
    Reminded,
    /// The same message delivered again: do nothing.
    Duplicate,
    /// Reply with the failed message; `now_failed` when this ended the challenge.
    Rejected { reason: Rejection, now_failed: bool },
    /// Past its lifetime: reply with the expired message; `now_expired` the first time.
    Expired { now_expired: bool },
}

/// What confirming the login URL did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirm {
    /// Verified now: fire the success callback, hand out a token.
    Verified,
    /// Already verified: a replay, refused.
    AlreadyVerified,
    /// Nobody claimed it yet (a forged or early link).
    NotClaimed,
    /// Past its lifetime.
    Expired,
    /// Failed earlier.
    Failed,
    /// Refused now by its user ("this wasn't me"): failed, fire the failed callback.
    Denied,
}

impl LinkChallenge {
    /// The number that claimed the link, if any.
    pub fn claimer(&self) -> Option<Recipient> {
        self.claimed_by
            .as_deref()
            .and_then(|d| Recipient::parse(d).ok())
    }

    /// A new, pending challenge: nothing claimed, no failures yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        instance: String,
        code: String,
        name: String,
        (created_at, expires_at): (i64, i64),
        expected: Option<String>,
        messages: LinkMessages,
        callbacks: Callbacks,
        max_failures: u32,
    ) -> Self {
        Self {
            id,
            instance,
            code,
            name,
            created_at,
            expires_at,
            expected,
            messages,
            callbacks,
            stage: LinkStatus::Pending,
            claimed_by: None,
            claimed_at: None,
            verified_at: None,
            failed_at: None,
            failure: None,
            failures: 0,
            max_failures,
            seen: vec![],
            widget: false,
            started_near: None,
            started_with: None,
        }
    }

    /// The status at `now`: an open challenge past `expires_at` is `expired`.
    pub fn status(&self, now: i64) -> LinkStatus {
        match self.stage {
            LinkStatus::Pending | LinkStatus::Claimed if now >= self.expires_at => {
                LinkStatus::Expired
            }
            stage => stage,
        }
    }

    /// True while it can still be claimed or confirmed.
    pub fn is_open(&self, now: i64) -> bool {
        matches!(self.status(now), LinkStatus::Pending | LinkStatus::Claimed)
    }

    /// Handles a text message carrying this challenge's code, from chat `from` (any
    /// spelling), with provider message id `msg_id`.
    pub fn on_inbound(&mut self, now: i64, from: &Recipient, msg_id: &str, text: &str) -> Inbound {
        if !msg_id.is_empty() && self.seen.iter().any(|m| m == msg_id) {
            return Inbound::Duplicate;
        }
        if !msg_id.is_empty() {
            self.seen.push(msg_id.to_owned());
            let excess = self.seen.len().saturating_sub(SEEN_KEPT);
            self.seen.drain(..excess);
        }
        if self.expire(now) {
            return Inbound::Expired { now_expired: true };
        }
        match self.stage {
            LinkStatus::Expired => return Inbound::Expired { now_expired: false },
            LinkStatus::Verified | LinkStatus::Failed => {
                return Inbound::Rejected {
                    reason: Rejection::Closed,
                    now_failed: false,
                }
            }
            LinkStatus::Claimed => {
                return if self.claimed_by.as_deref() == Some(from.digits()) {
                    Inbound::Reminded
                } else {
                    self.fail_once(now, Rejection::ClaimedByAnother)
                };
            }
            LinkStatus::Pending => {}
        }
        if self.expected.as_deref().is_some_and(|e| e != from.digits()) {
            return self.fail_once(now, Rejection::WrongSender);
        }
        if !is_unaltered(text, &self.messages.prompt, &self.code) {
            return self.fail_once(now, Rejection::Altered);
        }
        self.stage = LinkStatus::Claimed;
        self.claimed_by = Some(from.digits().to_owned());
        self.claimed_at = Some(now);
        Inbound::Claimed
    }

    fn fail_once(&mut self, now: i64, reason: Rejection) -> Inbound {
        self.failures = self.failures.saturating_add(1);
        let now_failed = self.failures >= self.max_failures;
        if now_failed {
            self.stage = LinkStatus::Failed;
            self.failed_at = Some(now);
            self.failure = Some("too_many_failures".into());
        }
        Inbound::Rejected { reason, now_failed }
    }

    /// Confirms the login URL (the POST from the confirm page). Verifies at most once.
    pub fn confirm(&mut self, now: i64) -> Confirm {
        if self.expire(now) {
            return Confirm::Expired;
        }
        match self.stage {
            LinkStatus::Claimed => {
                self.stage = LinkStatus::Verified;
                self.verified_at = Some(now);
                Confirm::Verified
            }
            LinkStatus::Verified => Confirm::AlreadyVerified,
            LinkStatus::Pending => Confirm::NotClaimed,
            LinkStatus::Expired => Confirm::Expired,
            LinkStatus::Failed => Confirm::Failed,
        }
    }

    /// The user of the login URL says they did not start this login: a claimed challenge
    /// fails (`denied`), so whoever started it never gets a token. Otherwise as
    /// [`LinkChallenge::confirm`] answers, without changing anything.
    pub fn deny(&mut self, now: i64) -> Confirm {
        if self.expire(now) {
            return Confirm::Expired;
        }
        match self.stage {
            LinkStatus::Claimed => {
                self.stage = LinkStatus::Failed;
                self.failed_at = Some(now);
                self.failure = Some("denied".into());
                Confirm::Denied
            }
            LinkStatus::Verified => Confirm::AlreadyVerified,
            LinkStatus::Pending => Confirm::NotClaimed,
            LinkStatus::Expired => Confirm::Expired,
            LinkStatus::Failed => Confirm::Failed,
        }
    }

    /// Moves an open challenge past its lifetime to `expired`; true when it did so now.
    pub fn expire(&mut self, now: i64) -> bool {
        if matches!(self.stage, LinkStatus::Pending | LinkStatus::Claimed) && now >= self.expires_at
        {
            self.stage = LinkStatus::Expired;
            self.failed_at = Some(self.expires_at);
            self.failure = Some("expired".into());
            return true;
        }
        false
    }

    /// The chat id the site hears about: the claimant, else the expected chat.
    pub fn chat_id(&self) -> Option<String> {
        self.claimed_by
            .as_deref()
            .or(self.expected.as_deref())
            .map(|d| format!("{d}@c.us"))
    }

    /// The documented callback payload for the current outcome, keys in the documented order:
    /// `verified` with `verified_at`, `expired` with `expired_at`, or `failed` with
    /// `failed_at` and `reason` (`too_many_failures`).
    pub fn callback_body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            uuid: &'a str,
            code: &'a str,
            chat_id: Option<String>,
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            verified_at: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            expired_at: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            failed_at: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
        }
        // Serialized straight from the struct: a `Value` map would sort the keys.
        let at = |t: Option<i64>| Some(crate::time::iso8601(t.unwrap_or(self.expires_at)));
        let mut body = Body {
            uuid: &self.id,
            code: &self.code,
            chat_id: self.chat_id(),
            status: self.stage.hypersender(),
            verified_at: None,
            expired_at: None,
            failed_at: None,
            reason: None,
        };
        match self.stage {
            LinkStatus::Verified => body.verified_at = at(self.verified_at),
            LinkStatus::Expired => body.expired_at = at(self.failed_at),
            _ => {
                body.status = "failed";
                body.failed_at = at(self.failed_at);
                body.reason = Some(self.failure.as_deref().unwrap_or("failed"));
            }
        }
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// The callback payload as a JSON value (for inspection; keys sorted).
    pub fn callback_payload(&self) -> Value {
        serde_json::from_str(&self.callback_body()).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::link::prefilled_text;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const T0: i64 = 1_767_030_216;

    fn challenge(expected: Option<&str>) -> LinkChallenge {
        let messages = LinkMessages {
            prompt: "Give me link to login at Acme".into(),
            success: "Here: {link}".into(),
            failed: "Failed".into(),
            expired: "Expired".into(),
        };
        LinkChallenge::new(
            "a0b5df6a-b491-4190-80a5-38d85a2a4836".into(),
            "i".into(),
            "RDYFQUBX".into(),
            "Acme".into(),
            (T0, T0 + 1800),
            expected.map(str::to_owned),
            messages,
            Callbacks::default(),
            3,
        )
    }

    fn from(d: &str) -> Recipient {
        Recipient::parse(d).unwrap()
    }

    fn text() -> String {
        prefilled_text("Give me link to login at Acme", "RDYFQUBX")
    }

    #[test]
    fn claim_then_confirm_verifies_once() {
        let mut c = challenge(None);
        assert_eq!(
            c.on_inbound(T0 + 1, &from("20123456789"), "m1", &text()),
            Inbound::Claimed
        );
        assert_eq!(c.chat_id().as_deref(), Some("20123456789@c.us"));
        assert_eq!(c.status(T0 + 2), LinkStatus::Claimed);
        assert_eq!(c.confirm(T0 + 3), Confirm::Verified);
        assert_eq!(c.confirm(T0 + 4), Confirm::AlreadyVerified);
        let body = c.callback_body();
        assert!(
            body.starts_with(r#"{"uuid":"#)
                && body.contains(r#""status":"verified","verified_at":"#),
            "{body}"
        );
        let p = c.callback_payload();
        assert_eq!(p["status"], "verified");
        assert_eq!(p["verified_at"], "2025-12-29T17:43:39+00:00");
        assert_eq!(p["chat_id"], "20123456789@c.us");
    }

    #[test]
    fn redelivered_message_is_a_duplicate() {
        let mut c = challenge(None);
        assert_eq!(
            c.on_inbound(T0, &from("20123456789"), "m1", &text()),
            Inbound::Claimed
        );
        for _ in 0..50 {
            assert_eq!(
                c.on_inbound(T0, &from("20123456789"), "m1", &text()),
                Inbound::Duplicate
            );
        }
        assert_eq!(
            c.on_inbound(T0, &from("20123456789"), "m2", &text()),
            Inbound::Reminded
        );
    }

    #[test]
    fn only_the_named_chat_may_claim() {
        let mut c = challenge(Some("20123456789"));
        let r = c.on_inbound(T0, &from("20111111111"), "m1", &text());
        assert_eq!(
            r,
            Inbound::Rejected {
                reason: Rejection::WrongSender,
                now_failed: false
            }
        );
        assert_eq!(c.status(T0), LinkStatus::Pending);
        assert_eq!(
            c.on_inbound(T0, &from("+20123456789@c.us"), "m2", &text()),
            Inbound::Claimed
        );
    }

    #[test]
    fn altered_messages_count_and_end_it() {
        let mut c = challenge(None);
        for (i, t) in [
            "Give me link [RDYFQUBX] - DO NOT CHANGE THIS MESSAGE",
            "hi [RDYFQUBX]",
        ]
        .iter()
        .enumerate()
        {
            let r = c.on_inbound(T0, &from("20123456789"), &format!("m{i}"), t);
            assert_eq!(
                r,
                Inbound::Rejected {
                    reason: Rejection::Altered,
                    now_failed: false
                }
            );
        }
        let r = c.on_inbound(T0, &from("20123456789"), "m9", "x [RDYFQUBX]");
        assert_eq!(
            r,
            Inbound::Rejected {
                reason: Rejection::Altered,
                now_failed: true
            }
        );
        assert_eq!(c.status(T0), LinkStatus::Failed);
        assert_eq!(c.callback_payload()["reason"], "too_many_failures");
        assert_eq!(c.callback_payload()["status"], "failed");
        assert_eq!(c.confirm(T0), Confirm::Failed);
    }

    #[test]
    fn expiry_stops_everything() {
        let mut c = challenge(None);
        assert_eq!(
            c.on_inbound(T0 + 1800, &from("20123456789"), "m1", &text()),
            Inbound::Expired { now_expired: true }
        );
        let body = c.callback_body();
        assert!(
            body.ends_with(r#""status":"expired","expired_at":"2025-12-29T18:13:36+00:00"}"#),
            "{body}"
        );

        let mut c = challenge(None);
        c.on_inbound(T0, &from("20123456789"), "m1", &text());
        assert_eq!(c.confirm(T0 + 1800), Confirm::Expired);
        assert!(!c.expire(T0 + 1900), "expires once");
    }

    #[test]
    fn a_denied_link_fails_and_never_verifies() {
        let mut c = challenge(None);
        assert_eq!(c.deny(T0), Confirm::NotClaimed);
        c.on_inbound(T0 + 1, &from("20123456789"), "m1", &text());
        assert_eq!(c.deny(T0 + 2), Confirm::Denied);
        assert_eq!(c.status(T0 + 3), LinkStatus::Failed);
        assert_eq!(c.confirm(T0 + 3), Confirm::Failed);
        assert_eq!(c.deny(T0 + 4), Confirm::Failed);
        assert_eq!(c.callback_payload()["reason"], "denied");
        // Too late once verified.
        let mut c = challenge(None);
        c.on_inbound(T0 + 1, &from("20123456789"), "m1", &text());
        c.confirm(T0 + 2);
        assert_eq!(c.deny(T0 + 3), Confirm::AlreadyVerified);
        assert_eq!(c.status(T0 + 3), LinkStatus::Verified);
    }

    #[test]
    fn unclaimed_link_cannot_be_confirmed() {
        let mut c = challenge(None);
        assert_eq!(c.confirm(T0), Confirm::NotClaimed);
    }

    #[test]
    fn hypersender_statuses() {
        assert_eq!(LinkStatus::Claimed.hypersender(), "pending");
        assert_eq!(LinkStatus::Verified.hypersender(), "verified");
    }
}
