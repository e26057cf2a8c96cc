//! The Hypersender OTP API v2 surface: `POST /api/otp/v2/{instance}/request-code` and
//! `validate-code`, byte-compatible with the documented bodies, plus the extension
//! `GET /api/otp/v2/{instance}/otps/{uuid}`. Errors keep the `{success, message, data}`
//! envelope; statuses and messages are in docs/api.md.

use crate::http::{self, json_object, BodyError, Failure};
use crate::service::{self, ConfigProblem};
use crate::store::{self, Recipients, StartMsg};
use otp_core::config::InstanceConfig;
use otp_core::ids::{is_uuid, uuid_v4};
use otp_core::rules::challenge::{Attempt, Challenge, Refusal, Status};
use otp_core::time::iso8601;
use otp_core::wire::hypersender::{parse_request_code, parse_validate_code, ValidationErrors};
use otp_core::Recipient;
use serde::Serialize;
use serde_json::Value;
use worker::{Env, Method, Request, Response, Result};

/// Why a request failed, mapped once to a status and message in [`ApiError::respond`].
enum ApiError {
    Unauthenticated,
    UnknownInstance,
    NotFound,
    MethodNotAllowed(&'static str),
    TooLarge,
    Malformed,
    Invalid(ValidationErrors),
    Refused(Refusal),
    Guard(crate::guard::Refused),
    IdempotencyInProgress,
    IdempotencyConflict,
    Attempt(Box<Attempt>),
    Config(ConfigProblem),
}

impl From<ConfigProblem> for ApiError {
    fn from(p: ConfigProblem) -> Self {
        Self::Config(p)
    }
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

/// The documented envelope.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    message: &'a str,
    data: T,
}

fn ok<T: Serialize>(message: &str, data: T, headers: &[(&str, String)]) -> Result<Response> {
    http::json(
        200,
        &Envelope {
            success: true,
            message,
            data,
        },
        headers,
    )
}

impl ApiError {
    fn respond(self) -> Result<Response> {
        let fail = http::failure;
        match self {
            Self::Unauthenticated => fail(401, "Unauthenticated.", &[("www-authenticate", "Bearer".into())]),
            Self::UnknownInstance => fail(404, "Instance not found.", &[]),
            Self::NotFound => fail(404, "Not found.", &[]),
            Self::MethodNotAllowed(allow) => fail(405, "Method not allowed.", &[("allow", allow.into())]),
            Self::TooLarge => fail(413, "The request body is too large.", &[]),
            Self::Malformed => fail(400, "The request body must be a JSON object.", &[]),
            Self::Invalid(errors) => {
                let by_field = FieldErrors::from(&errors);
                let message = errors.message();
                let body = Failure { success: false, message: &message, data: (), errors: Some(by_field) };
                http::json(422, &body, &[])
            }
            Self::Refused(refusal) => {
                let wait = refusal.retry_after();
                let message = match refusal {
                    Refusal::Locked { .. } => format!("Too many failed attempts for this chat. Try again in {wait} seconds."),
                    Refusal::Cooldown { .. } => format!("A code was just sent to this chat. Try again in {wait} seconds."),
                    Refusal::SendCap { .. } => format!("Too many codes requested for this chat. Try again in {wait} seconds."),
                };
                fail(429, &message, &[("retry-after", wait.to_string())])
            }
            Self::IdempotencyInProgress => fail(
                409,
                "A request with this Idempotency-Key is still being handled. Retry shortly.",
                &[("retry-after", "1".into())],
            ),
            Self::IdempotencyConflict => fail(
                422,
                "This Idempotency-Key was already used for a different request.",
                &[],
            ),
            Self::Guard(refused) => match refused {
                crate::guard::Refused::Country => {
                    let message = "The chat id field must be a number in a country this service sends to.";
                    let errors = ValidationErrors(vec![("chatId".into(), message.into())]);
                    Self::Invalid(errors).respond()
                }
                crate::guard::Refused::Budget { retry_after } => fail(
                    429,
                    &format!("The sending budget of this instance is spent. Try again in {retry_after} seconds."),
                    &[("retry-after", retry_after.to_string())],
                ),
                crate::guard::Refused::Range { retry_after } => fail(
                    429,
                    &format!("Too many codes requested for numbers like this one. Try again in {retry_after} seconds."),
                    &[("retry-after", retry_after.to_string())],
                ),
            },
            Self::Attempt(attempt) => match *attempt {
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
                Attempt::Expired { .. } | Attempt::Superseded => {
                    fail(410, "OTP code has expired.", &[])
                }
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
                Attempt::Validated { .. } => fail(500, "unreachable", &[]),
            },
            Self::Config(problem) => {
                worker::console_error!("configuration problem: {}", problem.0);
                fail(
                    503,
                    &format!("The service is not configured: {}. See docs/configuration.md.", problem.0),
                    &[],
                )
            }
        }
    }
}

/// Routes `/api/otp/v2/{instance}/...`.
pub async fn handle(
    mut req: Request,
    env: &Env,
    instance: &str,
    rest: &[String],
) -> Result<Response> {
    let result = match (
        req.method(),
        rest.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
    ) {
        (Method::Post, ["request-code"]) => request_code(&mut req, env, instance).await,
        (Method::Post, ["validate-code"]) => validate_code(&mut req, env, instance).await,
        (Method::Post, ["generate-link"]) => generate_link(&mut req, env, instance).await,
        (Method::Get, ["otps", uuid]) => status(&req, env, instance, uuid).await,
        (Method::Get, ["metrics"]) => metrics(&req, env, instance).await,
        (_, ["request-code" | "validate-code" | "generate-link"]) => {
            Err(ApiError::MethodNotAllowed("POST"))
        }
        (_, ["otps", _] | ["metrics"]) => Err(ApiError::MethodNotAllowed("GET")),
        _ => Err(ApiError::NotFound),
    };
    match result {
        Ok(resp) => Ok(resp),
        Err(e) => e.respond(),
    }
}

/// Checks the bearer token, then finds the instance.
/// The caller: its instance, and what its token says.
struct Authorized {
    inst: InstanceConfig,
    /// A `sk_test_` credential: codes go to the outbox, test numbers apply.
    test_key: bool,
    /// SHA-256 of the token: scopes idempotency keys to one credential.
    token_hash: String,
}

fn authorize(
    req: &Request,
    env: &Env,
    instance: &str,
) -> std::result::Result<InstanceConfig, ApiError> {
    authorize_caller(req, env, instance).map(|a| a.inst)
}

fn authorize_caller(
    req: &Request,
    env: &Env,
    instance: &str,
) -> std::result::Result<Authorized, ApiError> {
    let header = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let config = service::instances(env)?;
    let inst = config
        .instance(instance)
        .cloned()
        .ok_or(ApiError::UnknownInstance)?;
    if !service::token_is_valid(env, &inst.id, token)? {
        return Err(ApiError::Unauthenticated);
    }
    Ok(Authorized {
        inst,
        test_key: token.starts_with("sk_test_"),
        token_hash: otp_core::secret::token_hash_hex(token),
    })
}

async fn body(req: &mut Request) -> std::result::Result<serde_json::Map<String, Value>, ApiError> {
    match json_object(req).await {
        Ok(Ok(map)) => Ok(map),
        Ok(Err(BodyError::TooLarge)) => Err(ApiError::TooLarge),
        Ok(Err(BodyError::NotAnObject)) | Err(_) => Err(ApiError::Malformed),
    }
}

fn internal(e: worker::Error) -> ApiError {
    worker::console_error!("internal error: {e}");
    ApiError::Config(ConfigProblem(format!("storage is unavailable ({e})")))
}

#[derive(Clone, Serialize, serde::Deserialize)]
struct RequestCodeData {
    uuid: String,
    chat_id: String,
    code: String,
    status: String,
    otp_type: String,
    expires_at: String,
    created_at: String,
}

async fn request_code(
    req: &mut Request,
    env: &Env,
    instance: &str,
) -> std::result::Result<Response, ApiError> {
    let auth = authorize_caller(req, env, instance)?;
    let inst = &auth.inst;
    let pepper = service::pepper(env)?;
    let key = idempotency_key(req)?;
    let raw = match key {
        Some(_) => Some(
            req.clone()
                .map_err(internal)?
                .bytes()
                .await
                .map_err(internal)?,
        ),
        None => None,
    };
    let body = body(req).await?;
    let input =
        parse_request_code(&body, inst.max_expires.unwrap_or(1800)).map_err(ApiError::Invalid)?;
    let (Some(key), Some(raw)) = (key, raw) else {
        let data = start_code(env, &auth, &pepper, input).await?;
        return ok(
            "OTP code generated and message queued successfully",
            data,
            &[],
        )
        .map_err(internal);
    };
    let fingerprint = otp_core::rules::idempotency::fingerprint("POST", &req.path(), &raw);
    let scope = format!("{}:{}", inst.id.to_ascii_lowercase(), auth.token_hash);
    let (begin, claim) = crate::idempotency_object::claim(env, &scope, &key, fingerprint)
        .await
        .map_err(internal)?;
    match begin {
        crate::idempotency_object::Begin::Fresh => {}
        crate::idempotency_object::Begin::Replay { body, .. } => {
            return replay_request_code(env, inst, &pepper, &body).await;
        }
        crate::idempotency_object::Begin::InProgress => {
            return Err(ApiError::IdempotencyInProgress)
        }
        crate::idempotency_object::Begin::Conflict => return Err(ApiError::IdempotencyConflict),
    }
    match start_code(env, &auth, &pepper, input).await {
        Ok(data) => {
            // The stored response holds no code: a replay derives it again.
            let stored = RequestCodeData {
                code: String::new(),
                ..data.clone()
            };
            claim
                .finish(
                    200,
                    serde_json::to_string(&stored).map_err(|e| internal(e.into()))?,
                )
                .await;
            ok(
                "OTP code generated and message queued successfully",
                data,
                &[],
            )
            .map_err(internal)
        }
        Err(e) => {
            claim.abort().await;
            Err(e)
        }
    }
}

/// The `Idempotency-Key` header, checked.
fn idempotency_key(req: &Request) -> std::result::Result<Option<String>, ApiError> {
    match req.headers().get("idempotency-key").ok().flatten() {
        None => Ok(None),
        Some(k) if otp_core::rules::idempotency::valid_key(&k) => Ok(Some(k)),
        Some(_) => Err(ApiError::Invalid(ValidationErrors(vec![(
            "Idempotency-Key".into(),
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters.".into(),
        )]))),
    }
}

/// Answers a repeated request-code with the first response, its code derived again from the
/// challenge as it is now (a fallback may have given it a fresh code). Nothing is sent.
async fn replay_request_code(
    env: &Env,
    inst: &InstanceConfig,
    pepper: &otp_core::Secret,
    stored: &str,
) -> std::result::Result<Response, ApiError> {
    let mut data: RequestCodeData = serde_json::from_str(stored).map_err(|e| internal(e.into()))?;
    let recipient = Recipient::parse(&data.chat_id).map_err(|_| ApiError::NotFound)?;
    let challenge = Recipients::new(env)
        .get(&inst.id, &recipient, &data.uuid)
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound)?;
    data.code = challenge
        .code(pepper, &inst.id, &recipient)
        .reveal()
        .to_owned();
    ok(
        "OTP code generated and message queued successfully",
        data,
        &[("idempotent-replayed", "true".into())],
    )
    .map_err(internal)
}

