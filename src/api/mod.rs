//! Who asks: one module per API surface, each parsing its requests, calling the store once and
//! writing the answer through its renderer of the one [`outcome::Outcome`] type.
//!
//! - [`hypersender`]: the Hypersender OTP API v2 (`/api/otp/v2/{instance}/…`)
//! - [`whatotp`]: the WhatOTP API (`/v1/…`)
//! - [`widget`]: the widget API for browsers (`/widget/v1/…`)
//! - [`webhooks`]: inbound provider webhooks (`/webhooks/{whatsapp,twilio}/{instance}`)
//! - [`login`]: the one-time login link (`/login/{token}`)
//! - [`middleware`]: the edge middleware in front of a site
//! - [`wellknown`]: the public keys of the verification tokens (`/.well-known/…`)
//! - [`ops`]: the operator's deep health check (`/health/deep`) and page (`/_otp/admin`)
//! - `dev`: dev-only routes (the `dev` feature)
//!
//! Shared by the surfaces, and surfaces themselves never: [`request`] (bounded bodies, bearer
//! tokens, client address, rate limits, idempotent sends), [`outcome`] (the one failure type
//! and its renderers), [`tokens`] (verification tokens).
//!
//! May import: `crate::store`, `crate::channels`, `crate::config`, `crate::clock`, `crate::keys`,
//! `crate::log`, `otp-core`.
//! A surface never imports another surface; nothing below `api` imports it.

#[cfg(feature = "dev")]
pub mod dev;
pub mod hypersender;
pub mod login;
pub mod middleware;
pub mod ops;
pub mod outcome;
pub mod request;
pub mod tokens;
pub mod webhooks;
pub mod wellknown;
pub mod whatotp;
pub mod widget;
