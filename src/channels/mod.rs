//! Who delivers: the channel trait, one implementation per provider (WhatsApp Cloud API,
//! Twilio SMS and WhatsApp, the site's own signed sender, the dev outbox), the choice of a
//! channel and its credentials for an instance ([`deliver`]), and the other outside services
//! the Worker calls: the site's callbacks and Turnstile's siteverify.
//!
//! A message reaches a channel with its code still a `{code}` placeholder; only the
//! implementation that talks to the provider fills it in, so no queue or table holds a code.
//!
//! May import: `crate::config`, `crate::clock`, `crate::log`, `otp-core`. Never `crate::api` or
//! `crate::store`.

pub mod callbacks;
mod outbox;
mod sender;
pub mod turnstile;
mod twilio;
mod whatsapp;

pub use outbox::{Outbox, OUTBOX_SCHEMA};

use crate::config;
use otp_core::config::{ChannelKind, InstanceConfig};
use otp_core::rules::template::render;
use otp_core::Recipient;
use wasm_bindgen::JsValue;
use worker::{web_sys, AbortSignal, Env, Fetch, Headers, Method, Request, SqlStorage};

/// One message to deliver.
pub struct Outbound<'a> {
    /// The recipient.
    pub to: &'a Recipient,
    /// The challenge it belongs to.
    pub challenge_id: &'a str,
    /// Text with every placeholder filled in except `{code}`.
    pub text_template: &'a str,
    /// The code, derived just before sending; `None` for messages without one (link replies).
    pub code: Option<&'a str>,
    /// What the message is beside its text, for channels that can show more.
    pub form: &'a Form,
}

/// What a message is beside its text, as words: none for plain text, `["cta_url", label,
/// url]` for a URL button (WhatsApp's `cta_url` interactive message), `["template", name,
/// language, params…]` for a WhatsApp Cloud API approved template. Channels that cannot show
/// it send the text, which always stands on its own (a link reply's text holds the URL too).
/// A list of strings rather than an enum: it is stored with queued messages, and a list costs
/// the Wasm no deserializer of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Form(pub Vec<String>);

impl Form {
    /// A button labelled `label` that opens `url`.
    pub fn button(label: String, url: String) -> Self {
        Self(vec!["cta_url".into(), label, url])
    }

    /// An approved template with its body parameters.
    pub fn template(name: &str, language: &str, params: Vec<String>) -> Self {
        let mut words = vec!["template".into(), name.into(), language.into()];
        words.extend(params);
        Self(words)
    }

    /// The form's name, as the outbox records it: `text`, `cta_url` or `template`.
    pub fn kind(&self) -> &str {
        self.0.first().map_or("text", String::as_str)
    }
}

impl Outbound<'_> {
    /// The text as the phone shows it.
    pub fn text(&self) -> String {
        match self.code {
            Some(code) => render(self.text_template, &[("code", code)]),
            None => self.text_template.to_owned(),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone)]
pub enum DeliveryError {
    /// Worth another try later (timeouts, 5xx, rate limits).
    Retryable(String),
    /// Will never work (bad number, refused by the provider).
    Permanent(String),
}

/// A way to deliver messages.
#[allow(async_fn_in_trait)]
pub trait Channel {
    /// Hands the message to the provider; `Ok` means accepted for delivery, with the
    /// provider's message id when it gives one (to match delivery receipts).
    async fn send(&self, msg: &Outbound<'_>) -> Result<Option<String>, DeliveryError>;
}

/// How the Worker talks to outside services: the deadline of each request, and whether plain
/// `http` to loopback is allowed (dev builds with `ALLOW_LOOPBACK_CALLBACKS`, for the fakes
/// of the end-to-end tests).
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub timeout_ms: u32,
    pub allow_loopback: bool,
}

impl Net {
    /// The deploy's settings (`OUTBOUND_TIMEOUT_MS`, `ALLOW_LOOPBACK_CALLBACKS`).
    pub fn of(env: &Env) -> Self {
        Self {
            timeout_ms: config::outbound_timeout_ms(env),
            allow_loopback: config::allow_loopback_callbacks(env),
        }
    }
}

/// Sends `req` with `net`'s deadline: an `AbortSignal` that fires after `timeout_ms` aborts
/// the request, and the reading of its answer, wherever it is. A receiver that accepts the
/// connection and never answers costs one deadline, then is retried like a network error.
pub async fn fetch_with_deadline(req: Request, net: Net) -> worker::Result<(u16, Vec<u8>)> {
    let signal = AbortSignal::from(web_sys::AbortSignal::timeout_with_u32(net.timeout_ms));
    let mut resp = Fetch::Request(req).send_with_signal(&signal).await?;
    let status = resp.status_code();
    let body = resp.bytes().await?;
    Ok((status, body))
}

