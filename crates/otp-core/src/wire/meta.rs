//! Inbound webhooks of the WhatsApp Cloud API (Meta): the subscription handshake, the
//! `X-Hub-Signature-256` check and the events this service acts on.
//!
//! Meta delivers at least once, unordered, and retries for days, so everything here is pure:
//! the Worker verifies the signature over the raw body, parses, and deduplicates by event id.
//! Only what the service needs is kept (inbound text messages and delivery statuses); other
//! message types and other webhook fields are skipped, never refused, since refusing makes
//! Meta retry the same batch for days.

use crate::mac::{hex_decode, sha256_mac};
use hmac::Mac;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// The request header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// True when `header` is `sha256=<hex HMAC-SHA256(app_secret, raw_body)>`; compared in
/// constant time; false when the header is missing or malformed.
pub fn verify_signature(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(tag) = hex_decode(hex) else {
        return false;
    };
    if tag.len() != 32 {
        return false;
    }
    let mut mac = sha256_mac(app_secret);
    mac.update(raw_body);
    mac.verify_slice(&tag).is_ok()
}

/// The answer to the `GET` subscription handshake: `Some(challenge)` to echo back when
/// `hub.mode` is `subscribe` and `hub.verify_token` equals `expected_token` (compared in
/// constant time); `None` otherwise, and always when `expected_token` is empty.
pub fn handshake(
    mode: Option<&str>,
    verify_token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Option<String> {
    let token = verify_token?;
    // Comparing digests hides the expected token's length as well as its bytes.
    let same = crate::mac::ct_eq(
        &Sha256::digest(token.as_bytes()),
        &Sha256::digest(expected_token.as_bytes()),
    );
    if mode == Some("subscribe") && !expected_token.is_empty() && same {
        challenge.map(str::to_owned)
    } else {
        None
    }
}

/// One event of a webhook batch that this service acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaEvent {
    /// A text message a WhatsApp user sent to the business number.
    Text {
        /// The message id (`wamid.…`), the key for deduplication.
        id: String,
        /// The sender's WhatsApp id (phone number digits).
        from: String,
        /// The text.
        body: String,
        /// When it was sent, Unix seconds.
        timestamp: i64,
        /// The business number that received it.
        phone_number_id: String,
    },
    /// A change of state of a message the business sent.
    Status {
        /// The message id (`wamid.…`) the send call returned.
        id: String,
        /// `sent`, `delivered`, `read`, `failed`, …
        status: String,
        /// The recipient's WhatsApp id.
        recipient_id: String,
        /// When the state changed, Unix seconds.
        timestamp: i64,
        /// For `failed`: the first error as `<code>: <title>`.
        error: Option<String>,
        /// The business number that sent it.
        phone_number_id: String,
    },
}

/// Why a webhook body was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaError {
    /// The body is not JSON of the webhook's shape.
    InvalidJson,
    /// The body's `object` is not `whatsapp_business_account`.
    NotWhatsApp(String),
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidJson => f.write_str("webhook body is not a whatsapp webhook json object"),
            Self::NotWhatsApp(object) => {
                write!(
                    f,
                    "webhook object is {object:?}, not whatsapp_business_account"
                )
            }
        }
    }
}

impl std::error::Error for MetaError {}

