//! edge-otp's Worker: the entry point and the router. Each API surface is a module whose
//! handlers parse, call the store once and map the result; the rules live in `otp-core`, and
//! the single-use decisions in the recipient's Durable Object.

mod callbacks;
mod channel;
#[cfg(feature = "dev")]
mod dev;
mod guard;
mod http;
mod hypersender;
mod idempotency_object;
mod link_object;
mod login;
mod metrics;
mod middleware;
mod object_store;
mod recipient_object;
mod scheduler;
mod service;
mod store;
mod webhooks;
mod whatotp;
mod widget;

pub use guard::BudgetObject;
pub use idempotency_object::IdempotencyObject;
pub use link_object::LinkObject;
pub use metrics::MetricsObject;
pub use recipient_object::RecipientObject;

use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    // With `MIDDLEWARE` set the Worker fronts a site: the service moves under its prefix (or
    // hostname) and every other path belongs to the site (src/middleware.rs).
    match middleware::config(&env) {
        Ok(Some(config)) => middleware::handle(req, &env, &config).await,
        Ok(None) => {
            let path = req.path();
            service_route(req, &env, &middleware::segments(&path)).await
        }
        Err(problem) => middleware::misconfigured(&problem),
    }
}

/// The service's own routes, by path segments (the mount prefix already stripped).
pub(crate) async fn service_route(req: Request, env: &Env, segments: &[&str]) -> Result<Response> {
    let method = req.method();
    match (method, segments) {
        (_, ["api", "otp", "v2", instance, rest @ ..]) => {
            let instance = instance.to_string();
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            hypersender::handle(req, env, &instance, &rest).await
        }
        (_, ["v1", rest @ ..]) => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            whatotp::handle(req, env, &rest).await
        }
        (_, ["widget", "v1", rest @ ..]) => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            widget::handle(req, env, &rest).await
        }
        (_, ["webhooks", provider @ ("whatsapp" | "twilio"), instance]) => {
            let (provider, instance) = (provider.to_string(), instance.to_string());
            webhooks::handle(req, env, &provider, &instance).await
        }
        (_, ["login", token]) => {
            let token = token.to_string();
            login::handle(req, env, &token).await
        }
        (Method::Get, ["health"]) => Response::from_json(&serde_json::json!({"status": "ok"})),
        #[cfg(feature = "dev")]
        (Method::Get, ["dev", rest @ ..]) => {
            let rest = rest.join("/");
            dev::handle(req, env, &rest).await
        }
        _ => http::not_found(),
    }
}
