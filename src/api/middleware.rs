//! The edge middleware: the same Worker in front of a site, asking for a verified phone before
//! protected paths with no change to the site's code.
//!
//! With the `MIDDLEWARE` var set, the service's own routes live under its prefix (`/_otp`) or
//! at the root of its own hostname, and every other path belongs to the site: protected paths
//! need the verification cookie (else the verification page, or 401 JSON for API calls);
//! everything goes on to the origin with `X-Verified-Phone` set by us alone and the cookie
//! removed. `POST {prefix}/session` turns a verification token from the page's widget into the
//! cookie (checked as any backend would: ES256 against the deploy's keys, or the instance's
//! HS256 key when it opted in). The rules (patterns, cookie, `next`, the page) live in `otp_core::web::middleware`;
//! docs/middleware.md is the operator's guide.

use super::outcome::{html_response as page_response, page};
use super::request::{self, json, MAX_BODY};
use super::tokens::{self, Refused};
use crate::clock;
use crate::config::{self, ConfigProblem};
use otp_core::web::middleware::{
    self as core, cookie_values, is_phone_header, open_cookie, safe_next, seal_cookie,
    strip_cookie, Decision, MiddlewareConfig, Mount, Page, Requirement, Verified,
};
use otp_core::web::token::TokenError;
use otp_core::{Recipient, Secret};
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{Env, Fetch, Headers, Method, Request, Response, Result};

/// The static assets binding the widget's files are served from.
const ASSETS_BINDING: &str = "ASSETS";

/// Where a request goes when the middleware is on.
pub enum Routed {
    /// To the service's own routes, at this path (the mount prefix stripped).
    Service(Request, String),
    /// Answered here: the site, its verification page, the session endpoint.
    Answer(Response),
}

/// A deploy whose `MIDDLEWARE` cannot be read serves nothing: failing open would expose the
/// site's protected paths.
pub fn misconfigured(problem: &ConfigProblem) -> Result<Response> {
    super::outcome::log_config(problem);
    error_json(503, "misconfigured", super::outcome::NOT_CONFIGURED, None)
}

fn error_json(
    status: u16,
    code: &str,
    message: &str,
    verify_url: Option<&str>,
) -> Result<Response> {
    let mut error = json!({"code": code, "message": message});
    if let Some(u) = verify_url {
        error["verify_url"] = json!(u);
    }
    json(status, &serde_json::json!({ "error": error }), &[])
}

/// Routes a request when the middleware is on.
pub async fn handle(req: Request, env: &Env, cfg: &MiddlewareConfig) -> Result<Routed> {
    let url = req.url()?;
    let path = url.path().to_owned();
    let answer = match cfg.mount(url.host_str().unwrap_or_default(), &path) {
        Mount::Root => return Ok(Routed::Service(req, path)),
        Mount::Prefix(rest) => {
            let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
            match (req.method(), segs.as_slice()) {
                (_, ["session"]) => session(req, env, cfg).await,
                (Method::Get | Method::Head, ["verify"]) => {
                    let next = request::query(&url, "next").unwrap_or_default();
                    verification_page(env, cfg, 200, &safe_next(&next), None)
                }
                (_, ["widget", "v1", ..]) => return Ok(Routed::Service(req, rest.to_owned())),
                (Method::Get | Method::Head, ["widget", file, ..]) if !file.is_empty() => {
                    asset(req, env, rest).await
                }
                _ if cfg.hostname.is_none() => return Ok(Routed::Service(req, rest.to_owned())),
                _ => super::outcome::not_found(),
            }
        }
        Mount::Site => site(req, env, cfg).await,
    };
    answer.map(Routed::Answer)
}

/// `{prefix}/widget/<file>` from the static assets, the prefix stripped.
async fn asset(req: Request, env: &Env, rest: &str) -> Result<Response> {
    let url = req.url()?;
    let mut target = url.clone();
    target.set_path(rest);
    let Ok(assets) = env.assets(ASSETS_BINDING) else {
        return super::outcome::not_found();
    };
    let request = crate::outbound::request(req.method(), target.as_str(), None, None, false)?;
    assets.fetch_request(request).await
}

/// The first cookie of the configured name that opens (several may arrive when a sibling
/// subdomain sets one: see docs/middleware.md on `__Host-`).
fn opened_cookie(
    req: &Request,
    key: &Secret,
    cfg: &MiddlewareConfig,
    now: i64,
) -> Option<Verified> {
    let header = req.headers().get("cookie").ok().flatten()?;
    cookie_values(&header, &cfg.cookie_name)
        .into_iter()
        .find_map(|v| open_cookie(key, &cfg.instance, v, now).ok())
}

