//! Callbacks to the site, signed the Standard Webhooks way (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`). One attempt per call;
//! the caller's scheduler retries. Redirects are never followed, the URL is checked again
//! before every attempt, and each attempt has the outbound deadline (`Net`).

use super::{fetch_with_deadline, DeliveryError, Net};
use otp_core::url_guard::check_callback_url;
use otp_core::wire::webhook::{self, WebhookSecret};
use wasm_bindgen::JsValue;
use worker::{Headers, Method};

/// POSTs `body` to `url`, signed with `secret` under `webhook_id`; `Ok` on a 2xx answer.
pub async fn deliver(
    secret: &WebhookSecret,
    url: &str,
    webhook_id: &str,
    body: &str,
    net: Net,
) -> Result<(), DeliveryError> {
    // A URL that is not allowed is never retried; a network error or a non-2xx answer (a
    // redirect included) is.
    check_callback_url(url, net.allow_loopback)
        .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
    let timestamp = crate::clock::now();
    let signature = webhook::sign(secret, webhook_id, timestamp, body.as_bytes());
    let attempt = async {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        headers.set("user-agent", "edge-otp")?;
        headers.set(webhook::HEADER_ID, webhook_id)?;
        headers.set(webhook::HEADER_TIMESTAMP, &timestamp.to_string())?;
        headers.set(webhook::HEADER_SIGNATURE, &signature)?;
        let body = JsValue::from_str(body);
        let req = crate::outbound::request(Method::Post, url, Some(&headers), Some(&body), true)?;
        let (status, _) = fetch_with_deadline(req, net).await?;
        Ok::<u16, worker::Error>(status)
    };
    match attempt.await {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(DeliveryError::Retryable(format!(
            "callback answered {status}"
        ))),
        Err(e) => Err(DeliveryError::Retryable(format!(
            "callback failed: {}",
            super::describe_failure(url, net, &e)
        ))),
    }
}
