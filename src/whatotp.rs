//! The WhatOTP API surface: `POST /v1/otp/send`, `/v1/otp/verify` and `/v1/messages/send`,
//! so a client written for WhatOTP works against edge-otp unchanged. It runs on the same
//! challenge store as the Hypersender surface (the recipient's Durable Object decides single
//! use, attempts and lockouts); what WhatOTP leaves undocumented (bodies, errors, templates)
//! is designed here and written down in docs/api.md and docs/openapi.yaml.
//!
//! Keys are `sk_live_…` and `sk_test_…` tokens, kept like the Hypersender tokens as SHA-256
//! under their instance in `API_TOKENS`: the key alone names the instance. A test key marks
//! its challenges `test`, so their codes go to the dev outbox and never to a provider. Every
//! request on `/v1/*` counts toward the documented 120 per minute per (API key hash, client
//! IP), enforced by the `WHATOTP_RL` rate limiting binding. The send endpoints honour an
//! `Idempotency-Key` header through [`crate::idempotency_object`].

use crate::guard::{self, Allowed, Refused};
use crate::http::{self, json_object, BodyError};
use crate::idempotency_object::{claim, Begin};
use crate::service::{self, ConfigProblem};
use crate::store::{self, Recipients, StartMsg};
use otp_core::config::InstanceConfig;
use otp_core::ids::uuid_v4;
use otp_core::rules::challenge::{Attempt, Refusal, SendOptions, Status};
use otp_core::rules::template::render;
use otp_core::secret::token_hash_hex;
use otp_core::time::iso8601;
use otp_core::wire::whatotp::{self as core, KeyMode};
use otp_core::{Alphabet, CodeSpec, Recipient};
use serde::Serialize;
use serde_json::{Map, Value};
use std::future::Future;
use worker::{Env, Method, Request, Response, Result};

/// Rate limiting binding: 120 requests per 60 s per (API key hash, client IP).
pub const RATE_LIMITER: &str = "WHATOTP_RL";
/// The binding's period in seconds, sent as `Retry-After` when it refuses.
const RATE_PERIOD: i64 = 60;
/// Code lifetime of `/v1/otp/send` in seconds, lowered to an instance's `max_expires`.
const DEFAULT_TTL: i64 = 300;
/// Longest rendered message of `/v1/messages/send` (WhatsApp's text limit), in characters.
const MESSAGE_MAX: usize = 4096;
/// Built-in templates of `/v1/messages/send`. `text` sends the `text` variable itself, its
/// own `{placeholders}` filled in from the other variables.
const TEMPLATES: &[&str] = &["text"];

/// Why a request failed, mapped once to a status and error body in [`ApiError::respond`]. The
/// widget API shares the failures and their statuses ([`ApiError::parts`]).
pub(crate) enum ApiError {
    MethodNotAllowed,
    Unauthorized,
    RateLimited,
    TooLarge,
    Malformed,
    Invalid(core::ApiError),
    IdempotencyConflict,
    IdempotencyInProgress,
    SessionNotFound,
    SessionVerified,
    SessionExpired,
    SessionSuperseded,
    SessionFailed,
    WrongCode {
        attempts_left: u32,
        retry_after: Option<i64>,
    },
    TooManyAttempts,
    Locked {
        retry_after: i64,
    },
    Refused(Refusal),
    Guard(Refused),
    Config(ConfigProblem),
}

impl From<store::Refused> for ApiError {
    fn from(r: store::Refused) -> Self {
        match r {
            store::Refused::Guard(g) => Self::Guard(g),
            store::Refused::Limit(l) => Self::Refused(l),
        }
    }
}

impl From<ConfigProblem> for ApiError {
    fn from(p: ConfigProblem) -> Self {
        Self::Config(p)
    }
}

/// The error body of every failure: `{"error": {"code", "message", "field"}}`.
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
}

fn invalid(field: &'static str, message: String) -> ApiError {
    ApiError::Invalid(core::ApiError {
        code: "invalid_request",
        message,
        field: Some(field),
    })
}

/// A failure's status, error code, message, blamed field, headers, and the attempts left
/// after a wrong code.
pub(crate) struct ErrorParts {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub attempts: Option<u32>,
    pub retry_after: Option<i64>,
}

