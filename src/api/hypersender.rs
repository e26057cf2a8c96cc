//! The Hypersender OTP API v2 surface: `POST /api/otp/v2/{instance}/request-code`,
//! `validate-code` and `generate-link`, byte-compatible with the documented bodies, plus the
//! extensions `GET /api/otp/v2/{instance}/otps/{uuid}` and `/metrics`. Failures are
//! [`Outcome`]s written in the `{success, message, data}` envelope; statuses and messages are
//! in docs/api.md.

use super::outcome::{self, internal, Outcome};
use super::request::{self, json, json_object, Kept};
use crate::store::budget::{self, Source};
use crate::store::link::{self, CallbackLog};
use crate::store::recipient::{Recipients, StartMsg};
use crate::store::records::RecordKind;
use crate::store::{idempotency, metrics, privacy, records, Op};
use crate::{clock, config};
use otp_core::config::InstanceConfig;
use otp_core::ids::is_uuid;
use otp_core::rules::challenge::{Attempt, Challenge, SendOptions, Status};
use otp_core::rules::link_state::{Callbacks, LinkChallenge, LinkMessages};
use otp_core::time::iso8601;
use otp_core::wire::hypersender::{parse_request_code, parse_validate_code, ValidationErrors};
use otp_core::Recipient;
use serde::Serialize;
use worker::{Env, Method, Request, Response, Result};

type Answer = std::result::Result<Response, Outcome>;

/// The documented envelope.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    message: &'a str,
    data: T,
}

fn ok<T: Serialize>(message: &str, data: T, headers: &[(&str, String)]) -> Answer {
    json(
        200,
        &Envelope {
            success: true,
            message,
            data,
        },
        headers,
    )
    .map_err(internal)
}

/// Routes `/api/otp/v2/{instance}/...`.
pub async fn handle(
    mut req: Request,
    env: &Env,
    instance: &str,
    rest: &[&str],
) -> Result<Response> {
    let result = match (req.method(), rest) {
        (Method::Post, ["request-code"]) => request_code(&mut req, env, instance).await,
        (Method::Post, ["validate-code"]) => validate_code(&mut req, env, instance).await,
        (Method::Post, ["generate-link"]) => generate_link(&mut req, env, instance).await,
        (Method::Get, ["otps", uuid]) => status(&req, env, instance, uuid).await,
        (Method::Get, ["metrics"]) => metrics(&req, env, instance).await,
        (Method::Delete, ["recipients", chat]) => erase(&req, env, instance, chat).await,
        (Method::Get, ["challenges"]) => challenges(&req, env, instance).await,
        (_, ["recipients", _]) => Err(Outcome::MethodNotAllowed("DELETE")),
        (_, ["challenges"]) => Err(Outcome::MethodNotAllowed("GET")),
        (_, ["request-code" | "validate-code" | "generate-link"]) => {
            Err(Outcome::MethodNotAllowed("POST"))
        }
        (_, ["otps", _] | ["metrics"]) => Err(Outcome::MethodNotAllowed("GET")),
        _ => Err(Outcome::NotFound),
    };
    result.or_else(outcome::hypersender)
}

/// The caller: its instance, and what its token says.
struct Authorized {
    inst: config::Instance,
    /// A `sk_test_` credential: codes go to the outbox, test numbers apply.
    test_key: bool,
    /// SHA-256 of the token: scopes idempotency keys to one credential.
    token_hash: String,
}

