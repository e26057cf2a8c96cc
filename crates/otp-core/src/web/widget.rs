//! The widget API's pure rules (`/widget/v1/`): its input, its publishable keys, the origin
//! allowlist, and the self-routing session ids it hands to browsers.
//!
//! A session id names the instance, what the challenge belongs to (the recipient of a code, the
//! code of a link challenge) and the challenge's uuid under a MAC, in the login link's layout
//! ([`crate::web::login`]) but under a key of its own, so the Worker routes a verify or a poll
//! straight to the owning Durable Object without a KV read and nobody can point a session at
//! someone else's challenge. The poll secret of a link challenge is derived from its uuid with
//! that key: only the page that started the challenge received it, so only that page can
//! collect the verification token.

use crate::mac::hmac_sha256;
use crate::web::login::{login_token, parse_login_token};
use crate::wire::whatotp::{get, phone_number, required_str, ApiError};
use crate::{Recipient, Secret};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// Longest publishable key, session id, poll secret or Turnstile token read, in characters.
const FIELD_MAX: usize = 2048;
/// Bytes of a poll secret (before base64url).
const POLL_SECRET_LEN: usize = 18;

/// What a widget challenge asks of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A code is sent to the phone and typed back.
    Code,
    /// The user sends a prefilled WhatsApp message and confirms the login link it returns.
    Link,
}

impl Mode {
    /// The wire name: `code` or `link`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Link => "link",
        }
    }

    fn tag(self) -> char {
        match self {
            Self::Code => 'c',
            Self::Link => 'l',
        }
    }
}

/// A valid `POST /widget/v1/start` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The publishable key presented.
    pub publishable_key: String,
    /// Code or link.
    pub mode: Mode,
    /// The phone number (code mode only).
    pub phone: Option<Recipient>,
    /// The locale of the message (`es`, `pt-BR`).
    pub locale: Option<String>,
    /// The Turnstile response token, when the page ran Turnstile.
    pub turnstile_token: Option<String>,
}

/// A valid `POST /widget/v1/verify` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// The publishable key presented.
    pub publishable_key: String,
    /// The session id `start` returned.
    pub session: String,
    /// The code as typed (separators are the challenge's business).
    pub code: String,
}

/// A valid `POST /widget/v1/poll` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// The publishable key presented.
    pub publishable_key: String,
    /// The session id `start` returned.
    pub session: String,
    /// The poll secret `start` returned.
    pub poll_secret: String,
}

fn optional_str<'a>(
    body: &'a Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<Option<&'a str>, ApiError> {
    match get(body, field) {
        None => Ok(None),
        Some(_) => required_str(body, field, max).map(Some),
    }
}

/// The publishable key: `pk_live_` or `pk_test_` and 16-64 letters and digits.
pub fn is_publishable_key(key: &str) -> bool {
    let rest = key
        .strip_prefix("pk_live_")
        .or_else(|| key.strip_prefix("pk_test_"));
    rest.is_some_and(|r| {
        (16..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// True for a `pk_test_` key: its codes go to the dev outbox, never to a provider.
pub fn is_test_key(key: &str) -> bool {
    key.starts_with("pk_test_")
}

fn publishable_key(body: &Map<String, Value>) -> Result<String, ApiError> {
    required_str(body, "publishable_key", FIELD_MAX).map(str::to_owned)
}

/// Validates a `POST /widget/v1/start` body.
pub fn parse_start(body: &Map<String, Value>) -> Result<Start, ApiError> {
    let publishable_key = publishable_key(body)?;
    let mode = match optional_str(body, "mode", 16)? {
        None | Some("code") => Mode::Code,
        Some("link") => Mode::Link,
        Some(_) => return Err(ApiError::invalid("mode", "must be `code` or `link`")),
    };
    let phone = match mode {
        Mode::Code => Some(phone_number(body, "phone")?),
        Mode::Link => None,
    };
    let locale = match optional_str(body, "locale", 35)? {
        None => None,
        Some(raw) => Some(crate::rules::messages::parse_locale(raw).ok_or_else(|| {
            ApiError::invalid("locale", "must be a language tag such as `en` or `pt-BR`")
        })?),
    };
    Ok(Start {
        publishable_key,
        mode,
        phone,
        locale,
        turnstile_token: optional_str(body, "turnstile_token", FIELD_MAX)?.map(str::to_owned),
    })
}

/// Validates a `POST /widget/v1/verify` body.
pub fn parse_verify(body: &Map<String, Value>) -> Result<Verify, ApiError> {
    Ok(Verify {
        publishable_key: publishable_key(body)?,
        session: required_str(body, "session", FIELD_MAX)?.to_owned(),
        code: required_str(body, "code", crate::wire::whatotp::CODE_INPUT_MAX)?.to_owned(),
    })
}

/// Validates a `POST /widget/v1/poll` body.
pub fn parse_poll(body: &Map<String, Value>) -> Result<Poll, ApiError> {
    Ok(Poll {
        publishable_key: publishable_key(body)?,
        session: required_str(body, "session", FIELD_MAX)?.to_owned(),
        poll_secret: required_str(body, "poll_secret", FIELD_MAX)?.to_owned(),
    })
}

/// An origin as browsers send it (`https://shop.example`, `http://127.0.0.1:8787`): a scheme,
/// a host and maybe a port, lowercased, nothing after.
pub fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") || rest.is_empty() {
        return None;
    }
    let ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then(|| format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

/// Whether `origin` is on the allowlist: an exact origin, or `https://*.shop.example` for
/// any subdomain (not the bare domain) over that scheme and port.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let Some(origin) = normalize_origin(origin) else {
        return false;
    };
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        match entry.split_once("://*.") {
            Some((scheme, suffix)) => origin
                .strip_prefix(scheme)
                .and_then(|o| o.strip_prefix("://"))
                .and_then(|host| host.strip_suffix(suffix))
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => entry == origin,
        }
    })
}

