//! The one-time login URL of the WhatsApp-link flow: `/login/{token}`.
//!
//! `GET` only shows a confirm page and changes nothing, because WhatsApp, mail and chat apps
//! fetch links for previews. `POST` (the page's button) verifies the challenge once, fires
//! the success callback, and redirects to the instance's `link.redirect_url` with a signed
//! verification token in the URL fragment, which never reaches a server log or a `Referer`.

use super::outcome;
use super::tokens;
use crate::store::link;
use crate::store::Op;
use crate::{clock, config};
use otp_core::rules::link_state::{Confirm, LinkChallenge, LinkStatus};
use otp_core::web::login::parse_login_token;
use otp_core::web::middleware::html_escape as escape;
use worker::{Env, Method, Request, Response, Result};

/// The login pages' policy: no script, no framing, forms only to this service.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

fn page(status: u16, title: &str, body_html: &str) -> Result<Response> {
    outcome::page(status, title, body_html, CSP, "no-referrer")
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
    let Ok(key) = config::login_key(env) else {
        return page(
            503,
            "Login is not available",
            "<p>The service is not configured.</p>",
        );
    };
    let Ok(link) = parse_login_token(&key, token) else {
        return invalid();
    };
    match req.method() {
        Method::Get => {
            let got = link::view(env, &link.instance, &link.link_code, Op::Open).await?;
            let Some(c) = got.challenge.filter(|c| c.id == link.challenge_id) else {
                return invalid();
            };
            match c.status(clock::now()) {
                LinkStatus::Claimed => {
                    let body = format!(
                        "<p>Log in to <strong>{name}</strong> as <strong>{phone}</strong>?</p>\
<p class=\"muted\">Confirm only if you asked to log in to {name} just now. If you did not, close this page: nothing happens.</p>\
<form method=\"post\"><button type=\"submit\">Confirm login</button></form>",
                        name = escape(&c.name),
                        phone = escape(&c.claimer().map(|r| r.e164()).unwrap_or_default()),
                    );
                    page(200, &format!("Log in to {}", c.name), &body)
                }
                status => closed_page(status),
            }
        }
        Method::Post => {
            let reply = match link::confirm(env, &link.instance, &link.link_code, link.challenge_id)
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
    let Ok(config) = config::instances(env) else {
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
    let phone = c.claimer().map(|r| r.e164()).unwrap_or_default();
    let signer = match tokens::signer(env, inst).await {
        Ok(s) => s,
        Err(problem) => {
            worker::console_error!("{}", problem.0);
            return unavailable();
        }
    };
    let jwt = tokens::sign(&signer, env, inst, &url, phone, &c.id, clock::now()).await?;
    let Some(target) = inst.link.redirect_url.as_deref() else {
        return page(
            200,
            "You are logged in",
            "<p>You can close this page and return to the site.</p>",
        );
    };
    let base = url::Url::parse(&config::public_origin(env, &url))?;
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
