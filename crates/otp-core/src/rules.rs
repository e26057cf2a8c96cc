//! The service's rules: codes and their derivation, the challenge and link state machines, per-recipient limits, budgets, idempotency, retry timing, message texts and country prefixes.

pub mod budget;
pub mod challenge;
pub mod code;
pub mod country;
pub mod idempotency;
pub mod link;
pub mod link_state;
pub mod messages;
pub mod recipient;
pub mod schedule;
pub mod template;
