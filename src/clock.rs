//! The Worker's clock: Unix time as the Workers runtime reports it.
//!
//! A dev build can move it forward (`POST /dev/clock`, only when the Worker runs with
//! `DEV_CLOCK = "manual"`), so tests of expiry need not wait a minute: every reading in the
//! Worker and its Durable Objects (one isolate locally) is then that much later, and the
//! objects' alarms wake at least every second to notice. The deploy build has no offset.
//!
//! May import: `worker` only.

#[cfg(feature = "dev")]
use std::sync::atomic::{AtomicI64, Ordering};

#[cfg(feature = "dev")]
static OFFSET_SECS: AtomicI64 = AtomicI64::new(0);

/// Current time in Unix seconds.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    let real = worker::Date::now().as_millis() as i64;
    #[cfg(feature = "dev")]
    let real = real + OFFSET_SECS.load(Ordering::Relaxed) * 1000;
    real
}

/// Moves the dev clock forward by `secs`; returns the total offset.
#[cfg(feature = "dev")]
pub fn advance(secs: i64) -> i64 {
    OFFSET_SECS.fetch_add(secs, Ordering::Relaxed) + secs
}

/// The longest an alarm may sleep: a second while the dev clock is manual (so a moved clock
/// is noticed), otherwise unbounded.
pub fn alarm_cap_ms(env: &worker::Env) -> Option<i64> {
    #[cfg(feature = "dev")]
    if env
        .var("DEV_CLOCK")
        .is_ok_and(|v| v.to_string() == "manual")
    {
        return Some(1000);
    }
    let _ = env;
    None
}
