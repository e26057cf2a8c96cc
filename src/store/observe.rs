//! The code flow's emission points, each one call from the recipient object: it writes the
//! event's log line (`crate::log`: ids, channel, outcome, latency, the masked number; never a
//! code) and counts it in the instance's metrics (`metrics::code`). Event names and fields:
//! docs/operations.md.

use super::metrics;
use crate::channels::{self, DeliveryError, Outbound};
use crate::log::Line;
use otp_core::config::InstanceConfig;
use otp_core::rules::challenge::{Attempt, Challenge, Refusal};
use otp_core::telemetry::CodeEvent;
use worker::Env;

/// The channel a challenge's code goes through, as logs and metrics name it.
pub fn channel(c: &Challenge, inst: &InstanceConfig) -> &'static str {
    if c.options.fixed_code.is_some() {
        "test_number"
    } else if c.options.test {
        "outbox"
    } else {
        channels::current_channel(c, &inst.chain()).as_str()
    }
}

/// A start: a code issued (`code.sent`) or refused by the recipient's limits (`code.refused`).
pub fn started(
    env: &Env,
    inst: &InstanceConfig,
    digits: &str,
    result: &Result<Challenge, Refusal>,
) {
    let line = Line::new("code.sent").str("instance", &inst.id).to(digits);
    match result {
        Ok(c) => {
            let ch = channel(c, inst);
            line.str("challenge", &c.id)
                .str("channel", ch)
                .str("outcome", "queued")
                .info();
            metrics::code(env, &inst.id, CodeEvent::Sent, ch, digits, 0);
        }
        Err(refusal) => {
            let why = match refusal {
                Refusal::Locked { .. } => "locked",
                Refusal::Cooldown { .. } => "cooldown",
                Refusal::SendCap { .. } => "send_cap",
            };
            line.str("outcome", why)
                .num("retry_after", refusal.retry_after())
                .info();
        }
    }
}

/// One hand-over of `msg` to a provider (`delivery`): accepted, or failed with the provider's
/// status and its scrubbed answer; a code (`challenge`) or a free-text message (`message`, its
/// key). `started_ms` is when the hand-over began. A code accepted counts as `delivered`.
pub fn delivery(
    env: &Env,
    instance: &str,
    channel: &str,
    msg: &Outbound<'_>,
    started_ms: i64,
    result: &Result<Option<String>, DeliveryError>,
) {
    let (code, job, digits) = (msg.code.is_some(), msg.challenge_id, msg.to.digits());
    let line = Line::new("delivery")
        .str("instance", instance)
        .str(if code { "challenge" } else { "message" }, job)
        .str("channel", channel)
        .to(digits)
        .num("latency_ms", crate::clock::now_ms() - started_ms);
    match result {
        Ok(_) => {
            line.str("outcome", "accepted").info();
            if code {
                metrics::code(env, instance, CodeEvent::Delivered, channel, digits, 0);
            }
        }
        Err(e) => {
            let (outcome, why) = match e {
                DeliveryError::Retryable(why) => ("retry", why),
                DeliveryError::Permanent(why) => ("refused", why),
            };
            let line = match otp_core::telemetry::status_of(why) {
                Some(status) => line.num("status", i64::from(status)),
                None => line,
            };
            line.str("outcome", outcome).text("error", why).error();
        }
    }
}

/// A provider's delivery receipt for challenge `challenge` (`delivery.receipt`): its status
/// (`sent`, `delivered`, `read`, `failed`) and, for a failure, its scrubbed reason.
pub fn receipt(challenge: &str, msg: &super::recipient::ReceiptMsg) {
    let line = Line::new("delivery.receipt").str("challenge", challenge);
    let line = line.str("status", &msg.status);
    match &msg.error {
        Some(why) => line.text("error", why).error(),
        None => line.info(),
    }
}

/// A code's delivery that failed for good on `channel`: moved on to `next`
/// (`code.fallback`), or given up at the end of the chain (`code.failed`).
pub fn gave_up(
    env: &Env,
    (instance, challenge): (&str, &str),
    channel: &str,
    next: Option<&str>,
    digits: &str,
    why: &str,
) {
    let (event, metric) = match next {
        Some(_) => ("code.fallback", CodeEvent::Fallback),
        None => ("code.failed", CodeEvent::Failed),
    };
    let line = Line::new(event)
        .str("instance", instance)
        .str("challenge", challenge)
        .str("channel", channel)
        .to(digits);
    let line = match next {
        Some(next) => line.str("next", next),
        None => line,
    };
    line.text("error", why).error();
    metrics::code(env, instance, metric, channel, digits, 0);
}

/// An attempt at a code (`code.attempt`): its outcome; right ones count as `verified` with
/// their time to verify, wrong ones as `wrong`, and one that starts a lockout as `lockout`.
pub fn attempted(env: &Env, inst: &InstanceConfig, digits: &str, outcome: &Attempt, now: i64) {
    let line = Line::new("code.attempt")
        .str("instance", &inst.id)
        .to(digits);
    let (name, challenge) = match outcome {
        Attempt::Validated { challenge } => ("verified", Some(challenge)),
        Attempt::Wrong { challenge, .. } => ("wrong", Some(challenge)),
        Attempt::NoActive => ("no_active", None),
        Attempt::AlreadyUsed { challenge } => ("already_used", Some(challenge)),
        Attempt::Expired { challenge } => ("expired", Some(challenge)),
        Attempt::Exhausted { challenge, .. } => ("exhausted", Some(challenge)),
        Attempt::Locked { .. } => ("locked", None),
        Attempt::Superseded => ("superseded", None),
    };
    let Some(c) = challenge else {
        return line.str("outcome", name).info();
    };
    let ch = channel(c, inst);
    let seconds = now - c.created_at;
    let line = line
        .str("challenge", &c.id)
        .str("channel", ch)
        .str("outcome", name);
    match outcome {
        Attempt::Validated { .. } => {
            line.num("seconds_to_verify", seconds).info();
            metrics::code(env, &inst.id, CodeEvent::Verified, ch, digits, seconds);
        }
        Attempt::Wrong {
            retry_after,
            attempts_left,
            ..
        } => {
            line.num("attempts_left", i64::from(*attempts_left)).info();
            metrics::code(env, &inst.id, CodeEvent::Wrong, ch, digits, 0);
            if retry_after.is_some() {
                metrics::code(env, &inst.id, CodeEvent::Lockout, ch, digits, 0);
            }
        }
        _ => line.info(),
    }
}
