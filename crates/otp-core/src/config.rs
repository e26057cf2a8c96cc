//! The service's configuration schema: instances as code in `wrangler.toml` (`INSTANCES`).
//!
//! Parsing is strict (`deny_unknown_fields`): a typo in a deploy's config is an error at the
//! first request, not a silently ignored limit. `docs/configuration.md` describes every field.

use crate::ids::is_uuid;
use crate::rules::challenge::Policy;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// How an instance delivers its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Development: messages are kept in the recipient's Durable Object and shown by
    /// `GET /dev/outbox`; nothing leaves the machine.
    Outbox,
    /// Meta's WhatsApp Cloud API (`[whatsapp]` table, access token in `INSTANCE_SECRETS`).
    Whatsapp,
    /// Twilio Messages API, SMS (`[twilio]` table with `from`).
    TwilioSms,
    /// Twilio Messages API, WhatsApp (`[twilio]` table with `whatsapp_from`).
    TwilioWhatsapp,
    /// The site's own sender: a signed POST to `[webhook] url` ("bring your own sender").
    Webhook,
}

impl ChannelKind {
    /// True for channels that reach real phones.
    pub fn is_real(self) -> bool {
        !matches!(self, Self::Outbox)
    }

    /// The channel's name in status bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::Whatsapp => "whatsapp",
            Self::TwilioSms => "twilio_sms",
            Self::TwilioWhatsapp => "twilio_whatsapp",
            Self::Webhook => "webhook",
        }
    }

    /// What a caller asking for a channel means by it: `whatsapp` or `sms` (others: their name).
    pub fn medium(self) -> &'static str {
        match self {
            Self::Whatsapp | Self::TwilioWhatsapp => "whatsapp",
            Self::TwilioSms => "sms",
            Self::Outbox => "outbox",
            Self::Webhook => "webhook",
        }
    }
}

fn default_twilio_base() -> String {
    "https://api.twilio.com".into()
}

fn default_template_language() -> String {
    "en_US".into()
}

/// A WhatsApp authentication template (copy-code button) for codes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappTemplate {
    /// The approved template's name.
    pub name: String,
    /// Its language code.
    #[serde(default = "default_template_language")]
    pub language: String,
}

/// Twilio settings of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// `AC...`.
    pub account_sid: String,
    /// SMS sender: an E.164 number, an alphanumeric id or a Messaging Service `MG...`.
    #[serde(default)]
    pub from: Option<String>,
    /// WhatsApp sender number (E.164), for `twilio_whatsapp`.
    #[serde(default)]
    pub whatsapp_from: Option<String>,
    /// API base URL; tests point it at a fake server on 127.0.0.1.
    #[serde(default = "default_twilio_base")]
    pub api_base: String,
}

/// The site's own sender.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSenderConfig {
    /// Where to POST `{to, text, code, kind, challenge}`, signed with `sender_secret`.
    pub url: String,
}

fn default_graph_base() -> String {
    "https://graph.facebook.com".into()
}

fn default_graph_version() -> String {
    "v21.0".into()
}

/// The WhatsApp Cloud API settings of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappConfig {
    /// The sending number's id in Meta's API (not the number itself).
    pub phone_number_id: String,
    /// API base URL; tests point it at a fake server on 127.0.0.1.
    #[serde(default = "default_graph_base")]
    pub api_base: String,
    /// Graph API version in the path.
    #[serde(default = "default_graph_version")]
    pub api_version: String,
    /// Send codes as this authentication template (copy-code button); text otherwise.
    #[serde(default)]
    pub template: Option<WhatsappTemplate>,
}

/// Settings of the WhatsApp link flow (generate-link).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Where the login page sends the user after confirming, with the verification token in
    /// the URL fragment (`#token=...`).
    pub redirect_url: Option<String>,
    /// Wrong or altered messages after which a link challenge fails.
    pub max_failures: u32,
    /// Whether a link may be claimed by an SMS (through Twilio), whose sender is easy to spoof;
    /// off by default: only WhatsApp messages claim links.
    pub allow_sms_claims: bool,
    /// The label of the login URL's button in the WhatsApp reply (at most 20 characters).
    pub button_text: String,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            redirect_url: None,
            max_failures: 5,
            allow_sms_claims: false,
            button_text: "Log in".into(),
        }
    }
}

