//! What a browser meets: the widget API's rules, the edge middleware's paths and cookie, the one-time login link ids and the verification token.

pub mod client;
pub mod login;
pub mod middleware;
pub mod token;
pub mod widget;
