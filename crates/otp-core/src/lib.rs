//! edge-otp's pure core: every rule of the service that can be stated without I/O.
//!
//! Nothing here reads a clock or a random number generator: callers pass `now` (Unix seconds)
//! and random bytes in, so each rule has a plain unit test and runs the same natively and in
//! Wasm (inside the Worker and the Durable Objects).

pub mod config;
pub mod ids;
pub mod json;
pub mod mac;
pub mod rules;
pub mod secret;
pub mod telemetry;
pub mod time;
pub mod url_guard;
pub mod web;
pub mod wire;

pub use rules::challenge::{Attempt, Challenge, Policy, RecipientState, Refusal, Status};
pub use rules::code::{Alphabet, CodeSpec};
pub use rules::recipient::Recipient;
pub use secret::Secret;
