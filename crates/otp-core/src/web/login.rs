//! Self-routing one-time login link ids: the token in a login link names the instance, the link
//! code and the challenge, under a MAC, so the Worker routes the click straight to the
//! challenge's Durable Object without a KV read, and nobody can forge or alter a link.
//!
//! Layout (then base64url without padding): version `1`, three fields, then the first 16 bytes
//! (128 bits) of HMAC-SHA256(key, "edge-otp/login/v1" | everything before the tag). A field is
//! `0x01` + 16 bytes for a lowercase canonical UUID (the usual ids, kept short), or `0x00` +
//! one length byte + the UTF-8 bytes for anything else of at most [`MAX_FIELD_LEN`] bytes.
//! The token only routes and authenticates the click: the challenge itself still decides whether
//! it is open, unexpired and unused.

use crate::ids::is_uuid;
use crate::mac::{hex_decode, sha256_mac};
use crate::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use std::fmt;

/// Longest instance id, link code or challenge id a token carries, in bytes.
pub const MAX_FIELD_LEN: usize = 64;
/// Bytes of the truncated HMAC-SHA256 tag.
pub const TAG_LEN: usize = 16;
/// Longest token [`parse_login_token`] reads: three fields of [`MAX_FIELD_LEN`] bytes.
pub const MAX_TOKEN_LEN: usize = (MAX_BYTES * 4).div_ceil(3);

const MAX_BYTES: usize = 1 + 3 * (2 + MAX_FIELD_LEN) + TAG_LEN;
const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"edge-otp/login/v1";
const RAW: u8 = 0x00;
const UUID: u8 = 0x01;
/// Marks a field too long to carry; the token is well formed but never parses.
const TOO_LONG: u8 = 0xff;

/// What a login token routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRef {
    /// The instance (tenant) id.
    pub instance: String,
    /// The link challenge's 8-letter code.
    pub link_code: String,
    /// The challenge's uuid.
    pub challenge_id: String,
}

/// Why a login token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginTokenError {
    /// Not base64url, too short to hold a tag, or its fields do not parse.
    Malformed,
    /// Longer than any token this module makes, or it carries a field over [`MAX_FIELD_LEN`].
    Oversized,
    /// The tag does not match: the token was altered or made with another key.
    BadTag,
}

impl fmt::Display for LoginTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "login token is malformed",
            Self::Oversized => "login token is too long",
            Self::BadTag => "login token is not authentic",
        })
    }
}

impl std::error::Error for LoginTokenError {}

fn push_field(out: &mut Vec<u8>, field: &str) {
    let packed = (is_uuid(field) && !field.bytes().any(|b| b.is_ascii_uppercase()))
        .then(|| hex_decode(&field.replace('-', "")))
        .flatten();
    match packed {
        Some(bytes) => {
            out.push(UUID);
            out.extend_from_slice(&bytes);
        }
        None => match u8::try_from(field.len()) {
            Ok(len) if field.len() <= MAX_FIELD_LEN => {
                out.push(RAW);
                out.push(len);
                out.extend_from_slice(field.as_bytes());
            }
            _ => out.push(TOO_LONG),
        },
    }
}

fn tag(key: &Secret, payload: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = sha256_mac(key.expose());
    mac.update(DOMAIN);
    mac.update(payload);
    mac
}

