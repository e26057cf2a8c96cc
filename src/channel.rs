//! Delivery channels: one trait, an implementation per provider, chosen per instance.
//!
//! A message reaches a channel with its code still a `{code}` placeholder; only the
//! implementation that talks to the provider fills it in, so no queue or table holds a code.

use otp_core::config::WhatsappConfig;
use otp_core::template::render;
use otp_core::Recipient;
use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, Request, RequestInit, SqlStorage};

/// One message to deliver.
pub struct Outbound<'a> {
    /// The recipient.
    pub to: &'a Recipient,
    /// The challenge it belongs to.
    pub challenge_id: &'a str,
    /// Text with every placeholder filled in except `{code}`.
    pub text_template: &'a str,
    /// The code, derived just before sending; `None` for messages without one (link replies).
    pub code: Option<&'a str>,
}

impl Outbound<'_> {
    /// The text as the phone shows it.
    pub fn text(&self) -> String {
        match self.code {
            Some(code) => render(self.text_template, &[("code", code)]),
            None => self.text_template.to_owned(),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone)]
pub enum DeliveryError {
    /// Worth another try later (timeouts, 5xx, rate limits).
    Retryable(String),
    /// Will never work (bad number, refused by the provider).
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
            #[derive(serde::Deserialize)]
            struct Id {
                id: f64,
            }
            let row: Id = self
                .sql
                .exec(
                    "INSERT INTO outbox (recipient, challenge_id, text_template, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                    vec![
                        msg.to.digits().into(),
                        msg.challenge_id.into(),
                        msg.text_template.into(),
                        self.now.into(),
                    ],
                )?
                .one()?;
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
        store().map_err(|e| DeliveryError::Retryable(e.to_string()))
    }
}

/// Meta's WhatsApp Cloud API: `POST {api_base}/{version}/{phone_number_id}/messages` with the
/// instance's access token. Codes and replies go as text messages (the link flow's replies
/// answer a message the user just sent, inside WhatsApp's 24-hour window).
pub struct WhatsappCloud<'a> {
    pub config: &'a WhatsappConfig,
    pub access_token: &'a str,
}

#[derive(Deserialize)]
struct GraphError {
    error: GraphErrorBody,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i64,
}

impl WhatsappCloud<'_> {
    fn url(&self) -> String {
        format!(
            "{}/{}/{}/messages",
            self.config.api_base.trim_end_matches('/'),
            self.config.api_version,
            self.config.phone_number_id
        )
    }
}

/// Graph API error codes worth retrying: rate limits and temporary failures.
fn graph_error_is_temporary(status: u16, code: i64) -> bool {
    status >= 500
        || status == 429
        || matches!(
            code,
            1 | 2 | 4 | 80007 | 130429 | 131000 | 131016 | 131056 | 133004
        )
}

impl Channel for WhatsappCloud<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<(), DeliveryError> {
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.to.digits(),
            "type": "text",
            "text": {"preview_url": false, "body": msg.text()},
        });
        let send = async {
            let headers = Headers::new();
            headers.set("authorization", &format!("Bearer {}", self.access_token))?;
            headers.set("content-type", "application/json")?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_headers(headers)
                .with_body(Some(JsValue::from_str(&body.to_string())));
            let mut resp = Fetch::Request(Request::new_with_init(&self.url(), &init)?)
                .send()
                .await?;
            let status = resp.status_code();
            let text = resp.text().await.unwrap_or_default();
            Ok::<_, worker::Error>((status, text))
        };
        let (status, text) = send
            .await
            .map_err(|e| DeliveryError::Retryable(format!("whatsapp: {e}")))?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let (code, message) = serde_json::from_str::<GraphError>(&text)
            .map(|e| (e.error.code, e.error.message))
            .unwrap_or((0, String::new()));
        let why = format!("whatsapp answered {status} (code {code}): {message}");
        if graph_error_is_temporary(status, code) {
            Err(DeliveryError::Retryable(why))
        } else {
            Err(DeliveryError::Permanent(why))
        }
    }
}