/// Starts a code challenge after the abuse checks, records it in KV, and returns the body.
async fn start_code(
    env: &Env,
    auth: &Authorized,
    pepper: &otp_core::Secret,
    input: otp_core::wire::hypersender::RequestCode,
) -> std::result::Result<RequestCodeData, ApiError> {
    let inst = &auth.inst;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| internal(worker::Error::RustError(e.to_string())))?;
    let msg = StartMsg {
        instance: inst.id.clone(),
        recipient: input.recipient.digits().into(),
        id: uuid_v4(bytes),
        spec: input.spec,
        name: input.name,
        ttl: input.expires,
        options: otp_core::rules::challenge::SendOptions {
            locale: input.locale,
            test: auth.test_key,
            ..Default::default()
        },
        cooldown: None,
    };
    let challenge = match Recipients::new(env)
        .start_guarded(inst, &input.recipient, msg)
        .await
        .map_err(internal)?
    {
        Ok(c) => c,
        Err(store::Refused::Guard(refused)) => return Err(ApiError::Guard(refused)),
        Err(store::Refused::Limit(refusal)) => return Err(ApiError::Refused(refusal)),
    };
    let code = challenge.code(pepper, &inst.id, &input.recipient);
    Ok(RequestCodeData {
        uuid: challenge.id.clone(),
        chat_id: input.recipient.chat_id(),
        code: code.reveal().to_owned(),
        status: hypersender_status(challenge.status(challenge.created_at)).into(),
        otp_type: "code".into(),
        expires_at: iso8601(challenge.expires_at),
        created_at: iso8601(challenge.created_at),
    })
}

