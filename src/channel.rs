//! Delivery channels: one trait, an implementation per provider, chosen per instance.
//!
//! A message reaches a channel with its code still a `{code}` placeholder; only the
//! implementation that talks to the provider fills it in, so no queue or table holds a code.

use otp_core::config::{TwilioConfig, WhatsappConfig};
use otp_core::rules::template::render;
use otp_core::wire::webhook::{self, WebhookSecret};
use otp_core::wire::{meta, twilio};
use otp_core::Recipient;
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
    /// Hands the message to the provider; `Ok` means accepted for delivery, with the
    /// provider's message id when it gives one (to match delivery receipts).
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError>;
}

/// One HTTP request to a provider: `(status, body)`, or a retryable error for the network.
pub(crate) async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: String,
) -> Result<(u16, Vec<u8>), DeliveryError> {
    let attempt = async {
        let h = Headers::new();
        for (k, v) in headers {
            h.set(k, v)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(h)
            .with_body(Some(JsValue::from_str(&body)));
        let mut resp = Fetch::Request(Request::new_with_init(url, &init)?)
            .send()
            .await?;
        let status = resp.status_code();
        Ok::<_, worker::Error>((status, resp.bytes().await.unwrap_or_default()))
    };
    attempt
        .await
        .map_err(|e| DeliveryError::Retryable(format!("{url}: {e}")))
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
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError> {
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
        store()
            .map(|()| None)
            .map_err(|e| DeliveryError::Retryable(e.to_string()))
    }
}

/// Meta's WhatsApp Cloud API: `POST {api_base}/{version}/{phone_number_id}/messages` with the
/// instance's access token. Codes go as the configured authentication template (copy-code
/// button) or as text; link replies as text (the user has just written, so WhatsApp's
/// 24-hour window is open).
pub struct WhatsappCloud<'a> {
    pub config: &'a WhatsappConfig,
    pub access_token: &'a str,
}

impl Channel for WhatsappCloud<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError> {
        let body = match (&self.config.template, msg.code) {
            (Some(t), Some(code)) => {
                meta::template_message(msg.to.digits(), &t.name, &t.language, code)
            }
            _ => meta::text_message(msg.to.digits(), &msg.text()),
        };
        let url = format!(
            "{}/{}/{}/messages",
            self.config.api_base.trim_end_matches('/'),
            self.config.api_version,
            self.config.phone_number_id
        );
        let auth = format!("Bearer {}", self.access_token);
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        let (status, raw) = post(&url, &headers, body.to_string()).await?;
        if (200..300).contains(&status) {
            return Ok(meta::message_id(&raw));
        }
        let (code, message) = meta::send_error(&raw).unwrap_or((0, String::new()));
        let why = format!("whatsapp answered {status} (code {code}): {message}");
        Err(if meta::error_is_permanent(status, code) {
            DeliveryError::Permanent(why)
        } else {
            DeliveryError::Retryable(why)
        })
    }
}

/// Twilio's Messages API, SMS or WhatsApp: form-encoded, HTTP Basic auth. SMS codes end with
/// the WebOTP line (`@<domain> #<code>`) when the instance names its domain.
pub struct TwilioChannel<'a> {
    pub config: &'a TwilioConfig,
    pub auth_token: &'a str,
    pub whatsapp: bool,
    pub web_otp_domain: Option<&'a str>,
    /// Where Twilio posts delivery statuses (needs `PUBLIC_URL`).
    pub status_callback: Option<String>,
}

impl Channel for TwilioChannel<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError> {
        let from = if self.whatsapp {
            self.config.whatsapp_from.as_deref()
        } else {
            self.config.from.as_deref()
        }
        .ok_or_else(|| DeliveryError::Permanent("twilio sender is not configured".into()))?;
        let mut text = msg.text();
        if let (false, Some(code)) = (self.whatsapp, msg.code) {
            text = otp_core::rules::messages::with_webotp_line(&text, self.web_otp_domain, code);
        }
        let form = twilio::message_form(
            &msg.to.e164(),
            from,
            &text,
            self.status_callback.as_deref(),
            self.whatsapp,
        );
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_base.trim_end_matches('/'),
            self.config.account_sid
        );
        let basic = base64_basic(&self.config.account_sid, self.auth_token);
        let headers = [
            ("authorization", basic.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let (status, raw) = post(&url, &headers, twilio::form_encode(&form)).await?;
        if (200..300).contains(&status) {
            return Ok(twilio::message_sid(&raw));
        }
        let err = twilio::send_error(&raw);
        let why = format!(
            "twilio answered {status} (code {}): {}",
            err.as_ref().map(|e| e.0).unwrap_or_default(),
            err.as_ref().map(|e| e.1.as_str()).unwrap_or_default()
        );
        Err(if twilio::error_is_permanent(status, err.map(|e| e.0)) {
            DeliveryError::Permanent(why)
        } else {
            DeliveryError::Retryable(why)
        })
    }
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// "Bring your own sender": a POST of `{to, text, code, kind, challenge}` to the site's URL,
/// signed the Standard Webhooks way with the instance's `sender_secret`; 2xx means accepted.
pub struct WebhookSender<'a> {
    pub url: &'a str,
    pub secret: &'a WebhookSecret,
    pub kind: &'a str,
}

impl Channel for WebhookSender<'_> {
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            to: String,
            text: String,
            code: Option<&'a str>,
            kind: &'a str,
            challenge: &'a str,
        }
        let body = serde_json::to_string(&Body {
            to: msg.to.e164(),
            text: msg.text(),
            code: msg.code,
            kind: self.kind,
            challenge: msg.challenge_id,
        })
        .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let id = format!("msg_{}", msg.challenge_id.replace(['-', '#', ':'], "_"));
        let timestamp = crate::http::now();
        let signature = webhook::sign(self.secret, &id, timestamp, body.as_bytes());
        let ts = timestamp.to_string();
        let headers = [
            ("content-type", "application/json"),
            (webhook::HEADER_ID, id.as_str()),
            (webhook::HEADER_TIMESTAMP, ts.as_str()),
            (webhook::HEADER_SIGNATURE, signature.as_str()),
        ];
        let (status, _) = post(self.url, &headers, body).await?;
        match status {
            200..=299 => Ok(None),
            400..=499 if status != 408 && status != 429 => Err(DeliveryError::Permanent(format!(
                "sender webhook answered {status}"
            ))),
            _ => Err(DeliveryError::Retryable(format!(
                "sender webhook answered {status}"
            ))),
        }
    }
}
