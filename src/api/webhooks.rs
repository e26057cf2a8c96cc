//! Inbound provider webhooks, the URLs a site owner pastes into Meta's and Twilio's consoles:
//! `/webhooks/whatsapp/{instance}` (Cloud API handshake and `X-Hub-Signature-256`-signed
//! events) and `/webhooks/twilio/{instance}` (`X-Twilio-Signature`-signed form posts). A bad or
//! missing signature is refused before anything is read or changed. Text messages carrying
//! a link code are handed to that link's Durable Object, which deduplicates redeliveries.

use super::outcome;
use crate::config;
use crate::store::link::{self, InboundMsg};
use crate::store::recipient::{ReceiptMsg, Recipients};
use otp_core::rules::link::find_code;
use otp_core::wire::meta::{self, MetaEvent};
use otp_core::Recipient;
use worker::{Env, Method, Request, Response, Result};

/// Largest webhook body accepted, in bytes (Meta batches at most a few KB of events).
const MAX_WEBHOOK_BODY: usize = 256 * 1024;

fn plain(status: u16, text: &str) -> Result<Response> {
    let mut resp = Response::ok(text)?.with_status(status);
    resp.headers_mut()
        .set("content-type", "text/plain; charset=utf-8")?;
    Ok(resp)
}

/// Routes `/webhooks/{provider}/{instance}`.
pub async fn handle(
    mut req: Request,
    env: &Env,
    provider: &str,
    instance: &str,
) -> Result<Response> {
    let inst = match config::instance(env, instance) {
        Ok(i) => i,
        Err(p) => return plain(503, &p.0),
    };
    let Some(inst) = inst else {
        return plain(404, "unknown instance");
    };
    let secrets = match config::instance_secrets(env, &inst.id) {
        Ok(s) => s,
        Err(p) => return plain(503, &p.0),
    };
    let url = req.url()?;
    // Login links go where this service is mounted (under the middleware prefix, if any).
    let origin = config::service_base(env, &url);
    match (provider, req.method()) {
        ("whatsapp", Method::Get) => {
            let q = |k: &str| super::request::query(&url, k);
            let expected = secrets.whatsapp_verify_token.unwrap_or_default();
            match meta::handshake(
                q("hub.mode").as_deref(),
                q("hub.verify_token").as_deref(),
                q("hub.challenge").as_deref(),
                &expected,
            ) {
                Some(challenge) if !expected.is_empty() => plain(200, &challenge),
                _ => plain(403, "verification failed"),
            }
        }
        ("whatsapp", Method::Post) => {
            let Some(app_secret) = secrets.whatsapp_app_secret else {
                return plain(
                    503,
                    "INSTANCE_SECRETS has no whatsapp_app_secret for this instance",
                );
            };
            let body = req.bytes().await?;
            if body.len() > MAX_WEBHOOK_BODY {
                return plain(413, "body too large");
            }
            let signature = req.headers().get(meta::SIGNATURE_HEADER)?;
            if !meta::verify_signature(app_secret.as_bytes(), &body, signature.as_deref()) {
                return plain(401, "bad signature");
            }
            let Ok(events) = meta::parse_events(&body) else {
                return plain(400, "not a WhatsApp Cloud API event");
            };
            for event in events {
                match event {
                    MetaEvent::Text { id, from, body, .. } => {
                        on_text(env, &inst.id, &from, &id, &body, &origin).await?;
                    }
                    MetaEvent::Status {
                        id,
                        status,
                        recipient_id,
                        error,
                        ..
                    } => {
                        on_status(env, &inst.id, &recipient_id, &id, &status, error).await?;
                    }
                }
            }
            plain(200, "ok")
        }
        ("twilio", Method::Post) => {
            let Some(token) = secrets.twilio_auth_token else {
                return plain(
                    503,
                    "INSTANCE_SECRETS has no twilio_auth_token for this instance",
                );
            };
            let raw = req.bytes().await?;
            if raw.len() > MAX_WEBHOOK_BODY {
                return plain(413, "body too large");
            }
            let params: Vec<(String, String)> =
                url::form_urlencoded::parse(&raw).into_owned().collect();
            let signed_url = match config::var(env, "PUBLIC_URL") {
                Some(base) => format!(
                    "{}{}",
                    base.trim_end_matches('/'),
                    &url[url::Position::BeforePath..]
                ),
                None => url.to_string(),
            };
            let signature = req
                .headers()
                .get(otp_core::wire::twilio::SIGNATURE_HEADER)?;
            if !otp_core::wire::twilio::verify(
                token.as_bytes(),
                &signed_url,
                &params,
                signature.as_deref(),
            ) {
                return plain(401, "bad signature");
            }
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            if let (Some(status), None, Some(to), Some(sid)) = (
                get("MessageStatus").or(get("SmsStatus")),
                get("Body"),
                get("To"),
                get("MessageSid"),
            ) {
                // A status callback for a message we sent.
                let to = to.strip_prefix("whatsapp:").unwrap_or(to);
                let error = get("ErrorCode").map(|c| format!("twilio {c}"));
                on_status(env, &inst.id, to, sid, status, error).await?;
            } else if let (Some(from), Some(text)) = (get("From"), get("Body")) {
                let from = from.strip_prefix("whatsapp:").unwrap_or(from);
                on_text(
                    env,
                    &inst.id,
                    from,
                    get("MessageSid").unwrap_or(""),
                    text,
                    &origin,
                )
                .await?;
            }
            let mut resp = Response::ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>")?;
            resp.headers_mut().set("content-type", "text/xml")?;
            Ok(resp)
        }
        _ => outcome::not_found(),
    }
}

/// A delivery status for message `provider_id` sent to `to`: the recipient's object updates
/// the challenge that message carried (receipts for unknown ids change nothing).
async fn on_status(
    env: &Env,
    instance: &str,
    to: &str,
    provider_id: &str,
    status: &str,
    error: Option<String>,
) -> Result<()> {
    let normalized = match status {
        "delivered" | "read" | "sent" => status,
        "failed" | "undelivered" => "failed",
        _ => return Ok(()),
    };
    let Ok(recipient) = Recipient::parse(to) else {
        return Ok(());
    };
    let msg = ReceiptMsg {
        provider_id: provider_id.into(),
        status: normalized.into(),
        error,
    };
    Recipients::new(env)
        .receipt(instance, &recipient, &msg)
        .await
}

/// A text from `from`: if it carries a link code, the link's object decides what it means.
async fn on_text(
    env: &Env,
    instance: &str,
    from: &str,
    msg_id: &str,
    text: &str,
    origin: &str,
) -> Result<()> {
    let (Some(code), Ok(sender)) = (find_code(text), Recipient::parse(from)) else {
        return Ok(());
    };
    let msg = InboundMsg {
        from: sender.digits().into(),
        msg_id: msg_id.into(),
        text: text.into(),
        origin: origin.into(),
    };
    link::inbound(env, instance, code, &msg).await
}
