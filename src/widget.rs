//! The widget API for browsers, under `/widget/v1/`: `config`, `start` (a code or a WhatsApp
//! link), `verify` and `poll`. Pages call it directly, so it authenticates with the instance's
//! publishable key and its allowlist of origins (CORS, preflight included), counts `start` and
//! `verify` per client IP (`WIDGET_RL`, 20 a minute each), holds a server-side resend cooldown,
//! and can ask Cloudflare Turnstile before sending anything. Codes run on the same recipient
//! Durable Objects as the server APIs, links on the same link objects; a success hands the page
//! the same HS256 verification token as the login link. Contract: docs/widget.md.

use crate::http::{self, json_object, BodyError};
use crate::link_object::LinkView;
use crate::service::{self, ConfigProblem};
use crate::store::{self, Recipients, StartMsg};
use crate::whatotp::{check_code, ApiError};
use otp_core::config::{InstanceConfig, TurnstileConfig, WidgetConfig};
use otp_core::rules::challenge::SendOptions;
use otp_core::rules::link_state::{Callbacks, LinkChallenge, LinkMessages, LinkStatus};
use otp_core::time::iso8601;
use otp_core::web::widget::{self as core, Mode, Session};
use otp_core::{Alphabet, CodeSpec, Recipient, Secret};
use serde::Serialize;
use serde_json::{Map, Value};
use std::rc::Rc;
use worker::{Env, Headers, Method, Request, Response, Result};

/// Rate limiting binding: 20 requests per 60 s per (route, client IP).
pub const RATE_LIMITER: &str = "WIDGET_RL";
/// Seconds between two polls the widget starts with (it backs off from there).
const POLL_INTERVAL: i64 = 2;
/// How long a browser may cache a preflight, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Why a widget request failed: the failures it shares with the WhatOTP API, and its own.
enum Failure {
    Shared(ApiError),
    /// Unknown publishable key, or an origin not on its allowlist: one answer for both.
    Forbidden,
    TurnstileFailed,
    RateLimited,
    /// The methods the route takes.
    MethodNotAllowed(&'static str),
    /// A session id that does not open, is for another instance or mode, or a wrong poll
    /// secret: one answer for all.
    SessionNotFound,
    /// The instance has no WhatsApp business number, so no link mode.
    NoLinkMode,
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Shared(e)
    }
}

impl From<otp_core::wire::whatotp::ApiError> for Failure {
    fn from(e: otp_core::wire::whatotp::ApiError) -> Self {
        Self::Shared(ApiError::Invalid(e))
    }
}

impl From<ConfigProblem> for Failure {
    fn from(p: ConfigProblem) -> Self {
        Self::Shared(ApiError::from(p))
    }
}

fn internal(e: worker::Error) -> Failure {
    worker::console_error!("internal error: {e}");
    Failure::from(ConfigProblem(format!("storage is unavailable ({e})")))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<i64>,
}

