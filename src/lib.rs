//! edge-otp's Worker: the entry point, the mount decision (plain service or edge middleware)
//! and the router. The parts, each in its folder, with arrows one way (api -> store ->
//! channels -> otp-core; config and clock are read by all):
//!
//! - `api/`: who asks. One module per API surface, and the one outcome type they render.
//! - `store/`: who decides and remembers. The Durable Objects, KV records, typed object calls,
//!   and the one job runner.
//! - `channels/`: who delivers. Providers, the choice of channel, site callbacks.
//! - `config`, `clock`: the deploy's settings and secrets; the time.
//! - `keys`: the ES256 signing keys, held by the runtime's WebCrypto.
//! - `log`: the structured log, one JSON object per event (docs/operations.md).
//!
//! Nothing below this module calls back into it.

mod api;
mod channels;
mod clock;
mod config;
mod keys;
mod log;
mod outbound;
mod store;

pub use store::budget::BudgetObject;
pub use store::idempotency::IdempotencyObject;
pub use store::link::LinkObject;
pub use store::metrics::MetricsObject;
pub use store::recipient::RecipientObject;

use api::middleware::{self, Routed};
use api::{hypersender, login, ops, outcome, webhooks, wellknown, whatotp, widget};
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    // With `MIDDLEWARE` set the Worker fronts a site: the service moves under its prefix (or
    // hostname) and every other path belongs to the site (api/middleware.rs).
    match config::middleware(&env) {
        Ok(Some(cfg)) => match middleware::handle(req, &env, &cfg).await? {
            Routed::Service(req, path) => service_route(req, &env, &path).await,
            Routed::Answer(resp) => Ok(resp),
        },
        Ok(None) => {
            let path = req.path();
            service_route(req, &env, &path).await
        }
        Err(problem) => middleware::misconfigured(&problem),
    }
}

/// The service's own routes, by path (the mount prefix already stripped).
async fn service_route(req: Request, env: &Env, path: &str) -> Result<Response> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (_, ["api", "otp", "v2", instance, rest @ ..]) => {
            hypersender::handle(req, env, instance, rest).await
        }
        (_, ["v1", rest @ ..]) => whatotp::handle(req, env, rest).await,
        (_, ["widget", "v1", rest @ ..]) => widget::handle(req, env, rest).await,
        (_, ["webhooks", provider @ ("whatsapp" | "twilio"), instance]) => {
            webhooks::handle(req, env, provider, instance).await
        }
        (_, ["login", token]) => login::handle(req, env, token).await,
        (Method::Get | Method::Head, [".well-known", name]) => {
            wellknown::handle(req, env, name).await
        }
        (Method::Get, ["health"]) => Response::from_json(&serde_json::json!({"status": "ok"})),
        (Method::Get, ["health", "deep"]) => ops::deep_health(env).await,
        (_, ["_otp", "admin", rest @ ..] | ["admin", rest @ ..]) => {
            ops::admin(req, env, rest).await
        }
        #[cfg(feature = "dev")]
        (_, ["dev", rest @ ..]) => api::dev::handle(req, env, rest).await,
        _ => outcome::not_found(),
    }
}
