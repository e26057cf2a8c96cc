//! The one-time login URL of the WhatsApp-link flow: `/login/{token}`.
//!
//! `GET` only shows a confirm page and changes nothing, because WhatsApp, mail and chat apps
//! fetch links for previews. `POST` (the page's button) verifies the challenge once, fires
//! the success callback, and redirects to the instance's `link.redirect_url` with a signed
//! verification token in the URL fragment, which never reaches a server log or a `Referer`.

use crate::link_object::{ConfirmMsg, ConfirmReply};
use crate::service;
use crate::store;
use otp_core::rules::link_state::{Confirm, LinkChallenge, LinkStatus};
use otp_core::web::login::parse_login_token;
use otp_core::web::middleware::html_escape as escape;
use otp_core::web::token::{self, Claims};
use otp_core::Secret;
use worker::{Env, Method, Request, Response, Result};

/// Lifetime of a verification token, in seconds.
pub const TOKEN_TTL: i64 = 600;

fn page(status: u16, title: &str, body_html: &str) -> Result<Response> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"robots\" content=\"noindex\">\
<title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1c2330}}\
h1{{font-size:1.4rem}}button{{font:inherit;font-size:1.1rem;padding:.7rem 1.4rem;border:0;border-radius:8px;background:#0b7a55;color:#fff;cursor:pointer}}\
.muted{{color:#5b6474;font-size:.9rem}}</style></head><body><h1>{t}</h1>{body_html}</body></html>",
        t = escape(title)
    );
    let mut resp = Response::from_html(html)?.with_status(status);
    let h = resp.headers_mut();
    h.set("cache-control", "no-store")?;
    h.set("referrer-policy", "no-referrer")?;
    h.set("x-frame-options", "DENY")?;
    h.set(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    )?;
    Ok(resp)
}

fn invalid() -> Result<Response> {
    page(
        404,
        "This login link is not valid",
        "<p>Ask the site for a new login link.</p>",
    )
}

/// Routes `/login/{token}`.
pub async fn handle(req: Request, env: &Env, token: &str) -> Result<Response> {
    let Ok(key) = service::login_key(env) else {
        return page(
            503,
            "Login is not available",
            "<p>The service is not configured.</p>",
        );
    };
    let Ok(link) = parse_login_token(&key, token) else {
        return invalid();
    };
    let stub = store::link_stub(env, &link.instance, &link.link_code)?;
    match req.method() {
        Method::Get => {
            let got: crate::link_object::LinkView =
                store::call_object(&stub, "open", &serde_json::json!({})).await?;
            let Some(c) = got.challenge.filter(|c| c.id == link.challenge_id) else {
                return invalid();
            };
            match c.status(crate::http::now()) {
                LinkStatus::Claimed => {
                    let body = format!(
                        "<p>Log in to <strong>{name}</strong> as <strong>+{phone}</strong>?</p>\
<p class=\"muted\">Confirm only if you asked to log in to {name} just now. If you did not, close this page: nothing happens.</p>\
<form method=\"post\"><button type=\"submit\">Confirm login</button></form>",
                        name = escape(&c.name),
                        phone = escape(c.claimed_by.as_deref().unwrap_or_default()),
                    );
                    page(200, &format!("Log in to {}", c.name), &body)
                }
                status => closed_page(status),
            }
        }
        Method::Post => {
            let reply: ConfirmReply = match store::call_object(
                &stub,
                "confirm",
                &ConfirmMsg {
                    id: link.challenge_id,
                },
            )
            .await
            {
                Ok(r) => r,
                Err(_) => return invalid(),
            };
            match reply.result {
                Confirm::Verified => verified(&req, env, &reply.challenge).await,
                Confirm::AlreadyVerified => closed_page(LinkStatus::Verified),
                Confirm::Expired => closed_page(LinkStatus::Expired),
                Confirm::Failed => closed_page(LinkStatus::Failed),
                Confirm::NotClaimed => invalid(),
            }
        }
        _ => page(405, "Method not allowed", ""),
    }
}

fn closed_page(status: LinkStatus) -> Result<Response> {
    match status {
        LinkStatus::Verified => page(
            409,
            "This login link was already used",
            "<p>Each link logs in once. Ask the site for a new one.</p>",
        ),
        LinkStatus::Expired => page(
            410,
            "This login link has expired",
            "<p>Ask the site for a new login link.</p>",
        ),
        LinkStatus::Failed => page(
            410,
            "This login has failed",
            "<p>Ask the site for a new login link.</p>",
        ),
        LinkStatus::Pending | LinkStatus::Claimed => invalid(),
    }
}

/// The key that signs `inst`'s verification tokens (`INSTANCE_SECRETS.token_keys[token_kid]`),
/// if configured. Fetched before a challenge is spent, so a missing key never costs a code.
pub fn token_key(env: &Env, inst: &otp_core::config::InstanceConfig) -> Option<Secret> {
    let secrets = service::instance_secrets(env, &inst.id).ok()?;
    secrets
        .token_keys
        .get(&inst.token_kid)
        .and_then(|k| Secret::new(k.as_bytes().to_vec()).ok())
}

/// Signs a verification token for `sub` (`+digits`), whose id is the challenge `jti`: an HS256
/// JWT for the instance (`aud`), from this service (`iss`), valid [`TOKEN_TTL`] seconds.
pub fn sign_token(
    env: &Env,
    key: &Secret,
    inst: &otp_core::config::InstanceConfig,
    request_url: &worker::Url,
    sub: String,
    jti: &str,
) -> String {
    let now = crate::http::now();
    let claims = Claims {
        iss: service::public_origin(env, request_url),
        sub,
        aud: inst.id.clone(),
        jti: jti.to_owned(),
        iat: now,
        exp: now + TOKEN_TTL,
    };
    token::sign(key, &inst.token_kid, &claims)
}

/// Signs the verification token and sends the browser on to the site (or, for a challenge the
/// widget started, back to the page that polls for it).
async fn verified(req: &Request, env: &Env, c: &LinkChallenge) -> Result<Response> {
    let unavailable = || {
        page(
            503,
            "Login is not available",
            "<p>The service is not configured to sign tokens.</p>",
        )
    };
    let Ok(config) = service::instances(env) else {
        return unavailable();
    };
    let Some(inst) = config.instance(&c.instance) else {
        return unavailable();
    };
    if c.widget {
        return page(
            200,
            "You are verified",
            "<p>Return to the page where you started: it continues by itself.</p>",
        );
    }
    let url = req.url()?;
    let phone = format!("+{}", c.claimed_by.as_deref().unwrap_or_default());
    let Some(key) = token_key(env, inst) else {
        return unavailable();
    };
    let jwt = sign_token(env, &key, inst, &url, phone, &c.id);
    let Some(target) = inst.link.redirect_url.as_deref() else {
        return page(
            200,
            "You are logged in",
            "<p>You can close this page and return to the site.</p>",
        );
    };
    let base = url::Url::parse(&service::public_origin(env, &url))?;
    let Ok(mut to) = base.join(target) else {
        return unavailable();
    };
    to.set_fragment(Some(&format!("token={jwt}")));
    let mut resp = Response::empty()?.with_status(303);
    let h = resp.headers_mut();
    h.set("location", to.as_str())?;
    h.set("cache-control", "no-store")?;
    h.set("referrer-policy", "no-referrer")?;
    Ok(resp)
}
