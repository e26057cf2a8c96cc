//! The challenge state machine and the per-recipient limits, decided in one place.
//!
//! A [`RecipientState`] is everything one recipient's Durable Object keeps: its recent
//! challenges and the counters that protect it (sends in the window, wrong codes in a row,
//! lockout). Every decision (start a challenge, check an attempt) is a method here taking
//! `now`; the Durable Object only loads the state, calls one method and saves it, with no
//! `await` in between, which is what makes "used once" and "attempts left" atomic.
//!
//! Code challenge: `pending` -> `sent` (delivered) -> `validated` | `expired` | `failed`.
//!
//! A send never voids a live code: while the recipient's latest code is open (unspent, not
//! expired, at least [`REUSE_MIN_LEFT`] seconds to go) every new send for the recipient sends
//! that same code again, as Twilio Verify does within a code's lifetime. Otherwise anyone who
//! can ask for a code for a number (a public widget, a sign-up form) could void the code its
//! owner was just sent, and turn the owner's right code into a wrong attempt. Only a send the
//! live code cannot serve (another test number, or a code about to expire) starts a new
//! challenge, which moves the open one to `superseded`.
//!
//! Test mode (a `sk_test_`/`pk_test_` key) and live mode are kept apart: a recipient holds at
//! most one open code per mode, a send supersedes only a code of its own mode, and an attempt
//! is checked against its own mode's code. So a test-mode send (anyone holding a public
//! `pk_test_` key) never voids a live code, and a live send never voids a test one.

use crate::rules::code::CodeSpec;
use serde::{Deserialize, Serialize};

/// Limits for one instance; [`Policy::default`] holds the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Wrong codes that end a challenge.
    pub max_attempts: u32,
    /// Sends allowed per recipient within `send_window` seconds.
    pub max_sends: u32,
    /// The window of the send cap, in seconds.
    pub send_window: i64,
    /// Seconds between two sends to one recipient (0: none).
    pub resend_cooldown: i64,
    /// Every `lockout_every` wrong codes in a row (across challenges) lock the recipient.
    pub lockout_every: u32,
    /// The first lockout, in seconds; each next one doubles.
    pub lockout_base: i64,
    /// The longest lockout, in seconds.
    pub lockout_max: i64,
    /// Seconds without a wrong code after which the count of wrong codes starts again.
    pub failure_memory: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_sends: 5,
            send_window: 600,
            resend_cooldown: 0,
            lockout_every: 5,
            lockout_base: 60,
            lockout_max: 4 * 3600,
            failure_memory: 24 * 3600,
        }
    }
}

impl Policy {
    /// The lockout that follows the `failures`-th wrong code in a row, if any:
    /// `lockout_base * 2^(k-1)` after the k-th group of `lockout_every`, capped at `lockout_max`.
    pub fn lockout_after(&self, failures: u32) -> Option<i64> {
        if self.lockout_every == 0 || failures == 0 || !failures.is_multiple_of(self.lockout_every)
        {
            return None;
        }
        let k = failures / self.lockout_every;
        let doubled = self.lockout_base.saturating_mul(1i64 << (k - 1).min(40));
        Some(doubled.min(self.lockout_max))
    }

    /// The lockout after the `failures`-th wrong code in a row at a code of `spec`: as
    /// [`Policy::lockout_after`] for codes with at least 10^6 values, and longer for shorter
    /// ones, by the factor their space is smaller (a 4-digit code, 10^4 values: 100 times,
    /// first lockout 100 min, longest 400 h; 5 digits: 10 times). The guesses a day then
    /// shrink as the space does; docs/security.md states the bound per length.
    pub fn lockout_for(&self, failures: u32, spec: CodeSpec) -> Option<i64> {
        let lock = self.lockout_after(failures)?;
        Some(lock.saturating_mul(short_code_factor(spec)))
    }
}

/// How many times smaller than 10^6 a code's space is (at least 1).
pub fn short_code_factor(spec: CodeSpec) -> i64 {
    const SIX_DIGITS: u128 = 1_000_000;
    let space = (spec.alphabet.chars().len() as u128).saturating_pow(u32::from(spec.length));
    if space == 0 || space >= SIX_DIGITS {
        1
    } else {
        SIX_DIGITS.div_ceil(space) as i64
    }
}

/// Whether a challenge expects a typed code or a WhatsApp link reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A code delivered to the recipient and typed back (request-code).
    Code,
}

/// The stored part of a challenge's lifecycle; `expired` is computed from the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Created; the message is queued.
    Pending,
    /// The channel accepted the message.
    Sent,
    /// The right code was given once; never again.
    Validated,
    /// Attempts used up, or the message could not be delivered.
    Failed,
    /// A newer challenge for the same recipient replaced it.
    Superseded,
}

/// A challenge's status as callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created; the message is queued.
    Pending,
    /// The channel accepted the message.
    Sent,
    /// The right code was given.
    Validated,
    /// Its lifetime ran out while open.
    Expired,
    /// Attempts used up, or undeliverable.
    Failed,
    /// Replaced by a newer challenge for the same recipient.
    Superseded,
}

impl Status {
    /// The name used in API bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Validated => "validated",
            Self::Expired => "expired",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
        }
    }
}

