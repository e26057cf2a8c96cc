//! Input rules of the WhatOTP API (`/v1/otp/send`, `/v1/otp/verify`, `/v1/messages/send`),
//! its session ids and its API keys, so a client written for WhatOTP works unchanged.
//!
//! WhatOTP documents fields, not errors, so the errors are this service's design: the first
//! problem found, as `invalid_request` with the field and a lowercase reason. Types are strict
//! (JSON integers, not numeric strings; `to` in E.164 with its `+`), since WhatOTP clients send
//! typed JSON; an optional field that is `null` takes its default and unknown fields are
//! ignored. Assumed where WhatOTP is silent: `channel` also accepts `sms`; `phone_number` may
//! omit the `+`; variable names are 1-64 characters of `[A-Za-z0-9_.-]`. Session ids are
//! `otp_` and the challenge UUID's 32 hex digits (WhatOTP's example `otp_72x991` is shorter
//! and not ours to reproduce).

use crate::ids;
use crate::mac::hex_decode;
use crate::Recipient;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Why a request was refused, in the WhatOTP surface's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Machine-readable code (`invalid_request`).
    pub code: &'static str,
    /// Lowercase reason naming the field (`` `length` must be an integer between 4 and 8 ``).
    pub message: String,
    /// The offending field, when one is to blame.
    pub field: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn invalid(field: &'static str, reason: impl fmt::Display) -> Self {
        Self {
            code: "invalid_request",
            message: format!("`{field}` {reason}"),
            field: Some(field),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// Where a code is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// WhatsApp (the only channel WhatOTP documents).
    Whatsapp,
    /// SMS.
    Sms,
}

impl Channel {
    /// The wire name: `whatsapp` or `sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Sms => "sms",
        }
    }
}

/// A valid `POST /v1/otp/send` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOtp {
    /// The recipient, canonical.
    pub to: Recipient,
    /// The channel asked for.
    pub channel: Channel,
    /// Code length, 4-8 digits.
    pub length: u8,
}

/// A valid `POST /v1/otp/verify` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOtp {
    /// The session id as sent (`otp_<32 hex>`); [`parse_session_id`] accepts it.
    pub session_id: String,
    /// What the user typed.
    pub code: String,
}

/// A valid `POST /v1/messages/send` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    /// The recipient, canonical.
    pub to: Recipient,
    /// The template's id.
    pub template_id: String,
    /// Template variables, numbers and booleans turned into their JSON text.
    pub variables: BTreeMap<String, String>,
    /// Lifetime in seconds, 30-86400: a message not handed to a provider by then is dropped.
    pub expires_in_seconds: i64,
    /// Extension: the locale of the template's text (`pt-BR`).
    pub locale: Option<String>,
}

/// Code lengths `/v1/otp/send` accepts.
pub const LENGTHS: std::ops::RangeInclusive<i64> = 4..=8;
/// Default code length.
pub const DEFAULT_LENGTH: u8 = 6;
/// Lifetimes `/v1/messages/send` accepts, in seconds.
pub const EXPIRES_IN: std::ops::RangeInclusive<i64> = 30..=86_400;
/// Default message lifetime in seconds.
pub const DEFAULT_EXPIRES_IN: i64 = 300;
/// Most template variables in one message.
pub const VARIABLES_MAX: usize = 20;
/// Longest variable value, in characters.
pub const VARIABLE_VALUE_MAX: usize = 256;
/// Longest template id or variable name, in characters.
pub const ID_MAX: usize = 64;
/// Longest `code` accepted, in characters (a code with separators typed in).
pub const CODE_INPUT_MAX: usize = 64;
/// Longest `session_id` accepted, in characters.
const SESSION_ID_MAX: usize = 128;

/// The field's value; `None` when absent or `null`.
pub(crate) fn get<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