impl ApiError {
    fn respond(self) -> Result<Response> {
        let p = self.parts();
        let body = ErrorBody {
            error: ErrorDetail {
                code: p.code,
                message: &p.message,
                field: p.field,
                attempts_remaining: p.attempts,
            },
        };
        http::json(p.status, &body, &p.headers)
    }

    pub(crate) fn parts(self) -> ErrorParts {
        let wait = |s: i64| ("retry-after", s.max(1).to_string());
        let mut attempts = None;
        let (status, code, message, field, headers): (u16, &str, String, _, Vec<_>) = match self {
            Self::MethodNotAllowed => (
                405,
                "method_not_allowed",
                "this endpoint takes POST".into(),
                None,
                vec![("allow", "POST".into())],
            ),
            Self::Unauthorized => (
                401,
                "unauthorized",
                "a valid API key is required: `Authorization: Bearer sk_live_…` or `sk_test_…`"
                    .into(),
                None,
                vec![("www-authenticate", "Bearer".into())],
            ),
            Self::RateLimited => (
                429,
                "rate_limited",
                "too many requests: at most 120 a minute per API key and client IP".into(),
                None,
                vec![wait(RATE_PERIOD)],
            ),
            Self::TooLarge => (
                413,
                "payload_too_large",
                format!("the request body must be at most {} bytes", http::MAX_BODY),
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
            Self::Invalid(e) => (400, e.code, e.message, e.field, vec![]),
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
            Self::TooManyAttempts => (
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
                worker::console_error!("configuration problem: {}", problem.0);
                (
                    503,
                    "service_unavailable",
                    format!(
                        "the service is not configured: {}; see docs/configuration.md",
                        problem.0
                    ),
                    None,
                    vec![],
                )
            }
        };
        let retry_after = headers
            .iter()
            .find(|(name, _)| *name == "retry-after")
            .and_then(|(_, v)| v.parse().ok());
        ErrorParts {
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

fn internal(e: worker::Error) -> ApiError {
    worker::console_error!("internal error: {e}");
    ApiError::Config(ConfigProblem(format!("storage is unavailable ({e})")))
}

/// A success, serialized once so an idempotent replay answers with the same bytes.
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn new<T: Serialize>(status: u16, body: &T) -> std::result::Result<Self, ApiError> {
        let body = serde_json::to_string(body).map_err(|e| internal(e.into()))?;
        Ok(Self { status, body })
    }

    fn respond(self, replayed: bool) -> std::result::Result<Response, ApiError> {
        let answer = || -> Result<Response> {
            let mut resp = Response::ok(self.body)?.with_status(self.status);
            let h = resp.headers_mut();
            h.set("content-type", "application/json")?;
            h.set("cache-control", "no-store")?;
            if replayed {
                h.set("idempotent-replayed", "true")?;
            }
            Ok(resp)
        };
        answer().map_err(internal)
    }
}

/// The instance and mode of the API key a request presented.
struct Caller {
    inst: InstanceConfig,
    mode: KeyMode,
    key_hash: String,
}

#[derive(Clone, Copy)]
enum Route {
    Send,
    Verify,
    Message,
}

/// Routes `/v1/...`.
pub async fn handle(mut req: Request, env: &Env, rest: &[String]) -> Result<Response> {
    let route = match rest
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["otp", "send"] => Route::Send,
        ["otp", "verify"] => Route::Verify,
        ["messages", "send"] => Route::Message,
        // Like every path the Worker does not serve: the shared 404.
        _ => return http::not_found(),
    };
    if req.method() != Method::Post {
        return ApiError::MethodNotAllowed.respond();
    }
    let result = async {
        let caller = authorize(&req, env).await?;
        match route {
            Route::Send => send(&mut req, env, &caller).await,
            Route::Verify => verify(&mut req, env, &caller).await,
            Route::Message => message(&mut req, env, &caller).await,
        }
    };
    match result.await {
        Ok(resp) => Ok(resp),
        Err(e) => e.respond(),
    }
}

/// Counts the request toward the rate limit of its (key, IP), then finds the key's instance.
/// Requests without a valid key count too (under the hash of what they presented), so a
/// flood of bad keys from one address is refused like any other.
async fn authorize(req: &Request, env: &Env) -> std::result::Result<Caller, ApiError> {
    let header = |name: &str| req.headers().get(name).ok().flatten().unwrap_or_default();
    let auth = header("authorization");
    let key = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let key_hash = token_hash_hex(key);
    let ip = http::client_ip(req);
    if !http::rate_limit_allows(env, RATE_LIMITER, format!("{key_hash}|{ip}")).await? {
        return Err(ApiError::RateLimited);
    }
    let mode = core::key_mode(key).ok_or(ApiError::Unauthorized)?;
    let inst = instance_of_key(env, key)?.ok_or(ApiError::Unauthorized)?;
    Ok(Caller {
        inst,
        mode,
        key_hash,
    })
}

/// The instance whose `API_TOKENS` entry holds the key's hash. Every instance is checked (no
/// early exit), each in constant time; a key listed under two instances is a configuration
/// error, never a guess.
fn instance_of_key(env: &Env, key: &str) -> std::result::Result<Option<InstanceConfig>, ApiError> {
    let config = service::instances(env)?;
    let mut found: Vec<&InstanceConfig> = Vec::new();
    for inst in &config.instances {
        if service::token_is_valid(env, &inst.id, key)? {
            found.push(inst);
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        _ => Err(ApiError::Config(ConfigProblem(
            "an API key is listed under several instances in API_TOKENS".into(),
        ))),
    }
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_header(req: &Request) -> Option<String> {
    req.headers().get("idempotency-key").ok().flatten()
}

/// Checks an `Idempotency-Key` (after the body's fields, as documented).
fn idempotency_key(header: Option<String>) -> std::result::Result<Option<String>, ApiError> {
    match header {
        None => Ok(None),
        Some(key) if otp_core::rules::idempotency::valid_key(&key) => Ok(Some(key)),
        Some(_) => Err(invalid(
            "Idempotency-Key",
            "`Idempotency-Key` must be 1 to 255 printable ASCII characters without outer spaces"
                .into(),
        )),
    }
}

/// The body as a JSON object, and its raw bytes when an `Idempotency-Key` fingerprints them.
async fn body(
    req: &mut Request,
    keep_raw: bool,
) -> std::result::Result<(Map<String, Value>, Vec<u8>), ApiError> {
    let copy = if keep_raw {
        Some(req.clone().map_err(internal)?)
    } else {
        None
    };
    let map = match json_object(req).await {
        Ok(Ok(map)) => map,
        Ok(Err(BodyError::TooLarge)) => return Err(ApiError::TooLarge),
        Ok(Err(BodyError::NotAnObject)) | Err(_) => return Err(ApiError::Malformed),
    };
    let raw = match copy {
        Some(mut c) => c.bytes().await.map_err(internal)?,
        None => Vec::new(),
    };
    Ok((map, raw))
}

/// Runs `work` once per `Idempotency-Key`: a repeat of the same request answers with the
/// first success (nothing is sent again), a different request under the key is a 409. A
/// failure frees the key, so a corrected retry can run.
async fn once<F, Fut>(
    env: &Env,
    caller: &Caller,
    key: Option<String>,
    path: &str,
    raw: &[u8],
    work: F,
) -> std::result::Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = std::result::Result<Reply, ApiError>>,
{
    let Some(key) = key else {
        return work().await?.respond(false);
    };
    let fingerprint = otp_core::rules::idempotency::fingerprint("POST", path, raw);
    // Scoped to the instance and the API key, so two clients never share a key.
    let scope = format!(
        "{}:{}",
        caller.inst.id.to_ascii_lowercase(),
        caller.key_hash
    );
    let (begin, claim) = claim(env, &scope, &key, fingerprint)
        .await
        .map_err(internal)?;
    match begin {
        Begin::Fresh => {}
        Begin::Replay { status, body } => return Reply { status, body }.respond(true),
        Begin::InProgress => return Err(ApiError::IdempotencyInProgress),
        Begin::Conflict => return Err(ApiError::IdempotencyConflict),
    }
    let outcome = work().await;
    match &outcome {
        Ok(reply) => claim.finish(reply.status, reply.body.clone()).await,
        Err(_) => claim.abort().await,
    }
    outcome?.respond(false)
}

#[derive(Serialize)]
struct SendData {
    session_id: String,
    status: &'static str,
    channel: &'static str,
    expires_at: String,
    expires_in: i64,
}

async fn send(
    req: &mut Request,
    env: &Env,
    caller: &Caller,
) -> std::result::Result<Response, ApiError> {
    service::pepper(env)?;
    let header = idempotency_header(req);
    let (body, raw) = body(req, header.is_some()).await?;
    let input = core::parse_send(&body).map_err(ApiError::Invalid)?;
    let key = idempotency_key(header)?;
    once(env, caller, key, "/v1/otp/send", &raw, || {
        start_session(env, caller, &input)
    })
    .await
}

/// Starts a challenge for `input` and writes its record: the session.
async fn start_session(
    env: &Env,
    caller: &Caller,
    input: &core::SendOtp,
) -> std::result::Result<Reply, ApiError> {
    let inst = &caller.inst;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| internal(worker::Error::RustError(e.to_string())))?;
    let msg = StartMsg {
        instance: inst.id.clone(),
        recipient: input.to.digits().into(),
        id: uuid_v4(bytes),
        spec: CodeSpec {
            length: input.length,
            alphabet: Alphabet::Digits,
        },
        name: None,
        ttl: DEFAULT_TTL.min(inst.max_expires.unwrap_or(DEFAULT_TTL)),
        options: SendOptions {
            channel: Some(input.channel.as_str().into()),
            test: caller.mode == KeyMode::Test,
            ..SendOptions::default()
        },
        cooldown: None,
    };
    let challenge = Recipients::new(env)
        .start_guarded(inst, &input.to, msg)
        .await
        .map_err(internal)?
        .map_err(ApiError::from)?;
    let data = SendData {
        session_id: core::session_id(&challenge.id),
        status: challenge.status(challenge.created_at).as_str(),
        channel: input.channel.as_str(),
        expires_at: iso8601(challenge.expires_at),
        expires_in: challenge.expires_at - challenge.created_at,
    };
    Reply::new(200, &data)
}

#[derive(Serialize)]
struct VerifyData {
    session_id: String,
    status: &'static str,
    verified_at: String,
}

async fn verify(
    req: &mut Request,
    env: &Env,
    caller: &Caller,
) -> std::result::Result<Response, ApiError> {
    service::pepper(env)?;
    let (body, _) = body(req, false).await?;
    let input = core::parse_verify(&body).map_err(ApiError::Invalid)?;
    let uuid = core::parse_session_id(&input.session_id).ok_or(ApiError::SessionNotFound)?;
    let inst = &caller.inst;
    let record = store::get_record(env, &uuid)
        .await
        .map_err(internal)?
        .filter(|r| r.kind == "code" && r.instance.eq_ignore_ascii_case(&inst.id))
        .ok_or(ApiError::SessionNotFound)?;
    let recipient = Recipient::parse(&record.recipient).map_err(|_| ApiError::SessionNotFound)?;
    let verified_at = check_code(env, &inst.id, &recipient, &uuid, &input.code).await?;
    Reply::new(
        200,
        &VerifyData {
            session_id: core::session_id(&uuid),
            status: "verified",
            verified_at: iso8601(verified_at),
        },
    )?
    .respond(false)
}

/// Checks `code` against challenge `uuid` of `recipient` (a session's challenge) and returns
/// when it was verified. A challenge that is no longer open is answered from its state:
/// attempting would check the code against the number's newer challenge and could spend one
/// of its attempts.
pub(crate) async fn check_code(
    env: &Env,
    instance: &str,
    recipient: &Recipient,
    uuid: &str,
    code: &str,
) -> std::result::Result<i64, ApiError> {
    let recipients = Recipients::new(env);
    let session = recipients
        .get(instance, recipient, uuid)
        .await
        .map_err(internal)?
        .ok_or(ApiError::SessionExpired)?;
    match session.status(http::now()) {
        Status::Pending | Status::Sent => {}
        Status::Validated => return Err(ApiError::SessionVerified),
        Status::Expired => return Err(ApiError::SessionExpired),
        Status::Superseded => return Err(ApiError::SessionSuperseded),
        Status::Failed if is_undeliverable(session.failure.as_deref()) => {
            return Err(ApiError::SessionFailed)
        }
        Status::Failed => return Err(ApiError::TooManyAttempts),
    }
    let attempt = recipients
        .attempt(instance, recipient, code, Some(uuid))
        .await
        .map_err(internal)?;
    session_outcome(uuid, attempt)
}

fn is_undeliverable(failure: Option<&str>) -> bool {
    failure.is_some_and(|f| f.starts_with("undeliverable"))
}

/// Maps an attempt at the recipient's latest code to the session's answer (its validation
/// time on success). An outcome about another challenge means a newer code replaced the
/// session's between the state check and the attempt.
fn session_outcome(uuid: &str, attempt: Attempt) -> std::result::Result<i64, ApiError> {
    let ours = |c: &otp_core::Challenge| c.id == uuid;
    match attempt {
        Attempt::Validated { challenge } if ours(&challenge) => {
            Ok(challenge.ended_at.unwrap_or(challenge.created_at))
        }
        Attempt::Wrong {
            challenge,
            attempts_left,
            retry_after,
        } if ours(&challenge) => Err(ApiError::WrongCode {
            attempts_left,
            retry_after,
        }),
        Attempt::AlreadyUsed { challenge } if ours(&challenge) => Err(ApiError::SessionVerified),
        Attempt::Expired { challenge } if ours(&challenge) => Err(ApiError::SessionExpired),
        Attempt::Exhausted { challenge, .. } if ours(&challenge) => {
            if is_undeliverable(challenge.failure.as_deref()) {
                Err(ApiError::SessionFailed)
            } else {
                Err(ApiError::TooManyAttempts)
            }
        }
        Attempt::Locked { retry_after } => Err(ApiError::Locked { retry_after }),
        Attempt::NoActive => Err(ApiError::SessionExpired),
        _ => Err(ApiError::SessionSuperseded),
    }
}

#[derive(Serialize)]
struct MessageData {
    id: String,
    status: &'static str,
    expires_at: String,
}

async fn message(
    req: &mut Request,
    env: &Env,
    caller: &Caller,
) -> std::result::Result<Response, ApiError> {
    let header = idempotency_header(req);
    let (body, raw) = body(req, header.is_some()).await?;
    let input = core::parse_message(&body).map_err(ApiError::Invalid)?;
    let text = render_template(&input)?;
    let key = idempotency_key(header)?;
    once(env, caller, key, "/v1/messages/send", &raw, || {
        queue_message(env, caller, &input, &text)
    })
    .await
}

/// The message text of a built-in template (see [`TEMPLATES`]).
fn render_template(input: &core::SendMessage) -> std::result::Result<String, ApiError> {
    if !TEMPLATES.contains(&input.template_id.as_str()) {
        return Err(invalid(
            "template_id",
            format!("`template_id` must be one of: {}", TEMPLATES.join(", ")),
        ));
    }
    let text = input
        .variables
        .get("text")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                "variables",
                "`variables` must have a non-empty `text` for template `text`".into(),
            )
        })?;
    let values: Vec<(&str, &str)> = input
        .variables
        .iter()
        .filter(|(name, _)| name.as_str() != "text")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let rendered = render(text, &values);
    if rendered.chars().count() > MESSAGE_MAX {
        return Err(invalid(
            "variables",
            format!("the rendered message must be at most {MESSAGE_MAX} characters"),
        ));
    }
    Ok(rendered)
}