impl Failure {
    fn respond(self) -> Result<Response> {
        let own =
            |status: u16, code: &'static str, message: &str, field| crate::whatotp::ErrorParts {
                status,
                code,
                message: message.into(),
                field,
                headers: vec![],
                attempts: None,
                retry_after: None,
            };
        let mut p = match self {
            Self::Shared(e) => e.parts(),
            Self::Forbidden => own(
                403,
                "forbidden",
                "this publishable key is unknown or not allowed on this origin",
                None,
            ),
            Self::TurnstileFailed => own(
                403,
                "turnstile_failed",
                "the human check failed: complete it and try again",
                Some("turnstile_token"),
            ),
            Self::RateLimited => {
                let mut p = own(
                    429,
                    "rate_limited",
                    "too many requests from this address: at most 20 a minute",
                    None,
                );
                p.headers.push(("retry-after", "60".into()));
                p.retry_after = Some(60);
                p
            }
            Self::MethodNotAllowed(methods) => {
                let mut p = own(
                    405,
                    "method_not_allowed",
                    &format!("this endpoint takes {methods}"),
                    None,
                );
                p.headers.push(("allow", format!("{methods}, OPTIONS")));
                p
            }
            Self::SessionNotFound => own(
                404,
                "session_not_found",
                "no session has this id: start again",
                Some("session"),
            ),
            Self::NoLinkMode => own(
                400,
                "invalid_request",
                "`mode` link needs a WhatsApp business number on this instance: use `code`",
                Some("mode"),
            ),
        };
        // The shared failures name the WhatOTP fields; the widget's are `session` and `phone`.
        p.field = match p.field {
            Some("session_id") => Some("session"),
            Some("to") => Some("phone"),
            f => f,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: p.code,
                message: &p.message,
                field: p.field,
                attempts_left: p.attempts,
                retry_after: p.retry_after,
            },
        };
        http::json(p.status, &body, &p.headers)
    }
}

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
pub async fn handle(mut req: Request, env: &Env, rest: &[String]) -> Result<Response> {
    let route: Vec<&str> = rest.iter().map(String::as_str).collect();
    let origin = req.headers().get("origin").ok().flatten();
    let own = own_origin(&req);
    let config = service::instances(env).ok();
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
    let known = matches!(route.as_slice(), ["config" | "start" | "verify" | "poll"]);
    if !known {
        return http::not_found();
    }
    let method = req.method();
    let result = match (method, route.as_slice()) {
        (Method::Options, _) => return preflight(&cors),
        (Method::Get, ["config"]) => widget_config(&req, config, &mut cors, &own),
        (Method::Post, ["start"]) => start(&mut req, env, config, &mut cors, &own).await,
        (Method::Post, ["verify"]) => verify(&mut req, env, config, &mut cors, &own).await,
        (Method::Post, ["poll"]) => poll(&mut req, env, config, &mut cors, &own).await,
        (_, ["config"]) => Err(Failure::MethodNotAllowed("GET")),
        _ => Err(Failure::MethodNotAllowed("POST")),
    };
    let mut resp = match result {
        Ok(resp) => resp,
        Err(e) => e.respond()?,
    };
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

/// The instance of a publishable key, if the request's origin may use it; CORS then follows
/// that instance's allowlist.
fn instance_for<'c>(
    config: &'c Config,
    key: &str,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<(&'c InstanceConfig, &'c WidgetConfig), Failure> {
    let config = config
        .as_ref()
        .ok_or_else(|| Failure::from(ConfigProblem("INSTANCES is missing or not valid".into())))?;
    let found = config
        .by_publishable_key(key)
        .and_then(|inst| inst.widget.as_ref().map(|w| (inst, w)));
    cors.allowed = found.is_some_and(|(_, w)| origin_ok(w, cors.origin.as_deref(), own));
    if !cors.allowed {
        return Err(Failure::Forbidden);
    }
    found.ok_or(Failure::Forbidden)
}

fn ok<T: Serialize>(body: &T) -> std::result::Result<Response, Failure> {
    http::json(200, body, &[("cache-control", "no-store".into())]).map_err(internal)
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
}

fn alphabet_name(a: Alphabet) -> &'static str {
    match a {
        Alphabet::Digits => "digits",
        _ => "alphanumeric",
    }
}

fn widget_config(
    req: &Request,
    config: Config,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<Response, Failure> {
    let url = req.url().map_err(internal)?;
    let key = url
        .query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
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
    })
}

async fn body(req: &mut Request) -> std::result::Result<Map<String, Value>, Failure> {
    match json_object(req).await {
        Ok(Ok(map)) => Ok(map),
        Ok(Err(BodyError::TooLarge)) => Err(ApiError::TooLarge.into()),
        Ok(Err(BodyError::NotAnObject)) | Err(_) => Err(ApiError::Malformed.into()),
    }
}

/// What every POST route does first: count the request toward its route's per-IP limit (when
/// the route has one), read the body, and find the instance of its publishable key, read
/// before the other fields so that a page on a foreign origin learns nothing but `forbidden`.
async fn prologue<'c>(
    req: &mut Request,
    env: &Env,
    limited_route: Option<&str>,
    config: &'c Config,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<(Map<String, Value>, &'c InstanceConfig, &'c WidgetConfig), Failure> {
    if let Some(route) = limited_route {
        let key = format!("{route}|{}", http::client_ip(req));
        if !http::rate_limit_allows(env, RATE_LIMITER, key).await? {
            return Err(Failure::RateLimited);
        }
    }
    let body = body(req).await?;
    let (inst, w) = instance_for(config, key_of(&body), cors, own)?;
    Ok((body, inst, w))
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