#[derive(Deserialize)]
struct Payload {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct MessagesValue {
    metadata: Metadata,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<Value>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct TextMessage {
    id: String,
    from: String,
    timestamp: Value,
    #[serde(rename = "type")]
    kind: String,
    text: Option<TextBody>,
}

#[derive(Deserialize)]
struct TextBody {
    body: String,
}

#[derive(Deserialize)]
struct StatusUpdate {
    id: String,
    status: String,
    recipient_id: String,
    timestamp: Value,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
}

impl StatusError {
    fn describe(&self) -> String {
        let text = self
            .title
            .as_deref()
            .or(self.message.as_deref())
            .unwrap_or("unknown error");
        match self.code {
            Some(code) => format!("{code}: {text}"),
            None => text.to_owned(),
        }
    }
}

/// Meta sends Unix seconds as a string of digits; a plain JSON integer is accepted too.
fn unix_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The text messages and statuses of a webhook body, in the order they appear. Other message
/// types, other webhook fields, and items lacking a field the service needs are skipped.
pub fn parse_events(raw_body: &[u8]) -> Result<Vec<MetaEvent>, MetaError> {
    let payload: Payload = crate::json::from_bytes(raw_body).ok_or(MetaError::InvalidJson)?;
    if payload.object != "whatsapp_business_account" {
        return Err(MetaError::NotWhatsApp(payload.object));
    }
    let mut events = Vec::new();
    for change in payload.entry.into_iter().flat_map(|e| e.changes) {
        if change.field.as_deref().is_some_and(|f| f != "messages") {
            continue;
        }
        let Ok(value) = serde_json::from_value::<MessagesValue>(change.value) else {
            continue;
        };
        let phone_number_id = value.metadata.phone_number_id;
        for message in value.messages {
            let Ok(m) = serde_json::from_value::<TextMessage>(message) else {
                continue;
            };
            let (Some(text), Some(timestamp)) = (m.text, unix_seconds(&m.timestamp)) else {
                continue;
            };
            if m.kind == "text" {
                events.push(MetaEvent::Text {
                    id: m.id,
                    from: m.from,
                    body: text.body,
                    timestamp,
                    phone_number_id: phone_number_id.clone(),
                });
            }
        }
        for status in value.statuses {
            let Ok(s) = serde_json::from_value::<StatusUpdate>(status) else {
                continue;
            };
            let Some(timestamp) = unix_seconds(&s.timestamp) else {
                continue;
            };
            events.push(MetaEvent::Status {
                id: s.id,
                status: s.status,
                recipient_id: s.recipient_id,
                timestamp,
                error: s.errors.first().map(StatusError::describe),
                phone_number_id: phone_number_id.clone(),
            });
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The shape of Meta's documented text-message example (messages webhook reference).
    const TEXT: &str = r#"{
      "object": "whatsapp_business_account",
      "entry": [{
        "id": "102290129340398",
        "changes": [{
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{
              "from": "16505551234",
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
              "timestamp": "1749416383",
              "type": "text",
              "text": {"body": "Give me link to login at Hypersender [NFBNWZSF] - DO NOT CHANGE THIS MESSAGE"}
            }]
          },
          "field": "messages"
        }]
      }]
    }"#;