/// The browser widget's settings: its publishable key and who may use it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetConfig {
    /// `pk_live_...` or `pk_test_...`: names the instance in pages; safe to publish.
    pub publishable_key: String,
    /// Origins whose pages may call the widget API (`https://shop.example`,
    /// `https://*.shop.example`); the service's own origin is always allowed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Seconds before the same number can be sent another code from the widget.
    #[serde(default = "default_widget_cooldown")]
    pub resend_cooldown: i64,
    /// Code lifetime in seconds (lowered to `max_expires`).
    #[serde(default = "default_widget_ttl")]
    pub code_ttl: i64,
    /// Characters in a code, 4 to 10.
    #[serde(default = "default_widget_length")]
    pub code_length: u8,
    /// What codes are drawn from (`digits` by default; letters show a text keyboard).
    #[serde(default = "default_widget_alphabet")]
    pub alphabet: crate::Alphabet,
    /// Link challenge lifetime in seconds.
    #[serde(default = "default_widget_link_ttl")]
    pub link_ttl: i64,
    /// Cloudflare Turnstile on `start`, when set.
    #[serde(default)]
    pub turnstile: Option<TurnstileConfig>,
    /// Codes a day (UTC) the widget may send for the whole instance, across numbers
    /// (approximate: sharded counters); 0 turns it off. On by default: the widget is public.
    #[serde(default = "default_widget_daily_budget")]
    pub daily_budget: u64,
    /// Codes a day (UTC) the widget may send to the numbers of one country calling code
    /// (exact); 0 turns it off. On by default, against SMS pumping to costly destinations.
    #[serde(default = "default_widget_country_daily_budget")]
    pub country_daily_budget: u64,
    /// The country the phone field suggests (ISO 3166 alpha-2, e.g. `EG`); without it, the
    /// visitor's country as Cloudflare sees it.
    #[serde(default)]
    pub default_country: Option<String>,
}

/// The widget's default daily budget for an instance.
pub const WIDGET_DAILY_BUDGET: u64 = 1000;
/// The widget's default daily budget per country calling code.
pub const WIDGET_COUNTRY_DAILY_BUDGET: u64 = 200;

fn default_widget_daily_budget() -> u64 {
    WIDGET_DAILY_BUDGET
}

fn default_widget_country_daily_budget() -> u64 {
    WIDGET_COUNTRY_DAILY_BUDGET
}

fn default_widget_cooldown() -> i64 {
    30
}

fn default_widget_ttl() -> i64 {
    300
}

fn default_widget_length() -> u8 {
    6
}

fn default_widget_alphabet() -> crate::Alphabet {
    crate::Alphabet::Digits
}

fn default_widget_link_ttl() -> i64 {
    600
}

/// Cloudflare Turnstile: the page shows the widget with `site_key`; `start` checks the token
/// at `siteverify_url` with `INSTANCE_SECRETS.turnstile_secret`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnstileConfig {
    /// The public site key the page renders Turnstile with.
    pub site_key: String,
    /// Where tokens are checked (Cloudflare's siteverify; a local fake in tests).
    #[serde(default = "default_siteverify")]
    pub siteverify_url: String,
}

/// Cloudflare's Turnstile token check.
pub const SITEVERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

fn default_siteverify() -> String {
    SITEVERIFY_URL.into()
}

/// A number that gets a fixed code and no delivery (app-store reviewers, CI).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestNumber {
    /// The number, any spelling (`+15550000000`).
    pub number: String,
    /// The code it always gets.
    pub code: String,
}

/// Limits against abuse (SMS pumping), all off unless set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbuseConfig {
    /// Country calling codes codes may be sent to (`["20", "44"]`); empty: all.
    pub allowed_countries: Vec<String>,
    /// Sends per UTC hour for the whole instance (approximate: sharded counters).
    pub hourly_budget: Option<u64>,
    /// Sends per UTC day for the whole instance (approximate: sharded counters).
    pub daily_budget: Option<u64>,
    /// Digits that make a number range, for `prefix_limit` (default 7 when a limit is set).
    pub prefix_len: Option<usize>,
    /// Sends per number range per 10 minutes (exact).
    pub prefix_limit: Option<u64>,
    /// Numbers that get a fixed code and no delivery.
    pub test_numbers: Vec<TestNumber>,
    /// Test numbers work with live credentials too (otherwise only with `sk_test_` keys).
    pub test_numbers_enabled: bool,
}