#[derive(Serialize)]
struct ValidateCodeData {
    uuid: String,
    chat_id: String,
    status: &'static str,
    validated_at: String,
}

async fn validate_code(
    req: &mut Request,
    env: &Env,
    instance: &str,
) -> std::result::Result<Response, ApiError> {
    let inst = authorize(req, env, instance)?;
    service::pepper(env)?;
    let body = body(req).await?;
    let input = parse_validate_code(&body).map_err(ApiError::Invalid)?;
    let attempt = Recipients::new(env)
        .attempt(&inst.id, &input.recipient, &input.code, None)
        .await
        .map_err(internal)?;
    let Attempt::Validated { challenge } = attempt else {
        return Err(ApiError::Attempt(Box::new(attempt)));
    };
    let data = ValidateCodeData {
        uuid: challenge.id.clone(),
        chat_id: input.recipient.chat_id(),
        status: "validated",
        validated_at: iso8601(challenge.ended_at.unwrap_or(challenge.created_at)),
    };
    ok("OTP code validated successfully", data, &[]).map_err(internal)
}

/// Status names in Hypersender bodies: `pending|sent|validated|expired`. A superseded code
/// reads as expired there; the status extension tells the two apart.
fn hypersender_status(status: Status) -> &'static str {
    match status {
        Status::Superseded => "expired",
        other => other.as_str(),
    }
}