/// Queues the message in the recipient's object, once per message id, after the abuse checks
/// a code send gets (country allowlist, budgets, number-range cap). A test number gets no
/// delivery, and a test key never reaches a provider: on an instance whose channels reach
/// real phones its message is accepted and dropped (the free-text queue has no test mode).
async fn queue_message(
    env: &Env,
    caller: &Caller,
    input: &core::SendMessage,
    text: &str,
) -> std::result::Result<Reply, ApiError> {
    let inst = &caller.inst;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| internal(worker::Error::RustError(e.to_string())))?;
    let id = format!(
        "msg_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let test = caller.mode == KeyMode::Test;
    let allowed = guard::check(env, inst, &input.to, test, http::now())
        .await
        .map_err(internal)?
        .map_err(ApiError::Guard)?;
    // A test number gets nothing; a test key's message goes to the outbox.
    if !matches!(allowed, Allowed::TestNumber(_)) {
        Recipients::new(env)
            .send(&inst.id, &input.to, &id, text, test)
            .await
            .map_err(internal)?;
    }
    let data = MessageData {
        id,
        status: "queued",
        expires_at: iso8601(http::now() + input.expires_in_seconds),
    };
    Reply::new(202, &data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::rules::challenge::{Kind, Stage};
    use serde_json::json;

    fn message(body: Value) -> core::SendMessage {
        let Value::Object(map) = body else {
            unreachable!("test bodies are objects")
        };
        core::parse_message(&map).expect("a valid body")
    }

    fn challenge(id: &str) -> otp_core::Challenge {
        otp_core::Challenge {
            id: id.into(),
            kind: Kind::Code,
            spec: CodeSpec {
                length: 6,
                alphabet: Alphabet::Digits,
            },
            name: None,
            created_at: 100,
            expires_at: 400,
            attempts: 0,
            max_attempts: 5,
            stage: Stage::Validated,
            sent_at: None,
            ended_at: Some(150),
            failure: None,
            options: SendOptions::default(),
            generation: 0,
            channel: None,
            provider_id: None,
            receipt: None,
        }
    }

    #[test]
    fn text_template_fills_placeholders_from_the_other_variables() {
        let input = message(json!({
            "phone_number": "+20123456789",
            "template_id": "text",
            "variables": {"text": "Hi {name}, {count} items {missing}", "name": "{count}", "count": 3},
        }));
        assert_eq!(
            render_template(&input).ok().as_deref(),
            Some("Hi {count}, 3 items {missing}")
        );
    }

    #[test]
    fn unknown_templates_missing_text_and_long_results_are_refused() {
        let refused = |body: Value, field: &str| {
            let err = render_template(&message(body)).err();
            assert!(
                matches!(&err, Some(ApiError::Invalid(e)) if e.field == Some(field)),
                "expected a refusal on {field}"
            );
        };
        let base = |vars: Value| json!({"phone_number": "20123456789", "template_id": "text", "variables": vars});
        refused(
            json!({"phone_number": "20123456789", "template_id": "welcome", "variables": {"text": "x"}}),
            "template_id",
        );
        refused(base(json!({"name": "Ada"})), "variables");
        refused(base(json!({"text": "  "})), "variables");
        refused(
            base(json!({"text": "{a}".repeat(20), "a": "x".repeat(256)})),
            "variables",
        );
        assert!(render_template(&message(base(
            json!({"text": "{a}".repeat(16), "a": "x".repeat(256)})
        )))
        .is_ok());
    }

    #[test]
    fn an_outcome_about_another_challenge_means_the_session_was_superseded() {
        let ours = "a0b5df6a-b491-4190-80a5-38d85a2a4836";
        let other = "00000000-0000-4000-8000-000000000000";
        let validated = |id: &str| Attempt::Validated {
            challenge: challenge(id),
        };
        assert!(matches!(session_outcome(ours, validated(ours)), Ok(150)));
        assert!(matches!(
            session_outcome(ours, validated(other)),
            Err(ApiError::SessionSuperseded)
        ));
        let wrong = |id: &str| Attempt::Wrong {
            challenge: challenge(id),
            attempts_left: 3,
            retry_after: None,
        };
        assert!(matches!(
            session_outcome(ours, wrong(ours)),
            Err(ApiError::WrongCode {
                attempts_left: 3,
                retry_after: None
            })
        ));
        assert!(matches!(
            session_outcome(ours, wrong(other)),
            Err(ApiError::SessionSuperseded)
        ));
        assert!(matches!(
            session_outcome(ours, Attempt::NoActive),
            Err(ApiError::SessionExpired)
        ));
        assert!(matches!(
            session_outcome(ours, Attempt::Locked { retry_after: 9 }),
            Err(ApiError::Locked { retry_after: 9 })
        ));
        let mut undeliverable = challenge(ours);
        undeliverable.failure = Some("undeliverable: no route".into());
        assert!(matches!(
            session_outcome(
                ours,
                Attempt::Exhausted {
                    challenge: undeliverable,
                    retry_after: 1
                }
            ),
            Err(ApiError::SessionFailed)
        ));
    }
}