impl AbuseConfig {
    /// The fixed code of a configured test number, if `digits` is one.
    pub fn test_code(&self, digits: &str) -> Option<&str> {
        self.test_numbers.iter().find_map(|t| {
            crate::Recipient::parse(&t.number)
                .ok()
                .filter(|r| r.digits() == digits)
                .map(|_| t.code.as_str())
        })
    }
}

fn default_kid() -> String {
    "k1".into()
}

/// Days a number's data is kept after its last activity unless an instance says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

/// Message texts of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Messages {
    /// The code message for every locale; `{code}`, `{name}` and `{minutes}` are filled in.
    pub code: Option<String>,
    /// The code message per locale (`en`, `pt-BR`, ...), tried before `code`.
    pub code_by_locale: crate::rules::messages::Texts,
}

impl Messages {
    /// The code message template for `locale`: the instance's text for that locale, else its
    /// one text, else the built-in text in that locale (English when unknown).
    pub fn code_text(&self, locale: Option<&str>) -> &str {
        self.code_by_locale
            .pick(locale)
            .or(self.code.as_deref())
            .unwrap_or_else(|| crate::rules::messages::builtin_code_text(locale))
    }
}

/// One tenant of the service: its id (the `{instance}` of the URLs), channel and rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// The instance UUID used in API paths.
    pub id: String,
    /// Default app name for `{name}` when a request gives none.
    pub name: String,
    /// Delivery channel.
    pub channel: ChannelKind,
    /// The WhatsApp business number users write to (digits), for link challenges.
    #[serde(default)]
    pub business_number: Option<String>,
    /// Limits; every field defaults (docs/security.md).
    #[serde(default)]
    pub limits: Policy,
    /// Message texts.
    #[serde(default)]
    pub messages: Messages,
    /// Longest code lifetime this instance accepts, in seconds (tightens the API's 1800).
    #[serde(default)]
    pub max_expires: Option<i64>,
    /// Channels tried in order after `channel` when a delivery fails.
    #[serde(default)]
    pub fallback: Vec<ChannelKind>,
    /// WhatsApp Cloud API settings, required by the `whatsapp` channel.
    #[serde(default)]
    pub whatsapp: Option<WhatsappConfig>,
    /// Twilio settings, required by the `twilio_*` channels.
    #[serde(default)]
    pub twilio: Option<TwilioConfig>,
    /// The site's own sender, required by the `webhook` channel.
    #[serde(default)]
    pub webhook: Option<WebhookSenderConfig>,
    /// The site's domain: SMS codes end with the WebOTP line `@<domain> #<code>`.
    #[serde(default)]
    pub web_otp_domain: Option<String>,
    /// Limits against abuse (country allowlist, budgets, number-range caps, test numbers).
    #[serde(default)]
    pub abuse: AbuseConfig,
    /// WhatsApp link flow settings.
    #[serde(default)]
    pub link: LinkConfig,
    /// The `kid` of the key that signs verification tokens: a key of `TOKEN_SIGNING_KEYS`
    /// (ES256), or of `INSTANCE_SECRETS.<id>.token_keys` when `token_alg` is `HS256`.
    #[serde(default = "default_kid")]
    pub token_kid: String,
    /// How verification tokens are signed: `ES256` (the default, public keys in the JWKS) or
    /// `HS256` (a shared key: weaker, for deployments that already rely on it).
    #[serde(default)]
    pub token_alg: crate::web::token::Alg,
    /// The browser widget's settings; without them the widget API refuses the instance.
    #[serde(default)]
    pub widget: Option<WidgetConfig>,
    /// Days a recipient's or a link's data is kept after its last activity (1-3650).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Message templates of `POST /v1/messages/send`, by `template_id` ([`MessageTemplate`]).
    #[serde(default)]
    pub templates: serde_json::Map<String, Value>,
}