#[derive(Serialize)]
struct StatusData {
    uuid: String,
    chat_id: String,
    status: &'static str,
    otp_type: &'static str,
    attempts_left: u32,
    expires_at: String,
    created_at: String,
    sent_at: Option<String>,
    validated_at: Option<String>,
    failed_at: Option<String>,
    failure: Option<String>,
    channel: Option<String>,
    delivery: Option<String>,
}

impl StatusData {
    fn new(c: &Challenge, recipient: &Recipient, now: i64) -> Self {
        let status = c.status(now);
        let ended = c.ended_at.map(iso8601);
        Self {
            uuid: c.id.clone(),
            chat_id: recipient.chat_id(),
            status: status.as_str(),
            otp_type: "code",
            attempts_left: c.attempts_left(),
            expires_at: iso8601(c.expires_at),
            created_at: iso8601(c.created_at),
            sent_at: c.sent_at.map(iso8601),
            validated_at: if status == Status::Validated {
                ended.clone()
            } else {
                None
            },
            failed_at: if status == Status::Failed {
                ended
            } else {
                None
            },
            failure: c.failure.clone(),
            channel: c.channel.clone(),
            delivery: c.receipt.clone(),
        }
    }
}

async fn status(
    req: &Request,
    env: &Env,
    instance: &str,
    uuid: &str,
) -> std::result::Result<Response, ApiError> {
    let inst = authorize(req, env, instance)?;
    let not_found = || ApiError::NotFound;
    if !is_uuid(uuid) {
        return Err(not_found());
    }
    let record = store::get_record(env, uuid)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if !record.instance.eq_ignore_ascii_case(&inst.id) {
        return Err(not_found());
    }
    let now = http::now();
    if let Some(code) = record.link_code.as_deref() {
        return link_status(env, &inst.id, code, &uuid.to_ascii_lowercase(), now).await;
    }
    let recipient = Recipient::parse(&record.recipient).map_err(|_| not_found())?;
    let data = match Recipients::new(env)
        .get(&inst.id, &recipient, &uuid.to_ascii_lowercase())
        .await
        .map_err(internal)?
    {
        Some(c) => StatusData::new(&c, &recipient, now),
        // Pruned from its object after the retention period: only the record is left.
        None => StatusData {
            uuid: uuid.to_ascii_lowercase(),
            chat_id: recipient.chat_id(),
            status: "expired",
            otp_type: "code",
            attempts_left: 0,
            expires_at: iso8601(record.expires_at),
            created_at: iso8601(record.created_at),
            sent_at: None,
            validated_at: None,
            failed_at: None,
            failure: None,
            channel: None,
            delivery: None,
        },
    };
    ok("OTP status retrieved successfully", data, &[]).map_err(internal)
}