pub(crate) fn required_str<'a>(
    body: &'a Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<&'a str, ApiError> {
    match get(body, field) {
        None => Err(ApiError::invalid(field, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::invalid(field, "must not be empty"))
        }
        Some(Value::String(s)) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            format_args!("must be at most {max} characters"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

fn integer_in(
    body: &Map<String, Value>,
    field: &'static str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ApiError> {
    match get(body, field) {
        None => Ok(default),
        Some(v) => v.as_i64().filter(|n| range.contains(n)).ok_or_else(|| {
            ApiError::invalid(
                field,
                format_args!(
                    "must be an integer between {} and {}",
                    range.start(),
                    range.end()
                ),
            )
        }),
    }
}

/// A recipient in strict E.164: `+`, then 8-15 digits, the first not zero.
fn e164(body: &Map<String, Value>, field: &'static str) -> Result<Recipient, ApiError> {
    let raw = required_str(body, field, 32)?;
    let strict = raw
        .strip_prefix('+')
        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    strict
        .then(|| Recipient::parse(raw).ok())
        .flatten()
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "must be a phone number in e.164 format, such as +14155550100",
            )
        })
}

/// A recipient as a phone number, `+` optional, spaces and dashes tolerated; no chat ids.
pub(crate) fn phone_number(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Recipient, ApiError> {
    let raw = required_str(body, field, 32)?;
    Some(raw)
        .filter(|r| !r.contains('@'))
        .and_then(|r| Recipient::parse(r).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "must be a phone number in international format, such as +14155550100",
            )
        })
}

/// True for 1-[`ID_MAX`] characters of `[A-Za-z0-9_.-]`.
pub fn is_identifier(s: &str) -> bool {
    (1..=ID_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Validates a `POST /v1/otp/send` body.
pub fn parse_send(body: &Map<String, Value>) -> Result<SendOtp, ApiError> {
    let to = e164(body, "to")?;
    let channel = match required_str(body, "channel", 16)? {
        "whatsapp" => Channel::Whatsapp,
        "sms" => Channel::Sms,
        _ => return Err(ApiError::invalid("channel", "must be `whatsapp` or `sms`")),
    };
    let length = integer_in(body, "length", LENGTHS, DEFAULT_LENGTH.into())?;
    Ok(SendOtp {
        to,
        channel,
        // In 4..=8 by the check above.
        length: length as u8,
    })
}

/// Validates a `POST /v1/otp/verify` body; the session id must be of [`session_id`]'s form.
pub fn parse_verify(body: &Map<String, Value>) -> Result<VerifyOtp, ApiError> {
    let session_id = required_str(body, "session_id", SESSION_ID_MAX)?;
    if parse_session_id(session_id).is_none() {
        return Err(ApiError::invalid(
            "session_id",
            "must be a session id returned by /v1/otp/send",
        ));
    }
    let code = required_str(body, "code", CODE_INPUT_MAX)?;
    Ok(VerifyOtp {
        session_id: session_id.to_owned(),
        code: code.to_owned(),
    })
}

/// Validates a `POST /v1/messages/send` body.
pub fn parse_message(body: &Map<String, Value>) -> Result<SendMessage, ApiError> {
    let to = phone_number(body, "phone_number")?;
    let template_id = required_str(body, "template_id", ID_MAX)?;
    if !is_identifier(template_id) {
        return Err(ApiError::invalid(
            "template_id",
            "must be 1 to 64 letters, digits, `_`, `.` or `-`",
        ));
    }
    let variables = match get(body, "variables") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => variables(map)?,
        Some(_) => return Err(ApiError::invalid("variables", "must be an object")),
    };
    let expires_in_seconds =
        integer_in(body, "expires_in_seconds", EXPIRES_IN, DEFAULT_EXPIRES_IN)?;
    let locale = match get(body, "locale") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(crate::rules::messages::parse_locale)
                .ok_or_else(|| {
                    ApiError::invalid("locale", "must be a language tag such as en or pt-BR")
                })?,
        ),
    };
    Ok(SendMessage {
        to,
        template_id: template_id.to_owned(),
        variables,
        expires_in_seconds,
        locale,
    })
}