/// One challenge, as its recipient's Durable Object stores it. It holds no code: the code is
/// derived from the pepper and `id` whenever it is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Random v4 UUID; part of the code's derivation.
    pub id: String,
    /// Code or link.
    pub kind: Kind,
    /// Length and alphabet of the code.
    pub spec: CodeSpec,
    /// App name shown in the message (`{name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix seconds at creation.
    pub created_at: i64,
    /// Unix seconds from which the code no longer validates.
    pub expires_at: i64,
    /// Wrong codes given for this challenge (saturating).
    pub attempts: u32,
    /// Wrong codes that end it (the instance's policy when created).
    pub max_attempts: u32,
    /// Stored lifecycle stage.
    pub stage: Stage,
    /// When the channel accepted the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    /// When it was validated, failed or superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    /// Why it failed (`attempts`, `undeliverable: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// How the caller asked for it to be sent.
    #[serde(default, skip_serializing_if = "SendOptions::is_default")]
    pub options: SendOptions,
    /// Bumped when delivery falls back to the next channel: part of the code's derivation,
    /// so the next channel carries a fresh code and the previous one stops working.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    /// The channel that accepted the message (or is being tried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The provider's message id, to match delivery receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// The latest delivery receipt (`delivered`, `read`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How a caller asked for a challenge to be sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOptions {
    /// Preferred locale of the message (`pt-BR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Preferred channel kind (`whatsapp`, `sms`): the first of the instance's chain that matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Test mode (a `sk_test_` key): delivered to the dev outbox, never to a provider.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// A configured test number: fixed code, no delivery at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_code: Option<String>,
}

impl SendOptions {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Challenge {
    /// The status at `now`: an open challenge past `expires_at` is `expired`.
    pub fn status(&self, now: i64) -> Status {
        match self.stage {
            Stage::Pending | Stage::Sent if now >= self.expires_at => Status::Expired,
            Stage::Pending => Status::Pending,
            Stage::Sent => Status::Sent,
            Stage::Validated => Status::Validated,
            Stage::Failed => Status::Failed,
            Stage::Superseded => Status::Superseded,
        }
    }

    /// Whole seconds left of its lifetime for a send asked for at `asked` (read before the
    /// send, so a new code reads its full lifetime even when the answer straddles a second; a
    /// live code sent again reads what is left), at least 1.
    pub fn seconds_left(&self, asked: i64) -> i64 {
        (self.expires_at - asked)
            .min(self.expires_at - self.created_at)
            .max(1)
    }

    /// True while the code can still be validated.
    pub fn is_open(&self, now: i64) -> bool {
        matches!(self.status(now), Status::Pending | Status::Sent)
    }

    /// What the code is derived from besides instance and recipient: the id, plus the
    /// generation once delivery has fallen back to another channel.
    pub fn code_id(&self) -> String {
        if self.generation == 0 {
            self.id.clone()
        } else {
            format!("{}#{}", self.id, self.generation)
        }
    }

    /// The challenge's code: a test number's fixed code, else derived from the pepper, the
    /// instance, the recipient and [`Challenge::code_id`].
    pub fn code(
        &self,
        pepper: &crate::Secret,
        instance: &str,
        recipient: &crate::Recipient,
    ) -> crate::rules::code::Code {
        if let Some(fixed) = &self.options.fixed_code {
            return crate::rules::code::Code::fixed(fixed);
        }
        let code_id = self.code_id();
        let ctx = crate::rules::code::CodeContext {
            instance,
            recipient,
            challenge_id: &code_id,
        };
        crate::rules::code::derive(pepper, ctx, self.spec)
    }

    /// Wrong codes still allowed.
    pub fn attempts_left(&self) -> u32 {
        self.max_attempts.saturating_sub(self.attempts)
    }
}

/// What a caller asks for when starting a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChallenge {
    /// Random v4 UUID made by the caller.
    pub id: String,
    /// Code or link.
    pub kind: Kind,
    /// Length and alphabet.
    pub spec: CodeSpec,
    /// App name for the message.
    pub name: Option<String>,
    /// Lifetime in seconds.
    pub ttl: i64,
    /// Locale, preferred channel, test mode.
    pub options: SendOptions,
}

/// Why a new challenge was refused. Each carries the seconds until a retry can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case", try_from = "RefusalWire")]
pub enum Refusal {
    /// Too many wrong codes in a row: the recipient is locked out for a while.
    Locked { retry_after: i64 },
    /// A code was sent too recently.
    Cooldown { retry_after: i64 },
    /// The send cap of the window is reached.
    SendCap { retry_after: i64 },
}

impl Refusal {
    /// Seconds until a retry can succeed (at least 1).
    pub fn retry_after(self) -> i64 {
        match self {
            Self::Locked { retry_after }
            | Self::Cooldown { retry_after }
            | Self::SendCap { retry_after } => retry_after.max(1),
        }
    }
}

/// The outcome of one attempt at a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", try_from = "AttemptWire")]
pub enum Attempt {
    /// The right code, first time: the challenge is now validated.
    Validated { challenge: Challenge },
    /// A wrong code. `retry_after` is set when this attempt started a lockout.
    Wrong {
        challenge: Challenge,
        attempts_left: u32,
        retry_after: Option<i64>,
    },
    /// The recipient has no challenge at all.
    NoActive,
    /// The latest challenge was already validated.
    AlreadyUsed { challenge: Challenge },
    /// The latest challenge expired.
    Expired { challenge: Challenge },
    /// The latest challenge used up its attempts (or could not be delivered).
    Exhausted {
        challenge: Challenge,
        retry_after: i64,
    },
    /// The recipient is locked out after too many wrong codes.
    Locked { retry_after: i64 },
    /// The caller named a challenge that is no longer the recipient's latest: nothing was
    /// checked or counted.
    Superseded,
}

// The Durable Object answers with these enums in serde's internally tagged form. Reading them
// back through serde's derive buffers every field first and compiles a second copy of each
// payload's deserializer (a `Challenge` alone is ~20 KB of Wasm), so they are read as one flat
// record with the same JSON shape (the tag as a plain string) and checked here.

