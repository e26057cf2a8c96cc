//! The widget API for browsers, under `/widget/v1/`: `config`, `start` (a code or a WhatsApp
//! link), `verify` and `poll`. Pages call it directly, so it authenticates with the instance's
//! publishable key and its allowlist of origins (CORS, preflight included), counts `start` and
//! `verify` (`WIDGET_RL`, 20 a minute each) and `poll` (`WIDGET_POLL_RL`, 120 a minute) per
//! client (an IPv4 address or an IPv6 /64), holds a server-side resend cooldown,
//! and can ask Cloudflare Turnstile before sending anything. Codes run on the same recipient
//! Durable Objects as the server APIs, links on the same link objects; a success hands the page
//! the same verification token as the login link (`tokens`: ES256 unless the instance opts into
//! HS256). A verified link session hands out one token, the same claims on every poll until
//! its `exp`, and then only its status. Contract: docs/widget.md.

use super::outcome::{self, internal, session_attempt, Outcome};
use super::request::{self, json, json_object};
use super::tokens;
use crate::channels::turnstile;
use crate::store::link;
use crate::store::recipient::{Recipients, StartMsg};
use crate::store::Op;
use crate::{clock, config};
use config::ConfigProblem;
use otp_core::config::{InstanceConfig, TurnstileConfig, WidgetConfig};
use otp_core::rules::challenge::SendOptions;
use otp_core::rules::link_state::{Callbacks, LinkChallenge, LinkMessages, LinkStatus};
use otp_core::time::iso8601;
use otp_core::web::token;
use otp_core::web::widget::{self as core, Mode, Session};
use otp_core::{Alphabet, CodeSpec, Recipient, Secret};
use serde::Serialize;
use serde_json::{Map, Value};
use std::rc::Rc;
use worker::{Env, Headers, Method, Request, Response, Result};

/// A per-client rate limit of one route: its binding (`[[ratelimits]]` in wrangler.toml,
/// period 60 s) and what a refusal says. Clients are counted by IPv4 address or IPv6 /64.
struct Limit {
    route: &'static str,
    binding: &'static str,
    message: &'static str,
}

/// `start` and `verify`: 20 a minute each per client (`WIDGET_RL`).
const START: Limit = Limit {
    route: "start",
    binding: "WIDGET_RL",
    message: "too many requests from this address: at most 20 a minute",
};
const VERIFY: Limit = Limit {
    route: "verify",
    ..START
};
/// `poll`: 120 a minute per client (`WIDGET_POLL_RL`): a widget polls every 2-10 s, so this is
/// several link sessions at once from one address, and no flood of reads.
const POLL: Limit = Limit {
    route: "poll",
    binding: "WIDGET_POLL_RL",
    message: "too many polls from this address: at most 120 a minute",
};
/// The period of every widget rate limit, in seconds (`Retry-After` when one refuses).
const RATE_PERIOD: i64 = 60;
/// Seconds between two polls the widget starts with (it backs off from there).
const POLL_INTERVAL: i64 = 2;
/// How long a browser may cache a preflight, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

type Answer = std::result::Result<Response, Outcome>;

/// A request's `Origin`, and whether CORS lets it read the answer.
struct Cors {
    origin: Option<String>,
    allowed: bool,
}

impl Cors {
    fn apply(&self, resp: &mut Response) -> Result<()> {
        let h = resp.headers_mut();
        h.set("vary", "Origin")?;
        if let (Some(origin), true) = (&self.origin, self.allowed) {
            set_cors(h, origin)?;
        }
        Ok(())
    }
}

fn set_cors(h: &mut Headers, origin: &str) -> Result<()> {
    h.set("access-control-allow-origin", origin)?;
    h.set(
        "access-control-expose-headers",
        "retry-after, x-otp-attempts-remaining",
    )
}

/// Whether a page on `origin` may use `widget`: the allowlist, or the service's own origin
/// (its demo and middleware pages).
fn origin_ok(widget: &WidgetConfig, origin: Option<&str>, own: &str) -> bool {
    match origin {
        Some(o) => o.eq_ignore_ascii_case(own) || core::origin_allowed(&widget.allowed_origins, o),
        None => false,
    }
}