fn variables(map: &Map<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    if map.len() > VARIABLES_MAX {
        return Err(ApiError::invalid(
            "variables",
            format_args!("must have at most {VARIABLES_MAX} entries"),
        ));
    }
    map.iter()
        .map(|(name, value)| {
            if !is_identifier(name) {
                return Err(ApiError::invalid(
                    "variables",
                    format_args!(
                        "names must be 1 to 64 letters, digits, `_`, `.` or `-` (`{}` is not)",
                        name.chars().take(ID_MAX).collect::<String>()
                    ),
                ));
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ApiError::invalid(
                        "variables",
                        format_args!("values must be strings, numbers or booleans (`{name}` is not)"),
                    ))
                }
            };
            if text.chars().count() > VARIABLE_VALUE_MAX {
                return Err(ApiError::invalid(
                    "variables",
                    format_args!(
                        "values must be at most {VARIABLE_VALUE_MAX} characters (`{name}` is longer)"
                    ),
                ));
            }
            Ok((name.clone(), text))
        })
        .collect()
}

/// The session id of a challenge: `otp_` and its UUID's 32 hex digits, lowercase.
pub fn session_id(challenge_uuid: &str) -> String {
    let hex: String = challenge_uuid
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("otp_{hex}")
}

/// The challenge UUID (hyphenated, lowercase) of a session id; `None` unless it is `otp_`
/// and 32 hex digits.
pub fn parse_session_id(s: &str) -> Option<String> {
    let hex = s.strip_prefix("otp_").filter(|h| h.len() == 32)?;
    let bytes: [u8; 16] = hex_decode(hex)?.try_into().ok()?;
    Some(ids::hyphenated(&bytes)).filter(|u| ids::is_uuid(u))
}

/// Whether an API key may reach real providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyMode {
    /// `sk_live_…`: real delivery.
    Live,
    /// `sk_test_…`: the outbox and test numbers only; never a provider.
    Test,
}

/// Shortest random part of an API key.
const KEY_SECRET_MIN: usize = 16;