/// A [`Refusal`] as it is read back.
#[derive(Deserialize)]
struct RefusalWire {
    reason: String,
    retry_after: i64,
}

impl TryFrom<RefusalWire> for Refusal {
    type Error = &'static str;

    fn try_from(w: RefusalWire) -> Result<Self, Self::Error> {
        let retry_after = w.retry_after;
        Ok(match w.reason.as_str() {
            "locked" => Self::Locked { retry_after },
            "cooldown" => Self::Cooldown { retry_after },
            "send_cap" => Self::SendCap { retry_after },
            _ => return Err("unknown refusal reason"),
        })
    }
}

/// An [`Attempt`] as it is read back: every variant's fields, each optional.
#[derive(Deserialize)]
struct AttemptWire {
    outcome: String,
    #[serde(default)]
    challenge: Option<Challenge>,
    #[serde(default)]
    attempts_left: Option<u32>,
    #[serde(default)]
    retry_after: Option<i64>,
}

impl TryFrom<AttemptWire> for Attempt {
    type Error = &'static str;

    fn try_from(w: AttemptWire) -> Result<Self, Self::Error> {
        let challenge = w.challenge.ok_or("missing field `challenge`");
        let retry_after = w.retry_after.ok_or("missing field `retry_after`");
        Ok(match w.outcome.as_str() {
            "validated" => Self::Validated {
                challenge: challenge?,
            },
            "wrong" => Self::Wrong {
                challenge: challenge?,
                attempts_left: w.attempts_left.ok_or("missing field `attempts_left`")?,
                retry_after: w.retry_after,
            },
            "no_active" => Self::NoActive,
            "already_used" => Self::AlreadyUsed {
                challenge: challenge?,
            },
            "expired" => Self::Expired {
                challenge: challenge?,
            },
            "exhausted" => Self::Exhausted {
                challenge: challenge?,
                retry_after: retry_after?,
            },
            "locked" => Self::Locked {
                retry_after: retry_after?,
            },
            "superseded" => Self::Superseded,
            _ => return Err("unknown attempt outcome"),
        })
    }
}

/// Everything a recipient's Durable Object keeps. Holds no code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    /// Recent challenges, oldest first; only the last can be open.
    pub challenges: Vec<Challenge>,
    /// Unix seconds of the sends inside the send window.
    pub sends: Vec<i64>,
    /// Wrong codes in a row across challenges; reset by a success or after `failure_memory`.
    pub failures: u32,
    /// Unix seconds of the latest wrong code.
    pub last_failure_at: i64,
    /// Unix seconds until which validation and sending are refused.
    pub locked_until: i64,
}

/// A live code with less than this many seconds to go is not sent again: a new send starts a
/// new code instead (the old one would expire before it could be typed).
pub const REUSE_MIN_LEFT: i64 = 30;

/// How long an ended challenge is kept for status lookups, in seconds.
pub const RETENTION: i64 = 24 * 3600;
/// The most challenges kept per recipient.
pub const MAX_KEPT: usize = 16;

impl RecipientState {
    /// Starts a challenge if the limits allow it, or sends the live one again (see the module
    /// doc): the answer is the challenge whose code the send carries. The send counts toward
    /// the cap (and the cooldown) either way, whether or not delivery later succeeds.
    pub fn start(
        &mut self,
        now: i64,
        policy: &Policy,
        new: NewChallenge,
    ) -> Result<&Challenge, Refusal> {
        self.may_send(now, policy)?;
        if let Some(live) = self.live_for(now, &new) {
            self.sends.push(now);
            let c = &mut self.challenges[live];
            // A send that names another medium (WhatOTP's `channel`) sends the same code there.
            if new.options.channel.is_some() && new.options.channel != c.options.channel {
                c.options.channel = new.options.channel;
                c.channel = None;
            }
            return Ok(&self.challenges[live]);
        }
        let test = new.options.test;
        for open in self
            .challenges
            .iter_mut()
            .filter(|c| c.is_open(now) && c.options.test == test)
        {
            open.stage = Stage::Superseded;
            open.ended_at = Some(now);
        }
        self.sends.push(now);
        self.challenges.push(Challenge {
            id: new.id,
            kind: new.kind,
            spec: new.spec,
            name: new.name,
            created_at: now,
            expires_at: now + new.ttl,
            attempts: 0,
            max_attempts: policy.max_attempts,
            stage: Stage::Pending,
            sent_at: None,
            ended_at: None,
            failure: None,
            options: new.options,
            generation: 0,
            channel: None,
            provider_id: None,
            receipt: None,
        });
        Ok(self.challenges.last().expect("just pushed"))
    }

    /// Counts a message for the recipient that is not a code (a WhatsApp login link named
    /// for it, generate-link with `chatId`) under the same rules as a code: refused while the
    /// recipient is locked out, cooling down or at its send cap.
    pub fn count_send(&mut self, now: i64, policy: &Policy) -> Result<(), Refusal> {
        self.may_send(now, policy)?;
        self.sends.push(now);
        Ok(())
    }

    /// Whether a send may happen now: the lockout, the cooldown and the send cap.
    fn may_send(&mut self, now: i64, policy: &Policy) -> Result<(), Refusal> {
        self.forget_old(now, policy);
        if self.locked_until > now {
            return Err(Refusal::Locked {
                retry_after: self.locked_until - now,
            });
        }
        if let Some(&last) = self.sends.last() {
            if policy.resend_cooldown > 0 && now < last + policy.resend_cooldown {
                return Err(Refusal::Cooldown {
                    retry_after: last + policy.resend_cooldown - now,
                });
            }
        }
        if self.sends.len() as u32 >= policy.max_sends {
            let oldest = self.sends[self.sends.len() - policy.max_sends as usize];
            return Err(Refusal::SendCap {
                retry_after: oldest + policy.send_window - now,
            });
        }
        Ok(())
    }