async fn start(
    req: &mut Request,
    env: &Env,
    config: Config,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<Response, Failure> {
    let (body, inst, w) = prologue(req, env, Some("start"), &config, cors, own).await?;
    let input = core::parse_start(&body)?;
    let key = service::widget_key(env)?;
    if let Some(t) = &w.turnstile {
        let ip = http::client_ip(req);
        turnstile(env, inst, t, input.turnstile_token.as_deref(), &ip).await?;
    }
    let test = core::is_test_key(&input.publishable_key);
    match (input.mode, &input.phone) {
        (Mode::Code, Some(phone)) => {
            start_code(env, inst, w, &key, phone, input.locale, test).await
        }
        (Mode::Code, None) => Err(ApiError::Malformed.into()),
        (Mode::Link, _) => start_link(env, inst, w, &key).await,
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
) -> std::result::Result<Response, Failure> {
    service::pepper(env)?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| internal(worker::Error::RustError(e.to_string())))?;
    let id = otp_core::ids::uuid_v4(bytes);
    let msg = StartMsg {
        instance: inst.id.clone(),
        recipient: phone.digits().into(),
        id: id.clone(),
        spec: CodeSpec {
            length: w.code_length,
            alphabet: w.alphabet,
        },
        name: None,
        ttl: w.code_ttl.min(inst.max_expires.unwrap_or(w.code_ttl)),
        options: SendOptions {
            locale,
            test,
            ..SendOptions::default()
        },
        cooldown: Some(w.resend_cooldown),
    };
    let challenge = Recipients::new(env)
        .start_guarded(inst, phone, msg)
        .await
        .map_err(internal)?
        .map_err(ApiError::from)?;
    let session = core::seal_session(
        key,
        &Session {
            mode: Mode::Code,
            instance: inst.id.clone(),
            target: phone.digits().into(),
            id,
        },
    );
    ok(&StartCodeData {
        session,
        mode: Mode::Code.as_str(),
        phone: phone.e164(),
        channel: inst.channel.medium(),
        code_length: w.code_length,
        alphabet: alphabet_name(w.alphabet),
        expires_at: iso8601(challenge.expires_at),
        expires_in: challenge.expires_at - challenge.created_at,
        resend_in: w.resend_cooldown,
    })
}

async fn start_link(
    env: &Env,
    inst: &InstanceConfig,
    w: &WidgetConfig,
    key: &Secret,
) -> std::result::Result<Response, Failure> {
    use crate::hypersender::{DEFAULT_EXPIRED, DEFAULT_FAILED, DEFAULT_PROMPT, DEFAULT_SUCCESS};
    use otp_core::rules::link::{prefilled_text, wa_me_link};
    use otp_core::rules::template::render;

    let business_number = inst.business_number.as_deref().ok_or(Failure::NoLinkMode)?;
    // The login link the user gets back is signed with the login key.
    service::login_key(env)?;
    let now = http::now();
    let expires = (now, now + w.link_ttl);
    let prompt = render(DEFAULT_PROMPT, &[("name", &inst.name)]);
    let (id, code) = crate::link_object::create(env, &inst.id, None, expires, |id, code| {
        let mut c = LinkChallenge::new(
            id,
            inst.id.clone(),
            code,
            inst.name.clone(),
            expires,
            None,
            LinkMessages {
                prompt: prompt.clone(),
                success: DEFAULT_SUCCESS.into(),
                failed: DEFAULT_FAILED.into(),
                expired: DEFAULT_EXPIRED.into(),
            },
            Callbacks::default(),
            inst.link.max_failures,
        );
        c.widget = true;
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

#[derive(serde::Deserialize)]
struct SiteverifyAnswer {
    success: bool,
}

/// Checks a Turnstile token at the instance's siteverify URL. Anything but a clear success
/// refuses the start: a check that cannot run fails closed.
async fn turnstile(
    env: &Env,
    inst: &InstanceConfig,
    t: &TurnstileConfig,
    token: Option<&str>,
    ip: &str,
) -> std::result::Result<(), Failure> {
    let secret = service::instance_secrets(env, &inst.id)?
        .turnstile_secret
        .ok_or_else(|| {
            Failure::from(ConfigProblem(format!(
                "widget.turnstile needs INSTANCE_SECRETS.{}.turnstile_secret",
                inst.id
            )))
        })?;
    let token = token.ok_or(Failure::TurnstileFailed)?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("secret", &secret)
        .append_pair("response", token);
    if ip != "local" {
        form.append_pair("remoteip", ip);
    }
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    match crate::channel::post(&t.siteverify_url, &headers, form.finish()).await {
        Ok((200, body)) => match serde_json::from_slice::<SiteverifyAnswer>(&body) {
            Ok(answer) if answer.success => Ok(()),
            _ => Err(Failure::TurnstileFailed),
        },
        Ok((status, _)) => {
            worker::console_error!("turnstile siteverify answered {status}");
            Err(Failure::TurnstileFailed)
        }
        Err(e) => {
            worker::console_error!("turnstile siteverify: {e:?}");
            Err(Failure::TurnstileFailed)
        }
    }
}

/// Opens a session id for `inst` in `mode`; anything else is not found.
fn open(
    env: &Env,
    sealed: &str,
    inst: &InstanceConfig,
    mode: Mode,
) -> std::result::Result<(Secret, Session), Failure> {
    let key = service::widget_key(env)?;
    let session = core::open_session(&key, sealed)
        .filter(|s| s.mode == mode && s.instance.eq_ignore_ascii_case(&inst.id))
        .ok_or(Failure::SessionNotFound)?;
    Ok((key, session))
}

#[derive(Serialize)]
struct VerifiedData {
    status: &'static str,
    phone: String,
    token: String,
    expires_in: i64,
}

/// The key that signs `inst`'s tokens, or the configuration problem that names it.
fn token_key(env: &Env, inst: &InstanceConfig) -> std::result::Result<Secret, Failure> {
    crate::login::token_key(env, inst).ok_or_else(|| {
        Failure::from(ConfigProblem(format!(
            "verification tokens need INSTANCE_SECRETS.{}.token_keys.{}",
            inst.id, inst.token_kid
        )))
    })
}

fn token_for(
    req: &Request,
    env: &Env,
    key: &Secret,
    inst: &InstanceConfig,
    phone: String,
    id: &str,
) -> std::result::Result<VerifiedData, Failure> {
    let url = req.url().map_err(internal)?;
    let token = crate::login::sign_token(env, key, inst, &url, phone.clone(), id);
    Ok(VerifiedData {
        status: "verified",
        phone,
        token,
        expires_in: crate::login::TOKEN_TTL,
    })
}

async fn verify(
    req: &mut Request,
    env: &Env,
    config: Config,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<Response, Failure> {
    let (body, inst, _) = prologue(req, env, Some("verify"), &config, cors, own).await?;
    let input = core::parse_verify(&body)?;
    service::pepper(env)?;
    let (_, session) = open(env, &input.session, inst, Mode::Code)?;
    let recipient = Recipient::parse(&session.target).map_err(|_| Failure::SessionNotFound)?;
    // The signing key is found before the code is spent: a right code always gets its token.
    let signer = token_key(env, inst)?;
    check_code(env, &inst.id, &recipient, &session.id, &input.code).await?;
    ok(&token_for(
        req,
        env,
        &signer,
        inst,
        recipient.e164(),
        &session.id,
    )?)
}

/// A poll's answer; `phone`, `token` and `expires_in` only once verified.
#[derive(Serialize, Default)]
struct PollData {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<i64>,
}

async fn poll(
    req: &mut Request,
    env: &Env,
    config: Config,
    cors: &mut Cors,
    own: &str,
) -> std::result::Result<Response, Failure> {
    // Not counted: the widget polls every 2-10 s, and a poll needs the signed session and
    // its secret before it costs one Durable Object read.
    let (body, inst, _) = prologue(req, env, None, &config, cors, own).await?;
    let input = core::parse_poll(&body)?;
    let (key, session) = open(env, &input.session, inst, Mode::Link)?;
    if !core::poll_secret_matches(&key, &session.id, &input.poll_secret) {
        return Err(Failure::SessionNotFound);
    }
    let stub = store::link_stub(env, &inst.id, &session.target).map_err(internal)?;
    let view: LinkView = store::call_object(&stub, "get", &serde_json::json!({}))
        .await
        .map_err(internal)?;
    // A challenge its object no longer holds has ended long ago.
    let Some(c) = view.challenge.filter(|c| c.id == session.id) else {
        return ok(&PollData {
            status: LinkStatus::Expired.as_str(),
            ..PollData::default()
        });
    };
    let status = c.status(http::now());
    match (status, c.claimed_by.as_deref()) {
        (LinkStatus::Verified, Some(digits)) => {
            let signer = token_key(env, inst)?;
            let d = token_for(req, env, &signer, inst, format!("+{digits}"), &c.id)?;
            ok(&PollData {
                status: d.status,
                phone: Some(d.phone),
                token: Some(d.token),
                expires_in: Some(d.expires_in),
            })
        }
        _ => ok(&PollData {
            status: status.as_str(),
            ..PollData::default()
        }),
    }
}
