//! edge-otp's pure core: every rule of the service that can be stated without I/O.
//!
//! Nothing here reads a clock or a random number generator: callers pass `now` (Unix seconds)
//! and random bytes in, so each rule has a plain unit test and runs the same natively and in
//! Wasm (inside the Worker and the Durable Objects).

pub mod budget;
pub mod challenge;
pub mod code;
pub mod config;
pub mod country;
pub mod hypersender;
pub mod idempotency;
pub mod ids;
pub mod link;
pub mod link_state;
pub mod login;
mod mac;
pub mod messages;
pub mod meta;
pub mod middleware;
pub mod provider;
pub mod recipient;
pub mod schedule;
pub mod secret;
pub mod template;
pub mod time;
pub mod token;
pub mod twilio;
pub mod url_guard;
pub mod webhook;
pub mod whatotp;
pub mod widget;

pub use challenge::{Attempt, Challenge, Policy, RecipientState, Refusal, Status};
pub use code::{Alphabet, CodeSpec};
pub use recipient::Recipient;
pub use secret::Secret;