    /// The index of the latest challenge of test mode `test` (see the module doc).
    fn latest_of(&self, test: bool) -> Option<usize> {
        self.challenges.iter().rposition(|c| c.options.test == test)
    }

    /// The index of the latest challenge of `new`'s mode if a send of `new` is to send its
    /// code again: it is open with at least [`REUSE_MIN_LEFT`] seconds to go, and of the same
    /// kind and test number. Its length and alphabet win over the new request's: the code
    /// already on its way is the one that counts.
    fn live_for(&self, now: i64, new: &NewChallenge) -> Option<usize> {
        let i = self.latest_of(new.options.test)?;
        let c = &self.challenges[i];
        let serves = c.is_open(now)
            && c.expires_at - now >= REUSE_MIN_LEFT
            && c.kind == new.kind
            && c.options.fixed_code == new.options.fixed_code;
        serves.then_some(i)
    }

    /// Like [`RecipientState::attempt`], but for challenge `expected` (a session the caller
    /// holds): one that is no longer open is answered from its own state, and one that a newer
    /// code replaced is `Superseded`, so a session never spends an attempt of a newer code.
    /// Decided here, in one call, so the object needs no read before the attempt.
    pub fn attempt_for(
        &mut self,
        now: i64,
        policy: &Policy,
        expected: &str,
        is_right: impl FnOnce(&Challenge) -> bool,
    ) -> Attempt {
        let Some(session) = self.get(expected) else {
            return Attempt::NoActive;
        };
        let challenge = session.clone();
        match challenge.status(now) {
            Status::Pending | Status::Sent => {}
            Status::Validated => return Attempt::AlreadyUsed { challenge },
            Status::Expired => return Attempt::Expired { challenge },
            Status::Superseded => return Attempt::Superseded,
            Status::Failed => {
                return Attempt::Exhausted {
                    challenge,
                    retry_after: 1,
                }
            }
        }
        let test = challenge.options.test;
        if self
            .latest_of(test)
            .is_some_and(|i| self.challenges[i].id != expected)
        {
            return Attempt::Superseded;
        }
        self.attempt_as(now, policy, test, is_right)
    }

    /// [`RecipientState::attempt_as`] in the mode of the latest challenge.
    pub fn attempt(
        &mut self,
        now: i64,
        policy: &Policy,
        is_right: impl FnOnce(&Challenge) -> bool,
    ) -> Attempt {
        let test = self.challenges.last().is_some_and(|c| c.options.test);
        self.attempt_as(now, policy, test, is_right)
    }

    /// Checks an attempt at the latest challenge of test mode `test`. `is_right` derives the
    /// challenge's code and compares it with the input in constant time; it runs only when an
    /// attempt is allowed.
    pub fn attempt_as(
        &mut self,
        now: i64,
        policy: &Policy,
        test: bool,
        is_right: impl FnOnce(&Challenge) -> bool,
    ) -> Attempt {
        self.forget_old(now, policy);
        let locked_until = self.locked_until;
        let Some(latest) = self.latest_of(test).map(|i| &mut self.challenges[i]) else {
            return Attempt::NoActive;
        };
        match latest.status(now) {
            Status::Validated => {
                return Attempt::AlreadyUsed {
                    challenge: latest.clone(),
                }
            }
            Status::Expired => {
                return Attempt::Expired {
                    challenge: latest.clone(),
                }
            }
            Status::Failed | Status::Superseded => {
                return Attempt::Exhausted {
                    challenge: latest.clone(),
                    retry_after: (locked_until - now).max(1),
                }
            }
            Status::Pending | Status::Sent => {}
        }
        if locked_until > now {
            return Attempt::Locked {
                retry_after: locked_until - now,
            };
        }
        if is_right(latest) {
            latest.stage = Stage::Validated;
            latest.ended_at = Some(now);
            let challenge = latest.clone();
            self.failures = 0;
            self.locked_until = 0;
            return Attempt::Validated { challenge };
        }
        latest.attempts = latest.attempts.saturating_add(1);
        if latest.attempts >= latest.max_attempts {
            latest.stage = Stage::Failed;
            latest.ended_at = Some(now);
            latest.failure = Some("attempts".into());
        }
        let challenge = latest.clone();
        self.failures = self.failures.saturating_add(1);
        self.last_failure_at = now;
        let retry_after = policy.lockout_for(self.failures, challenge.spec);
        if let Some(lock) = retry_after {
            self.locked_until = now + lock;
        }
        Attempt::Wrong {
            attempts_left: challenge.attempts_left(),
            challenge,
            retry_after,
        }
    }