/// A request for the site: the verification page, or on to the origin.
async fn site(req: Request, env: &Env, cfg: &MiddlewareConfig) -> Result<Response> {
    let now = clock::now();
    let url = req.url()?;
    let requirement = cfg.requirement(url.path());
    let cookie = match config::cookie_key(env) {
        Ok(key) => opened_cookie(&req, &key, cfg, now),
        Err(problem) if requirement != Requirement::Open => return misconfigured(&problem),
        Err(_) => None,
    };
    match cfg.decide(url.path(), cookie.as_ref(), now) {
        Decision::Pass { phone } => {
            to_origin(req, cfg, phone, requirement != Requirement::Open).await
        }
        Decision::Verify => {
            let mut next = url.path().to_owned();
            if let Some(q) = url.query() {
                next.push('?');
                next.push_str(q);
            }
            let next = safe_next(&next);
            let wants_html = req
                .headers()
                .get("accept")?
                .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"));
            if wants_html {
                let notice = cookie
                    .is_some()
                    .then_some("This page needs a recent verification: verify again to continue.");
                verification_page(env, cfg, 401, &next, notice)
            } else {
                let verify_url = verify_url(cfg, &next);
                error_json(
                    401,
                    "verification_required",
                    "this resource needs a verified phone number",
                    Some(&verify_url),
                )
            }
        }
    }
}

fn verify_url(cfg: &MiddlewareConfig, next: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    format!("{}/verify?{query}", cfg.prefix)
}

/// The verification page with its widget, or a 503 when the instance cannot show one.
fn verification_page(
    env: &Env,
    cfg: &MiddlewareConfig,
    status: u16,
    next: &str,
    notice: Option<&str>,
) -> Result<Response> {
    let instances = match config::instances(env) {
        Ok(i) => i,
        Err(p) => return misconfigured(&p),
    };
    let widget = instances
        .instance(&cfg.instance)
        .and_then(|i| i.widget.as_ref());
    let Some(widget) = widget else {
        return misconfigured(&ConfigProblem(format!(
            "middleware: instance {} is not configured or has no widget.publishable_key",
            cfg.instance
        )));
    };
    let html = core::page_html(&Page {
        prefix: &cfg.prefix,
        publishable_key: &widget.publishable_key,
        mode: cfg.mode,
        next,
        notice,
    });
    let turnstile = if widget.turnstile.is_some() {
        "https://challenges.cloudflare.com"
    } else {
        ""
    };
    html_response(status, html, &core::page_csp(turnstile))
}

fn html_response(status: u16, html: String, csp: &str) -> Result<Response> {
    let mut resp = page_response(status, html, csp)?;
    resp.headers_mut().set("referrer-policy", "same-origin")?;
    Ok(resp)
}

/// A small page for the session endpoint's refusals, with a way back to the page.
fn message_page(status: u16, title: &str, text: &str, retry: Option<&str>) -> Result<Response> {
    let esc = core::html_escape;
    let link = retry
        .map(|u| format!("<p><a href=\"{}\">Verify again</a></p>", esc(u)))
        .unwrap_or_default();
    page(
        status,
        title,
        &format!("<p>{}</p>{link}", esc(text)),
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        "same-origin",
    )
}

/// True when a POST comes from a page of this same origin: the login-CSRF guard. A browser
/// sends `Origin` on every POST and `Sec-Fetch-Site` in current versions; one of them must be
/// present and say same-origin, and neither may say otherwise.
fn same_origin(req: &Request, url: &worker::Url) -> Result<bool> {
    let own = url.origin().ascii_serialization();
    let origin = req.headers().get("origin")?;
    let site = req.headers().get("sec-fetch-site")?;
    if site.as_deref().is_some_and(|s| s != "same-origin") {
        return Ok(false);
    }
    Ok(match origin {
        Some(o) => o.eq_ignore_ascii_case(&own),
        None => site.is_some(),
    })
}