#[derive(Serialize)]
struct GenerateLinkData {
    uuid: String,
    code: String,
    chat_id: Option<String>,
    status: &'static str,
    otp_type: &'static str,
    expires_at: String,
    created_at: String,
    whatsapp_link: String,
}

/// Default texts of a link challenge, when the request gives none.
pub(crate) const DEFAULT_PROMPT: &str = "Give me link to login at {name}";
pub(crate) const DEFAULT_SUCCESS: &str = "Here is your login link for {name}: {link}";
pub(crate) const DEFAULT_FAILED: &str = "Login to {name} failed. Please try again.";
pub(crate) const DEFAULT_EXPIRED: &str =
    "This {name} login link has expired. Please request a new one.";

async fn generate_link(
    req: &mut Request,
    env: &Env,
    instance: &str,
) -> std::result::Result<Response, ApiError> {
    use otp_core::rules::link::{prefilled_text, wa_me_link};
    use otp_core::rules::link_state::{Callbacks, LinkChallenge, LinkMessages};
    use otp_core::rules::template::render;

    let inst = authorize(req, env, instance)?;
    let body = body(req).await?;
    let input = otp_core::wire::hypersender::parse_generate_link(
        &body,
        service::allow_loopback_callbacks(env),
    )
    .map_err(ApiError::Invalid)?;
    let business_number = inst.business_number.clone().ok_or_else(|| {
        ApiError::Config(ConfigProblem(format!(
            "instance {} has no business_number",
            inst.id
        )))
    })?;
    service::login_key(env)?;
    if input.callback_success.is_some() || input.callback_failed.is_some() {
        let secrets = service::instance_secrets(env, &inst.id)?;
        if secrets.webhook_secret.is_none() {
            return Err(ApiError::Config(ConfigProblem(format!(
                "callbacks need INSTANCE_SECRETS.{}.webhook_secret",
                inst.id
            ))));
        }
    }
    let name = input.name.clone().unwrap_or_else(|| inst.name.clone());
    let prompt = render(
        input.prompt.as_deref().unwrap_or(DEFAULT_PROMPT),
        &[("name", &name)],
    );
    let now = http::now();
    let messages = LinkMessages {
        prompt: prompt.clone(),
        success: input
            .success
            .clone()
            .unwrap_or_else(|| DEFAULT_SUCCESS.into()),
        failed: input
            .failed
            .clone()
            .unwrap_or_else(|| DEFAULT_FAILED.into()),
        expired: input
            .expired
            .clone()
            .unwrap_or_else(|| DEFAULT_EXPIRED.into()),
    };
    let (id, code) = crate::link_object::create(
        env,
        &inst.id,
        input.recipient.as_ref(),
        (now, now + input.expires),
        |id, code| {
            LinkChallenge::new(
                id,
                inst.id.clone(),
                code,
                name.clone(),
                (now, now + input.expires),
                input.recipient.as_ref().map(|r| r.digits().to_owned()),
                messages.clone(),
                Callbacks {
                    success: input.callback_success.clone(),
                    failed: input.callback_failed.clone(),
                },
                inst.link.max_failures,
            )
        },
    )
    .await
    .map_err(internal)?;
    let data = GenerateLinkData {
        uuid: id,
        whatsapp_link: wa_me_link(&business_number, &prefilled_text(&prompt, &code)),
        code,
        chat_id: input.recipient.as_ref().map(Recipient::chat_id),
        status: "pending",
        otp_type: "link",
        expires_at: iso8601(now + input.expires),
        created_at: iso8601(now),
    };
    ok("OTP link request created successfully", data, &[]).map_err(internal)
}

