//! The development channel: messages are kept in the recipient's object (as their template,
//! so the table never holds a code) with their kind (`text`, `cta_url`, `template`: what a
//! WhatsApp channel would have sent) and shown by `GET /dev/outbox`. Nothing leaves the machine.

use super::{Channel, DeliveryError, Outbound};
use worker::SqlStorage;

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
    created_at INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'text'
)";

/// Messages kept per recipient.
const OUTBOX_KEEP: i64 = 50;

impl Channel for Outbox<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError> {
        let store = || -> worker::Result<()> {
            #[derive(serde::Deserialize)]
            struct Id {
                id: f64,
            }
            let insert = || {
                self.sql.exec(
                    "INSERT INTO outbox (recipient, challenge_id, text_template, created_at, kind) VALUES (?, ?, ?, ?, ?) RETURNING id",
                    vec![
                        msg.to.digits().into(),
                        msg.challenge_id.into(),
                        msg.text_template.into(),
                        self.now.into(),
                        msg.form.kind().into(),
                    ],
                )
            };
            // An outbox kept from before messages had a kind gets the column on first use.
            let inserted = insert().or_else(|_| {
                self.sql.exec(
                    "ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'text'",
                    None,
                )?;
                insert()
            });
            let row: Id = inserted?.one()?;
            // Trim now and then, not on every message.
            let id = row.id as i64;
            if id % 10 == 0 {
                self.sql.exec(
                    "DELETE FROM outbox WHERE id <= ?",
                    vec![(id - OUTBOX_KEEP).into()],
                )?;
            }
            Ok(())
        };
        store()
            .map(|()| None)
            .map_err(|e| DeliveryError::Retryable(e.to_string()))
    }
}