/// The request's own origin and every origin the service would answer.
fn own_origin(req: &Request) -> String {
    req.url()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// Routes `/widget/v1/...`.
pub async fn handle(mut req: Request, env: &Env, route: &[&str]) -> Result<Response> {
    let origin = req.headers().get("origin").ok().flatten();
    let own = own_origin(&req);
    let config = config::instances(env).ok();
    // Before the key is known, CORS follows every instance's allowlist (a preflight carries
    // no body); once it is known, only that instance's.
    let any_allows = |origin: Option<&str>| {
        config.as_ref().is_some_and(|c| {
            c.instances
                .iter()
                .filter_map(|i| i.widget.as_ref())
                .any(|w| origin_ok(w, origin, &own))
        })
    };
    let mut cors = Cors {
        allowed: any_allows(origin.as_deref()),
        origin,
    };
    let known = matches!(route, ["config" | "start" | "verify" | "poll"]);
    if !known {
        return outcome::not_found();
    }
    let method = req.method();
    let result = match (method, route) {
        (Method::Options, _) => return preflight(&cors),
        (Method::Get, ["config"]) => widget_config(&req, config, &mut cors, &own),
        (Method::Post, ["start"]) => start(&mut req, env, config, &mut cors, &own).await,
        (Method::Post, ["verify"]) => verify(&mut req, env, config, &mut cors, &own).await,
        (Method::Post, ["poll"]) => poll(&mut req, env, config, &mut cors, &own).await,
        (_, ["config"]) => Err(Outcome::MethodNotAllowed("GET")),
        _ => Err(Outcome::MethodNotAllowed("POST")),
    };
    let mut resp = result.or_else(outcome::widget)?;
    cors.apply(&mut resp)?;
    Ok(resp)
}

fn preflight(cors: &Cors) -> Result<Response> {
    let mut resp = Response::empty()?.with_status(if cors.allowed { 204 } else { 403 });
    let h = resp.headers_mut();
    h.set("vary", "Origin")?;
    if let (Some(origin), true) = (&cors.origin, cors.allowed) {
        set_cors(h, origin)?;
        h.set("access-control-allow-methods", "GET, POST")?;
        h.set("access-control-allow-headers", "content-type")?;
        h.set("access-control-max-age", PREFLIGHT_MAX_AGE)?;
    }
    Ok(resp)
}

type Config = Option<Rc<otp_core::config::ServiceConfig>>;
type Found<'c> = (&'c InstanceConfig, &'c WidgetConfig);

/// The instance of a publishable key, if the request's origin may use it; CORS then follows
/// that instance's allowlist.
fn instance_for<'c>(
    config: &'c Config,
    key: &str,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<Found<'c>, Outcome> {
    let config = config
        .as_ref()
        .ok_or_else(|| Outcome::from(ConfigProblem("INSTANCES is missing or not valid".into())))?;
    let found = config
        .by_publishable_key(key)
        .and_then(|inst| inst.widget.as_ref().map(|w| (inst, w)));
    cors.allowed = found.is_some_and(|(_, w)| origin_ok(w, cors.origin.as_deref(), own));
    if !cors.allowed {
        return Err(Outcome::Forbidden);
    }
    found.ok_or(Outcome::Forbidden)
}

fn ok<T: Serialize>(body: &T) -> Answer {
    json(200, body, &[]).map_err(internal)
}

#[derive(Serialize)]
struct ConfigData<'a> {
    name: &'a str,
    modes: Vec<&'static str>,
    code_length: u8,
    alphabet: &'static str,
    channel: &'static str,
    resend_cooldown: i64,
    turnstile_site_key: Option<&'a str>,
    /// `null` when neither the instance nor the visitor's request names a country.
    default_country: Option<String>,
}

fn alphabet_name(a: Alphabet) -> &'static str {
    match a {
        Alphabet::Digits => "digits",
        _ => "alphanumeric",
    }
}