/// One HTTP POST to a provider: `(status, body)`, or a retryable error for the network and
/// the deadline. The URL must be `https` to a public host (`url_guard`); a refused one is a
/// permanent error. Redirects are never followed (the body may hold a code): a 3xx is an
/// answer like any other.
async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: String,
    net: Net,
) -> Result<(u16, Vec<u8>), DeliveryError> {
    otp_core::url_guard::check_callback_url(url, net.allow_loopback)
        .map_err(|e| DeliveryError::Permanent(format!("{url}: {e}")))?;
    let attempt = async {
        let h = Headers::new();
        for (k, v) in headers {
            h.set(k, v)?;
        }
        let body = JsValue::from_str(&body);
        let req = crate::outbound::request(Method::Post, url, Some(&h), Some(&body), true)?;
        fetch_with_deadline(req, net).await
    };
    attempt
        .await
        .map_err(|e| DeliveryError::Retryable(describe_failure(url, net, &e)))
}

/// Why an outbound request failed, for the log and the job's last error.
fn describe_failure(url: &str, net: Net, e: &worker::Error) -> String {
    let text = e.to_string();
    if text.contains("abort") || text.contains("Abort") || text.contains("timed out") {
        format!("{url}: no answer within {} ms", net.timeout_ms)
    } else {
        format!("{url}: {text}")
    }
}

/// The channel a challenge is delivered through: the one it fell back to, else the first of
/// the chain matching the caller's preferred medium (`whatsapp`, `sms`), else the first.
pub fn current_channel(c: &otp_core::Challenge, chain: &[ChannelKind]) -> ChannelKind {
    let named = c
        .channel
        .as_deref()
        .and_then(|n| chain.iter().find(|k| k.as_str() == n));
    let preferred = c
        .options
        .channel
        .as_deref()
        .and_then(|m| chain.iter().find(|k| k.medium() == m));
    *named
        .or(preferred)
        .or(chain.first())
        .unwrap_or(&ChannelKind::Outbox)
}

/// Hands a message to channel `kind` of `instance`, with the instance's credentials; the
/// provider's message id on success. `outbox` is the recipient object's database, where the
/// dev outbox keeps its messages.
pub async fn deliver(
    env: &Env,
    instance: &InstanceConfig,
    kind: ChannelKind,
    msg: &Outbound<'_>,
    outbox: &SqlStorage,
    now: i64,
) -> Result<Option<String>, DeliveryError> {
    let missing = |what: &str| {
        DeliveryError::Permanent(format!("the {} channel needs {what}", kind.as_str()))
    };
    let secrets =
        || config::instance_secrets(env, &instance.id).map_err(|p| DeliveryError::Retryable(p.0));
    let net = Net::of(env);
    match kind {
        ChannelKind::Outbox => Outbox { sql: outbox, now }.send(msg).await,
        ChannelKind::Whatsapp => {
            let secrets = secrets()?;
            let config = instance
                .whatsapp
                .as_ref()
                .ok_or_else(|| missing("[whatsapp]"))?;
            let token = secrets
                .whatsapp_access_token
                .as_deref()
                .ok_or_else(|| missing("whatsapp_access_token"))?;
            whatsapp::WhatsappCloud {
                config,
                access_token: token,
                net,
            }
            .send(msg)
            .await
        }
        ChannelKind::TwilioSms | ChannelKind::TwilioWhatsapp => {
            let secrets = secrets()?;
            let config = instance
                .twilio
                .as_ref()
                .ok_or_else(|| missing("[twilio]"))?;
            let token = secrets
                .twilio_auth_token
                .as_deref()
                .ok_or_else(|| missing("twilio_auth_token"))?;
            let status_callback = config::var(env, "PUBLIC_URL").map(|base| {
                format!(
                    "{}/webhooks/twilio/{}",
                    base.trim_end_matches('/'),
                    instance.id
                )
            });
            twilio::TwilioChannel {
                config,
                auth_token: token,
                whatsapp: kind == ChannelKind::TwilioWhatsapp,
                web_otp_domain: instance.web_otp_domain.as_deref(),
                status_callback,
                net,
            }
            .send(msg)
            .await
        }
        ChannelKind::Webhook => {
            let secrets = secrets()?;
            let config = instance
                .webhook
                .as_ref()
                .ok_or_else(|| missing("[webhook]"))?;
            let secret = secrets
                .sender_secret
                .as_deref()
                .and_then(|s| otp_core::wire::webhook::WebhookSecret::parse(s).ok())
                .ok_or_else(|| missing("a valid sender_secret"))?;
            let kind = if msg.code.is_some() {
                "code"
            } else {
                "message"
            };
            sender::WebhookSender {
                url: &config.url,
                secret: &secret,
                kind,
                net,
            }
            .send(msg)
            .await
        }
    }
}