/// Checks the bearer token, then finds the instance.
fn authorize(req: &Request, env: &Env, instance: &str) -> std::result::Result<Authorized, Outcome> {
    let token = request::bearer(req);
    if token.is_empty() {
        return Err(Outcome::Unauthenticated);
    }
    let inst = config::instance(env, instance)?.ok_or(Outcome::UnknownInstance)?;
    if !config::token_is_valid(env, &inst.id, &token)? {
        return Err(Outcome::Unauthenticated);
    }
    Ok(Authorized {
        inst,
        test_key: token.starts_with("sk_test_"),
        token_hash: otp_core::secret::token_hash_hex(&token),
    })
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

async fn request_code(req: &mut Request, env: &Env, instance: &str) -> Answer {
    let auth = authorize(req, env, instance)?;
    let inst = &auth.inst;
    let pepper = config::pepper(env)?;
    let key = request::idempotency_key(req)?;
    let (body, raw) = json_object(req).await?;
    let input =
        parse_request_code(&body, inst.max_expires.unwrap_or(1800)).map_err(Outcome::Invalid)?;
    let scope = format!("{}:{}", inst.id.to_ascii_lowercase(), auth.token_hash);
    let path = req.path();
    // The kept response names the number: filed with the recipient, for erasure.
    let idem = key.as_deref().map(|k| idempotency::object_name(&scope, k));
    request::once(
        env,
        &scope,
        key,
        &path,
        &raw,
        || async {
            let data = start_code(env, &auth, &pepper, input, idem).await?;
            // The kept response holds no code: a replay derives it again.
            let kept = RequestCodeData {
                code: String::new(),
                ..data.clone()
            };
            let kept = serde_json::to_string(&kept).map_err(internal)?;
            let resp = ok(
                "OTP code generated and message queued successfully",
                data,
                &[],
            )?;
            Ok((
                resp,
                Kept {
                    status: 200,
                    body: kept,
                },
            ))
        },
        |kept| replay_request_code(env, inst, &pepper, kept.body),
    )
    .await
}

/// Answers a repeated request-code with the first response, its code derived again from the
/// challenge as it is now (a fallback may have given it a fresh code). Nothing is sent.
async fn replay_request_code(
    env: &Env,
    inst: &InstanceConfig,
    pepper: &otp_core::Secret,
    kept: String,
) -> Answer {
    let mut data: RequestCodeData = serde_json::from_str(&kept).map_err(internal)?;
    let recipient = Recipient::parse(&data.chat_id).map_err(|_| Outcome::NotFound)?;
    let challenge = Recipients::new(env)
        .get(&inst.id, &recipient, &data.uuid)
        .await
        .map_err(internal)?
        .ok_or(Outcome::NotFound)?;
    data.code = challenge
        .code(pepper, &inst.id, &recipient)
        .reveal()
        .to_owned();
    ok(
        "OTP code generated and message queued successfully",
        data,
        &[("idempotent-replayed", "true".into())],
    )
}

/// Starts a code challenge after the abuse checks, records it in KV, and returns the body.
async fn start_code(
    env: &Env,
    auth: &Authorized,
    pepper: &otp_core::Secret,
    input: otp_core::wire::hypersender::RequestCode,
    idem: Option<String>,
) -> std::result::Result<RequestCodeData, Outcome> {
    let inst = &auth.inst;
    let mut msg = StartMsg::code(
        &inst.id,
        &input.recipient,
        input.spec,
        input.expires,
        SendOptions {
            locale: input.locale,
            test: auth.test_key,
            ..Default::default()
        },
    )
    .map_err(internal)?;
    msg.name = input.name;
    msg.idem = idem;
    let challenge = Recipients::new(env)
        .start_guarded(inst, &input.recipient, msg, Source::Api)
        .await
        .map_err(internal)??;
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

async fn validate_code(req: &mut Request, env: &Env, instance: &str) -> Answer {
    let auth = authorize(req, env, instance)?;
    let inst = auth.inst;
    config::pepper(env)?;
    let (body, _) = json_object(req).await?;
    let input = parse_validate_code(&body).map_err(Outcome::Invalid)?;
    let attempt = Recipients::new(env)
        .validate(&inst.id, &input.recipient, &input.code, auth.test_key)
        .await
        .map_err(internal)?;
    let Attempt::Validated { challenge } = attempt else {
        return Err(Outcome::Attempt(Box::new(attempt)));
    };
    let data = ValidateCodeData {
        uuid: challenge.id.clone(),
        chat_id: input.recipient.chat_id(),
        status: "validated",
        validated_at: iso8601(challenge.ended_at.unwrap_or(challenge.created_at)),
    };
    ok("OTP code validated successfully", data, &[])
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
            status: hypersender_status(status),
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
            // A superseded code reads `expired`; the reason says which.
            failure: c
                .failure
                .clone()
                .or_else(|| (status == Status::Superseded).then(|| status.as_str().to_owned())),
            channel: c.channel.clone(),
            delivery: c.receipt.clone(),
        }
    }
}