/// An operator-defined message template (`templates.<id>` of an instance): a `text` and/or
/// texts per locale (`text_by_locale`) with `{variables}`, and/or `whatsapp = {name,
/// language, parameters}`, a WhatsApp Cloud API approved template whose body parameters are
/// the named variables. Kept as the JSON it was configured as, checked once by
/// [`ServiceConfig::new`] and read through this view: no deserializer of its own in the Wasm.
#[derive(Debug, Clone, Copy)]
pub struct MessageTemplate<'a>(&'a Value);

impl<'a> MessageTemplate<'a> {
    /// The text for `locale`: its own text for that locale (or its language, or `en`), else
    /// `text`.
    pub fn text_for(self, locale: Option<&str>) -> Option<&'a str> {
        let by_locale = self.0.get("text_by_locale").and_then(Value::as_object);
        let entries = by_locale
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
        crate::rules::messages::pick_in(entries, locale).or_else(|| self.0.get("text")?.as_str())
    }

    /// The approved template: its name, language (default `en_US`) and the variables that
    /// fill its body parameters, in order.
    pub fn whatsapp(self) -> Option<(&'a str, &'a str, Vec<&'a str>)> {
        let w = self.0.get("whatsapp")?;
        let params = w.get("parameters").and_then(Value::as_array);
        let params = params.map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect());
        let language = w.get("language").and_then(Value::as_str).unwrap_or("en_US");
        Some((w.get("name")?.as_str()?, language, params))
    }
}

/// True when `t` has the shape of a [`MessageTemplate`] (nothing else, every text a string).
fn is_template(t: &Value) -> bool {
    let texts = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.values().all(Value::is_string))
    };
    let approved = |w: &Value| {
        w.get("name").is_some_and(Value::is_string)
            && w.as_object().is_some_and(|w| {
                w.iter().all(|(k, v)| match k.as_str() {
                    "name" | "language" => v.is_string(),
                    "parameters" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                    _ => false,
                })
            })
    };
    t.as_object().is_some_and(|o| {
        o.iter().all(|(k, v)| match k.as_str() {
            "text" => v.is_string(),
            "text_by_locale" => texts(v),
            "whatsapp" => approved(v),
            _ => false,
        })
    })
}

impl InstanceConfig {
    /// The message template `id` of the instance.
    pub fn template(&self, id: &str) -> Option<MessageTemplate<'_>> {
        self.templates.get(id).map(MessageTemplate)
    }

    /// The delivery chain: `channel`, then `fallback`, without repeats.
    pub fn chain(&self) -> Vec<ChannelKind> {
        let mut chain = vec![self.channel];
        for c in &self.fallback {
            if !chain.contains(c) {
                chain.push(*c);
            }
        }
        chain
    }

    /// True when the instance's channel (which answers inbound messages) speaks WhatsApp:
    /// `whatsapp`, `twilio_whatsapp`, or `outbox`, the development stand-in for WhatsApp.
    pub fn sends_whatsapp(&self) -> bool {
        matches!(
            self.channel,
            ChannelKind::Whatsapp | ChannelKind::TwilioWhatsapp | ChannelKind::Outbox
        )
    }

    /// [`Self::retention_days`] in seconds.
    pub fn retention_secs(&self) -> i64 {
        i64::from(self.retention_days) * 86_400
    }

    /// True when any channel of the chain reaches real phones.
    pub fn has_real_channel(&self) -> bool {
        self.chain().iter().any(|c| c.is_real())
    }
}

/// Per-instance credentials, from the `INSTANCE_SECRETS` secret (a JSON object keyed by
/// instance id). Every field is optional here; a feature that needs one refuses clearly when
/// it is missing.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceSecrets {
    /// WhatsApp Cloud API access token (Bearer) for sending.
    pub whatsapp_access_token: Option<String>,
    /// Meta app secret: checks `X-Hub-Signature-256` on inbound webhooks.
    pub whatsapp_app_secret: Option<String>,
    /// The token Meta's webhook handshake must present (`hub.verify_token`).
    pub whatsapp_verify_token: Option<String>,
    /// Twilio auth token: checks `X-Twilio-Signature` on inbound webhooks.
    pub twilio_auth_token: Option<String>,
    /// `whsec_...`: signs messages to the site's own sender (`webhook` channel).
    pub sender_secret: Option<String>,
    /// `whsec_...`: signs callbacks to the site (Standard Webhooks).
    pub webhook_secret: Option<String>,
    /// HS256 keys that sign verification tokens, by `kid` (several allow rotation); read only
    /// for an instance with `token_alg = "HS256"`.
    pub token_keys: std::collections::BTreeMap<String, String>,
    /// Cloudflare Turnstile secret key, for the widget's `start`.
    pub turnstile_secret: Option<String>,
}