/// The URL-safe token of a login link for this instance, link code and challenge.
pub fn login_token(key: &Secret, instance: &str, link_code: &str, challenge_id: &str) -> String {
    let mut bytes = vec![VERSION];
    for field in [instance, link_code, challenge_id] {
        push_field(&mut bytes, field);
    }
    let full = tag(key, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&full[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads fields from the front of `rest`.
fn take_field(rest: &mut &[u8]) -> Result<String, LoginTokenError> {
    let (&kind, tail) = rest.split_first().ok_or(LoginTokenError::Malformed)?;
    let (value, tail) = match kind {
        UUID => {
            let (raw, tail) = tail
                .split_at_checked(16)
                .ok_or(LoginTokenError::Malformed)?;
            let raw: &[u8; 16] = raw.try_into().map_err(|_| LoginTokenError::Malformed)?;
            (crate::ids::hyphenated(raw), tail)
        }
        RAW => {
            let (&len, tail) = tail.split_first().ok_or(LoginTokenError::Malformed)?;
            if usize::from(len) > MAX_FIELD_LEN {
                return Err(LoginTokenError::Oversized);
            }
            let (raw, tail) = tail
                .split_at_checked(usize::from(len))
                .ok_or(LoginTokenError::Malformed)?;
            let s = std::str::from_utf8(raw).map_err(|_| LoginTokenError::Malformed)?;
            (s.to_owned(), tail)
        }
        TOO_LONG => return Err(LoginTokenError::Oversized),
        _ => return Err(LoginTokenError::Malformed),
    };
    *rest = tail;
    Ok(value)
}

/// Checks a login token's tag (constant time) and returns what it routes to.
pub fn parse_login_token(key: &Secret, token: &str) -> Result<LoginRef, LoginTokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(LoginTokenError::Oversized);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| LoginTokenError::Malformed)?;
    let split = bytes
        .len()
        .checked_sub(TAG_LEN)
        .filter(|&n| n > 0)
        .ok_or(LoginTokenError::Malformed)?;
    let (payload, presented) = bytes.split_at(split);
    tag(key, payload)
        .verify_truncated_left(presented)
        .map_err(|_| LoginTokenError::BadTag)?;
    let (&version, mut rest) = payload.split_first().ok_or(LoginTokenError::Malformed)?;
    if version != VERSION {
        return Err(LoginTokenError::Malformed);
    }
    let instance = take_field(&mut rest)?;
    let link_code = take_field(&mut rest)?;
    let challenge_id = take_field(&mut rest)?;
    if !rest.is_empty() {
        return Err(LoginTokenError::Malformed);
    }
    Ok(LoginRef {
        instance,
        link_code,
        challenge_id,
    })
}

/// Longest text kept about where a login was started (a place, a browser), in characters.
pub const MAX_ORIGIN_LEN: usize = 64;

/// `s` trimmed, without control characters and cut to [`MAX_ORIGIN_LEN`] characters; `None`
/// when nothing is left. What a link challenge stores about its start is bounded by this.
pub fn bounded(s: &str) -> Option<String> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ORIGIN_LEN)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// "Cairo, EG" from the edge's city and country, whichever are known.
pub fn place(city: Option<&str>, country: Option<&str>) -> Option<String> {
    match (city.and_then(bounded), country.and_then(bounded)) {
        (Some(city), Some(country)) => bounded(&format!("{city}, {country}")),
        (one, other) => one.or(other),
    }
}

/// A short browser family and system from a `User-Agent` header ("Chrome on Android"), never
/// the raw string; `None` when it names neither.
pub fn browser(user_agent: &str) -> Option<String> {
    // Order matters: Edge and Opera also say Chrome and Safari, Chrome says Safari, Android
    // says Linux, iOS says "like Mac OS X".
    const FAMILIES: [(&str, &str); 8] = [
        ("Edg", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(k, _)| user_agent.contains(k))
            .map(|(_, v)| *v)
    };
    match (find(&FAMILIES), find(&SYSTEMS)) {
        (Some(family), Some(system)) => Some(format!("{family} on {system}")),
        (Some(family), None) => Some(family.into()),
        (None, Some(system)) => Some(format!("an app on {system}")),
        (None, None) => None,
    }
}

