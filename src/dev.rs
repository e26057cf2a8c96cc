//! Dev-only routes, compiled only with the `dev` cargo feature (never in the deploy build):
//! `GET /dev/outbox?to=` shows what a phone would have received, `GET /dev/info` hands the
//! demo page the demo instance's id and dev API token. They answer only requests addressed to
//! a loopback host, and refuse to run when any instance has a real channel.

use crate::http;
use crate::service;
use crate::store::{OutboxMessage, Recipients};
use otp_core::Recipient;
use serde_json::json;
use worker::{Env, Request, Response, Result};

/// The plain dev API token of the demo instance (its hash is in `API_TOKENS`).
const DEV_TOKEN_VAR: &str = "DEV_API_TOKEN";

fn refuse(status: u16, message: &str) -> Result<Response> {
    http::json(status, &json!({"error": message}), &[])
}

pub async fn handle(req: Request, env: &Env, rest: &str) -> Result<Response> {
    if !http::is_loopback(&req) {
        return refuse(403, "dev routes answer only on a loopback host");
    }
    let config = match service::instances(env) {
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
    match rest {
        "info" => {
            let Some(demo) = outbox_instances.first() else {
                return refuse(404, "no outbox instance is configured");
            };
            let token = env.var(DEV_TOKEN_VAR).map(|v| v.to_string()).ok();
            let secrets = service::instance_secrets(env, &demo.id).unwrap_or_default();
            http::json(
                200,
                &json!({
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
                    "token_kid": demo.token_kid,
                    "token_key": secrets.token_keys.get(&demo.token_kid),
                    "publishable_key": demo.widget.as_ref().map(|w| &w.publishable_key),
                }),
                &[],
            )
        }
        "outbox" => {
            let url = req.url()?;
            let to = url
                .query_pairs()
                .find(|(k, _)| k == "to")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let Ok(recipient) = Recipient::parse(&to) else {
                return refuse(
                    422,
                    "query parameter `to` must be a phone number or chat id",
                );
            };
            if let Err(p) = service::pepper(env) {
                return refuse(503, &p.0);
            }
            let mut all: Vec<OutboxMessage> = Vec::new();
            for inst in outbox_instances {
                all.extend(Recipients::new(env).outbox(&inst.id, &recipient).await?);
            }
            all.sort_by(|a, b| b.created_at.cmp(&a.created_at));
            http::json(200, &all, &[])
        }
        _ => http::not_found(),
    }
}
