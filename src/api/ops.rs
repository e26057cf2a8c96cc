//! The operator's surface: the deep health check (`/health/deep`: do KV, every Durable Object
//! namespace and the configured secrets answer) and the operator page (`/_otp/admin`: charts
//! of the code and link flows over time, per channel and country, drawn in the browser from
//! `/_otp/admin/metrics`). The page needs the operator token (`ADMIN_TOKEN`, the SHA-256 of
//! one or more tokens), as a bearer header or the session cookie its sign-in form sets; without
//! `ADMIN_TOKEN` it does not exist (404). Its files live in the static assets (`www/_otp/admin/`)
//! and are served only through here, behind the token. docs/operations.md.

use super::outcome;
use super::request::{self, bearer, json};
use crate::store::{self, metrics};
use crate::{clock, config};
use otp_core::web::admin;
use serde::Serialize;
use worker::{Env, Method, Request, Response, Result};

/// The secret holding the operator tokens' hashes.
pub const ADMIN_SECRET: &str = "ADMIN_TOKEN";

const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const FORM_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /health/deep`: each part `ok` or `fail`, 200 when all are ok, 503 otherwise; no value
/// of any setting. Bindings the deploy must have and secrets it requires are checked; the
/// cookie key only when the middleware is on.
pub async fn deep_health(env: &Env) -> Result<Response> {
    let mut checks: Vec<(&str, bool)> = Vec::new();
    // The read every status lookup makes, of a record that does not exist.
    let kv = store::records::get(env, "health").await.is_ok();
    checks.push(("kv", kv));
    for binding in [
        store::RECIPIENTS,
        store::LINKS,
        store::METRICS,
        store::IDEMPOTENCY,
        store::BUDGETS,
    ] {
        checks.push((binding, store::answers(env, binding).await));
    }
    checks.push(("INSTANCES", config::instances(env).is_ok()));
    checks.push((config::PEPPER_SECRET, config::pepper(env).is_ok()));
    checks.push((
        config::TOKENS_SECRET,
        config::token_is_valid(env, "", "").is_ok(),
    ));
    let instance_secrets = env.secret(config::INSTANCE_SECRETS).is_ok();
    checks.push((
        config::INSTANCE_SECRETS,
        instance_secrets && config::instance_secrets(env, "").is_ok(),
    ));
    let keys = crate::keys::key_set(env).await;
    checks.push((
        "TOKEN_SIGNING_KEYS",
        keys.is_ok_and(|k| !k.all().is_empty()),
    ));
    if matches!(config::middleware(env), Ok(Some(_))) {
        checks.push((config::COOKIE_KEY_SECRET, config::cookie_key(env).is_ok()));
    }
    // Written by hand: names and words only, nothing to escape.
    let word = |ok: bool| if ok { "ok" } else { "fail" };
    let all = checks.iter().all(|(_, ok)| *ok);
    let mut body = format!("{{\"status\":\"{}\",\"checks\":{{", word(all));
    for (i, (name, ok)) in checks.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        body.push_str(&format!("{comma}\"{name}\":\"{}\"", word(*ok)));
    }
    body.push_str("}}");
    let mut resp = Response::ok(body)?.with_status(if all { 200 } else { 503 });
    resp.headers_mut().set("content-type", "application/json")?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}

/// `{base}/admin` and below: the page, its script and style, its data, its sign-in form.
pub async fn admin(mut req: Request, env: &Env, rest: &[&str]) -> Result<Response> {
    let Some(secret) = env.secret(ADMIN_SECRET).ok().map(|s| s.to_string()) else {
        return outcome::not_found();
    };
    let url = req.url()?;
    // The page's own path: the request's, less the segments below the page.
    let mut page_path = url.path().trim_end_matches('/');
    for _ in rest {
        page_path = page_path.rsplit_once('/').map_or("", |(head, _)| head);
    }
    let page_path = page_path.to_owned();
    let now = clock::now();
    let signed_in = admin::token_is_valid(&secret, &bearer(&req))
        || cookie(&req).is_some_and(|v| admin::session_is_valid(&secret, &v, now));
    match (req.method(), rest) {
        (Method::Post, []) => {
            let body = request::bytes(&mut req, 2048).await.unwrap_or_default();
            let token = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if !admin::token_is_valid(&secret, &token) {
                return sign_in(401, "That token is not an operator token.");
            }
            let expires = now + admin::SESSION_SECS;
            let mut resp = Response::empty()?.with_status(303);
            let h = resp.headers_mut();
            h.set("location", &page_path)?;
            h.set("cache-control", "no-store")?;
            h.set(
                "set-cookie",
                &format!(
                    "{}={}; Max-Age={}; Path={page_path}; HttpOnly; Secure; SameSite=Strict",
                    admin::COOKIE,
                    admin::session(&secret, expires),
                    admin::SESSION_SECS
                ),
            )?;
            Ok(resp)
        }
        // The page's files are relative to `{base}/admin`, without a trailing slash.
        (Method::Get, []) if url.path().ends_with('/') => Response::redirect_with_status(
            {
                let mut to = url.clone();
                to.set_path(&page_path);
                to
            },
            308,
        ),
        (Method::Get, []) if !signed_in => sign_in(401, ""),
        (Method::Get, _) if !signed_in => json(
            401,
            &serde_json::json!({"error": "operator token required"}),
            &[],
        ),
        (Method::Get, ["metrics"]) => admin_metrics(env).await,
        (Method::Get, []) => asset(&req, env, "page.html").await,
        (Method::Get, [file @ ("app.js" | "app.css")]) => asset(&req, env, file).await,
        _ => outcome::not_found(),
    }
}

/// The value of the session cookie, if the request carries one.
fn cookie(req: &Request) -> Option<String> {
    let header = req.headers().get("cookie").ok().flatten()?;
    otp_core::web::middleware::cookie_values(&header, admin::COOKIE)
        .first()
        .map(|v| (*v).to_owned())
}

fn sign_in(status: u16, error: &str) -> Result<Response> {
    let body = format!(
        "<form method=\"post\"><p><label>Operator token<br><input name=\"token\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
<p><button type=\"submit\">Sign in</button></p><p class=\"muted\" role=\"alert\">{}</p></form>",
        otp_core::web::middleware::html_escape(error)
    );
    outcome::page(status, "edge-otp operator", &body, FORM_CSP, "no-referrer")
}

/// One of the page's files from the static assets (`/_otp/admin/<file>`), under the page's CSP.
async fn asset(req: &Request, env: &Env, file: &str) -> Result<Response> {
    let origin = req.url()?.origin().ascii_serialization();
    let target = format!("{origin}/_otp/admin/{file}");
    let Ok(assets) = env.assets("ASSETS") else {
        return outcome::not_found();
    };
    let request = crate::outbound::request(Method::Get, &target, None, None, false)?;
    let mut got = assets.fetch_request(request).await?;
    if got.status_code() != 200 {
        return outcome::not_found();
    }
    let mut resp = Response::from_bytes(got.bytes().await?)?;
    let h = resp.headers_mut();
    let ctype = match file.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/html; charset=utf-8",
    };
    h.set("content-type", ctype)?;
    h.set("cache-control", "no-store")?;
    h.set("x-content-type-options", "nosniff")?;
    h.set("referrer-policy", "no-referrer")?;
    // Its `frame-ancestors 'none'` keeps the page out of frames.
    h.set("content-security-policy", PAGE_CSP)?;
    Ok(resp)
}

#[derive(Serialize)]
struct AdminMetrics {
    instances: Vec<InstanceMetrics>,
}

#[derive(Serialize)]
struct InstanceMetrics {
    id: String,
    name: String,
    code: metrics::CodeReport,
    totals: metrics::Counts,
    hours: std::collections::BTreeMap<String, metrics::Counts>,
}

/// `GET {base}/admin/metrics`: every instance's figures, as the metrics endpoint sums them.
async fn admin_metrics(env: &Env) -> Result<Response> {
    let instances = match config::each_instance(env) {
        Ok(i) => i,
        Err(problem) => return outcome::hypersender(outcome::Outcome::Config(problem)),
    };
    let mut out = Vec::with_capacity(instances.len());
    for inst in instances {
        let summary = match metrics::read(env, &inst.id).await {
            Ok(s) => s,
            Err(e) => return outcome::hypersender(outcome::internal(e)),
        };
        out.push(InstanceMetrics {
            id: inst.id.clone(),
            name: inst.name.clone(),
            code: summary.code(),
            totals: summary.totals,
            hours: summary.hours,
        });
    }
    json(200, &AdminMetrics { instances: out }, &[])
}