async fn status(req: &Request, env: &Env, instance: &str, uuid: &str) -> Answer {
    let inst = authorize(req, env, instance)?.inst;
    let not_found = || Outcome::NotFound;
    if !is_uuid(uuid) {
        return Err(not_found());
    }
    let record = records::get(env, uuid)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    if !record.instance.eq_ignore_ascii_case(&inst.id) {
        return Err(not_found());
    }
    let now = clock::now();
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
    ok("OTP status retrieved successfully", data, &[])
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

async fn generate_link(req: &mut Request, env: &Env, instance: &str) -> Answer {
    use otp_core::rules::link::{prefilled_text, wa_me_link};

    let inst = authorize(req, env, instance)?.inst;
    if !inst.sends_whatsapp() {
        return Err(Outcome::NoLinkMode); // WhatsApp only, as Hypersender documents it
    }
    let (body, _) = json_object(req).await?;
    let input = otp_core::wire::hypersender::parse_generate_link(
        &body,
        config::allow_loopback_callbacks(env),
    )
    .map_err(Outcome::Invalid)?;
    let business_number = inst.business_number.clone().ok_or_else(|| {
        Outcome::Config(config::ConfigProblem(format!(
            "instance {} has no business_number",
            inst.id
        )))
    })?;
    config::login_key(env)?;
    if input.callback_success.is_some() || input.callback_failed.is_some() {
        let secrets = config::instance_secrets(env, &inst.id)?;
        if secrets.webhook_secret.is_none() {
            return Err(Outcome::Config(config::ConfigProblem(format!(
                "callbacks need INSTANCE_SECRETS.{}.webhook_secret",
                inst.id
            ))));
        }
    }
    let name = input.name.clone().unwrap_or_else(|| inst.name.clone());
    let messages = LinkMessages::or_defaults(
        &name,
        input.prompt.as_deref(),
        input.success.as_deref(),
        input.failed.as_deref(),
        input.expired.as_deref(),
    );
    // The site's backend calls generate-link, so where its request came from says nothing
    // about the user: the backend may pass its user's User-Agent and location on.
    let header = |k: &str| req.headers().get(k).ok().flatten().unwrap_or_default();
    let started = (
        otp_core::web::login::bounded(&header("x-otp-client-location")),
        otp_core::web::login::browser(&header("x-otp-client-user-agent")),
    );
    let charge = guard_link(env, &inst, input.recipient.as_ref()).await?;
    let now = clock::now();
    let expires = (now, now + input.expires);
    let created = link::create(
        env,
        &inst.id,
        input.recipient.as_ref(),
        expires,
        |id, code| {
            let mut c = LinkChallenge::new(
                id,
                inst.id.clone(),
                code,
                name.clone(),
                expires,
                input.recipient.as_ref().map(|r| r.digits().to_owned()),
                messages.clone(),
                Callbacks {
                    success: input.callback_success.clone(),
                    failed: input.callback_failed.clone(),
                },
                inst.link.max_failures,
            );
            (c.started_near, c.started_with) = started.clone();
            c
        },
    )
    .await;
    if created.is_err() {
        budget::refund(env, &charge).await;
    }
    let (id, code) = created.map_err(internal)?;
    let data = GenerateLinkData {
        uuid: id,
        whatsapp_link: wa_me_link(&business_number, &prefilled_text(&messages.prompt, &code)),
        code,
        chat_id: input.recipient.as_ref().map(Recipient::chat_id),
        status: "pending",
        otp_type: "link",
        expires_at: iso8601(expires.1),
        created_at: iso8601(now),
    };
    ok("OTP link request created successfully", data, &[])
}

/// Rate limiting binding of links without `chatId`: 60 a minute per instance.
const LINK_RATE_LIMITER: &str = "LINK_RL";

/// The limits a link is sent under (a link is a send: its reply costs a message). A link named
/// for a chat counts toward that recipient's send cap, cooldown and lockout, and the instance's
/// budgets, as a code does; a link any chat may claim counts toward a per-instance rate
/// (`LINK_RL`) and the instance-wide budgets. The units taken, to give back should the link
/// not be made after all.
async fn guard_link(
    env: &Env,
    inst: &InstanceConfig,
    recipient: Option<&Recipient>,
) -> std::result::Result<budget::Charge, Outcome> {
    let now = clock::now();
    let Some(recipient) = recipient else {
        let key = inst.id.to_ascii_lowercase();
        if !request::rate_limit_allows(env, LINK_RATE_LIMITER, key).await? {
            return Err(Outcome::RateLimited {
                message: "too many links without a chatId for this instance: at most 60 a minute",
                period: 60,
            });
        }
        return budget::check_instance(env, inst, now)
            .await
            .map_err(internal)?
            .map_err(Outcome::Guard);
    };
    let charge = match budget::check(env, inst, recipient, false, Source::Api, now)
        .await
        .map_err(internal)?
    {
        Ok(budget::Allowed::Send(charge)) => charge,
        Ok(budget::Allowed::TestNumber(_)) => budget::Charge::default(),
        Err(refused) => return Err(Outcome::Guard(refused)),
    };
    let counted = Recipients::new(env).count_send(&inst.id, recipient).await;
    if !matches!(counted, Ok(Ok(()))) {
        budget::refund(env, &charge).await;
    }
    counted.map_err(internal)?.map_err(Outcome::Refused)?;
    Ok(charge)
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
    callbacks: CallbackLog,
}

async fn link_status(env: &Env, instance: &str, code: &str, uuid: &str, now: i64) -> Answer {
    let got = link::view(env, instance, code, Op::Get)
        .await
        .map_err(internal)?;
    let Some(c) = got.challenge.filter(|c| c.id == uuid) else {
        return Err(Outcome::NotFound);
    };
    let data = LinkStatusData {
        uuid: c.id.clone(),
        code: c.code.clone(),
        chat_id: c.chat_id(),
        status: c.status(now).hypersender(),
        otp_type: "link",
        expires_at: iso8601(c.expires_at),
        created_at: iso8601(c.created_at),
        claimed_at: c.claimed_at.map(iso8601),
        verified_at: c.verified_at.map(iso8601),
        failed_at: c.failed_at.map(iso8601),
        failure: c.failure.clone(),
        callbacks: got.callbacks,
    };
    ok("OTP status retrieved successfully", data, &[])
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
    /// The code flow: sends, deliveries, failures, conversion, per channel and country.
    code: metrics::CodeReport,
    days: std::collections::BTreeMap<String, metrics::Counts>,
    /// Every counter per UTC hour (`YYYY-MM-DDTHH`) of the last days, for charts.
    hours: std::collections::BTreeMap<String, metrics::Counts>,
}

/// Extension: `GET /api/otp/v2/{instance}/metrics`, the Monitoring list of the generate-link
/// doc, summed over the instance's counter shards.
async fn metrics(req: &Request, env: &Env, instance: &str) -> Answer {
    let inst = authorize(req, env, instance)?.inst;
    let summary = metrics::read(env, &inst.id).await.map_err(internal)?;
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
        code: summary.code(),
        days: summary.days,
        hours: summary.hours,
    };
    ok("OTP metrics retrieved successfully", data, &[])
}

