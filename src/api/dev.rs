//! Dev-only routes, compiled only with the `dev` cargo feature (never in the deploy build):
//! `GET /dev/outbox?to=` shows what a phone would have received, `GET /dev/info` hands the
//! demo page the demo instance's id and dev API token, and `POST /dev/clock` moves the clock
//! forward when the Worker runs with `DEV_CLOCK = "manual"` (tests of expiry). They answer only
//! requests addressed to a loopback host, and refuse to run when any instance has a real channel.

use super::outcome;
use super::request::{self, json};
use crate::config;
use crate::store::recipient::{OutboxMessage, Recipients};
use otp_core::Recipient;
use worker::{Env, Method, Request, Response, Result};

/// The plain dev API token of the demo instance (its hash is in `API_TOKENS`).
const DEV_TOKEN_VAR: &str = "DEV_API_TOKEN";

fn refuse(status: u16, message: &str) -> Result<Response> {
    json(status, &serde_json::json!({"error": message}), &[])
}

pub async fn handle(mut req: Request, env: &Env, rest: &[&str]) -> Result<Response> {
    if !request::is_loopback(&req) {
        return refuse(403, "dev routes answer only on a loopback host");
    }
    // The clock hands out nothing: it runs beside real channels too (the expiry tests fake a
    // WhatsApp provider), but only in a dev build started with `DEV_CLOCK = "manual"`.
    if let (Method::Post, ["clock"]) = (req.method(), rest) {
        return advance_clock(&mut req, env).await;
    }
    let config = match config::instances(env) {
        Ok(c) => c,
        Err(p) => return refuse(503, &p.0),
    };
    if config.instances.iter().any(|i| i.has_real_channel()) {
        return refuse(
            403,
            "dev routes are disabled while an instance has a real channel",
        );
    }
    let outbox_instances: Vec<_> = config.instances.iter().collect();
    match (req.method(), rest) {
        (Method::Get, ["info"]) => {
            let Some(demo) = outbox_instances.first() else {
                return refuse(404, "no outbox instance is configured");
            };
            let token = env.var(DEV_TOKEN_VAR).map(|v| v.to_string()).ok();
            let secrets = config::instance_secrets(env, &demo.id).unwrap_or_default();
            json(
                200,
                &serde_json::json!({
                    "instance": demo.id,
                    "name": demo.name,
                    "api_token": token,
                    "whatotp_key": env.var("DEV_WHATOTP_KEY").map(|v| v.to_string()).ok(),
                    "channel": demo.channel.as_str(),
                    "whatsapp_number": demo.business_number,
                    "whatsapp_phone_number_id": demo.whatsapp.as_ref().map(|w| &w.phone_number_id),
                    "whatsapp_app_secret": secrets.whatsapp_app_secret,
                    "whatsapp_verify_token": secrets.whatsapp_verify_token,
                    "webhook_secret": secrets.webhook_secret,
                    "token_alg": demo.token_alg.as_str(),
                    "token_kid": demo.token_kid,
                    // A shared key exists only for an instance that opted into HS256; an ES256
                    // token is checked against the public JWKS, as any backend does.
                    "token_key": match demo.token_alg {
                        otp_core::web::token::Alg::Hs256 => secrets.token_keys.get(&demo.token_kid),
                        otp_core::web::token::Alg::Es256 => None,
                    },
                    "publishable_key": demo.widget.as_ref().map(|w| &w.publishable_key),
                    // `template_id`s of `POST /v1/messages/send`: the built-in one, then the demo's.
                    "template_ids": std::iter::once("text")
                        .chain(demo.templates.keys().map(String::as_str))
                        .collect::<Vec<_>>(),
                }),
                &[],
            )
        }
        (Method::Get, ["outbox"]) => {
            let url = req.url()?;
            let to = request::query(&url, "to").unwrap_or_default();
            let Ok(recipient) = Recipient::parse(&to) else {
                return refuse(
                    422,
                    "query parameter `to` must be a phone number or chat id",
                );
            };
            if let Err(p) = config::pepper(env) {
                return refuse(503, &p.0);
            }
            let mut all: Vec<OutboxMessage> = Vec::new();
            for inst in outbox_instances {
                all.extend(Recipients::new(env).outbox(&inst.id, &recipient).await?);
            }
            all.sort_by(|a, b| b.created_at.cmp(&a.created_at));
            json(200, &all, &[])
        }
        _ => outcome::not_found(),
    }
}

/// Whether this Worker runs with a movable clock (`DEV_CLOCK = "manual"`).
fn manual_clock(env: &Env) -> bool {
    crate::clock::alarm_cap_ms(env).is_some()
}

/// `POST /dev/clock {"advance_seconds": N}`: moves the Worker's clock forward.
async fn advance_clock(req: &mut Request, env: &Env) -> Result<Response> {
    #[derive(serde::Deserialize)]
    struct Advance {
        advance_seconds: i64,
    }
    if !manual_clock(env) {
        return outcome::not_found();
    }
    let Ok(body) = req.json::<Advance>().await else {
        return refuse(422, "body must be {\"advance_seconds\": N}");
    };
    if !(0..=86_400 * 30).contains(&body.advance_seconds) {
        return refuse(422, "advance_seconds must be 0 to 30 days");
    }
    let total = crate::clock::advance(body.advance_seconds);
    json(200, &serde_json::json!({ "offset_seconds": total }), &[])
}
