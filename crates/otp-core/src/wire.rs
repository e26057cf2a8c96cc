//! The formats spoken on the wire: the Hypersender and WhatOTP request rules, the Meta and Twilio webhooks and answers, and Standard Webhooks signatures for callbacks.

pub mod hypersender;
pub mod meta;
pub mod provider;
pub mod twilio;
pub mod webhook;
pub mod whatotp;