    /// The shape of Meta's documented status examples: one delivered, one failed.
    const STATUSES: &str = r#"{
      "object": "whatsapp_business_account",
      "entry": [{
        "id": "102290129340398",
        "changes": [{
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": [{
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA",
              "status": "delivered",
              "timestamp": "1750263773",
              "recipient_id": "16505551234",
              "conversation": {"id": "6ceb9d929c1c1c7b6a1b7c4a5d8e0ad0", "origin": {"type": "utility"}},
              "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}
            }, {
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
              "status": "failed",
              "timestamp": "1750263774",
              "recipient_id": "16505551234",
              "errors": [{
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
              }]
            }]
          },
          "field": "messages"
        }]
      }]
    }"#;

    #[test]
    fn text_messages_are_parsed() {
        assert_eq!(
            parse_events(TEXT.as_bytes()),
            Ok(vec![MetaEvent::Text {
                id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=".into(),
                from: "16505551234".into(),
                body:
                    "Give me link to login at Hypersender [NFBNWZSF] - DO NOT CHANGE THIS MESSAGE"
                        .into(),
                timestamp: 1749416383,
                phone_number_id: "106540352242922".into(),
            }])
        );
    }

    #[test]
    fn statuses_are_parsed_with_their_first_error() {
        let events = parse_events(STATUSES.as_bytes()).unwrap();
        assert_eq!(
            events,
            vec![
                MetaEvent::Status {
                    id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA".into(),
                    status: "delivered".into(),
                    recipient_id: "16505551234".into(),
                    timestamp: 1750263773,
                    error: None,
                    phone_number_id: "106540352242922".into(),
                },
                MetaEvent::Status {
                    id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA".into(),
                    status: "failed".into(),
                    recipient_id: "16505551234".into(),
                    timestamp: 1750263774,
                    error: Some("131047: Re-engagement message".into()),
                    phone_number_id: "106540352242922".into(),
                },
            ]
        );
    }

    #[test]
    fn other_message_types_and_fields_are_skipped() {
        let body = r#"{
          "object": "whatsapp_business_account",
          "entry": [
            {"id": "1", "changes": [
              {"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "P1"},
                "messages": [
                  {"from": "1", "id": "wamid.img", "timestamp": "1", "type": "image",
                   "image": {"mime_type": "image/jpeg", "sha256": "x", "id": "m1"}},
                  {"from": "1", "id": "wamid.react", "timestamp": "2", "type": "reaction",
                   "reaction": {"message_id": "wamid.x", "emoji": "\ud83d\udc4d"}},
                  {"from": "1", "id": "wamid.bad-ts", "timestamp": "soon", "type": "text", "text": {"body": "x"}},
                  {"id": "wamid.no-from", "timestamp": "3", "type": "text", "text": {"body": "x"}},
                  {"from": "2", "id": "wamid.ok", "timestamp": 4, "type": "text", "text": {"body": "hi"}}
                ]
              }},
              {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}},
              {"field": "messages", "value": {"messages": []}}
            ]},
            {"id": "2", "changes": [
              {"field": "messages", "value": {
                "metadata": {"phone_number_id": "P2"},
                "statuses": [{"id": "wamid.s", "status": "read", "timestamp": "5", "recipient_id": "3"}]
              }}
            ]}
          ]
        }"#;
        assert_eq!(
            parse_events(body.as_bytes()),
            Ok(vec![
                MetaEvent::Text {
                    id: "wamid.ok".into(),
                    from: "2".into(),
                    body: "hi".into(),
                    timestamp: 4,
                    phone_number_id: "P1".into(),
                },
                MetaEvent::Status {
                    id: "wamid.s".into(),
                    status: "read".into(),
                    recipient_id: "3".into(),
                    timestamp: 5,
                    error: None,
                    phone_number_id: "P2".into(),
                },
            ])
        );
    }

    #[test]
    fn bodies_that_are_not_whatsapp_webhooks_are_refused() {
        assert_eq!(parse_events(b""), Err(MetaError::InvalidJson));
        assert_eq!(parse_events(b"[]"), Err(MetaError::InvalidJson));
        assert_eq!(
            parse_events(b"{\"entry\": []}"),
            Err(MetaError::InvalidJson)
        );
        assert_eq!(
            parse_events(b"{\"object\": \"whatsapp_business_account\", \"entry\": {}}"),
            Err(MetaError::InvalidJson)
        );
        assert_eq!(
            parse_events(b"{\"object\": \"page\", \"entry\": []}"),
            Err(MetaError::NotWhatsApp("page".into()))
        );
        assert_eq!(
            parse_events(b"{\"object\": \"whatsapp_business_account\"}"),
            Ok(vec![])
        );
    }

    /// Expected signatures computed with Python: `"sha256=" + hmac.new(b"app-secret",
    /// body, hashlib.sha256).hexdigest()` over the `TEXT` constant's bytes.
    #[test]
    fn signature_known_answer() {
        assert_eq!(hex_sig(), TEXT_SIG);
        assert!(verify_signature(
            b"app-secret",
            TEXT.as_bytes(),
            Some(TEXT_SIG)
        ));
        assert!(verify_signature(
            b"app-secret",
            TEXT.as_bytes(),
            Some(&TEXT_SIG.to_uppercase().replace("SHA256=", "sha256="))
        ));
    }
    const TEXT_SIG: &str =
        "sha256=8a19d44d4451797499414877856408ddd0df15d2dea1cb67312ac17da48bb05b";

    fn hex_sig() -> String {
        let mut mac = sha256_mac(b"app-secret");
        mac.update(TEXT.as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    }

    #[test]
    fn wrong_missing_or_malformed_signatures_fail() {
        let body = TEXT.as_bytes();
        assert!(!verify_signature(b"other-secret", body, Some(TEXT_SIG)));
        assert!(!verify_signature(b"app-secret", &body[1..], Some(TEXT_SIG)));
        assert!(!verify_signature(b"app-secret", body, None));
        let hex = &TEXT_SIG["sha256=".len()..];
        for header in [
            "",
            "sha256=",
            hex,
            &format!("sha1={hex}"),
            &format!("sha256={}", &hex[..63]),
            &format!("sha256={}", &hex[..62]),
            &format!("sha256={hex}00"),
            &format!("sha256={}zz", &hex[..62]),
        ] {
            assert!(
                !verify_signature(b"app-secret", body, Some(header)),
                "{header}"
            );
        }
    }

    #[test]
    fn handshake_echoes_the_challenge_only_for_the_right_token() {
        let h = |mode, token, challenge| handshake(mode, token, challenge, "my-verify-token");
        assert_eq!(
            h(
                Some("subscribe"),
                Some("my-verify-token"),
                Some("1158201444")
            ),
            Some("1158201444".into())
        );
        assert_eq!(
            h(Some("subscribe"), Some("my-verify-toke"), Some("1")),
            None
        );
        assert_eq!(
            h(Some("subscribe"), Some("my-verify-token "), Some("1")),
            None
        );
        assert_eq!(
            h(Some("unsubscribe"), Some("my-verify-token"), Some("1")),
            None
        );
        assert_eq!(h(None, Some("my-verify-token"), Some("1")), None);
        assert_eq!(h(Some("subscribe"), None, Some("1")), None);
        assert_eq!(h(Some("subscribe"), Some("my-verify-token"), None), None);
        assert_eq!(handshake(Some("subscribe"), Some(""), Some("1"), ""), None);
    }
}