fn widget_config(req: &Request, config: Config, cors: &mut Cors, own: &str) -> Answer {
    let url = req.url().map_err(internal)?;
    let key = request::query(&url, "key").unwrap_or_default();
    let (inst, w) = instance_for(&config, &key, cors, own)?;
    let mut modes = vec!["code"];
    if inst.business_number.is_some() {
        modes.push("link");
    }
    ok(&ConfigData {
        name: &inst.name,
        modes,
        code_length: w.code_length,
        alphabet: alphabet_name(w.alphabet),
        channel: inst.channel.medium(),
        resend_cooldown: w.resend_cooldown,
        turnstile_site_key: w.turnstile.as_ref().map(|t| t.site_key.as_str()),
        default_country: w
            .default_country
            .clone()
            .or_else(|| request::visitor_country(req)),
    })
}

/// What every POST route does first: count the request toward its route's per-client limit,
/// read the body, and find the instance of its publishable key, read
/// before the other fields so that a page on a foreign origin learns nothing but `forbidden`.
async fn prologue<'c>(
    req: &mut Request,
    env: &Env,
    limit: &Limit,
    config: &'c Config,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<(Map<String, Value>, Found<'c>), Outcome> {
    let key = format!("{}|{}", limit.route, request::client_key(req));
    if !request::rate_limit_allows(env, limit.binding, key).await? {
        return Err(Outcome::RateLimited {
            message: limit.message,
            period: RATE_PERIOD,
        });
    }
    let (body, _) = json_object(req).await?;
    let found = instance_for(config, key_of(&body), cors, own)?;
    Ok((body, found))
}