/// `POST {prefix}/session`: form fields `token` (a verification token for the middleware's
/// instance) and `next`; sets the cookie and redirects to `next` (a same-origin path).
async fn session(mut req: Request, env: &Env, cfg: &MiddlewareConfig) -> Result<Response> {
    if req.method() != Method::Post {
        let mut resp = message_page(
            405,
            "Method not allowed",
            "Use the verification page.",
            None,
        )?;
        resp.headers_mut().set("allow", "POST")?;
        return Ok(resp);
    }
    let url = req.url()?;
    if !same_origin(&req, &url)? {
        return message_page(
            403,
            "Request refused",
            "Verification must be completed on this site's own page.",
            Some(&verify_url(cfg, "/")),
        );
    }
    let Ok(body) = request::bytes(&mut req, MAX_BODY).await else {
        return message_page(413, "Request too large", "The form is too large.", None);
    };
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (presented, next) = (field("token"), safe_next(&field("next")));
    let retry = verify_url(cfg, &next);
    let refuse = |text: &str| message_page(401, "Verification failed", text, Some(&retry));

    let (key, instance) = match (config::cookie_key(env), config::instances(env)) {
        (Ok(k), Ok(i)) => (k, i),
        (Err(p), _) | (_, Err(p)) => return misconfigured(&p),
    };
    let Some(inst) = instance.instance(&cfg.instance) else {
        return misconfigured(&ConfigProblem(format!(
            "middleware: instance {} is not configured",
            cfg.instance
        )));
    };
    let now = clock::now();
    let claims = match tokens::verify(env, inst, &presented, now).await {
        Ok(c) => c,
        Err(Refused::Config(p)) => return misconfigured(&p),
        Err(Refused::Token(TokenError::Expired)) => {
            return refuse("This verification has expired. Verify your phone number again.")
        }
        Err(Refused::Token(_)) => {
            return refuse("This verification is not valid. Verify your phone number again.")
        }
    };
    let Ok(phone) = Recipient::parse(&claims.sub) else {
        return refuse("This verification is not for a phone number.");
    };
    let verified_at = claims.iat.min(now);
    let verified = Verified {
        phone: phone.digits().to_owned(),
        verified_at,
        expires_at: verified_at + cfg.cookie_ttl,
    };
    let cookie = format!(
        "{}={}; Max-Age={}; Path=/; HttpOnly; Secure; SameSite=Lax",
        cfg.cookie_name,
        seal_cookie(&key, &cfg.instance, &verified),
        (verified.expires_at - now).max(0),
    );
    let mut resp = Response::empty()?.with_status(303);
    let h = resp.headers_mut();
    h.set("location", &next)?;
    h.set("set-cookie", &cookie)?;
    h.set("cache-control", "no-store")?;
    h.set("referrer-policy", "same-origin")?;
    Ok(resp)
}

/// On to the origin: the request's method, headers and body, without any client-sent
/// `X-Verified-Phone` (any spelling) and without the verification cookie; with the verified
/// phone when there is one. The origin's answer comes back as is (redirects not followed);
/// a protected answer without `Cache-Control` gets `private`.
async fn to_origin(
    req: Request,
    cfg: &MiddlewareConfig,
    phone: Option<String>,
    protected: bool,
) -> Result<Response> {
    let url = req.url()?;
    let target = match &cfg.origin {
        Some(o) => format!(
            "{}{}",
            o.trim_end_matches('/'),
            &url[url::Position::BeforePath..]
        ),
        None => url.to_string(),
    };
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if is_phone_header(&name) || name.eq_ignore_ascii_case("host") {
            continue;
        }
        if name.eq_ignore_ascii_case("cookie") {
            if let Some(rest) = strip_cookie(&value, &cfg.cookie_name) {
                headers.append("cookie", &rest)?;
            }
            continue;
        }
        headers.append(&name, &value)?;
    }
    if let Some(p) = phone {
        if let Ok(phone) = Recipient::parse(&p) {
            headers.set(core::PHONE_HEADER, &phone.e164())?;
        }
    }
    let body = req.inner().body().map(JsValue::from);
    // The method as sent: `req.method()` reads one worker has no name for (PROPFIND, QUERY) as GET.
    let method = req.inner().method();
    let outbound = crate::outbound::request(&method, &target, Some(&headers), body.as_ref(), true)?;
    let resp = match Fetch::Request(outbound).send().await {
        Ok(r) => r,
        Err(e) => {
            crate::log::fault("origin.error", &e);
            return error_json(
                502,
                "origin_unreachable",
                "the site's origin did not answer",
                None,
            );
        }
    };
    if protected && !resp.headers().has("cache-control")? {
        let headers = resp.headers().clone();
        headers.set("cache-control", "private")?;
        return Ok(resp.with_headers(headers));
    }
    Ok(resp)
}