/// How long ago `then` was at `now`, in words ("3 minutes ago").
pub fn ago(then: i64, now: i64) -> String {
    let s = (now - then).max(0);
    let (n, unit) = match s {
        0..60 => return "less than a minute ago".into(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `2025-12-29 17:43 UTC`.
pub fn utc_minute(unix_secs: i64) -> String {
    let iso = crate::time::iso8601(unix_secs);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn browsers_are_named_by_family_and_system() {
        let cases = [
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", Some("Chrome on Android")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", Some("Safari on iOS")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1", Some("Chrome on iOS")),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", Some("Edge on Windows")),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", Some("Firefox on Linux")),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", Some("Safari on macOS")),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0", Some("Opera on Windows")),
            ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", Some("Samsung Internet on Android")),
            ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", Some("Chrome on ChromeOS")),
            ("Dalvik/2.1.0 (Linux; U; Android 14)", Some("an app on Android")),
            ("curl/8.5.0", None),
            ("", None),
        ];
        for (ua, want) in cases {
            assert_eq!(browser(ua).as_deref(), want, "{ua}");
        }
    }

    #[test]
    fn places_are_bounded_and_degrade_to_what_is_known() {
        assert_eq!(
            place(Some("Cairo"), Some("EG")).as_deref(),
            Some("Cairo, EG")
        );
        assert_eq!(place(None, Some("EG")).as_deref(), Some("EG"));
        assert_eq!(place(Some(" "), Some("EG")).as_deref(), Some("EG"));
        assert_eq!(place(None, None), None);
        let long = "x".repeat(500);
        assert_eq!(
            place(Some(&long), Some("EG")).unwrap().chars().count(),
            MAX_ORIGIN_LEN
        );
        assert_eq!(bounded("a\u{0}b\nc").as_deref(), Some("abc"));
    }

    #[test]
    fn times_read_as_words_and_utc() {
        const T: i64 = 1_767_030_216;
        let cases = [
            (0, "less than a minute ago"),
            (59, "less than a minute ago"),
            (60, "1 minute ago"),
            (185, "3 minutes ago"),
            (3600, "1 hour ago"),
            (7300, "2 hours ago"),
            (86_400 * 3, "3 days ago"),
            (-5, "less than a minute ago"),
        ];
        for (gap, want) in cases {
            assert_eq!(ago(T, T + gap), want, "{gap}");
        }
        assert_eq!(utc_minute(T), "2025-12-29 17:43 UTC");
    }

    const INSTANCE: &str = "9f1c2d3e-0000-4000-8000-000000000001";
    const CHALLENGE: &str = "a0b5df6a-b491-4190-80a5-38d85a2a4836";

    fn key() -> Secret {
        Secret::new(*b"login-link-key-0123456789abcdef!").unwrap()
    }

    fn reference() -> LoginRef {
        LoginRef {
            instance: INSTANCE.into(),
            link_code: "NFBNWZSF".into(),
            challenge_id: CHALLENGE.into(),
        }
    }

    fn token() -> String {
        login_token(&key(), INSTANCE, "NFBNWZSF", CHALLENGE)
    }

    /// Produced with Python's stdlib from the layout in the module doc:
    /// `base64.urlsafe_b64encode(p + hmac.new(key, b"edge-otp/login/v1" + p,
    /// hashlib.sha256).digest()[:16]).rstrip(b"=")` with `p = b"\x01" + b"\x01" +
    /// uuid.UUID(INSTANCE).bytes + b"\x00\x08NFBNWZSF" + b"\x01" + uuid.UUID(CHALLENGE).bytes`.
    const KAT: &str =
        "AQGfHC0-AABAAIAAAAAAAAABAAhORkJOV1pTRgGgtd9qtJFBkIClONhaKkg2OPPVDnDiiODinrw2YcewzA";

    #[test]
    fn known_answer() {
        assert_eq!(token(), KAT);
    }

    #[test]
    fn round_trips() {
        assert_eq!(parse_login_token(&key(), &token()), Ok(reference()));
        let other = LoginRef {
            instance: "Acme-Prod".into(),
            link_code: "".into(),
            // Uppercase UUIDs are carried as text, so they come back exactly as given.
            challenge_id: "A0B5DF6A-B491-4190-80A5-38D85A2A4836".into(),
        };
        let t = login_token(
            &key(),
            &other.instance,
            &other.link_code,
            &other.challenge_id,
        );
        assert_eq!(parse_login_token(&key(), &t), Ok(other));
        let longest = "é".repeat(MAX_FIELD_LEN / 2);
        let t = login_token(&key(), &longest, &longest, &longest);
        assert_eq!(t.len(), MAX_TOKEN_LEN);
        assert_eq!(
            parse_login_token(&key(), &t).map(|r| r.challenge_id),
            Ok(longest)
        );
    }

    #[test]
    fn tokens_are_url_safe_and_short() {
        let t = token();
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(t.len(), 82);
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let t = token();
        for i in 0..t.len() {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                parse_login_token(&key(), &tampered).is_err(),
                "position {i}"
            );
        }
        let other_key = Secret::new(*b"another-login-key-0123456789abcd").unwrap();
        assert_eq!(
            parse_login_token(&other_key, &t),
            Err(LoginTokenError::BadTag)
        );
    }

    #[test]
    fn truncated_and_extended_tokens_are_refused() {
        let t = token();
        for n in 0..t.len() {
            assert!(parse_login_token(&key(), &t[..n]).is_err(), "first {n}");
        }
        assert_eq!(
            parse_login_token(&key(), &t[..t.len() - 2]),
            Err(LoginTokenError::BadTag)
        );
        assert!(parse_login_token(&key(), &format!("{t}A")).is_err());
        assert_eq!(
            parse_login_token(&key(), &format!("{t}AAAA")),
            Err(LoginTokenError::BadTag)
        );
        assert_eq!(
            parse_login_token(&key(), ""),
            Err(LoginTokenError::Malformed)
        );
        assert_eq!(
            parse_login_token(&key(), "!!!!"),
            Err(LoginTokenError::Malformed)
        );
        assert_eq!(
            parse_login_token(&key(), &format!("{t}=")),
            Err(LoginTokenError::Malformed)
        );
    }

    #[test]
    fn oversized_tokens_and_fields_are_refused() {
        let t = "A".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            parse_login_token(&key(), &t),
            Err(LoginTokenError::Oversized)
        );
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        let t = login_token(&key(), INSTANCE, "NFBNWZSF", &long);
        assert_eq!(
            parse_login_token(&key(), &t),
            Err(LoginTokenError::Oversized)
        );
        let huge = "x".repeat(100_000);
        let t = login_token(&key(), &huge, &huge, &huge);
        assert!(t.len() < 100);
        assert_eq!(
            parse_login_token(&key(), &t),
            Err(LoginTokenError::Oversized)
        );
    }

    /// Well-tagged payloads that break the layout: the tag is checked first, then the layout.
    #[test]
    fn authentic_but_malformed_layouts_are_refused() {
        let seal = |payload: &[u8]| {
            let mut bytes = payload.to_vec();
            bytes.extend_from_slice(&tag(&key(), payload).finalize().into_bytes()[..TAG_LEN]);
            URL_SAFE_NO_PAD.encode(bytes)
        };
        let cases: &[(&[u8], LoginTokenError)] = &[
            (b"\x02\x00\x00\x00\x00\x00\x00", LoginTokenError::Malformed),
            (b"\x01", LoginTokenError::Malformed),
            (b"\x01\x00\x00\x00\x00", LoginTokenError::Malformed),
            (
                b"\x01\x00\x00\x00\x00\x00\x00\x00",
                LoginTokenError::Malformed,
            ),
            (b"\x01\x00\x02a", LoginTokenError::Malformed),
            (b"\x01\x01\x00\x00", LoginTokenError::Malformed),
            (
                b"\x01\x00\x01\xff\x00\x00\x00\x00",
                LoginTokenError::Malformed,
            ),
            (b"\x01\x07\x00\x00\x00\x00", LoginTokenError::Malformed),
            (b"\x01\x00\x41", LoginTokenError::Oversized),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                parse_login_token(&key(), &seal(payload)),
                Err(*expected),
                "{payload:?}"
            );
        }
        assert_eq!(
            parse_login_token(&key(), &seal(b"\x01\x00\x00\x00\x00\x00\x00")),
            Ok(LoginRef {
                instance: String::new(),
                link_code: String::new(),
                challenge_id: String::new()
            })
        );
    }
}
