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

/// A webhook this deploy does not serve: an unknown instance, or a provider the instance has
/// no credential for (nothing could check the provider's signature).
fn not_served() -> Result<Response> {
    plain(404, "not found")
}

/// A configuration fault: named in the log, never in the answer (a webhook is public).
fn unavailable(problem: &config::ConfigProblem) -> Result<Response> {
    crate::log::Line::new("config.problem")
        .text("error", &problem.0)
        .error();
    plain(503, "temporarily unavailable")
}

/// The body, at most [`MAX_WEBHOOK_BODY`] bytes; otherwise the answer to send.
async fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, Result<Response>> {
    match super::request::bytes(req, MAX_WEBHOOK_BODY).await {
        Ok(body) => Ok(body),
        Err(outcome::Outcome::TooLarge) => Err(plain(413, "body too large")),
        Err(_) => Err(plain(400, "unreadable body")),
    }
}

/// Routes `/webhooks/{provider}/{instance}`. A provider is served for an instance only when
/// the instance holds the credential that checks that provider's signature
/// (`whatsapp_app_secret` and `whatsapp_verify_token`, `twilio_auth_token`); any other
/// instance answers 404, as an unknown one does. A body is read through the capped reader
/// before its signature is checked, and nothing else is read before the signature holds.
pub async fn handle(
    mut req: Request,
    env: &Env,
    provider: &str,
    instance: &str,
) -> Result<Response> {
    let inst = match config::instance(env, instance) {
        Ok(Some(i)) => i,
        Ok(None) => return not_served(),
        Err(p) => return unavailable(&p),
    };
    let secrets = match config::instance_secrets(env, &inst.id) {
        Ok(s) => s,
        Err(p) => return unavailable(&p),
    };
    let url = req.url()?;
    // Login links go where this service is mounted (under the middleware prefix, if any).
    let origin = config::service_base(env, &url);
    match (provider, req.method()) {
        ("whatsapp", Method::Get) => {
            let Some(expected) = secrets.whatsapp_verify_token.filter(|t| !t.is_empty()) else {
                return not_served();
            };
            let q = |k: &str| super::request::query(&url, k);
            match meta::handshake(
                q("hub.mode").as_deref(),
                q("hub.verify_token").as_deref(),
                q("hub.challenge").as_deref(),
                &expected,
            ) {
                Some(challenge) => plain(200, &challenge),
                None => plain(403, "verification failed"),
            }
        }
        ("whatsapp", Method::Post) => {
            let Some(app_secret) = secrets.whatsapp_app_secret else {
                return not_served();
            };
            let body = match read_body(&mut req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let signature = req.headers().get(meta::SIGNATURE_HEADER)?;
            if !meta::verify_signature(app_secret.as_bytes(), &body, signature.as_deref()) {
                return plain(401, "bad signature");
            }
            let Ok(events) = meta::parse_events(&body) else {
                return plain(400, "not a WhatsApp Cloud API event");
            };
            // One Meta app may hold several business numbers and send all their events to
            // every webhook URL it knows: with `whatsapp.phone_number_id` set, only that
            // number's events count here.
            let own = inst.whatsapp.as_ref().map(|w| w.phone_number_id.as_str());
            for event in events {
                let number = match &event {
                    MetaEvent::Text {
                        phone_number_id, ..
                    }
                    | MetaEvent::Status {
                        phone_number_id, ..
                    } => phone_number_id.as_str(),
                };
                if own.is_some_and(|own| own != number) {
                    let line = crate::log::Line::new("webhook.ignored").str("instance", &inst.id);
                    line.text("phone_number_id", number).info();
                    continue;
                }
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
                return not_served();
            };
            let raw = match read_body(&mut req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
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
                let whatsapp = from.strip_prefix("whatsapp:");
                if whatsapp.is_none() && !inst.link.allow_sms_claims {
                    // An SMS sender is easy to spoof: it claims no link unless the instance
                    // opts in (`link.allow_sms_claims`). Logged; the sender gets no answer.
                    if find_code(text).is_some() {
                        crate::log::Line::new("link.sms_claim_refused")
                            .str("instance", &inst.id)
                            .info();
                    }
                } else {
                    let sid = get("MessageSid").unwrap_or("");
                    let from = whatsapp.unwrap_or(from);
                    on_text(env, &inst.id, from, sid, text, &origin).await?;
                }
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
