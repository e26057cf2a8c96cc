//! The site's own sender: a signed webhook.

use super::{post, Channel, DeliveryError, Net, Outbound};
use otp_core::wire::webhook::{self, WebhookSecret};

/// "Bring your own sender": a POST of `{to, text, code, kind, challenge}` to the site's URL,
/// signed the Standard Webhooks way with the instance's `sender_secret`; 2xx means accepted.
pub struct WebhookSender<'a> {
    pub url: &'a str,
    pub secret: &'a WebhookSecret,
    pub kind: &'a str,
    pub net: Net,
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
        let timestamp = crate::clock::now();
        let signature = webhook::sign(self.secret, &id, timestamp, body.as_bytes());
        let ts = timestamp.to_string();
        let headers = [
            ("content-type", "application/json"),
            (webhook::HEADER_ID, id.as_str()),
            (webhook::HEADER_TIMESTAMP, ts.as_str()),
            (webhook::HEADER_SIGNATURE, signature.as_str()),
        ];
        let (status, _) = post(self.url, &headers, body, self.net).await?;
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
