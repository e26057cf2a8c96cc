//! One outcome type for every surface, and a thin renderer per API: the Hypersender envelope
//! (`{success, message, data}`, Laravel-style `errors` on a 422), the WhatOTP error body
//! (`{"error": {code, message, field, attempts_remaining}}`), the widget's (the same, with
//! `attempts_left` and `retry_after`), and the HTML pages of the login link and the middleware.
//!
//! A failure is said once, as an [`Outcome`]; what differs between the APIs is only how it is
//! written. Storage faults and other internal errors go through [`internal`]: the detail is
//! logged, the client gets a generic 503.

use super::request::{json, MAX_BODY};
use crate::config::ConfigProblem;
use crate::store::budget::Refused;
use crate::store::recipient::Refused as SendRefused;
use otp_core::rules::challenge::{Attempt, Refusal};
use otp_core::wire::hypersender::ValidationErrors;
use otp_core::wire::whatotp::ApiError as FieldError;
use serde::Serialize;
use worker::{Response, Result};

/// Why a request did not succeed.
pub enum Outcome {
    NotFound,
    /// The methods the route takes.
    MethodNotAllowed(&'static str),
    /// No valid credential.
    Unauthenticated,
    /// The path names no configured instance.
    UnknownInstance,
    /// Unknown publishable key, or an origin not on its allowlist: one answer for both.
    Forbidden,
    /// A rate limit refused the request: what it limits, in words, and its period.
    RateLimited {
        message: &'static str,
        period: i64,
    },
    TooLarge,
    Malformed,
    /// Hypersender's field rules failed.
    Invalid(ValidationErrors),
    /// WhatOTP's (and the widget's) field rules failed.
    InvalidField(FieldError),
    InvalidIdempotencyKey,
    IdempotencyInProgress,
    IdempotencyConflict,
    TurnstileFailed,
    /// The instance has no WhatsApp business number or no WhatsApp channel, so no link mode.
    NoLinkMode,
    /// The recipient's limits refused a send.
    Refused(Refusal),
    /// The instance's abuse checks refused a send.
    Guard(Refused),
    /// An attempt at a recipient's latest code that did not validate (Hypersender).
    Attempt(Box<Attempt>),
    /// A session id that does not open or names nothing.
    SessionNotFound,
    SessionVerified,
    SessionExpired,
    SessionSuperseded,
    /// The session's code could not be delivered.
    SessionFailed,
    WrongCode {
        attempts_left: u32,
        retry_after: Option<i64>,
    },
    TooManyAttempts,
    Locked {
        retry_after: i64,
    },
    /// A setting the operator must fix.
    Config(ConfigProblem),
    /// Storage or another internal fault (already logged).
    Internal,
}

impl From<ConfigProblem> for Outcome {
    fn from(p: ConfigProblem) -> Self {
        Self::Config(p)
    }
}

impl From<SendRefused> for Outcome {
    fn from(r: SendRefused) -> Self {
        match r {
            SendRefused::Guard(g) => Self::Guard(g),
            SendRefused::Limit(l) => Self::Refused(l),
        }
    }
}

impl From<FieldError> for Outcome {
    fn from(e: FieldError) -> Self {
        Self::InvalidField(e)
    }
}

/// What a client reads about a configuration fault: the setting itself (a secret's name, an
/// instance's id, a parser's message) goes to the operator's log only.
pub const NOT_CONFIGURED: &str =
    "the service is not configured for this request: its operator's log names the setting";

/// Writes a configuration fault to the log, the one place that names it.
pub fn log_config(problem: &ConfigProblem) {
    crate::log::Line::new("config.problem")
        .text("error", &problem.0)
        .error();
}

/// The one internal-error path: logs the detail, answers a generic 503.
pub fn internal(e: impl std::fmt::Display) -> Outcome {
    crate::log::fault("internal.error", &e);
    Outcome::Internal
}

/// Maps an attempt at session `uuid` to its answer (the validation time on success). An
/// outcome about another challenge means a newer code replaced the session's.
pub fn session_attempt(uuid: &str, attempt: Attempt) -> std::result::Result<i64, Outcome> {
    let ours = |c: &otp_core::Challenge| c.id == uuid;
    let undeliverable = |c: &otp_core::Challenge| {
        c.failure
            .as_deref()
            .is_some_and(|f| f.starts_with("undeliverable"))
    };
    match attempt {
        Attempt::Validated { challenge } if ours(&challenge) => {
            Ok(challenge.ended_at.unwrap_or(challenge.created_at))
        }
        Attempt::Wrong {
            challenge,
            attempts_left,
            retry_after,
        } if ours(&challenge) => Err(Outcome::WrongCode {
            attempts_left,
            retry_after,
        }),
        Attempt::AlreadyUsed { challenge } if ours(&challenge) => Err(Outcome::SessionVerified),
        Attempt::Expired { challenge } if ours(&challenge) => Err(Outcome::SessionExpired),
        Attempt::Exhausted { challenge, .. } if ours(&challenge) => {
            Err(if undeliverable(&challenge) {
                Outcome::SessionFailed
            } else {
                Outcome::TooManyAttempts
            })
        }
        Attempt::Locked { retry_after } => Err(Outcome::Locked { retry_after }),
        Attempt::NoActive => Err(Outcome::SessionExpired),
        _ => Err(Outcome::SessionSuperseded),
    }
}

/// A failure as the WhatOTP API and the widget write it.
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub attempts: Option<u32>,
    pub retry_after: Option<i64>,
}

