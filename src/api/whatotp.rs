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
//! `Idempotency-Key` header through [`super::request::once`].

use super::outcome::{self, internal, session_attempt, Outcome};
use super::request::{self, json_object, Kept};
use crate::channels::Form;
use crate::store::budget::{self, Allowed};
use crate::store::recipient::{Recipients, SendMsg, StartMsg};
use crate::store::records::{self, RecordKind};
use crate::{clock, config};
use config::Instance;
use otp_core::rules::challenge::SendOptions;
use otp_core::rules::template::render;
use otp_core::secret::token_hash_hex;
use otp_core::time::iso8601;
use otp_core::wire::whatotp::{self as core, KeyMode};
use otp_core::{Alphabet, CodeSpec, Recipient};
use serde::Serialize;
use worker::{Env, Method, Request, Response, Result};

type Answer = std::result::Result<Response, Outcome>;

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

fn invalid(field: &'static str, message: String) -> Outcome {
    Outcome::InvalidField(core::ApiError {
        code: "invalid_request",
        message,
        field: Some(field),
    })
}

/// A success as the API answers it (the same bytes again on an idempotent replay).
fn reply(status: u16, body: String, replayed: bool) -> Answer {
    let answer = || -> Result<Response> {
        let mut resp = Response::ok(body)?.with_status(status);
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

/// A success to answer now and keep for replays.
fn kept<T: Serialize>(status: u16, body: &T) -> std::result::Result<(Response, Kept), Outcome> {
    let body = serde_json::to_string(body).map_err(internal)?;
    Ok((reply(status, body.clone(), false)?, Kept { status, body }))
}

/// Runs a send once per `Idempotency-Key` of its caller: a replay answers with the same bytes.
async fn once<F, Fut>(
    env: &Env,
    caller: &Caller,
    key: Option<String>,
    path: &str,
    raw: &[u8],
    work: F,
) -> Answer
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(Response, Kept), Outcome>>,
{
    request::once(env, &scope(caller), key, path, raw, work, |k| async move {
        reply(k.status, k.body, true)
    })
    .await
}

/// Idempotency keys are scoped to the instance and the API key, so two clients never share one.
fn scope(caller: &Caller) -> String {
    format!(
        "{}:{}",
        caller.inst.id.to_ascii_lowercase(),
        caller.key_hash
    )
}

/// The object that keeps a send under `key`: its fingerprint is of a body that names the
/// number, so it is filed with the recipient, for erasure.
fn kept_in(caller: &Caller, key: Option<&str>) -> Option<String> {
    key.map(|k| crate::store::idempotency::object_name(&scope(caller), k))
}

/// The instance and mode of the API key a request presented.
struct Caller {
    inst: Instance,
    mode: KeyMode,
    key_hash: String,
}

#[derive(Clone, Copy)]
enum Route<'a> {
    Send,
    Verify,
    Message,
    MessageStatus(&'a str),
}

/// Routes `/v1/...`.
pub async fn handle(mut req: Request, env: &Env, rest: &[&str]) -> Result<Response> {
    let route = match rest {
        ["otp", "send"] => Route::Send,
        ["otp", "verify"] => Route::Verify,
        ["messages", "send"] => Route::Message,
        ["messages", id] => Route::MessageStatus(id),
        // Like every path the Worker does not serve: the shared 404.
        _ => return outcome::not_found(),
    };
    let method = if let Route::MessageStatus(_) = route {
        Method::Get
    } else {
        Method::Post
    };
    if req.method() != method {
        return outcome::whatotp(Outcome::MethodNotAllowed(if method == Method::Get {
            "GET"
        } else {
            "POST"
        }));
    }
    let result = async {
        let caller = authorize(&req, env).await?;
        match route {
            Route::Send => send(&mut req, env, &caller).await,
            Route::Verify => verify(&mut req, env, &caller).await,
            Route::Message => message(&mut req, env, &caller).await,
            Route::MessageStatus(id) => message_status(env, &caller, id).await,
        }
    };
    result.await.or_else(outcome::whatotp)
}

/// Counts the request toward the rate limit of its (key, IP), then finds the key's instance.
/// Requests without a valid key count too (under the hash of what they presented), so a
/// flood of bad keys from one address is refused like any other.
async fn authorize(req: &Request, env: &Env) -> std::result::Result<Caller, Outcome> {
    let key = request::bearer(req);
    let key_hash = token_hash_hex(&key);
    let ip = request::client_key(req);
    if !request::rate_limit_allows(env, RATE_LIMITER, format!("{key_hash}|{ip}")).await? {
        return Err(Outcome::RateLimited {
            message: "too many requests: at most 120 a minute per API key and client IP",
            period: RATE_PERIOD,
        });
    }
    let mode = core::key_mode(&key).ok_or(Outcome::Unauthenticated)?;
    let inst = instance_of_key(env, &key)?.ok_or(Outcome::Unauthenticated)?;
    Ok(Caller {
        inst,
        mode,
        key_hash,
    })
}

/// The instance whose `API_TOKENS` entry holds the key's hash. Every instance is checked (no
/// early exit), each in constant time; a key listed under two instances is a configuration
/// error, never a guess.
fn instance_of_key(env: &Env, key: &str) -> std::result::Result<Option<Instance>, Outcome> {
    let mut found: Vec<Instance> = Vec::new();
    for inst in config::each_instance(env)? {
        if config::token_is_valid(env, &inst.id, key)? {
            found.push(inst);
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        _ => Err(Outcome::Config(config::ConfigProblem(
            "an API key is listed under several instances in API_TOKENS".into(),
        ))),
    }
}

#[derive(Serialize)]
struct SendData {
    session_id: String,
    status: &'static str,
    channel: &'static str,
    expires_at: String,
    expires_in: i64,
}

async fn send(req: &mut Request, env: &Env, caller: &Caller) -> Answer {
    config::pepper(env)?;
    let (body, raw) = json_object(req).await?;
    let input = core::parse_send(&body)?;
    let key = request::idempotency_key(req)?;
    let idem = kept_in(caller, key.as_deref());
    once(env, caller, key, "/v1/otp/send", &raw, || {
        start_session(env, caller, &input, idem)
    })
    .await
}

/// Starts a challenge for `input` and writes its record: the session.
async fn start_session(
    env: &Env,
    caller: &Caller,
    input: &core::SendOtp,
    idem: Option<String>,
) -> std::result::Result<(Response, Kept), Outcome> {
    let inst = &caller.inst;
    let mut msg = StartMsg::code(
        &inst.id,
        &input.to,
        CodeSpec {
            length: input.length,
            alphabet: Alphabet::Digits,
        },
        DEFAULT_TTL.min(inst.max_expires.unwrap_or(DEFAULT_TTL)),
        SendOptions {
            channel: Some(input.channel.as_str().into()),
            test: caller.mode == KeyMode::Test,
            ..SendOptions::default()
        },
    )
    .map_err(internal)?;
    msg.idem = idem;
    let asked = clock::now();
    let challenge = Recipients::new(env)
        .start_guarded(inst, &input.to, msg, budget::Source::Api)
        .await
        .map_err(internal)??;
    // The channel that delivers: a test key's outbox, else the instance's channel of the kind
    // asked for (its first channel when it has none of that kind).
    let channel = if challenge.options.test {
        "outbox"
    } else {
        crate::channels::current_channel(&challenge, &inst.chain()).medium()
    };
    let data = SendData {
        session_id: core::session_id(&challenge.id),
        status: challenge.status(challenge.created_at).as_str(),
        channel,
        expires_at: iso8601(challenge.expires_at),
        // A number with a live code gets that code again: what is left of its lifetime.
        expires_in: challenge.seconds_left(asked),
    };
    kept(200, &data)
}

#[derive(Serialize)]
struct VerifyData {
    session_id: String,
    status: &'static str,
    verified_at: String,
}

async fn verify(req: &mut Request, env: &Env, caller: &Caller) -> Answer {
    config::pepper(env)?;
    let (body, _) = json_object(req).await?;
    let input = core::parse_verify(&body)?;
    let uuid = core::parse_session_id(&input.session_id).ok_or(Outcome::SessionNotFound)?;
    let inst = &caller.inst;
    let record = records::get(env, &uuid)
        .await
        .map_err(internal)?
        .filter(|r| r.kind == RecordKind::Code && r.instance.eq_ignore_ascii_case(&inst.id))
        .ok_or(Outcome::SessionNotFound)?;
    let recipient = Recipient::parse(&record.recipient).map_err(|_| Outcome::SessionNotFound)?;
    let attempt = Recipients::new(env)
        .attempt(&inst.id, &recipient, &input.code, Some(&uuid))
        .await
        .map_err(internal)?;
    let verified_at = session_attempt(&uuid, attempt)?;
    let body = serde_json::to_string(&VerifyData {
        session_id: core::session_id(&uuid),
        status: "verified",
        verified_at: iso8601(verified_at),
    })
    .map_err(internal)?;
    reply(200, body, false)
}

#[derive(Serialize)]
struct MessageData {
    id: String,
    status: &'static str,
    expires_at: String,
}

async fn message(req: &mut Request, env: &Env, caller: &Caller) -> Answer {
    let (body, raw) = json_object(req).await?;
    let input = core::parse_message(&body)?;
    let composed = compose(&caller.inst, &input)?;
    let key = request::idempotency_key(req)?;
    let idem = kept_in(caller, key.as_deref());
    once(env, caller, key, "/v1/messages/send", &raw, || {
        queue_message(env, caller, &input, composed, idem)
    })
    .await
}

/// The text (what every channel can send) and form of a message: the built-in `text`
/// template, or one of the instance's templates (`templates` in its configuration).
fn compose(
    inst: &otp_core::config::InstanceConfig,
    input: &core::SendMessage,
) -> std::result::Result<(String, Form), Outcome> {
    if input.template_id == "text" {
        return Ok((render_template(input)?, Form::default()));
    }
    let t = inst.template(&input.template_id).ok_or_else(|| {
        let ids: Vec<&str> = inst.templates.keys().map(String::as_str).collect();
        invalid(
            "template_id",
            format!(
                "`template_id` must be `text` or a template of this instance ({})",
                ids.join(", ")
            ),
        )
    })?;
    let values: Vec<(&str, &str)> = input
        .variables
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let text = t
        .text_for(input.locale.as_deref())
        .map(|x| render(x, &values));
    let form = match t.whatsapp() {
        Some((name, language, parameters)) => {
            let params = parameters.into_iter().map(|p| {
                input.variables.get(p).cloned().ok_or_else(|| {
                    let why = format!("`variables` must have `{p}` for this template");
                    invalid("variables", why)
                })
            });
            let params = params.collect::<std::result::Result<_, _>>()?;
            Form::template(name, language, params)
        }
        None => Form::default(),
    };
    // A template with no text (the configuration allows it on WhatsApp only) reads in the
    // outbox as its name and parameters.
    let text = match (text, form.0.as_slice()) {
        (Some(text), _) => text,
        (None, [_, name, _, params @ ..]) => format!("[{name}] {}", params.join(" | ")),
        (None, _) => String::new(),
    };
    if text.chars().count() > MESSAGE_MAX {
        return Err(invalid(
            "variables",
            format!("the rendered message must be at most {MESSAGE_MAX} characters"),
        ));
    }
    Ok((text, form))
}

/// The message text of a built-in template (see [`TEMPLATES`]).
fn render_template(input: &core::SendMessage) -> std::result::Result<String, Outcome> {
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
    (text, form): (String, Form),
    idem: Option<String>,
) -> std::result::Result<(Response, Kept), Outcome> {
    let inst = &caller.inst;
    let id = format!(
        "msg_{}",
        crate::store::new_id().map_err(internal)?.replace('-', "")
    );
    let test = caller.mode == KeyMode::Test;
    let allowed = budget::check(
        env,
        inst,
        &input.to,
        test,
        budget::Source::Api,
        clock::now(),
    )
    .await
    .map_err(internal)?
    .map_err(Outcome::Guard)?;
    let now = clock::now();
    let expires_at = now + input.expires_in_seconds;
    // A test number gets nothing (and has no status); a test key's message goes to the outbox.
    if let Allowed::Send(charge) = allowed {
        let mut msg = SendMsg::new(&inst.id, &input.to, &id, &text, test);
        msg.form = form;
        msg.expires_at = Some(expires_at);
        msg.recorded = true;
        msg.idem = idem;
        let record = records::ChallengeRecord {
            instance: inst.id.clone(),
            recipient: input.to.digits().into(),
            kind: RecordKind::Message,
            link_code: None,
            created_at: now,
            expires_at,
        };
        let (queued, recorded) = futures_util::future::join(
            Recipients::new(env).queue(&input.to, msg),
            records::put(env, &id, &record, now),
        )
        .await;
        if queued.is_err() {
            budget::refund(env, &charge).await;
        }
        queued.and(recorded).map_err(internal)?;
    }
    let data = MessageData {
        id,
        status: "queued",
        expires_at: iso8601(expires_at),
    };
    kept(202, &data)
}

#[derive(Serialize)]
struct MessageStatusData<'a> {
    id: &'a str,
    status: &'a str,
    channel: Option<&'a str>,
    expires_at: String,
    sent_at: Option<String>,
}

/// Extension: `GET /v1/messages/{id}`, what became of a message: `queued`, `sent`,
/// `expired` (not handed to a provider within `expires_in_seconds`: dropped) or `failed`.
async fn message_status(env: &Env, caller: &Caller, id: &str) -> Answer {
    // Ids are `msg_` and 32 hex digits: anything else is no message (and never a KV key).
    if !id.starts_with("msg_") || id.len() > 64 {
        return Err(Outcome::NotFound);
    }
    let record = records::get(env, id)
        .await
        .map_err(internal)?
        .filter(|r| {
            r.kind == RecordKind::Message && r.instance.eq_ignore_ascii_case(&caller.inst.id)
        })
        .ok_or(Outcome::NotFound)?;
    let recipient = Recipient::parse(&record.recipient).map_err(|_| Outcome::NotFound)?;
    let s = Recipients::new(env)
        .message_status(&caller.inst.id, &recipient, id)
        .await
        .map_err(internal)?
        .ok_or(Outcome::NotFound)?;
    let body = serde_json::to_string(&MessageStatusData {
        id,
        status: s["status"].as_str().unwrap_or("queued"),
        channel: s["channel"].as_str(),
        expires_at: iso8601(record.expires_at),
        sent_at: s["sent_at"].as_i64().map(iso8601),
    })
    .map_err(internal)?;
    reply(200, body, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::rules::challenge::{Attempt, Kind, Stage};
    use serde_json::{json, Value};

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
                matches!(&err, Some(Outcome::InvalidField(e)) if e.field == Some(field)),
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
    fn instance_templates_give_a_text_by_locale_or_an_approved_template() {
        let config = otp_core::config::ServiceConfig::from_json(
            r#"[{"id":"00000000-0000-4000-8000-000000000000","name":"A","channel":"whatsapp",
            "whatsapp":{"phone_number_id":"1"},"templates":{
              "hi":{"text":"Hi {name}","text_by_locale":{"pt":"Oi {name}"}},
              "ship":{"whatsapp":{"name":"order_shipped","parameters":["name","order"]}}}}]"#,
        )
        .expect("a valid configuration");
        let inst = &config.instances[0];
        let msg = |id: &str, vars: Value, locale: Option<&str>| {
            let mut m = message(
                json!({"phone_number": "20123456789", "template_id": id, "variables": vars}),
            );
            m.locale = locale.map(str::to_owned);
            compose(inst, &m)
        };
        let hi = msg("hi", json!({"name": "Ana"}), Some("pt-BR")).ok();
        assert_eq!(hi, Some(("Oi Ana".into(), Form::default())));
        let ship = msg("ship", json!({"name": "Ana", "order": 7}), None).ok();
        let form = Form::template("order_shipped", "en_US", vec!["Ana".into(), "7".into()]);
        assert_eq!(ship, Some(("[order_shipped] Ana | 7".into(), form)));
        let refused = |r: std::result::Result<(String, Form), Outcome>, field: &str| {
            assert!(
                matches!(&r, Err(Outcome::InvalidField(e)) if e.field == Some(field)),
                "{field}"
            );
        };
        refused(msg("ship", json!({"name": "Ana"}), None), "variables");
        refused(msg("nope", json!({}), None), "template_id");
    }

    #[test]
    fn an_outcome_about_another_challenge_means_the_session_was_superseded() {
        let ours = "a0b5df6a-b491-4190-80a5-38d85a2a4836";
        let other = "00000000-0000-4000-8000-000000000000";
        let validated = |id: &str| Attempt::Validated {
            challenge: challenge(id),
        };
        assert!(matches!(session_attempt(ours, validated(ours)), Ok(150)));
        assert!(matches!(
            session_attempt(ours, validated(other)),
            Err(Outcome::SessionSuperseded)
        ));
        let wrong = |id: &str| Attempt::Wrong {
            challenge: challenge(id),
            attempts_left: 3,
            retry_after: None,
        };
        assert!(matches!(
            session_attempt(ours, wrong(ours)),
            Err(Outcome::WrongCode {
                attempts_left: 3,
                retry_after: None
            })
        ));
        assert!(matches!(
            session_attempt(ours, wrong(other)),
            Err(Outcome::SessionSuperseded)
        ));
        assert!(matches!(
            session_attempt(ours, Attempt::NoActive),
            Err(Outcome::SessionExpired)
        ));
        assert!(matches!(
            session_attempt(ours, Attempt::Locked { retry_after: 9 }),
            Err(Outcome::Locked { retry_after: 9 })
        ));
        let mut undeliverable = challenge(ours);
        undeliverable.failure = Some("undeliverable: no route".into());
        assert!(matches!(
            session_attempt(
                ours,
                Attempt::Exhausted {
                    challenge: undeliverable,
                    retry_after: 1
                }
            ),
            Err(Outcome::SessionFailed)
        ));
    }
}