    /// Records that the channel accepted challenge `id`'s message. False when it is no
    /// longer open (a late delivery never reopens anything).
    pub fn mark_sent(&mut self, id: &str, now: i64) -> bool {
        match self.challenges.iter_mut().find(|c| c.id == id) {
            Some(c) if c.stage == Stage::Pending => {
                c.stage = Stage::Sent;
                c.sent_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Moves an open challenge to its next delivery channel: a fresh code (the generation is
    /// part of its derivation), the previous one void. False when it is no longer open.
    pub fn fall_back(&mut self, id: &str, now: i64, channel: &str) -> bool {
        match self.challenges.iter_mut().find(|c| c.id == id) {
            Some(c) if c.is_open(now) => {
                // A failed receipt for a sent message falls back too: back to pending.
                c.stage = Stage::Pending;
                c.sent_at = None;
                c.receipt = None;
                c.generation = c.generation.saturating_add(1);
                c.channel = Some(channel.to_owned());
                c.provider_id = None;
                true
            }
            _ => false,
        }
    }

    /// Records which channel accepted the message and the provider's id for receipts.
    pub fn mark_accepted(
        &mut self,
        id: &str,
        now: i64,
        channel: &str,
        provider_id: Option<String>,
    ) -> bool {
        let sent = self.mark_sent(id, now);
        if let Some(c) = self.challenges.iter_mut().find(|c| c.id == id) {
            c.channel = Some(channel.to_owned());
            c.provider_id = provider_id;
        }
        sent
    }

    /// Applies a delivery receipt for provider message `provider_id`: `delivered` and `read`
    /// are recorded; a failure of the message that carries the live code fails the challenge
    /// when `fail` is set (the caller falls back instead when it can). Returns the challenge id.
    pub fn on_receipt(&mut self, provider_id: &str, receipt: &str) -> Option<String> {
        let c = self
            .challenges
            .iter_mut()
            .find(|c| c.provider_id.as_deref() == Some(provider_id))?;
        c.receipt = Some(receipt.to_owned());
        Some(c.id.clone())
    }

    /// Records that challenge `id`'s message could not be delivered: it fails if still open.
    pub fn mark_undeliverable(&mut self, id: &str, now: i64, reason: &str) -> bool {
        match self.challenges.iter_mut().find(|c| c.id == id) {
            Some(c) if c.is_open(now) => {
                c.stage = Stage::Failed;
                c.ended_at = Some(now);
                c.failure = Some(format!("undeliverable: {reason}"));
                true
            }
            _ => false,
        }
    }

    /// The challenge with this id, if still kept.
    pub fn get(&self, id: &str) -> Option<&Challenge> {
        self.challenges.iter().find(|c| c.id == id)
    }

    /// Drops what no rule looks at any more: sends outside the window, a failure count past
    /// its memory, challenges ended (or expired) longer than [`RETENTION`] ago.
    fn forget_old(&mut self, now: i64, policy: &Policy) {
        self.sends.retain(|&t| t + policy.send_window > now);
        if self.failures > 0 && now - self.last_failure_at >= policy.failure_memory {
            self.failures = 0;
        }
        self.challenges
            .retain(|c| c.ended_at.unwrap_or(c.expires_at).max(c.expires_at) + RETENTION > now);
        let excess = self.challenges.len().saturating_sub(MAX_KEPT - 1);
        self.challenges.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::code::{Alphabet, CodeSpec};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const T0: i64 = 1_767_030_216;

    fn new(id: &str, ttl: i64) -> NewChallenge {
        NewChallenge {
            id: id.into(),
            kind: Kind::Code,
            spec: CodeSpec {
                length: 6,
                alphabet: Alphabet::Digits,
            },
            name: None,
            ttl,
            options: SendOptions::default(),
        }
    }

    /// A challenge the live one cannot serve (a test number's fixed code): it starts anew and
    /// supersedes.
    fn new_other(id: &str, ttl: i64) -> NewChallenge {
        NewChallenge {
            options: SendOptions {
                fixed_code: Some("000000".into()),
                ..SendOptions::default()
            },
            ..new(id, ttl)
        }
    }

    /// The same send in test mode (a `sk_test_` or `pk_test_` key).
    fn in_test_mode(n: NewChallenge) -> NewChallenge {
        NewChallenge {
            options: SendOptions {
                test: true,
                ..n.options
            },
            ..n
        }
    }

    /// Issue 12 item 4, across modes: anyone holding a public `pk_test_` key can send a
    /// test-mode code to any number, so a test-mode send must not void the live code its owner
    /// holds, nor a live send a test code. Each mode keeps its own open code and its attempts.
    #[test]
    fn a_send_in_the_other_test_mode_voids_nothing() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("live", 300)).unwrap();
        let t = s.start(T0 + 1, &p, in_test_mode(new("test", 300))).unwrap();
        assert_eq!(t.id, "test", "a test send never carries the live code");
        assert_eq!(s.get("live").unwrap().status(T0 + 2), Status::Pending);
        // A live send sends the live code again; a test send the test code.
        assert_eq!(s.start(T0 + 2, &p, new("x", 300)).unwrap().id, "live");
        let again = s.start(T0 + 3, &p, in_test_mode(new("y", 300))).unwrap();
        assert_eq!(again.id, "test");
        // A live validation checks the live code only, and a test one the test code only.
        assert!(matches!(
            s.attempt_as(T0 + 4, &p, false, |c| c.id == "live"),
            Attempt::Validated { challenge } if challenge.id == "live"
        ));
        assert!(matches!(
            s.attempt_as(T0 + 5, &p, true, |c| c.id == "live"),
            Attempt::Wrong { challenge, .. } if challenge.id == "test"
        ));
        // Sessions too: the test session is still its mode's latest code.
        assert!(matches!(
            s.attempt_for(T0 + 6, &p, "test", |c| c.id == "test"),
            Attempt::Validated { .. }
        ));
        // The other way round: a live send leaves an open test code alone.
        let mut s = RecipientState::default();
        s.start(T0, &p, in_test_mode(new("test", 300))).unwrap();
        assert_eq!(s.start(T0 + 1, &p, new("live", 300)).unwrap().id, "live");
        assert!(matches!(
            s.attempt_for(T0 + 2, &p, "test", |c| c.id == "test"),
            Attempt::Validated { .. }
        ));
    }

    fn right(_: &Challenge) -> bool {
        true
    }
    fn wrong(_: &Challenge) -> bool {
        false
    }

    #[test]
    fn right_code_validates_once() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        assert!(matches!(
            s.attempt(T0 + 1, &p, right),
            Attempt::Validated { .. }
        ));
        assert!(matches!(
            s.attempt(T0 + 2, &p, right),
            Attempt::AlreadyUsed { .. }
        ));
        assert_eq!(s.get("a").unwrap().status(T0 + 3), Status::Validated);
    }

    #[test]
    fn code_expires_at_its_deadline() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 60)).unwrap();
        assert_eq!(s.get("a").unwrap().status(T0 + 59), Status::Pending);
        assert!(matches!(
            s.attempt(T0 + 60, &p, right),
            Attempt::Expired { .. }
        ));
        assert_eq!(s.failures, 0, "an expired attempt is not a wrong code");
    }

    #[test]
    fn no_challenge_means_no_active() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        assert_eq!(s.attempt(T0, &p, right), Attempt::NoActive);
    }

    #[test]
    fn five_wrong_codes_end_the_challenge_and_the_fifth_try_still_counts_if_right() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        for left in (1..=4).rev() {
            match s.attempt(T0 + 1, &p, wrong) {
                Attempt::Wrong { attempts_left, .. } => assert_eq!(attempts_left, left),
                other => panic!("{other:?}"),
            }
        }
        // The fifth attempt is allowed and a right code then validates.
        assert!(matches!(
            s.attempt(T0 + 1, &p, right),
            Attempt::Validated { .. }
        ));

        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("b", 300)).unwrap();
        for _ in 0..5 {
            s.attempt(T0 + 1, &p, wrong);
        }
        assert_eq!(s.get("b").unwrap().status(T0 + 1), Status::Failed);
        assert!(matches!(
            s.attempt(T0 + 100, &p, right),
            Attempt::Exhausted { .. }
        ));
    }

    #[test]
    fn an_attempt_for_a_superseded_session_counts_nothing() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        s.start(T0 + 1, &p, new_other("b", 300)).unwrap();
        assert_eq!(s.attempt_for(T0 + 2, &p, "a", wrong), Attempt::Superseded);
        assert_eq!((s.get("b").unwrap().attempts, s.failures), (0, 0));
        assert!(matches!(
            s.attempt_for(T0 + 2, &p, "b", right),
            Attempt::Validated { .. }
        ));
    }

    /// Issue 12 item 4: anyone may ask for a code for a number, so a send must not void the
    /// code its owner holds. (Before: every send superseded the open code.)
    #[test]
    fn a_new_send_sends_the_live_code_again() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        assert!(s.mark_sent("a", T0 + 1));
        let again = s.start(T0 + 2, &p, new("b", 300)).unwrap();
        assert_eq!((again.id.as_str(), again.expires_at), ("a", T0 + 300));
        assert_eq!(s.challenges.len(), 1, "no new challenge");
        assert_eq!(s.sends.len(), 2, "the resend counts toward the cap");
        // Another length or alphabet: the code on its way wins.
        let other_spec = NewChallenge {
            spec: CodeSpec {
                length: 8,
                alphabet: Alphabet::DigitsUpper,
            },
            ..new("c", 600)
        };
        assert_eq!(s.start(T0 + 3, &p, other_spec).unwrap().id, "a");
        // Another medium: the same code, through it.
        let sms = NewChallenge {
            options: SendOptions {
                channel: Some("sms".into()),
                ..SendOptions::default()
            },
            ..new("d", 300)
        };
        let c = s.start(T0 + 4, &p, sms).unwrap();
        assert_eq!(
            (c.id.as_str(), c.options.channel.as_deref()),
            ("a", Some("sms"))
        );
        assert!(matches!(
            s.attempt(T0 + 5, &p, |c| c.id == "a"),
            Attempt::Validated { .. }
        ));
    }

    #[test]
    fn seconds_left_is_the_whole_lifetime_for_a_new_code_and_the_rest_for_a_live_one() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        let c = s.start(T0 + 1, &p, new("a", 300)).unwrap();
        // Asked at T0, created at T0 + 1 (the second turned meanwhile): still 300.
        assert_eq!(c.seconds_left(T0), 300);
        let again = s.start(T0 + 100, &p, new("b", 300)).unwrap();
        assert_eq!(again.id, "a");
        assert_eq!(again.seconds_left(T0 + 100), 201);
        assert_eq!(again.seconds_left(T0 + 10_000), 1);
    }

    #[test]
    fn a_send_the_live_code_cannot_serve_supersedes_it() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        // Another test number.
        s.start(T0, &p, new("a", 300)).unwrap();
        s.start(T0 + 1, &p, new_other("b", 300)).unwrap();
        assert_eq!(s.get("a").unwrap().status(T0 + 2), Status::Superseded);
        // A code about to expire.
        let mut s = RecipientState::default();
        s.start(T0, &p, new_other("c", 60)).unwrap();
        assert_eq!(s.start(T0 + 1, &p, new_other("d", 60)).unwrap().id, "c");
        let late = T0 + 60 - REUSE_MIN_LEFT + 1;
        assert_eq!(s.start(late, &p, new_other("e", 60)).unwrap().id, "e");
        assert_eq!(s.get("c").unwrap().status(late), Status::Superseded);
        // A spent code.
        assert!(matches!(
            s.attempt(late, &p, right),
            Attempt::Validated { .. }
        ));
        assert_eq!(s.start(late + 1, &p, new_other("f", 60)).unwrap().id, "f");
    }

    #[test]
    fn a_superseded_code_no_longer_validates() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        s.start(T0 + 1, &p, new_other("b", 300)).unwrap();
        assert_eq!(s.get("a").unwrap().status(T0 + 2), Status::Superseded);
        assert_eq!(s.challenges.iter().filter(|c| c.is_open(T0 + 2)).count(), 1);
        match s.attempt(T0 + 2, &p, |c| c.id == "a") {
            Attempt::Wrong { .. } => {}
            other => panic!("the old code must not validate: {other:?}"),
        }
    }

    #[test]
    fn wrong_codes_count_across_resends_and_lock_the_recipient() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        for _ in 0..3 {
            s.attempt(T0 + 1, &p, wrong);
        }
        // A resend sends the same code: its attempts keep counting too.
        assert_eq!(s.start(T0 + 2, &p, new("b", 300)).unwrap().id, "a");
        s.attempt(T0 + 3, &p, wrong);
        match s.attempt(T0 + 3, &p, wrong) {
            Attempt::Wrong {
                retry_after,
                attempts_left,
                ..
            } => assert_eq!((retry_after, attempts_left), (Some(60), 0)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.attempt(T0 + 4, &p, right),
            Attempt::Exhausted {
                retry_after: 59,
                ..
            }
        ));
        assert_eq!(
            s.start(T0 + 4, &p, new("c", 300)).unwrap_err(),
            Refusal::Locked { retry_after: 59 }
        );
        // After the lockout a fresh code works, and a success clears the count.
        s.start(T0 + 63, &p, new("c", 300)).unwrap();
        assert!(matches!(
            s.attempt(T0 + 64, &p, right),
            Attempt::Validated { .. }
        ));
        assert_eq!((s.failures, s.locked_until), (0, 0));
    }

    #[test]
    fn lockouts_double_up_to_the_cap() {
        let p = Policy::default();
        let steps: Vec<_> = (1..=60).filter_map(|f| p.lockout_after(f)).collect();
        assert_eq!(
            steps,
            [60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400, 14400, 14400]
        );
    }

    #[test]
    fn failure_count_is_forgotten_after_a_quiet_day() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        for _ in 0..4 {
            s.attempt(T0, &p, wrong);
        }
        s.start(T0 + p.failure_memory, &p, new("b", 300)).unwrap();
        assert_eq!(s.failures, 0);
    }

    #[test]
    fn at_most_five_sends_per_ten_minutes() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        for i in 0..5 {
            s.start(T0 + i * 10, &p, new(&format!("c{i}"), 300))
                .unwrap();
        }
        assert_eq!(
            s.start(T0 + 100, &p, new("x", 300)).unwrap_err(),
            Refusal::SendCap { retry_after: 500 }
        );
        s.start(T0 + 600, &p, new("y", 300)).unwrap();
    }

    #[test]
    fn link_sends_share_the_code_limits() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        for i in 0..4 {
            s.count_send(T0 + i, &p).unwrap();
        }
        s.start(T0 + 5, &p, new("a", 300)).unwrap();
        assert_eq!(
            s.count_send(T0 + 6, &p).unwrap_err(),
            Refusal::SendCap { retry_after: 594 }
        );
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("b", 300)).unwrap();
        for _ in 0..5 {
            s.attempt(T0 + 1, &p, wrong);
        }
        assert_eq!(
            s.count_send(T0 + 2, &p).unwrap_err(),
            Refusal::Locked { retry_after: 59 }
        );
    }

    #[test]
    fn resend_cooldown_is_enforced_when_configured() {
        let mut s = RecipientState::default();
        let p = Policy {
            resend_cooldown: 30,
            ..Policy::default()
        };
        s.start(T0, &p, new("a", 300)).unwrap();
        assert_eq!(
            s.start(T0 + 10, &p, new("b", 300)).unwrap_err(),
            Refusal::Cooldown { retry_after: 20 }
        );
        s.start(T0 + 30, &p, new("b", 300)).unwrap();
    }

    #[test]
    fn falling_back_gives_a_fresh_code_id_and_keeps_the_uuid() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        assert_eq!(s.get("a").unwrap().code_id(), "a");
        assert!(s.fall_back("a", T0 + 1, "twilio_sms"));
        let c = s.get("a").unwrap();
        assert_eq!(
            (c.code_id().as_str(), c.channel.as_deref()),
            ("a#1", Some("twilio_sms"))
        );
        assert!(s.mark_accepted("a", T0 + 2, "twilio_sms", Some("SM1".into())));
        assert_eq!(s.on_receipt("SM1", "delivered").as_deref(), Some("a"));
        assert_eq!(s.get("a").unwrap().receipt.as_deref(), Some("delivered"));
        assert_eq!(s.on_receipt("SM-unknown", "read"), None);
        // A failed receipt of the sent message: the next channel gets generation 2.
        assert!(s.fall_back("a", T0 + 3, "webhook"));
        assert_eq!(s.get("a").unwrap().status(T0 + 3), Status::Pending);
        assert_eq!(s.get("a").unwrap().code_id(), "a#2");
        // A resend carries the fallen-back code.
        assert_eq!(s.start(T0 + 4, &p, new("b", 300)).unwrap().code_id(), "a#2");
        s.start(T0 + 4, &p, new_other("b", 300)).unwrap();
        assert!(
            !s.fall_back("a", T0 + 5, "x"),
            "a superseded challenge stays closed"
        );
    }

    #[test]
    fn delivery_marks_only_open_challenges() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        assert!(s.mark_sent("a", T0 + 1));
        assert!(!s.mark_sent("a", T0 + 2), "sent once");
        assert_eq!(s.get("a").unwrap().status(T0 + 2), Status::Sent);
        s.start(T0 + 3, &p, new_other("b", 300)).unwrap();
        assert!(s.mark_undeliverable("b", T0 + 4, "no route"));
        assert_eq!(s.get("b").unwrap().status(T0 + 4), Status::Failed);
        assert!(!s.mark_sent("b", T0 + 5));
    }

    #[test]
    fn old_challenges_are_pruned() {
        let (mut s, mut p) = (RecipientState::default(), Policy::default());
        p.max_sends = 1000;
        for i in 0..40 {
            // Each code expires before the next send: every send is a new challenge.
            s.start(T0 + i, &p, new(&format!("c{i}"), 1)).unwrap();
        }
        assert!(s.challenges.len() <= MAX_KEPT);
        assert_eq!(s.challenges.last().unwrap().id, "c39");
        s.start(T0 + 60 + RETENTION + 100, &p, new("late", 60))
            .unwrap();
        assert_eq!(s.challenges.len(), 1);
    }

    /// The guarantee in docs/security.md: with the defaults, an attacker who controls
    /// request-code and validate-code for one number gets fewer than 100 guesses a day, so
    /// less than 1 chance in 10,000 of hitting a 6-digit code (each guess: 1 in 1,000,000).
    #[test]
    fn an_attacker_gets_fewer_than_100_guesses_a_day() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        let (mut now, mut guesses, mut n) = (T0, 0u32, 0u32);
        let end = T0 + 86_400;
        while now < end {
            if s.challenges.last().is_none_or(|c| !c.is_open(now)) {
                n += 1;
                match s.start(now, &p, new(&format!("c{n}"), 1800)) {
                    Ok(_) => {}
                    Err(r) => {
                        now += r.retry_after();
                        continue;
                    }
                }
            }
            match s.attempt(now, &p, wrong) {
                Attempt::Wrong { .. } => guesses += 1,
                Attempt::Locked { retry_after } => now += retry_after,
                other => panic!("{other:?}"),
            }
        }
        assert!(guesses < 100, "{guesses} guesses in a day");
        let chance = guesses as f64 / 1e6;
        assert!(chance < 1e-4, "{chance}");
    }

    /// The guesses an attacker gets on the first day (the worst: lockouts grow from there),
    /// for a code of `length` digits, and the chance they give of hitting it.
    fn first_day(length: u8) -> (u32, f64) {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        let spec = CodeSpec {
            length,
            alphabet: Alphabet::Digits,
        };
        let (mut now, mut guesses, mut n) = (T0, 0u32, 0u32);
        while now < T0 + 86_400 {
            if s.challenges.last().is_none_or(|c| !c.is_open(now)) {
                n += 1;
                let new = NewChallenge {
                    spec,
                    ..new(&format!("c{n}"), 1800)
                };
                if let Err(r) = s.start(now, &p, new) {
                    now += r.retry_after();
                    continue;
                }
            }
            match s.attempt(now, &p, wrong) {
                Attempt::Wrong { .. } => guesses += 1,
                Attempt::Locked { retry_after } => now += retry_after,
                other => panic!("{other:?}"),
            }
        }
        (guesses, f64::from(guesses) / 10f64.powi(i32::from(length)))
    }

    /// The bound per length in docs/security.md: lockouts grow as the code space shrinks.
    #[test]
    fn short_codes_get_longer_lockouts_and_the_bound_per_length_holds() {
        assert_eq!(first_day(6), (65, 65e-6));
        assert_eq!(first_day(8), (65, 65e-8));
        let (g5, c5) = first_day(5);
        let (g4, c4) = first_day(4);
        assert_eq!((g5, g4), (40, 20), "guesses on the first day");
        assert!(c5 <= 4e-4 && c4 <= 2e-3, "{c5} {c4}");
        let p = Policy::default();
        let digits = |length| CodeSpec {
            length,
            alphabet: Alphabet::Digits,
        };
        assert_eq!(p.lockout_for(5, digits(4)), Some(6_000));
        assert_eq!(p.lockout_for(5, digits(5)), Some(600));
        assert_eq!(p.lockout_for(5, digits(6)), Some(60));
        assert_eq!(
            p.lockout_for(
                5,
                CodeSpec {
                    length: 4,
                    alphabet: Alphabet::DigitsUpper
                }
            ),
            Some(60),
            "36^4 > 10^6"
        );
    }

    #[test]
    fn outcomes_read_back_as_written() {
        let (mut s, p) = (RecipientState::default(), Policy::default());
        s.start(T0, &p, new("a", 300)).unwrap();
        let challenge = s.get("a").unwrap().clone();
        let attempts = [
            Attempt::Validated {
                challenge: challenge.clone(),
            },
            Attempt::Wrong {
                challenge: challenge.clone(),
                attempts_left: 2,
                retry_after: None,
            },
            Attempt::Wrong {
                challenge: challenge.clone(),
                attempts_left: 0,
                retry_after: Some(900),
            },
            Attempt::NoActive,
            Attempt::AlreadyUsed {
                challenge: challenge.clone(),
            },
            Attempt::Expired {
                challenge: challenge.clone(),
            },
            Attempt::Exhausted {
                challenge,
                retry_after: 60,
            },
            Attempt::Locked { retry_after: 30 },
            Attempt::Superseded,
        ];
        for a in attempts {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<Attempt>(&json).unwrap(), a, "{json}");
        }
        for r in [
            Refusal::Locked { retry_after: 1 },
            Refusal::Cooldown { retry_after: 2 },
            Refusal::SendCap { retry_after: 3 },
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Refusal>(&json).unwrap(), r, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Refusal::SendCap { retry_after: 3 }).unwrap(),
            r#"{"reason":"send_cap","retry_after":3}"#
        );
        for bad in [
            r#"{"outcome":"validated"}"#,
            r#"{"outcome":"locked"}"#,
            r#"{"outcome":"nope"}"#,
        ] {
            assert!(serde_json::from_str::<Attempt>(bad).is_err(), "{bad}");
        }
    }
}