fn wait(s: i64) -> (&'static str, String) {
    ("retry-after", s.max(1).to_string())
}

impl Outcome {
    /// The WhatOTP wording of this outcome.
    pub fn problem(self) -> Problem {
        let mut attempts = None;
        let (status, code, message, field, headers): (u16, &str, String, _, Vec<_>) = match self {
            Self::NotFound => (404, "not_found", "not found".into(), None, vec![]),
            Self::MethodNotAllowed(methods) => (
                405,
                "method_not_allowed",
                format!("this endpoint takes {methods}"),
                None,
                vec![("allow", methods.into())],
            ),
            Self::Unauthenticated | Self::UnknownInstance => (
                401,
                "unauthorized",
                "a valid API key is required: `Authorization: Bearer sk_live_…` or `sk_test_…`"
                    .into(),
                None,
                vec![("www-authenticate", "Bearer".into())],
            ),
            Self::Forbidden => (
                403,
                "forbidden",
                "this publishable key is unknown or not allowed on this origin".into(),
                None,
                vec![],
            ),
            Self::RateLimited { message, period } => {
                (429, "rate_limited", message.into(), None, vec![wait(period)])
            }
            Self::TooLarge => (
                413,
                "payload_too_large",
                format!("the request body must be at most {MAX_BODY} bytes"),
                None,
                vec![],
            ),
            Self::Malformed => (
                400,
                "invalid_request",
                "the request body must be a JSON object".into(),
                None,
                vec![],
            ),
            Self::Invalid(errors) => (400, "invalid_request", errors.message(), None, vec![]),
            Self::InvalidField(e) => (400, e.code, e.message, e.field, vec![]),
            Self::InvalidIdempotencyKey => (
                400,
                "invalid_request",
                "`Idempotency-Key` must be 1 to 255 printable ASCII characters without outer spaces"
                    .into(),
                Some("Idempotency-Key"),
                vec![],
            ),
            Self::IdempotencyConflict => (
                409,
                "idempotency_conflict",
                "this `Idempotency-Key` was used for a different request".into(),
                Some("Idempotency-Key"),
                vec![],
            ),
            Self::IdempotencyInProgress => (
                409,
                "idempotency_in_progress",
                "a request with this `Idempotency-Key` is still being handled".into(),
                Some("Idempotency-Key"),
                vec![wait(1)],
            ),
            Self::TurnstileFailed => (
                403,
                "turnstile_failed",
                "the human check failed: complete it and try again".into(),
                Some("turnstile_token"),
                vec![],
            ),
            Self::NoLinkMode => (
                400,
                "invalid_request",
                "`mode` link needs WhatsApp on this instance (a business number and a WhatsApp channel): use `code`".into(),
                Some("mode"),
                vec![],
            ),
            Self::SessionNotFound => (
                404,
                "session_not_found",
                "no session has this id".into(),
                Some("session_id"),
                vec![],
            ),
            Self::SessionVerified => (
                409,
                "session_already_verified",
                "this session was already verified: codes are single use".into(),
                Some("session_id"),
                vec![],
            ),
            Self::SessionExpired => (
                410,
                "session_expired",
                "this session expired: send a new code".into(),
                Some("session_id"),
                vec![],
            ),
            Self::SessionSuperseded => (
                410,
                "session_superseded",
                "a newer code was sent to this number: verify that session instead".into(),
                Some("session_id"),
                vec![],
            ),
            Self::SessionFailed => (
                410,
                "session_failed",
                "the code could not be delivered: send a new code".into(),
                Some("session_id"),
                vec![],
            ),
            Self::WrongCode {
                attempts_left,
                retry_after,
            } => {
                attempts = Some(attempts_left);
                let mut headers = vec![("x-otp-attempts-remaining", attempts_left.to_string())];
                headers.extend(retry_after.map(wait));
                let message = match attempts_left {
                    0 => "the code is wrong; no attempts remain: send a new code".into(),
                    n => format!("the code is wrong; {n} attempts remain"),
                };
                (422, "invalid_code", message, Some("code"), headers)
            }
            Self::TooManyAttempts | Self::Attempt(_) => (
                429,
                "too_many_attempts",
                "too many wrong codes for this session: send a new code".into(),
                Some("session_id"),
                vec![wait(1), ("x-otp-attempts-remaining", "0".into())],
            ),
            Self::Locked { retry_after } | Self::Refused(Refusal::Locked { retry_after }) => (
                429,
                "recipient_locked",
                format!(
                    "too many wrong codes for this number: try again in {} seconds",
                    retry_after.max(1)
                ),
                None,
                vec![wait(retry_after)],
            ),
            Self::Refused(refusal) => {
                let after = refusal.retry_after();
                let (code, message) = match refusal {
                    Refusal::Cooldown { .. } => (
                        "resend_cooldown",
                        format!(
                            "a code was just sent to this number: try again in {after} seconds"
                        ),
                    ),
                    _ => (
                        "too_many_sends",
                        format!("too many codes sent to this number: try again in {after} seconds"),
                    ),
                };
                (429, code, message, Some("to"), vec![wait(after)])
            }
            Self::Guard(Refused::Country) => (
                400,
                "country_not_allowed",
                "the number is in a country this service does not send to".into(),
                None,
                vec![],
            ),
            Self::Guard(Refused::Budget { retry_after }) => (
                429,
                "budget_exhausted",
                format!(
                    "the sending budget of this account is spent: try again in {} seconds",
                    retry_after.max(1)
                ),
                None,
                vec![wait(retry_after)],
            ),
            Self::Guard(Refused::CountryBudget { retry_after }) => (
                429,
                "budget_exhausted",
                format!(
                    "the daily sending budget for numbers of this country is spent: try again in {} seconds",
                    retry_after.max(1)
                ),
                None,
                vec![wait(retry_after)],
            ),
            Self::Guard(Refused::Range { retry_after }) => (
                429,
                "too_many_sends",
                format!(
                    "too many messages sent to numbers like this one: try again in {} seconds",
                    retry_after.max(1)
                ),
                None,
                vec![wait(retry_after)],
            ),
            Self::Config(problem) => {
                log_config(&problem);
                (
                    503,
                    "service_unavailable",
                    NOT_CONFIGURED.into(),
                    None,
                    vec![],
                )
            }
            Self::Internal => (
                503,
                "service_unavailable",
                "the service is temporarily unavailable: try again shortly".into(),
                None,
                vec![wait(5)],
            ),
        };
        let retry_after = headers
            .iter()
            .find(|(name, _)| *name == "retry-after")
            .and_then(|(_, v)| v.parse().ok());
        Problem {
            status,
            code,
            message,
            field,
            headers,
            attempts,
            retry_after,
        }
    }
}

