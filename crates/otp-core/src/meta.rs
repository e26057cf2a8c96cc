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
use subtle::ConstantTimeEq;

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
    let same = Sha256::digest(token.as_bytes()).ct_eq(&Sha256::digest(expected_token.as_bytes()));
    if mode == Some("subscribe") && !expected_token.is_empty() && bool::from(same) {
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
    let payload: Payload = serde_json::from_slice(raw_body).map_err(|_| MetaError::InvalidJson)?;
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
