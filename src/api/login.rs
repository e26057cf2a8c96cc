//! The one-time login URL of the WhatsApp-link flow: `/login/{token}`.
//!
//! `GET` only shows a confirm page and changes nothing, because WhatsApp, mail and chat apps
//! fetch links for previews. The page says when, where and with what browser the login was
//! started, so a user sent someone else's link can tell. `POST` (the page's button) verifies
//! the challenge once, fires the success callback, and redirects to the instance's
//! `link.redirect_url` with a signed verification token in the URL fragment, which never
//! reaches a server log or a `Referer`; with `action=deny` ("This wasn't me") it fails the
//! challenge instead, so whoever started it never gets a token.

use super::outcome::{self, Outcome};
use super::{request, tokens};
use crate::store::link;
use crate::store::Op;
use crate::{clock, config};
use otp_core::config::InstanceConfig;
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
            let now = clock::now();
            match c.status(now) {
                LinkStatus::Claimed => confirm_page(&c, now),
                status => closed_page(status),
            }
        }
        Method::Post => {
            // The form's one field, `action`, says confirm or deny; the body is read through
            // the cap like every body the Worker takes.
            let mut req = req;
            let deny = match request::bytes(&mut req, request::MAX_BODY).await {
                // "This wasn't me" posts `action=deny`; anything else (or nothing) confirms.
                Ok(body) => body.split(|&b| b == b'&').any(|p| p == b"action=deny"),
                Err(Outcome::TooLarge) => return page(413, "Request too large", ""),
                Err(_) => return page(400, "Bad request", ""),
            };
            // Whatever signs the token is found before the link is spent: a deploy that
            // cannot sign never uses up a login.
            let signer = if deny {
                None
            } else {
                let Some(found) = signer_for(env, &link.instance).await else {
                    return unavailable();
                };
                Some(found)
            };
            let msg = link::ConfirmMsg {
                id: link.challenge_id,
                deny,
            };
            let reply = match link::confirm(env, &link.instance, &link.link_code, &msg).await {
                Ok(r) => r,
                Err(_) => return invalid(),
            };
            match reply.result {
                Confirm::Verified => {
                    let Some((inst, signer)) = signer else {
                        return unavailable();
                    };
                    verified(&req, env, &inst, &signer, &reply.challenge).await
                }
                Confirm::Denied => page(
                    200,
                    "Login cancelled",
                    "<p>Nobody was logged in, and whoever started this login gets nothing.</p>\
<p class=\"muted\">If someone sent you the WhatsApp link, or asked you to send that message, they were trying to log in as you. Never forward login links or codes.</p>",
                ),
                Confirm::AlreadyVerified => closed_page(LinkStatus::Verified),
                Confirm::Expired => closed_page(LinkStatus::Expired),
                Confirm::Failed => closed_page(LinkStatus::Failed),
                Confirm::NotClaimed => invalid(),
            }
        }
        _ => page(405, "Method not allowed", ""),
    }
}

/// The confirm page: who would be logged in where, and where, when and with what browser the
/// login was started, so that a user sent someone else's link can refuse it.
fn confirm_page(c: &LinkChallenge, now: i64) -> Result<Response> {
    use otp_core::web::login::{ago, utc_minute};
    let unknown = || "unknown".to_owned();
    let body = format!(
        "<p>Log in to <strong>{name}</strong> as <strong>{phone}</strong>?</p>\
<p>This login was started:</p><ul>\
<li>When: <strong id=\"started-when\">{ago}</strong> ({utc})</li>\
<li>Where: <strong id=\"started-near\">{near}</strong> (approximate)</li>\
<li>Browser: <strong id=\"started-with\">{with}</strong></li></ul>\
<p class=\"muted\">Confirm only if you asked to log in to {name} yourself, on this device or another of yours. If someone sent you the WhatsApp link or asked you to send that message, choose \"This wasn't me\": they are trying to log in as you.</p>\
<form method=\"post\"><button type=\"submit\">Confirm login</button></form>\
<form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"deny\"><button type=\"submit\" style=\"background:#b42318;margin-top:.6rem\">This wasn't me</button></form>",
        name = escape(&c.name),
        phone = escape(&c.claimer().map(|r| r.e164()).unwrap_or_default()),
        ago = ago(c.created_at, now),
        utc = utc_minute(c.created_at),
        near = escape(&c.started_near.clone().unwrap_or_else(unknown)),
        with = escape(&c.started_with.clone().unwrap_or_else(unknown)),
    );
    page(200, &format!("Log in to {}", c.name), &body)
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

fn unavailable() -> Result<Response> {
    page(
        503,
        "Login is not available",
        "<p>The service is not configured to sign tokens.</p>",
    )
}

/// The instance of a login link and what signs its tokens; `None` (logged) when either is
/// missing.
async fn signer_for(env: &Env, instance: &str) -> Option<(config::Instance, tokens::Signer)> {
    let inst = match config::instance(env, instance) {
        Ok(Some(inst)) => inst,
        Ok(None) => return None,
        Err(problem) => {
            outcome::log_config(&problem);
            return None;
        }
    };
    match tokens::signer(env, &inst).await {
        Ok(signer) => Some((inst, signer)),
        Err(problem) => {
            outcome::log_config(&problem);
            None
        }
    }
}

/// Signs the verification token and sends the browser on to the site (or, for a challenge the
/// widget started, back to the page that polls for it).
async fn verified(
    req: &Request,
    env: &Env,
    inst: &InstanceConfig,
    signer: &tokens::Signer,
    c: &LinkChallenge,
) -> Result<Response> {
    if c.widget {
        return page(
            200,
            "You are verified",
            "<p>Return to the page where you started: it continues by itself.</p>",
        );
    }
    let url = req.url()?;
    let phone = c.claimer().map(|r| r.e164()).unwrap_or_default();
    let jwt = tokens::sign(signer, env, inst, &url, phone, &c.id, clock::now()).await?;
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