/// The error body of WhatOTP and the widget: `{"error": {"code", "message", "field", …}}`.
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
    attempts_remaining: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<i64>,
}

/// The WhatOTP rendering.
pub fn whatotp(outcome: Outcome) -> Result<Response> {
    let p = outcome.problem();
    let body = ErrorBody {
        error: ErrorDetail {
            code: p.code,
            message: &p.message,
            field: p.field,
            attempts_remaining: p.attempts,
            attempts_left: None,
            retry_after: None,
        },
    };
    json(p.status, &body, &p.headers)
}

/// The widget's rendering: WhatOTP's words, its own field names (`session`, `phone`),
/// `attempts_left` and `retry_after` in the body, `OPTIONS` among the allowed methods.
pub fn widget(outcome: Outcome) -> Result<Response> {
    let mut p = match outcome {
        Outcome::SessionNotFound => Problem {
            message: "no session has this id: start again".into(),
            ..Outcome::SessionNotFound.problem()
        },
        other => other.problem(),
    };
    for (name, value) in &mut p.headers {
        if *name == "allow" {
            value.push_str(", OPTIONS");
        }
    }
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
            attempts_remaining: None,
            attempts_left: p.attempts,
            retry_after: p.retry_after,
        },
    };
    json(p.status, &body, &p.headers)
}