/// The publishable key of a body.
fn key_of(body: &Map<String, Value>) -> &str {
    body.get("publishable_key")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[derive(Serialize)]
struct StartCodeData {
    session: String,
    mode: &'static str,
    phone: String,
    channel: &'static str,
    code_length: u8,
    alphabet: &'static str,
    expires_at: String,
    expires_in: i64,
    resend_in: i64,
}

#[derive(Serialize)]
struct StartLinkData {
    session: String,
    mode: &'static str,
    link: String,
    poll_secret: String,
    expires_at: String,
    expires_in: i64,
    poll_interval: i64,
}

async fn start(req: &mut Request, env: &Env, config: Config, cors: &mut Cors, own: &str) -> Answer {
    let (body, (inst, w)) = prologue(req, env, &START, &config, cors, own).await?;
    let input = core::parse_start(&body)?;
    let key = config::widget_key(env)?;
    if let Some(t) = &w.turnstile {
        let ip = request::client_ip(req);
        turnstile(env, inst, t, input.turnstile_token.as_deref(), &ip).await?;
    }
    let test = core::is_test_key(&input.publishable_key);
    match (input.mode, &input.phone) {
        (Mode::Code, Some(phone)) => {
            start_code(env, inst, w, &key, phone, input.locale, test).await
        }
        (Mode::Code, None) => Err(Outcome::Malformed),
        (Mode::Link, _) => start_link(env, inst, w, &key, request::started_by(req)).await,
    }
}

async fn start_code(
    env: &Env,
    inst: &InstanceConfig,
    w: &WidgetConfig,
    key: &Secret,
    phone: &Recipient,
    locale: Option<String>,
    test: bool,
) -> Answer {
    config::pepper(env)?;
    let mut msg = StartMsg::code(
        &inst.id,
        phone,
        CodeSpec {
            length: w.code_length,
            alphabet: w.alphabet,
        },
        w.code_ttl.min(inst.max_expires.unwrap_or(w.code_ttl)),
        SendOptions {
            locale,
            test,
            ..SendOptions::default()
        },
    )
    .map_err(internal)?;
    msg.cooldown = Some(w.resend_cooldown);
    let asked = clock::now();
    let challenge = Recipients::new(env)
        .start_guarded(inst, phone, msg, crate::store::budget::Source::Widget(w))
        .await
        .map_err(internal)??;
    let session = core::seal_session(
        key,
        &Session {
            mode: Mode::Code,
            instance: inst.id.clone(),
            target: phone.digits().into(),
            // A number with a live code gets that code again (otp_core::rules::challenge):
            // the session is that challenge, whose length and alphabet win.
            id: challenge.id.clone(),
        },
    );
    ok(&StartCodeData {
        session,
        mode: Mode::Code.as_str(),
        phone: phone.e164(),
        channel: inst.channel.medium(),
        code_length: challenge.spec.length,
        alphabet: alphabet_name(challenge.spec.alphabet),
        expires_at: iso8601(challenge.expires_at),
        expires_in: challenge.seconds_left(asked),
        resend_in: w.resend_cooldown,
    })
}

/// Starts a link session; `started` (place, browser) is shown on the login link's confirm page.
async fn start_link(
    env: &Env,
    inst: &InstanceConfig,
    w: &WidgetConfig,
    key: &Secret,
    started: (Option<String>, Option<String>),
) -> Answer {
    use otp_core::rules::link::{prefilled_text, wa_me_link};

    let business_number = (inst.business_number.as_deref())
        .filter(|_| inst.sends_whatsapp())
        .ok_or(Outcome::NoLinkMode)?;
    // The login link the user gets back is signed with the login key.
    config::login_key(env)?;
    let now = clock::now();
    let expires = (now, now + w.link_ttl);
    let messages = LinkMessages::or_defaults(&inst.name, None, None, None, None);
    let prompt = messages.prompt.clone();
    let (id, code) = link::create(env, &inst.id, None, expires, |id, code| {
        let mut c = LinkChallenge::new(
            id,
            inst.id.clone(),
            code,
            inst.name.clone(),
            expires,
            None,
            messages.clone(),
            Callbacks::default(),
            inst.link.max_failures,
        );
        c.widget = true;
        (c.started_near, c.started_with) = started.clone();
        c
    })
    .await
    .map_err(internal)?;
    let session = core::seal_session(
        key,
        &Session {
            mode: Mode::Link,
            instance: inst.id.clone(),
            target: code.clone(),
            id: id.clone(),
        },
    );
    ok(&StartLinkData {
        session,
        mode: Mode::Link.as_str(),
        link: wa_me_link(business_number, &prefilled_text(&prompt, &code)),
        poll_secret: core::poll_secret(key, &id),
        expires_at: iso8601(expires.1),
        expires_in: w.link_ttl,
        poll_interval: POLL_INTERVAL,
    })
}

/// Checks a Turnstile token with the instance's secret: anything but a clear success
/// refuses the start.
async fn turnstile(
    env: &Env,
    inst: &InstanceConfig,
    t: &TurnstileConfig,
    token: Option<&str>,
    ip: &str,
) -> std::result::Result<(), Outcome> {
    let secret = config::instance_secrets(env, &inst.id)?
        .turnstile_secret
        .ok_or_else(|| {
            Outcome::from(ConfigProblem(format!(
                "widget.turnstile needs INSTANCE_SECRETS.{}.turnstile_secret",
                inst.id
            )))
        })?;
    let token = token.ok_or(Outcome::TurnstileFailed)?;
    let net = crate::channels::Net::of(env);
    if turnstile::passed(&t.siteverify_url, &secret, token, ip, net).await {
        Ok(())
    } else {
        Err(Outcome::TurnstileFailed)
    }
}

/// Opens a session id for `inst` in `mode`; anything else is not found.
fn open(
    env: &Env,
    sealed: &str,
    inst: &InstanceConfig,
    mode: Mode,
) -> std::result::Result<(Secret, Session), Outcome> {
    let key = config::widget_key(env)?;
    let session = core::open_session(&key, sealed)
        .filter(|s| s.mode == mode && s.instance.eq_ignore_ascii_case(&inst.id))
        .ok_or(Outcome::SessionNotFound)?;
    Ok((key, session))
}

#[derive(Serialize)]
struct VerifiedData {
    status: &'static str,
    phone: String,
    token: String,
    expires_in: i64,
}

/// The token of challenge `id`, verified for `phone`, issued at `iat`; `expires_in` counts from
/// `now`.
async fn token_for(
    req: &Request,
    env: &Env,
    signer: &tokens::Signer,
    inst: &InstanceConfig,
    (phone, id): (String, &str),
    iat: i64,
    now: i64,
) -> std::result::Result<VerifiedData, Outcome> {
    let url = req.url().map_err(internal)?;
    let token = tokens::sign(signer, env, inst, &url, phone.clone(), id, iat)
        .await
        .map_err(internal)?;
    Ok(VerifiedData {
        status: "verified",
        phone,
        token,
        expires_in: (iat + tokens::TOKEN_TTL - now).max(0),
    })
}

async fn verify(
    req: &mut Request,
    env: &Env,
    config: Config,
    cors: &mut Cors,
    own: &str,
) -> Answer {
    let (body, (inst, _)) = prologue(req, env, &VERIFY, &config, cors, own).await?;
    let input = core::parse_verify(&body)?;
    config::pepper(env)?;
    let (_, session) = open(env, &input.session, inst, Mode::Code)?;
    let recipient = Recipient::parse(&session.target).map_err(|_| Outcome::SessionNotFound)?;
    // The signing key is found before the code is spent: a right code always gets its token.
    let signer = tokens::signer(env, inst).await?;
    let attempt = Recipients::new(env)
        .attempt(&inst.id, &recipient, &input.code, Some(&session.id))
        .await
        .map_err(internal)?;
    session_attempt(&session.id, attempt)?;
    let now = clock::now();
    let who = (recipient.e164(), session.id.as_str());
    ok(&token_for(req, env, &signer, inst, who, now, now).await?)
}

/// A poll's answer; `phone`, `token` and `expires_in` once verified, until the token issued at
/// verification expires.
#[derive(Serialize, Default)]
struct PollData {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<i64>,
    /// While pending: when the user's message claimed it (the login URL is on its way).
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_at: Option<String>,
}

async fn poll(req: &mut Request, env: &Env, config: Config, cors: &mut Cors, own: &str) -> Answer {
    let (body, (inst, _)) = prologue(req, env, &POLL, &config, cors, own).await?;
    let input = core::parse_poll(&body)?;
    let (key, session) = open(env, &input.session, inst, Mode::Link)?;
    if !core::poll_secret_matches(&key, &session.id, &input.poll_secret) {
        return Err(Outcome::SessionNotFound);
    }
    let view = link::view(env, &inst.id, &session.target, Op::Get)
        .await
        .map_err(internal)?;
    // A challenge its object no longer holds has ended long ago.
    let Some(c) = view.challenge.filter(|c| c.id == session.id) else {
        return ok(&PollData {
            status: LinkStatus::Expired.as_str(),
            ..PollData::default()
        });
    };
    let now = clock::now();
    let status = c.status(now);
    match (status, c.claimer()) {
        // One token per verification: its claims (iat = the moment of verification, exp, jti)
        // are the same on every poll, so polling never extends it, and after its exp a poll
        // answers the status alone (issue 12; docs/security.md).
        (LinkStatus::Verified, Some(phone)) => match c.verified_at {
            Some(iat) if token::still_valid(iat, now) => {
                let signer = tokens::signer(env, inst).await?;
                let d = token_for(req, env, &signer, inst, (phone.e164(), &c.id), iat, now).await?;
                ok(&PollData {
                    status: d.status,
                    phone: Some(d.phone),
                    token: Some(d.token),
                    expires_in: Some(d.expires_in),
                    claimed_at: None,
                })
            }
            _ => ok(&PollData {
                status: status.as_str(),
                ..PollData::default()
            }),
        },
        // Seed statuses only: a claimed link is `pending`, with when it was claimed.
        _ => ok(&PollData {
            status: status.hypersender(),
            claimed_at: (status == LinkStatus::Claimed)
                .then_some(c.claimed_at.map(iso8601))
                .flatten(),
            ..PollData::default()
        }),
    }
}