// Sending through the Cloud API (`POST /<version>/<phone_number_id>/messages`) and reading its
// answers: `messages[0].id` on success, `error.code` and `error.message` on failure.

use crate::wire::twilio::Delivery;

/// An authentication-template send: the code as the body's one parameter and as the
/// copy-code button's (`sub_type: "url"`, `index: "0"`), as Meta documents.
pub fn template_message(to_digits: &str, template: &str, language: &str, code: &str) -> Value {
    serde_json::json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to_digits,
        "type": "template",
        "template": {
            "name": template,
            "language": {"code": language},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": code}]},
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": code}],
                },
            ],
        },
    })
}

/// An interactive message with a URL button (`cta_url`): `body` (at most 1024 characters), and
/// a button labelled `label` (at most 20) that opens `url`.
pub fn cta_url_message(to_digits: &str, body: &str, label: &str, url: &str) -> Value {
    serde_json::json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to_digits,
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "body": {"text": body},
            "action": {"name": "cta_url", "parameters": {"display_text": label, "url": url}},
        },
    })
}

/// An approved template whose body parameters are `params`, in order.
pub fn approved_template_message(
    to_digits: &str,
    template: &str,
    language: &str,
    params: &[String],
) -> Value {
    let params: Vec<Value> = params
        .iter()
        .map(|p| serde_json::json!({"type": "text", "text": p}))
        .collect();
    let mut t = serde_json::json!({"name": template, "language": {"code": language}});
    if !params.is_empty() {
        t["components"] = serde_json::json!([{"type": "body", "parameters": params}]);
    }
    serde_json::json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to_digits,
        "type": "template",
        "template": t,
    })
}

/// A plain text send (only inside the 24-hour window a user opened), without link previews.
pub fn text_message(to_digits: &str, body: &str) -> Value {
    serde_json::json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to_digits,
        "type": "text",
        "text": {"preview_url": false, "body": body},
    })
}

/// The delivery state of a status webhook's `status` with its error (as
/// [`MetaEvent::Status`] describes it); `None` for other statuses (`deleted`, `warning`).
pub fn delivery_status(status: &str, error: Option<&str>) -> Option<Delivery> {
    Some(match status.trim() {
        "accepted" | "held_for_quality_assessment" => Delivery::Queued,
        "sent" => Delivery::Sent,
        "delivered" => Delivery::Delivered,
        "read" => Delivery::Read,
        "failed" => {
            let reason = error.map(str::trim).filter(|e| !e.is_empty());
            Delivery::Failed(format!("meta {}", reason.unwrap_or("failed")))
        }
        _ => return None,
    })
}

/// Cloud API errors that the same request will meet again: unreachable recipients, template
/// and parameter problems, and credentials or permissions.
const PERMANENT_ERRORS: &[i64] = &[
    10,     // permission denied
    100,    // invalid parameter
    190,    // access token expired or invalid
    131008, // required parameter missing
    131009, // parameter value invalid
    131021, // recipient is the sender
    131026, // message undeliverable (not on WhatsApp, old app, terms not accepted)
    131030, // recipient not in the test number's allowed list
    131031, // business account locked
    131042, // payment problem
    131047, // re-engagement: more than 24 hours since the user last wrote
    131051, // unsupported message type
    132000, // template parameter count mismatch
    132001, // template does not exist in this language
    132005, // translated text too long
    132007, // template format policy violated
    132012, // template parameter format mismatch
    132015, // template paused
    132016, // template disabled
    133010, // phone number not registered
];

/// Cloud API errors worth retrying later: throttling and transient service trouble.
const TEMPORARY_ERRORS: &[i64] = &[
    1,      // unknown API error
    2,      // API service unavailable
    4,      // application rate limit
    80007,  // business account rate limit
    130429, // throughput rate limit
    131000, // something went wrong
    131016, // service unavailable
    131048, // spam rate limit
    131056, // pair rate limit (same sender and recipient)
    133004, // server temporarily unavailable
];