/// The failure envelope of the Hypersender API: `{success: false, message, data: null}`, plus
/// Laravel-style `errors` on a 422.
#[derive(Serialize)]
struct Failure<'a, E: Serialize = ()> {
    success: bool,
    message: &'a str,
    data: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<E>,
}

/// A failure in the Hypersender envelope.
pub fn failure(status: u16, message: &str, headers: &[(&str, String)]) -> Result<Response> {
    let body: Failure<'_> = Failure {
        success: false,
        message,
        data: (),
        errors: None,
    };
    json(status, &body, headers)
}

/// 404 for paths the Worker does not serve (the Hypersender envelope, as every JSON surface's).
pub fn not_found() -> Result<Response> {
    failure(404, "Not found.", &[])
}

/// Laravel's `errors` object: fields in the order the rules ran, each with its messages.
struct FieldErrors(Vec<(String, Vec<String>)>);

impl From<&ValidationErrors> for FieldErrors {
    fn from(errors: &ValidationErrors) -> Self {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (field, message) in &errors.0 {
            match out.iter_mut().find(|(f, _)| f == field) {
                Some((_, messages)) => messages.push(message.clone()),
                None => out.push((field.clone(), vec![message.clone()])),
            }
        }
        Self(out)
    }
}

impl Serialize for FieldErrors {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (field, messages) in &self.0 {
            map.serialize_entry(field, messages)?;
        }
        map.end()
    }
}

fn laravel(errors: ValidationErrors) -> Result<Response> {
    let by_field = FieldErrors::from(&errors);
    let message = errors.message();
    let body = Failure {
        success: false,
        message: &message,
        data: (),
        errors: Some(by_field),
    };
    json(422, &body, &[])
}