/// Extension: `DELETE /api/otp/v2/{instance}/recipients/{chatId}` erases everything about
/// one number (`store::privacy`) and says what went; a second call removes nothing.
async fn erase(req: &Request, env: &Env, instance: &str, chat: &str) -> Answer {
    let inst = authorize(req, env, instance)?.inst;
    // `+` and `@` may come percent-encoded.
    let chat = chat
        .replace("%2B", "+")
        .replace("%2b", "+")
        .replace("%40", "@");
    let recipient = Recipient::parse(&chat).map_err(|e| {
        Outcome::Invalid(ValidationErrors(vec![(
            "chatId".into(),
            format!("The chat id {e}."),
        )]))
    })?;
    let removed = privacy::erase(env, &inst.id, &recipient)
        .await
        .map_err(internal)?;
    let data = ErasedData {
        chat_id: recipient.chat_id(),
        removed,
    };
    ok("Recipient data erased successfully", data, &[])
}

#[derive(Serialize)]
struct ErasedData {
    chat_id: String,
    removed: privacy::Erased,
}

#[derive(Serialize)]
struct ListData {
    challenges: Vec<ListedData>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct ListedData {
    uuid: String,
    otp_type: RecordKind,
    phone_last4: Option<String>,
    created_at: String,
    expires_at: String,
}

/// Extension: `GET /api/otp/v2/{instance}/challenges?limit=&cursor=`, the instance's
/// challenges of its retention window, newest first, without codes or whole numbers.
async fn challenges(req: &Request, env: &Env, instance: &str) -> Answer {
    let inst = authorize(req, env, instance)?.inst;
    let url = req.url().map_err(internal)?;
    let invalid = |field: &str, message: &str| {
        Outcome::Invalid(ValidationErrors(vec![(field.into(), message.into())]))
    };
    let limit = match request::query(&url, "limit") {
        None => 20,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| invalid("limit", "The limit field must be between 1 and 100."))?,
    };
    let cursor = request::query(&url, "cursor").filter(|c| !c.is_empty());
    let (items, mut next) = records::list(env, &inst.id, limit, cursor.as_deref())
        .await
        .map_err(|e| match cursor {
            Some(_) => invalid("cursor", "The cursor field is not a cursor this list gave."),
            None => internal(e),
        })?;
    let since = clock::now() - inst.retention_secs();
    let mut out = Vec::with_capacity(items.len());
    for (uuid, l) in items {
        if l.expires_at < since {
            next = None; // newest first: the rest is older still
            break;
        }
        out.push(ListedData {
            uuid,
            otp_type: l.kind,
            phone_last4: Some(l.last4).filter(|d| !d.is_empty()),
            created_at: iso8601(l.created_at),
            expires_at: iso8601(l.expires_at),
        });
    }
    let data = ListData {
        challenges: out,
        next_cursor: next,
    };
    ok("OTP requests retrieved successfully", data, &[])
}
