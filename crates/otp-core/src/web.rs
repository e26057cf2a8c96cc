//! What a browser meets: the operator page's session, the widget API's rules, the edge middleware's paths and cookie, the one-time login link ids and the verification token.

pub mod admin;
pub mod client;
pub mod login;
pub mod middleware;
pub mod token;
pub mod widget;
