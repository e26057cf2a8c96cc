//! Delivery channels: one trait, an implementation per provider, chosen per instance.
//!
//! A message reaches a channel with its code still a `{code}` placeholder; only the
//! implementation that talks to the provider fills it in, so no queue or table holds a code.

use otp_core::Recipient;
use worker::SqlStorage;

/// One message to deliver.
pub struct Outbound<'a> {
    /// The recipient.
    pub to: &'a Recipient,
    /// The challenge it belongs to.
    pub challenge_id: &'a str,
    /// Text with every placeholder filled in except `{code}`.
    pub text_template: &'a str,
}

/// Why a delivery failed.
#[derive(Debug, Clone)]
pub enum DeliveryError {
    /// Worth another try later (timeouts, 5xx, rate limits).
    Retryable(String),
    /// Will never work (bad number, refused by the provider).
    #[allow(dead_code)]
    Permanent(String),
}

/// A way to deliver messages.
#[allow(async_fn_in_trait)]
pub trait Channel {
    /// Hands the message to the provider; `Ok` means accepted for delivery.
    async fn send(&self, msg: &Outbound<'_>) -> Result<(), DeliveryError>;
}

/// Development channel: messages are kept in the recipient's object (as their template, so
/// the table never holds a code) and shown by `GET /dev/outbox`. Nothing leaves the machine.
pub struct Outbox<'a> {
    pub sql: &'a SqlStorage,
    pub now: i64,
}

/// The outbox table.
pub const OUTBOX_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    text_template TEXT NOT NULL,
    created_at INTEGER NOT NULL
)";

/// Messages kept per recipient.
const OUTBOX_KEEP: i64 = 50;

impl Channel for Outbox<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<(), DeliveryError> {
        let store = || -> worker::Result<()> {
            self.sql.exec(
                "INSERT INTO outbox (recipient, challenge_id, text_template, created_at) VALUES (?, ?, ?, ?)",
                vec![
                    msg.to.digits().into(),
                    msg.challenge_id.into(),
                    msg.text_template.into(),
                    self.now.into(),
                ],
            )?;
            self.sql.exec(
                "DELETE FROM outbox WHERE id <= (SELECT MAX(id) FROM outbox) - ?",
                vec![OUTBOX_KEEP.into()],
            )?;
            Ok(())
        };
        store().map_err(|e| DeliveryError::Retryable(e.to_string()))
    }
}