/// Where a widget session's challenge lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Code or link.
    pub mode: Mode,
    /// The instance id.
    pub instance: String,
    /// The recipient's digits (code mode) or the link challenge's code (link mode).
    pub target: String,
    /// The challenge uuid.
    pub id: String,
}

/// The session id handed to the browser for `session`.
pub fn seal_session(key: &Secret, session: &Session) -> String {
    let target = format!("{}{}", session.mode.tag(), session.target);
    login_token(key, &session.instance, &target, &session.id)
}

/// The session a session id names, if it is authentic.
pub fn open_session(key: &Secret, sealed: &str) -> Option<Session> {
    let r = parse_login_token(key, sealed).ok()?;
    let mut chars = r.link_code.chars();
    let mode = match chars.next()? {
        'c' => Mode::Code,
        'l' => Mode::Link,
        _ => return None,
    };
    Some(Session {
        mode,
        instance: r.instance,
        target: chars.as_str().to_owned(),
        id: r.challenge_id,
    })
}

/// The poll secret of challenge `id`: derived, never stored.
pub fn poll_secret(key: &Secret, id: &str) -> String {
    let tag = hmac_sha256(key.expose(), &[b"edge-otp/widget-poll/v1|", id.as_bytes()]);
    URL_SAFE_NO_PAD.encode(&tag[..POLL_SECRET_LEN])
}