impl fmt::Debug for InstanceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InstanceSecrets(***)")
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// All instances of one deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Instances, unique by id.
    pub instances: Vec<InstanceConfig>,
}

impl ServiceConfig {
    /// Parses and checks the `INSTANCES` JSON array.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let instances: Vec<InstanceConfig> = serde_json::from_str(json)
            .map_err(|e| ConfigError(format!("INSTANCES is not valid: {e}")))?;
        Self::new(instances)
    }

    /// Checks instances: UUID ids, no duplicates, sane limits.
    pub fn new(instances: Vec<InstanceConfig>) -> Result<Self, ConfigError> {
        for (i, inst) in instances.iter().enumerate() {
            if !is_uuid(&inst.id) {
                return Err(ConfigError(format!("instance {i}: id must be a UUID")));
            }
            if instances[..i]
                .iter()
                .any(|o| o.id.eq_ignore_ascii_case(&inst.id))
            {
                return Err(ConfigError(format!("instance {}: duplicate id", inst.id)));
            }
            let l = &inst.limits;
            if l.max_attempts == 0 || l.max_sends == 0 || l.send_window <= 0 {
                return Err(ConfigError(format!(
                    "instance {}: max_attempts, max_sends and send_window must be positive",
                    inst.id
                )));
            }
            // Without a lockout, or with one that never grows, wrong codes are unbounded: the
            // guessing bound of docs/security.md needs all three.
            if l.lockout_every == 0 || l.lockout_base < 1 || l.lockout_max < l.lockout_base {
                return Err(ConfigError(format!(
                    "instance {}: lockout_every and lockout_base must be positive and lockout_max at least lockout_base (docs/security.md: the guessing bound)",
                    inst.id
                )));
            }
            for channel in inst.chain() {
                let missing = match channel {
                    ChannelKind::Whatsapp if inst.whatsapp.is_none() => {
                        Some("a [whatsapp] table with phone_number_id")
                    }
                    ChannelKind::TwilioSms
                        if inst.twilio.as_ref().is_none_or(|t| t.from.is_none()) =>
                    {
                        Some("a [twilio] table with account_sid and from")
                    }
                    ChannelKind::TwilioWhatsapp
                        if inst
                            .twilio
                            .as_ref()
                            .is_none_or(|t| t.whatsapp_from.is_none()) =>
                    {
                        Some("a [twilio] table with account_sid and whatsapp_from")
                    }
                    ChannelKind::Webhook if inst.webhook.is_none() => {
                        Some("a [webhook] table with url")
                    }
                    _ => None,
                };
                if let Some(what) = missing {
                    return Err(ConfigError(format!(
                        "instance {}: the {} channel needs {what}",
                        inst.id,
                        channel.as_str()
                    )));
                }
            }
            if let Some(n) = &inst.business_number {
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ConfigError(format!(
                        "instance {}: business_number must be the number's digits, country code first",
                        inst.id
                    )));
                }
            }
            for entry in &inst.abuse.allowed_countries {
                if !crate::rules::country::is_valid_entry(entry) {
                    return Err(ConfigError(format!(
                        "instance {}: allowed_countries entry {entry:?} is not a country calling code",
                        inst.id
                    )));
                }
            }
            for t in &inst.abuse.test_numbers {
                if crate::Recipient::parse(&t.number).is_err()
                    || !(4..=10).contains(&t.code.len())
                    || !t.code.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(ConfigError(format!(
                        "instance {}: test number {:?} needs a valid number and a 4-10 character code",
                        inst.id, t.number
                    )));
                }
            }
            if let Some(w) = &inst.widget {
                check_widget(&inst.id, w)?;
                let taken = instances[..i].iter().any(|o| {
                    o.widget
                        .as_ref()
                        .is_some_and(|ow| ow.publishable_key == w.publishable_key)
                });
                let country = w.default_country.as_deref();
                if country
                    .is_some_and(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
                {
                    return Err(ConfigError(format!(
                        "instance {}: widget.default_country must be two capital letters (ISO 3166), such as EG",
                        inst.id
                    )));
                }
                if taken {
                    return Err(ConfigError(format!(
                        "instance {}: widget.publishable_key is used by another instance",
                        inst.id
                    )));
                }
            }
            for (id, raw) in &inst.templates {
                let t = MessageTemplate(raw);
                let textless = t.text_for(None).is_none();
                let problem = if id == "text" || !crate::wire::whatotp::is_identifier(id) {
                    Some("its id must be 1 to 64 letters, digits, `_`, `.` or `-`, not `text`")
                } else if !is_template(raw) {
                    Some("may have only `text`, `text_by_locale` (locale = text) and `whatsapp` ({name, language, parameters})")
                } else if textless && t.whatsapp().is_none() {
                    Some("needs `text`, `text_by_locale` or `whatsapp`")
                } else if textless
                    && !matches!(inst.channel, ChannelKind::Whatsapp | ChannelKind::Outbox)
                {
                    Some("needs a text: only the whatsapp channel sends approved templates")
                } else {
                    None
                };
                if let Some(why) = problem {
                    return Err(ConfigError(format!(
                        "instance {}: template {id:?} {why}",
                        inst.id
                    )));
                }
            }
            if inst.link.button_text.chars().count() > 20 {
                return Err(ConfigError(format!(
                    "instance {}: link.button_text must be at most 20 characters (WhatsApp's limit)",
                    inst.id
                )));
            }
            // A recipient's failure count and lockout must not be forgotten before they end.
            let memory = inst.limits.failure_memory.max(inst.limits.lockout_max);
            if !(1..=3650).contains(&inst.retention_days) || inst.retention_secs() < memory {
                return Err(ConfigError(format!(
                    "instance {}: retention_days must be between 1 and 3650 days, and cover limits.failure_memory and limits.lockout_max",
                    inst.id
                )));
            }
            if let Some(m) = inst.max_expires {
                if !(60..=1800).contains(&m) {
                    return Err(ConfigError(format!(
                        "instance {}: max_expires must be between 60 and 1800",
                        inst.id
                    )));
                }
            }
        }
        Ok(Self { instances })
    }

    /// The instance whose widget has this publishable key.
    pub fn by_publishable_key(&self, key: &str) -> Option<&InstanceConfig> {
        self.instances
            .iter()
            .find(|i| i.widget.as_ref().is_some_and(|w| w.publishable_key == key))
    }

    /// The instance with this id (case-insensitive, as UUIDs are).
    pub fn instance(&self, id: &str) -> Option<&InstanceConfig> {
        self.instances
            .iter()
            .find(|i| i.id.eq_ignore_ascii_case(id))
    }
}