/// The mode of a well-formed key (`sk_live_` or `sk_test_`, then at least 16 ASCII letters
/// and digits); `None` for anything else. Says nothing about whether the key exists.
pub fn key_mode(key: &str) -> Option<KeyMode> {
    let (mode, secret) = if let Some(rest) = key.strip_prefix("sk_live_") {
        (KeyMode::Live, rest)
    } else {
        (KeyMode::Test, key.strip_prefix("sk_test_")?)
    };
    (secret.len() >= KEY_SECRET_MIN && secret.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test bodies are objects"),
        }
    }

    fn refusal(field: &'static str, message: &str) -> ApiError {
        ApiError {
            code: "invalid_request",
            message: message.to_owned(),
            field: Some(field),
        }
    }

    #[test]
    fn send_takes_defaults_and_both_channels() {
        let parsed = parse_send(&body(json!({"to": "+14155550100", "channel": "whatsapp"})));
        assert_eq!(
            parsed,
            Ok(SendOtp {
                to: Recipient::parse("14155550100").unwrap(),
                channel: Channel::Whatsapp,
                length: 6,
            })
        );
        let parsed = parse_send(&body(
            json!({"to": "+20123456789", "channel": "sms", "length": 8, "extra": 1}),
        ))
        .unwrap();
        assert_eq!((parsed.channel, parsed.length), (Channel::Sms, 8));
        assert_eq!(parsed.to.digits(), "20123456789");
        let parsed = parse_send(&body(
            json!({"to": "+20123456789", "channel": "sms", "length": null}),
        ))
        .unwrap();
        assert_eq!(parsed.length, 6);
    }

    #[test]
    fn send_refuses_bad_fields_with_the_field_and_reason() {
        let e164 = "`to` must be a phone number in e.164 format, such as +14155550100";
        let cases = [
            (json!({"channel": "sms"}), "to", "`to` is required"),
            (
                json!({"to": null, "channel": "sms"}),
                "to",
                "`to` is required",
            ),
            (
                json!({"to": 14155550100u64, "channel": "sms"}),
                "to",
                "`to` must be a string",
            ),
            (
                json!({"to": " ", "channel": "sms"}),
                "to",
                "`to` must not be empty",
            ),
            (json!({"to": "14155550100", "channel": "sms"}), "to", e164),
            (
                json!({"to": "+1 415 555 0100", "channel": "sms"}),
                "to",
                e164,
            ),
            (
                json!({"to": "+14155550100@c.us", "channel": "sms"}),
                "to",
                e164,
            ),
            (json!({"to": "+0123456789", "channel": "sms"}), "to", e164),
            (json!({"to": "+1234567", "channel": "sms"}), "to", e164),
            (
                json!({"to": "+1234567890123456", "channel": "sms"}),
                "to",
                e164,
            ),
            (
                json!({"to": "+14155550100"}),
                "channel",
                "`channel` is required",
            ),
            (
                json!({"to": "+14155550100", "channel": "voice"}),
                "channel",
                "`channel` must be `whatsapp` or `sms`",
            ),
            (
                json!({"to": "+14155550100", "channel": "WhatsApp"}),
                "channel",
                "`channel` must be `whatsapp` or `sms`",
            ),
        ];
        for (input, field, message) in cases {
            assert_eq!(
                parse_send(&body(input.clone())),
                Err(refusal(field, message)),
                "{input}"
            );
        }
        for length in [
            json!(3),
            json!(9),
            json!("6"),
            json!(6.5),
            json!(true),
            json!(-1),
        ] {
            assert_eq!(
                parse_send(&body(
                    json!({"to": "+14155550100", "channel": "sms", "length": length})
                )),
                Err(refusal(
                    "length",
                    "`length` must be an integer between 4 and 8"
                )),
                "{length}"
            );
        }
    }

    #[test]
    fn verify_needs_a_session_id_of_ours_and_a_code() {
        let sid = "otp_a0b5df6ab491419080a538d85a2a4836";
        assert_eq!(
            parse_verify(&body(json!({"session_id": sid, "code": "123456"}))),
            Ok(VerifyOtp {
                session_id: sid.into(),
                code: "123456".into()
            })
        );
        let not_ours = "`session_id` must be a session id returned by /v1/otp/send";
        let cases = [
            (
                json!({"code": "1"}),
                "session_id",
                "`session_id` is required",
            ),
            (
                json!({"session_id": 5, "code": "1"}),
                "session_id",
                "`session_id` must be a string",
            ),
            (
                json!({"session_id": "otp_72x991", "code": "1"}),
                "session_id",
                not_ours,
            ),
            (json!({"session_id": sid}), "code", "`code` is required"),
            (
                json!({"session_id": sid, "code": ""}),
                "code",
                "`code` must not be empty",
            ),
            (
                json!({"session_id": sid, "code": 123456}),
                "code",
                "`code` must be a string",
            ),
            (
                json!({"session_id": sid, "code": "1".repeat(65)}),
                "code",
                "`code` must be at most 64 characters",
            ),
        ];
        for (input, field, message) in cases {
            assert_eq!(
                parse_verify(&body(input.clone())),
                Err(refusal(field, message)),
                "{input}"
            );
        }
    }

    #[test]
    fn message_takes_defaults_and_stringifies_variables() {
        let parsed = parse_message(&body(json!({
            "phone_number": "20123456789",
            "template_id": "order.shipped_v2",
            "variables": {"name": "Ada", "count": 3, "total": 9.5, "vip": true},
        })))
        .unwrap();
        assert_eq!(parsed.to.digits(), "20123456789");
        assert_eq!(parsed.template_id, "order.shipped_v2");
        assert_eq!(parsed.expires_in_seconds, 300);
        let vars: Vec<(&str, &str)> = parsed
            .variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("count", "3"),
                ("name", "Ada"),
                ("total", "9.5"),
                ("vip", "true")
            ]
        );
        let parsed = parse_message(&body(json!({
            "phone_number": "+20 123 456 789",
            "template_id": "t",
            "variables": null,
            "expires_in_seconds": 86400,
        })))
        .unwrap();
        assert!(parsed.variables.is_empty());
        assert_eq!(parsed.expires_in_seconds, 86_400);
    }

    #[test]
    fn message_refuses_bad_fields() {
        let ok = json!({"phone_number": "+20123456789", "template_id": "t"});
        let with = |key: &str, value: Value| {
            let mut b = body(ok.clone());
            b.insert(key.to_owned(), value);
            b
        };
        let too_many: Map<String, Value> = (0..21).map(|i| (format!("v{i}"), json!(i))).collect();
        let template_rule = "`template_id` must be 1 to 64 letters, digits, `_`, `.` or `-`";
        let cases = [
            (
                with("phone_number", json!("20123456789@c.us")),
                "phone_number",
                "`phone_number` must be a phone number in international format, such as +14155550100",
            ),
            (with("template_id", json!("")), "template_id", "`template_id` must not be empty"),
            (with("template_id", json!("a b")), "template_id", template_rule),
            (with("template_id", json!("tpl/1")), "template_id", template_rule),
            (
                with("template_id", json!("t".repeat(65))),
                "template_id",
                "`template_id` must be at most 64 characters",
            ),
            (with("variables", json!([])), "variables", "`variables` must be an object"),
            (
                with("variables", Value::Object(too_many)),
                "variables",
                "`variables` must have at most 20 entries",
            ),
            (
                with("variables", json!({"a": null})),
                "variables",
                "`variables` values must be strings, numbers or booleans (`a` is not)",
            ),
            (
                with("variables", json!({"a": {"b": 1}})),
                "variables",
                "`variables` values must be strings, numbers or booleans (`a` is not)",
            ),
            (
                with("variables", json!({"a": "x".repeat(257)})),
                "variables",
                "`variables` values must be at most 256 characters (`a` is longer)",
            ),
            (
                with("variables", json!({"a}": "x"})),
                "variables",
                "`variables` names must be 1 to 64 letters, digits, `_`, `.` or `-` (`a}` is not)",
            ),
            (
                with("expires_in_seconds", json!(29)),
                "expires_in_seconds",
                "`expires_in_seconds` must be an integer between 30 and 86400",
            ),
            (
                with("expires_in_seconds", json!("300")),
                "expires_in_seconds",
                "`expires_in_seconds` must be an integer between 30 and 86400",
            ),
        ];
        for (input, field, message) in cases {
            assert_eq!(
                parse_message(&input),
                Err(refusal(field, message)),
                "{input:?}"
            );
        }
        let max: Map<String, Value> = (0..20)
            .map(|i| (format!("v{i}"), json!("é".repeat(256))))
            .collect();
        assert!(parse_message(&with("variables", Value::Object(max))).is_ok());
    }

    #[test]
    fn session_ids_round_trip_to_the_challenge_uuid() {
        let uuid = "a0b5df6a-b491-4190-80a5-38d85a2a4836";
        let sid = session_id(uuid);
        assert_eq!(sid, "otp_a0b5df6ab491419080a538d85a2a4836");
        assert_eq!(parse_session_id(&sid).as_deref(), Some(uuid));
        assert_eq!(session_id(&uuid.to_uppercase()), sid);
        assert_eq!(
            parse_session_id("otp_A0B5DF6AB491419080A538D85A2A4836").as_deref(),
            Some(uuid)
        );
        for bad in [
            "",
            "otp_",
            "otp_72x991",
            "a0b5df6ab491419080a538d85a2a4836",
            "OTP_a0b5df6ab491419080a538d85a2a4836",
            "otp_a0b5df6a-b491-4190-80a5-38d85a2a4836",
            "otp_a0b5df6ab491419080a538d85a2a483",
            "otp_a0b5df6ab491419080a538d85a2a48366",
            "otp_g0b5df6ab491419080a538d85a2a4836",
            "otp_a0b5df6ab491419080a538d85a2a483é",
        ] {
            assert_eq!(parse_session_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn key_modes_need_the_prefix_and_16_alphanumerics() {
        assert_eq!(key_mode("sk_live_0123456789abcdef"), Some(KeyMode::Live));
        assert_eq!(key_mode("sk_test_0123456789ABCDEFxyz"), Some(KeyMode::Test));
        for bad in [
            "",
            "sk_live_",
            "sk_live_0123456789abcde",
            "sk_live_0123456789abcde_",
            "sk_live_0123456789abcdé1",
            "sk_prod_0123456789abcdef",
            "SK_LIVE_0123456789abcdef",
            "pk_test_0123456789abcdef",
            " sk_test_0123456789abcdef",
        ] {
            assert_eq!(key_mode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn channels_have_their_wire_names() {
        assert_eq!(Channel::Whatsapp.as_str(), "whatsapp");
        assert_eq!(serde_json::to_value(Channel::Sms).unwrap(), json!("sms"));
    }
}