/// Whether `presented` is the poll secret of challenge `id` (constant time).
pub fn poll_secret_matches(key: &Secret, id: &str, presented: &str) -> bool {
    let expected = poll_secret(key, id);
    crate::mac::ct_eq(expected.as_bytes(), presented.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const PK: &str = "pk_test_0123456789abcdefABCD";
    const INSTANCE: &str = "11111111-1111-4111-8111-111111111111";
    const ID: &str = "a0b5df6a-b491-4190-80a5-38d85a2a4836";

    fn key() -> Secret {
        Secret::new(*b"widget-session-key-0123456789abc").unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn publishable_keys_have_a_mode_prefix_and_a_random_part() {
        for (key, ok) in [
            (PK, true),
            ("pk_live_0123456789abcdef", true),
            ("pk_live_0123456789abcde", false),
            ("sk_live_0123456789abcdef", false),
            ("pk_live_0123456789abcdef!", false),
            ("pk_0123456789abcdef0123", false),
        ] {
            assert_eq!(is_publishable_key(key), ok, "{key}");
        }
        assert!(is_test_key(PK));
        assert!(!is_test_key("pk_live_0123456789abcdef"));
    }

    #[test]
    fn start_defaults_to_code_mode_and_needs_a_phone() {
        let s = parse_start(&obj(
            json!({"publishable_key": PK, "phone": "+1 (555) 123-4567"}),
        ))
        .unwrap();
        assert_eq!(s.mode, Mode::Code);
        assert_eq!(s.phone.unwrap().digits(), "15551234567");
        let e = parse_start(&obj(json!({"publishable_key": PK}))).unwrap_err();
        assert_eq!(e.field, Some("phone"));
        let e = parse_start(&obj(json!({"publishable_key": PK, "phone": "12"}))).unwrap_err();
        assert_eq!(e.field, Some("phone"));
    }

    #[test]
    fn link_mode_takes_no_phone() {
        let s = parse_start(&obj(json!({"publishable_key": PK, "mode": "link"}))).unwrap();
        assert_eq!(s.mode, Mode::Link);
        assert_eq!(s.phone, None);
    }

    #[test]
    fn bad_fields_are_named() {
        for (body, field) in [
            (json!({"phone": "+15551234567"}), "publishable_key"),
            (
                json!({"publishable_key": 5, "phone": "+15551234567"}),
                "publishable_key",
            ),
            (
                json!({"publishable_key": PK, "mode": "sms", "phone": "+15551234567"}),
                "mode",
            ),
            (
                json!({"publishable_key": PK, "phone": "+15551234567", "locale": "e n"}),
                "locale",
            ),
            (
                json!({"publishable_key": PK, "phone": "+15551234567", "turnstile_token": 1}),
                "turnstile_token",
            ),
        ] {
            assert_eq!(parse_start(&obj(body)).unwrap_err().field, Some(field));
        }
        assert_eq!(
            parse_verify(&obj(json!({"publishable_key": PK, "session": "s"})))
                .unwrap_err()
                .field,
            Some("code")
        );
        assert_eq!(
            parse_poll(&obj(json!({"publishable_key": PK, "session": "s"})))
                .unwrap_err()
                .field,
            Some("poll_secret")
        );
    }

    #[test]
    fn origins_match_exactly_or_by_subdomain_wildcard() {
        let allowed = vec![
            "https://shop.example".to_owned(),
            "http://127.0.0.1:8787".to_owned(),
            "https://*.brand.example".to_owned(),
        ];
        for (origin, ok) in [
            ("https://shop.example", true),
            ("HTTPS://Shop.Example", true),
            ("http://shop.example", false),
            ("https://shop.example:8443", false),
            ("https://shop.example.evil.com", false),
            ("https://evilshop.example", false),
            ("http://127.0.0.1:8787", true),
            ("http://127.0.0.1:8788", false),
            ("https://a.brand.example", true),
            ("https://a.b.brand.example", true),
            ("https://brand.example", false),
            ("https://xbrand.example", false),
            ("http://a.brand.example", false),
            ("null", false),
            ("https://shop.example/", false),
            ("", false),
        ] {
            assert_eq!(origin_allowed(&allowed, origin), ok, "{origin}");
        }
    }

    #[test]
    fn a_session_round_trips_and_cannot_be_altered() {
        let s = Session {
            mode: Mode::Code,
            instance: INSTANCE.into(),
            target: "15551234567".into(),
            id: ID.into(),
        };
        let sealed = seal_session(&key(), &s);
        assert_eq!(open_session(&key(), &sealed), Some(s.clone()));
        let link = Session {
            mode: Mode::Link,
            target: "ABCDEFGH".into(),
            ..s
        };
        assert_eq!(
            open_session(&key(), &seal_session(&key(), &link)),
            Some(link)
        );
        let other = Secret::new(*b"another-key-0123456789abcdefghij").unwrap();
        assert_eq!(open_session(&other, &sealed), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        bytes[20] ^= 1;
        assert_eq!(open_session(&key(), &URL_SAFE_NO_PAD.encode(bytes)), None);
    }

    #[test]
    fn a_login_token_is_not_a_session() {
        // A login link's code carries no mode tag, so its token never opens as a session even
        // under the same key (and the Worker keys the two apart as well).
        let login = login_token(&key(), INSTANCE, "ABCDEFGH", ID);
        assert_eq!(open_session(&key(), &login), None);
    }

    #[test]
    fn poll_secrets_are_per_challenge() {
        let a = poll_secret(&key(), ID);
        assert_eq!(a.len(), 24);
        assert!(poll_secret_matches(&key(), ID, &a));
        assert!(!poll_secret_matches(
            &key(),
            "b0b5df6a-b491-4190-80a5-38d85a2a4836",
            &a
        ));
        assert!(!poll_secret_matches(&key(), ID, &a[..23]));
        assert!(!poll_secret_matches(&key(), ID, ""));
    }
}