/// The Hypersender rendering.
#[rustfmt::skip]
pub fn hypersender(outcome: Outcome) -> Result<Response> {
    let fail = failure;
    match outcome {
        Outcome::Unauthenticated => fail(401, "Unauthenticated.", &[("www-authenticate", "Bearer".into())]),
        Outcome::UnknownInstance => fail(404, "Instance not found.", &[]),
        Outcome::NotFound => not_found(),
        Outcome::MethodNotAllowed(allow) => fail(405, "Method not allowed.", &[("allow", allow.into())]),
        Outcome::TooLarge => fail(413, "The request body is too large.", &[]),
        Outcome::Malformed => fail(400, "The request body must be a JSON object.", &[]),
        Outcome::Invalid(errors) => laravel(errors),
        Outcome::InvalidIdempotencyKey => laravel(ValidationErrors(vec![(
            "Idempotency-Key".into(),
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters.".into(),
        )])),
        Outcome::Refused(refusal) => {
            let wait = refusal.retry_after();
            let message = match refusal {
                Refusal::Locked { .. } => format!("Too many failed attempts for this chat. Try again in {wait} seconds."),
                Refusal::Cooldown { .. } => format!("A code was just sent to this chat. Try again in {wait} seconds."),
                Refusal::SendCap { .. } => format!("Too many codes requested for this chat. Try again in {wait} seconds."),
            };
            fail(429, &message, &[("retry-after", wait.to_string())])
        }
        Outcome::IdempotencyInProgress => fail(
            409,
            "A request with this Idempotency-Key is still being handled. Retry shortly.",
            &[("retry-after", "1".into())],
        ),
        Outcome::IdempotencyConflict => fail(422, "This Idempotency-Key was already used for a different request.", &[]),
        Outcome::Guard(Refused::Country) => laravel(ValidationErrors(vec![(
            "chatId".into(),
            "The chat id field must be a number in a country this service sends to.".into(),
        )])),
        Outcome::Guard(Refused::Budget { retry_after }) => fail(
            429,
            &format!("The sending budget of this instance is spent. Try again in {retry_after} seconds."),
            &[("retry-after", retry_after.to_string())],
        ),
        Outcome::Guard(Refused::Range { retry_after }) => fail(
            429,
            &format!("Too many codes requested for numbers like this one. Try again in {retry_after} seconds."),
            &[("retry-after", retry_after.to_string())],
        ),
        Outcome::Attempt(attempt) => match *attempt {
            Attempt::Wrong { attempts_left, retry_after, .. } => {
                let mut headers = vec![("x-otp-attempts-remaining", attempts_left.to_string())];
                if let Some(wait) = retry_after {
                    headers.push(("retry-after", wait.to_string()));
                }
                fail(422, "Invalid OTP code.", &headers)
            }
            Attempt::NoActive => fail(404, "No active OTP code found for this chat.", &[]),
            Attempt::AlreadyUsed { .. } => fail(409, "OTP code has already been used.", &[]),
            // validate-code names no challenge, so `Superseded` cannot come back here.
            Attempt::Expired { .. } | Attempt::Superseded => fail(410, "OTP code has expired.", &[]),
            Attempt::Exhausted { retry_after, .. } => fail(
                429,
                "Too many failed attempts. Request a new code.",
                &[("retry-after", retry_after.to_string()), ("x-otp-attempts-remaining", "0".into())],
            ),
            Attempt::Locked { retry_after } => fail(
                429,
                &format!("Too many failed attempts for this chat. Try again in {retry_after} seconds."),
                &[("retry-after", retry_after.to_string())],
            ),
            Attempt::Validated { .. } => hypersender(Outcome::Internal),
        },
        Outcome::NoLinkMode => fail(400, "generate-link is WhatsApp only: this instance does not send WhatsApp messages.", &[]),
        Outcome::Config(problem) => {
            log_config(&problem);
            fail(503, "The service is not configured for this request. Its operator's log names the setting.", &[])
        }
        Outcome::Internal => fail(503, "The service is temporarily unavailable. Try again shortly.", &[("retry-after", "5".into())]),
        // The rest belong to the other APIs; written in their words, in this envelope.
        other => {
            let p = other.problem();
            fail(p.status, &p.message, &p.headers)
        }
    }
}

/// An HTML page of the service's own (the login link's, the middleware's), never cached,
/// never framed, under `csp`, with `referrer` as its referrer policy.
pub fn page(
    status: u16,
    title: &str,
    body_html: &str,
    csp: &str,
    referrer: &str,
) -> Result<Response> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"robots\" content=\"noindex\">\
<title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1c2330}}\
h1{{font-size:1.4rem}}button{{font:inherit;font-size:1.1rem;padding:.7rem 1.4rem;border:0;border-radius:8px;background:#0b7a55;color:#fff;cursor:pointer}}\
.muted{{color:#5b6474;font-size:.9rem}}</style></head><body><main><h1>{t}</h1>{body_html}</main></body></html>",
        t = otp_core::web::middleware::html_escape(title)
    );
    let mut resp = html_response(status, html, csp)?;
    resp.headers_mut().set("referrer-policy", referrer)?;
    Ok(resp)
}

/// An HTML response with the headers every page of the service carries.
pub fn html_response(status: u16, html: String, csp: &str) -> Result<Response> {
    let mut resp = Response::from_html(html)?.with_status(status);
    let h = resp.headers_mut();
    h.set("cache-control", "no-store")?;
    h.set("x-frame-options", "DENY")?;
    h.set("x-content-type-options", "nosniff")?;
    h.set("content-security-policy", csp)?;
    Ok(resp)
}