fn check_widget(id: &str, w: &WidgetConfig) -> Result<(), ConfigError> {
    let fail = |what: String| Err(ConfigError(format!("instance {id}: widget.{what}")));
    if !crate::web::widget::is_publishable_key(&w.publishable_key) {
        return fail(
            "publishable_key must be pk_live_ or pk_test_ and 16-64 letters or digits".into(),
        );
    }
    for origin in &w.allowed_origins {
        let plain = origin.replacen("://*.", "://", 1);
        if crate::web::widget::normalize_origin(&plain).is_none() {
            return fail(format!(
                "allowed_origins entry {origin:?} must be an origin such as https://shop.example"
            ));
        }
    }
    if !(0..=3600).contains(&w.resend_cooldown) {
        return fail("resend_cooldown must be between 0 and 3600".into());
    }
    if !crate::CodeSpec::LENGTHS.contains(&w.code_length) {
        return fail("code_length must be between 4 and 10".into());
    }
    if !(60..=1800).contains(&w.code_ttl) || !(60..=86_400).contains(&w.link_ttl) {
        return fail("code_ttl must be 60-1800 and link_ttl 60-86400 seconds".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const ID: &str = "9f1c2d3e-0000-4000-8000-000000000001";

    #[test]
    fn minimal_instance_gets_the_defaults() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"Demo","channel":"outbox"}}]"#
        ))
        .unwrap();
        let i = c.instance(&ID.to_uppercase()).unwrap();
        assert_eq!(i.limits, Policy::default());
        assert_eq!(i.retention_secs(), 30 * 86_400);
        assert!(i.messages.code_text(None).contains("{code}"));
        assert!(!i.channel.is_real());
    }

    #[test]
    fn limits_can_be_tightened_per_instance() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"D","channel":"outbox","limits":{{"max_attempts":3,"resend_cooldown":30}}}}]"#
        ))
        .unwrap();
        let l = c.instances[0].limits;
        assert_eq!((l.max_attempts, l.resend_cooldown, l.max_sends), (3, 30, 5));
    }

    #[test]
    fn whatsapp_channel_takes_graph_defaults() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"D","channel":"whatsapp","business_number":"20100","whatsapp":{{"phone_number_id":"123"}}}}]"#
        ))
        .unwrap();
        let wa = c.instances[0].whatsapp.as_ref().unwrap();
        assert_eq!(
            (wa.api_base.as_str(), wa.api_version.as_str()),
            ("https://graph.facebook.com", "v21.0")
        );
        assert_eq!(c.instances[0].token_kid, "k1");
        assert_eq!(c.instances[0].link.max_failures, 5);
    }

    #[test]
    fn tokens_are_es256_unless_an_instance_opts_into_hs256() {
        use crate::web::token::Alg;
        let alg = |extra: &str| {
            ServiceConfig::from_json(&format!(
                r#"[{{"id":"{ID}","name":"D","channel":"outbox"{extra}}}]"#
            ))
            .map(|c| c.instances[0].token_alg)
        };
        assert_eq!(alg(""), Ok(Alg::Es256));
        assert_eq!(alg(r#","token_alg":"ES256""#), Ok(Alg::Es256));
        assert_eq!(alg(r#","token_alg":"HS256""#), Ok(Alg::Hs256));
        for other in ["none", "hs256", "RS256", "EdDSA"] {
            assert!(
                alg(&format!(r#","token_alg":"{other}""#)).is_err(),
                "{other}"
            );
        }
    }

    #[test]
    fn chain_and_locale_texts() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"D","channel":"whatsapp","fallback":["twilio_sms","whatsapp"],
                "whatsapp":{{"phone_number_id":"1"}},"twilio":{{"account_sid":"AC1","from":"+15550001111"}},
                "messages":{{"code_by_locale":{{"pt":"Seu código {{code}}"}}}}}}]"#
        ))
        .unwrap();
        let i = &c.instances[0];
        assert_eq!(
            i.chain(),
            vec![ChannelKind::Whatsapp, ChannelKind::TwilioSms]
        );
        assert!(i.has_real_channel());
        assert_eq!(i.messages.code_text(Some("pt-BR")), "Seu código {code}");
        assert!(i.messages.code_text(Some("de")).contains("{code}"));
        assert_ne!(
            i.messages.code_text(Some("de")),
            i.messages.code_text(Some("en"))
        );
    }

    #[test]
    fn abuse_limits_parse_and_find_test_numbers() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"D","channel":"outbox","abuse":{{"allowed_countries":["20","+44"],
                "hourly_budget":100,"test_numbers":[{{"number":"+1 555 000 0000","code":"123456"}}]}}}}]"#
        ))
        .unwrap();
        let a = &c.instances[0].abuse;
        assert_eq!(a.test_code("15550000000"), Some("123456"));
        assert_eq!(a.test_code("15550000001"), None);
        assert_eq!(a.hourly_budget, Some(100));
        let bad = format!(
            r#"[{{"id":"{ID}","name":"D","channel":"outbox","abuse":{{"allowed_countries":["999999"]}}}}]"#
        );
        assert!(ServiceConfig::from_json(&bad)
            .unwrap_err()
            .0
            .contains("calling code"));
    }

    #[test]
    fn the_widget_has_daily_budgets_by_default() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"D","channel":"outbox","widget":{{"publishable_key":"pk_live_abcdefghijklmnop"}}}}]"#
        ))
        .unwrap();
        let w = c.instances[0].widget.as_ref().unwrap();
        assert_eq!((w.daily_budget, w.country_daily_budget), (1000, 200));
        let off = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"D","channel":"outbox","widget":{{"publishable_key":"pk_live_abcdefghijklmnop","daily_budget":0,"country_daily_budget":0}}}}]"#
        ))
        .unwrap();
        let w = off.instances[0].widget.as_ref().unwrap();
        assert_eq!((w.daily_budget, w.country_daily_budget), (0, 0));
    }

    #[test]
    fn instance_secrets_never_print() {
        let s: InstanceSecrets = serde_json::from_str(r#"{"webhook_secret":"whsec_abc"}"#).unwrap();
        assert_eq!(format!("{s:?}"), "InstanceSecrets(***)");
    }

    #[test]
    fn templates_need_a_text_unless_whatsapp_sends_them() {
        let with = |channel: &str, templates: &str| {
            ServiceConfig::from_json(&format!(
                r#"[{{"id":"00000000-0000-4000-8000-000000000000","name":"A","channel":"{channel}",
                "twilio":{{"account_sid":"AC1","from":"+15550001111"}},"templates":{templates}}}]"#
            ))
        };
        let wa = r#"{"order":{"whatsapp":{"name":"order_update","parameters":["n"]}}}"#;
        let t = with("outbox", wa).unwrap();
        let order = t.instances[0].template("order").unwrap();
        assert_eq!(order.whatsapp(), Some(("order_update", "en_US", vec!["n"])));
        assert!(order.text_for(Some("en")).is_none());
        assert!(
            with("twilio_sms", wa).is_err(),
            "an SMS instance needs a text"
        );
        let texts = r#"{"hi":{"text":"Hi {n}","text_by_locale":{"pt-BR":"Oi {n}"}}}"#;
        let t = with("twilio_sms", texts).unwrap();
        let hi = t.instances[0].template("hi").unwrap();
        assert_eq!(hi.text_for(Some("pt-BR")), Some("Oi {n}"));
        assert_eq!(hi.text_for(Some("de")), Some("Hi {n}"));
        assert!(
            with("outbox", r#"{"text":{"text":"x"}}"#).is_err(),
            "`text` is built in"
        );
        assert!(with("outbox", r#"{"empty":{}}"#).is_err());
        assert!(with("outbox", r#"{"typo":{"txt":"x"}}"#).is_err());
        assert!(with("outbox", r#"{"n":{"text":5}}"#).is_err());
        assert!(with(
            "outbox",
            r#"{"w":{"whatsapp":{"name":"a","parameters":[1]}}}"#
        )
        .is_err());
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        for (json, says) in [
            (
                r#"[{"id":"x","name":"D","channel":"outbox"}]"#.to_string(),
                "UUID",
            ),
            (
                format!(r#"[{{"id":"{ID}","name":"D","channel":"carrier-pigeon"}}]"#),
                "unknown variant",
            ),
            (
                format!(r#"[{{"id":"{ID}","name":"D","channel":"outbox","limitz":{{}}}}]"#),
                "unknown field",
            ),
            (
                format!(
                    r#"[{{"id":"{ID}","name":"D","channel":"outbox"}},{{"id":"{ID}","name":"E","channel":"outbox"}}]"#
                ),
                "duplicate",
            ),
            (
                format!(
                    r#"[{{"id":"{ID}","name":"D","channel":"outbox","limits":{{"max_attempts":0}}}}]"#
                ),
                "positive",
            ),
            (
                format!(r#"[{{"id":"{ID}","name":"D","channel":"outbox","max_expires":5000}}]"#),
                "max_expires",
            ),
            (
                format!(r#"[{{"id":"{ID}","name":"D","channel":"outbox","retention_days":0}}]"#),
                "retention_days",
            ),
            (
                format!(
                    r#"[{{"id":"{ID}","name":"D","channel":"outbox","limits":{{"lockout_every":0}}}}]"#
                ),
                "lockout_every",
            ),
            (
                format!(
                    r#"[{{"id":"{ID}","name":"D","channel":"outbox","limits":{{"lockout_base":600,"lockout_max":60}}}}]"#
                ),
                "lockout_max",
            ),
        ] {
            let err = ServiceConfig::from_json(&json).unwrap_err();
            assert!(err.0.contains(says), "{json}: {err}");
        }
    }
}