/// True when a failed send should not be retried on this channel (fall back instead):
/// known permanent codes and other 4xx; false for known temporary codes, 408, 429 and 5xx.
pub fn error_is_permanent(http_status: u16, code: i64) -> bool {
    crate::wire::provider::error_is_permanent(
        http_status,
        Some(code),
        PERMANENT_ERRORS,
        TEMPORARY_ERRORS,
    )
}

/// The `(code, message)` of a Graph API error body (`{"error": {"code": 131030, …}}`).
pub fn send_error(raw_body: &[u8]) -> Option<(i64, String)> {
    let body: Value = crate::json::from_bytes(raw_body)?;
    crate::wire::provider::code_and_message(body.get("error")?)
}

/// The message id (`wamid.…`) of a successful send, the key of its status webhooks.
pub fn message_id(raw_body: &[u8]) -> Option<String> {
    let body: Value = crate::json::from_bytes(raw_body)?;
    body.get("messages")?
        .get(0)?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod send_tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn authentication_template_carries_the_code_twice() {
        assert_eq!(
            template_message("20123456789", "verify_code", "en_US", "123456"),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "20123456789",
                "type": "template",
                "template": {
                    "name": "verify_code",
                    "language": {"code": "en_US"},
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
                        {"type": "button", "sub_type": "url", "index": "0",
                         "parameters": [{"type": "text", "text": "123456"}]}
                    ]
                }
            })
        );
    }

    #[test]
    fn text_message_has_no_preview() {
        assert_eq!(
            text_message("20123456789", "Your code: 1234"),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "20123456789",
                "type": "text",
                "text": {"preview_url": false, "body": "Your code: 1234"}
            })
        );
    }

    #[test]
    fn statuses_map_to_delivery_states() {
        let cases = [
            ("sent", None, Some(Delivery::Sent)),
            ("delivered", None, Some(Delivery::Delivered)),
            ("read", None, Some(Delivery::Read)),
            ("accepted", None, Some(Delivery::Queued)),
            (
                "failed",
                Some("131026: Message undeliverable"),
                Some(Delivery::Failed(
                    "meta 131026: Message undeliverable".into(),
                )),
            ),
            ("failed", None, Some(Delivery::Failed("meta failed".into()))),
            ("deleted", None, None),
            ("warning", None, None),
        ];
        for (status, error, expected) in cases {
            assert_eq!(delivery_status(status, error), expected, "{status}");
        }
    }

    #[test]
    fn permanent_errors_are_told_from_temporary_ones() {
        for code in [131026, 131030, 131047, 132000, 132001, 100, 190] {
            assert!(error_is_permanent(400, code), "{code}");
        }
        for code in [130429, 131000, 131016, 131056, 133004, 1, 2, 4, 80007] {
            assert!(!error_is_permanent(400, code), "{code}");
        }
        assert!(!error_is_permanent(429, 0));
        assert!(!error_is_permanent(500, 0));
        assert!(!error_is_permanent(503, 12345));
        assert!(error_is_permanent(400, 12345));
        assert!(error_is_permanent(401, 190));
        assert!(!error_is_permanent(200, 0));
    }

    /// The shapes of Meta's documented send answers.
    #[test]
    fn send_answers_are_read() {
        let error = br#"{"error": {"message": "(#131030) Recipient phone number not in allowed list", "type": "OAuthException", "code": 131030, "error_data": {"messaging_product": "whatsapp", "details": "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again."}, "fbtrace_id": "AI5Ob2yJ5Yyn3z9mQx8XG6g"}}"#;
        assert_eq!(
            send_error(error),
            Some((
                131030,
                "(#131030) Recipient phone number not in allowed list".into()
            ))
        );
        let ok = br#"{"messaging_product": "whatsapp", "contacts": [{"input": "+20123456789", "wa_id": "20123456789"}], "messages": [{"id": "wamid.HBgLMjAxMjM0NTY3ODkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "message_status": "accepted"}]}"#;
        assert_eq!(
            message_id(ok).as_deref(),
            Some("wamid.HBgLMjAxMjM0NTY3ODkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA")
        );
        assert_eq!(send_error(ok), None);
        assert_eq!(message_id(error), None);
        assert_eq!(message_id(b"not json"), None);
    }
}