#[derive(Serialize)]
struct LinkStatusData {
    uuid: String,
    code: String,
    chat_id: Option<String>,
    status: &'static str,
    otp_type: &'static str,
    expires_at: String,
    created_at: String,
    claimed_at: Option<String>,
    verified_at: Option<String>,
    failed_at: Option<String>,
    failure: Option<String>,
    callbacks: crate::link_object::CallbackLog,
}

async fn link_status(
    env: &Env,
    instance: &str,
    code: &str,
    uuid: &str,
    now: i64,
) -> std::result::Result<Response, ApiError> {
    let stub = store::link_stub(env, instance, code).map_err(internal)?;
    let got: crate::link_object::LinkView =
        store::call_object(&stub, "get", &serde_json::json!({}))
            .await
            .map_err(internal)?;
    let Some(c) = got.challenge.filter(|c| c.id == uuid) else {
        return Err(ApiError::NotFound);
    };
    let data = LinkStatusData {
        uuid: c.id.clone(),
        code: c.code.clone(),
        chat_id: c.chat_id(),
        status: c.status(now).as_str(),
        otp_type: "link",
        expires_at: iso8601(c.expires_at),
        created_at: iso8601(c.created_at),
        claimed_at: c.claimed_at.map(iso8601),
        verified_at: c.verified_at.map(iso8601),
        failed_at: c.failed_at.map(iso8601),
        failure: c.failure.clone(),
        callbacks: got.callbacks,
    };
    ok("OTP status retrieved successfully", data, &[]).map_err(internal)
}

#[derive(Serialize)]
struct MetricsData {
    links_generated: i64,
    links_opened: i64,
    links_claimed: i64,
    links_verified: i64,
    links_expired: i64,
    links_failed: i64,
    failed_attempts: i64,
    average_seconds_to_verification: Option<f64>,
    days: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>,
}

/// Extension: `GET /api/otp/v2/{instance}/metrics`, the Monitoring list of the generate-link
/// doc, summed over the instance's counter shards.
async fn metrics(
    req: &Request,
    env: &Env,
    instance: &str,
) -> std::result::Result<Response, ApiError> {
    let inst = authorize(req, env, instance)?;
    let summary = crate::metrics::read(env, &inst.id)
        .await
        .map_err(internal)?;
    let t = |k: &str| summary.totals.get(k).copied().unwrap_or(0);
    let verified = t("links_verified");
    let data = MetricsData {
        links_generated: t("links_generated"),
        links_opened: t("links_opened"),
        links_claimed: t("links_claimed"),
        links_verified: verified,
        links_expired: t("links_expired"),
        links_failed: t("links_failed"),
        failed_attempts: t("failed_attempts"),
        average_seconds_to_verification: (verified > 0)
            .then(|| t("verification_seconds_total") as f64 / verified as f64),
        days: summary.days,
    };
    ok("OTP metrics retrieved successfully", data, &[]).map_err(internal)
}
