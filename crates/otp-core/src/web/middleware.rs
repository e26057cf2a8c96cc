//! The edge middleware's pure rules: its configuration (the `MIDDLEWARE` var), which paths of
//! the site need a verified phone, the signed verification cookie, and where a browser may be
//! sent after verifying.
//!
//! The Worker in front of a site asks for a verified phone before protected paths. Everything
//! it decides without I/O lives here, so each rule has a table test: path patterns are matched
//! against the raw path *and* a canonical form (percent-decoded, dot segments resolved,
//! repeated slashes merged, `;params` dropped, ASCII case folded), because an origin may read
//! `/Members`, `/members;x` or `/%6Dembers` as `/members`; the cookie is an HMAC-SHA256 over
//! the phone, the verification time and the expiry, bound to the instance; `next` is reduced to
//! a same-origin path, never an open redirect.

use crate::config::ConfigError;
use crate::mac::sha256_mac;
use crate::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::Deserialize;

/// The default mount point of the service's own routes on the site.
pub const DEFAULT_PREFIX: &str = "/_otp";
/// The default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "edge_otp";
/// The default cookie lifetime: one day.
pub const DEFAULT_COOKIE_TTL: i64 = 86_400;
/// Longest cookie lifetime accepted: 400 days, the most browsers keep a cookie.
pub const MAX_COOKIE_TTL: i64 = 400 * 86_400;
/// Longest `next` kept, in bytes; a longer one becomes `/`.
pub const MAX_NEXT_LEN: usize = 2048;
/// Longest cookie value read, in bytes; real ones are under 100.
const MAX_COOKIE_LEN: usize = 512;
/// The header the origin reads the verified phone from.
pub const PHONE_HEADER: &str = "x-verified-phone";

/// What the verification page's widget asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageMode {
    /// A code sent to the phone, typed back.
    #[default]
    Code,
    /// A prefilled WhatsApp message and a login link.
    Link,
}

impl PageMode {
    /// The widget's `mode` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Link => "link",
        }
    }
}

/// A path pattern: `/members` (exactly), `/members/*` (anything below), `/docs/*/private`
/// (`*` inside a pattern spans one segment; a final `*` spans the rest of the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern(String);

impl PathPattern {
    /// Parses a pattern: it starts with `/` and holds no `?`, `#`, whitespace or control
    /// characters.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        if !s.starts_with('/') {
            return Err(ConfigError(format!(
                "middleware: pattern `{s}` must start with `/`"
            )));
        }
        if s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(ConfigError(format!(
                "middleware: pattern `{s}` must not hold `?`, `#`, spaces or control characters"
            )));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// The pattern as written (lowercased).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `path` (raw, as the request has it) or its canonical form matches.
    pub fn matches(&self, path: &str) -> bool {
        glob(self.0.as_bytes(), path.to_ascii_lowercase().as_bytes())
            || glob(self.0.as_bytes(), canonical_path(path).as_bytes())
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// `*` matches within one segment, except as the last character, where it matches the rest.
fn glob(pattern: &[u8], path: &[u8]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((b'*', [])) => true,
        Some((b'*', rest)) => {
            let segment_end = path.iter().position(|&b| b == b'/').unwrap_or(path.len());
            (0..=segment_end).any(|i| glob(rest, &path[i..]))
        }
        Some((&c, rest)) => path.first() == Some(&c) && glob(rest, &path[1..]),
    }
}

/// The path as a lenient origin might read it: percent-decoded (once), `\` as `/`, `;params`
/// dropped from each segment, empty and `.` segments removed, `..` resolved, ASCII lowercase.
/// Keeps a trailing slash.
pub fn canonical_path(path: &str) -> String {
    let decoded = percent_decode(path).replace('\\', "/").to_ascii_lowercase();
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').collect();
    let trailing = segments.len() > 1 && segments.last() == Some(&"");
    for seg in segments {
        let seg = seg.split(';').next().unwrap_or_default();
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = format!("/{}", out.join("/"));
    if trailing && !out.is_empty() {
        s.push('/');
    }
    s
}

/// Decodes `%XX` escapes; invalid escapes stay as they are, invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Paths that need a recent verification: a cookie older than `max_age` seconds is asked to
/// verify again. A `fresh` path is protected whether or not `protected` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshRule {
    /// Which paths.
    pub pattern: PathPattern,
    /// Seconds since verification after which the page asks again.
    pub max_age: i64,
}

/// The `MIDDLEWARE` var: the Worker in front of a site.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiddlewareConfig {
    /// The instance whose verification tokens open the site (its id).
    pub instance: String,
    /// Where the service's own routes live on the site (`/_otp`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// A hostname of its own where the service answers at the root; site hosts then keep
    /// only what the verification page needs under `prefix`.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Where site requests go: `None` passes them on to the route's origin (production on
    /// Cloudflare); an `http(s)://host[:port]` origin for local development.
    #[serde(default)]
    pub origin: Option<String>,
    /// Paths that need a verified phone.
    #[serde(default)]
    pub protected: Vec<PathPattern>,
    /// Lifetime of the verification cookie, in seconds.
    #[serde(default = "default_cookie_ttl")]
    pub cookie_ttl: i64,
    /// Name of the verification cookie.
    #[serde(default = "default_cookie_name")]
    pub cookie_name: String,
    /// Paths that need a recent verification.
    #[serde(default)]
    pub fresh: Vec<FreshRule>,
    /// What the page's widget asks for.
    #[serde(default)]
    pub mode: PageMode,
}

fn default_prefix() -> String {
    DEFAULT_PREFIX.into()
}

fn default_cookie_ttl() -> i64 {
    DEFAULT_COOKIE_TTL
}

fn default_cookie_name() -> String {
    DEFAULT_COOKIE_NAME.into()
}

/// What a path of the site needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone may pass.
    Open,
    /// A valid cookie.
    Verified,
    /// A valid cookie from a verification at most this many seconds old.
    FreshWithin(i64),
}

/// What the middleware does with a request to the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// On to the origin, with `X-Verified-Phone: +<digits>` when a valid cookie came along.
    Pass {
        /// The verified phone's digits.
        phone: Option<String>,
    },
    /// The verification page (or its 401 JSON).
    Verify,
}

impl MiddlewareConfig {
    /// Parses and checks the `MIDDLEWARE` JSON object.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_str(json)
            .map_err(|e| ConfigError(format!("MIDDLEWARE is not valid: {e}")))?;
        config.check()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(format!("middleware: {m}")));
        if self.instance.trim().is_empty() {
            return err("`instance` must name an instance id".into());
        }
        let p = &self.prefix;
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        };
        if !p.starts_with('/')
            || p.len() < 2
            || !p[1..]
                .split('/')
                .all(|s| segment_ok(s) && s != "." && s != "..")
        {
            return err(format!(
                "`prefix` `{p}` must be a path like `/_otp`: segments of letters, digits, `-_.~`, no trailing `/`"
            ));
        }
        if let Some(h) = &self.hostname {
            let ok = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            if !ok {
                return err(format!(
                    "`hostname` `{h}` must be a lowercase host name without scheme or port"
                ));
            }
        }
        if let Some(o) = &self.origin {
            let parsed = url::Url::parse(o).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
                    && u.password().is_none()
            });
            if parsed.is_none() {
                return err(format!(
                    "`origin` `{o}` must be an origin like `http://127.0.0.1:8788` (no path), or null"
                ));
            }
        }
        if !(60..=MAX_COOKIE_TTL).contains(&self.cookie_ttl) {
            return err(format!(
                "`cookie_ttl` must be between 60 and {MAX_COOKIE_TTL} seconds"
            ));
        }
        // RFC 6265's cookie-name is an RFC 7230 token.
        let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if self.cookie_name.is_empty() || !self.cookie_name.bytes().all(token_char) {
            return err(format!(
                "`cookie_name` `{}` must be a cookie token (letters, digits, `-_.` ...)",
                self.cookie_name
            ));
        }
        if let Some(f) = self.fresh.iter().find(|f| f.max_age < 0) {
            return err(format!(
                "`fresh` `{}`: `max_age` must not be negative",
                f.pattern.as_str()
            ));
        }
        Ok(())
    }

    /// What `path` needs: the tightest `fresh` rule that matches, else `Verified` when a
    /// `protected` pattern matches, else `Open`.
    pub fn requirement(&self, path: &str) -> Requirement {
        let fresh = self
            .fresh
            .iter()
            .filter(|f| f.pattern.matches(path))
            .map(|f| f.max_age)
            .min();
        match fresh {
            Some(age) => Requirement::FreshWithin(age),
            None if self.protected.iter().any(|p| p.matches(path)) => Requirement::Verified,
            None => Requirement::Open,
        }
    }

    /// Decides a request to the site's `path` given its opened cookie (if any) at `now`.
    pub fn decide(&self, path: &str, cookie: Option<&Verified>, now: i64) -> Decision {
        let phone = || cookie.map(|c| c.phone.clone());
        match (self.requirement(path), cookie) {
            (Requirement::Open, _) => Decision::Pass { phone: phone() },
            (Requirement::Verified, Some(_)) => Decision::Pass { phone: phone() },
            (Requirement::FreshWithin(age), Some(c)) if now - c.verified_at <= age => {
                Decision::Pass { phone: phone() }
            }
            _ => Decision::Verify,
        }
    }

    /// Where the service's routes live for a request to `host` with `path`: `Some(rest)` (the
    /// path below the mount point, starting with `/`) when the request is for the service,
    /// `None` when it belongs to the site.
    pub fn mount<'a>(&self, host: &str, path: &'a str) -> Mount<'a> {
        if self
            .hostname
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(host))
        {
            return Mount::Root;
        }
        match path.strip_prefix(self.prefix.as_str()) {
            Some("") => Mount::Prefix("/"),
            Some(rest) if rest.starts_with('/') => Mount::Prefix(rest),
            _ => Mount::Site,
        }
    }
}

/// Who a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount<'a> {
    /// The service's own hostname: every service route at the root.
    Root,
    /// Under the prefix on the site: the path below it.
    Prefix(&'a str),
    /// The site.
    Site,
}

/// A verification the cookie vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The phone's E.164 digits (no `+`).
    pub phone: String,
    /// When the phone was verified, Unix seconds.
    pub verified_at: i64,
    /// When the cookie stops counting, Unix seconds (refused from this second on).
    pub expires_at: i64,
}

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not `v1.<digits>.<verified_at>.<expires_at>.<mac>`.
    Malformed,
    /// The MAC does not match (tampered, another key, another instance).
    BadMac,
    /// `now` is at or past its expiry.
    Expired,
}

/// Domain separation of the cookie key and of the cookie MAC.
const KEY_LABEL: &[u8] = b"edge-otp/middleware-cookie-key/v1";
const MAC_LABEL: &[u8] = b"edge-otp/middleware-cookie/v1";

/// The key that signs cookies, derived from the `COOKIE_KEY` secret for this one purpose.
pub fn cookie_key(secret: &Secret) -> Secret {
    secret.derive(KEY_LABEL)
}

fn cookie_mac(key: &Secret, instance: &str, body: &str) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = sha256_mac(key.expose());
    mac.update(MAC_LABEL);
    mac.update(&[0]);
    mac.update(instance.to_ascii_lowercase().as_bytes());
    mac.update(&[0]);
    mac.update(body.as_bytes());
    mac
}

/// The cookie value for `v`: `v1.<digits>.<verified_at>.<expires_at>.<base64url MAC>`, the
/// MAC keyed with `key` (from [`cookie_key`]) and bound to `instance`.
pub fn seal_cookie(key: &Secret, instance: &str, v: &Verified) -> String {
    let body = format!("v1.{}.{}.{}", v.phone, v.verified_at, v.expires_at);
    let tag = cookie_mac(key, instance, &body).finalize().into_bytes();
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Opens a cookie value sealed by [`seal_cookie`] with the same key and instance, unexpired at
/// `now`. The MAC is checked in constant time before anything else is trusted.
pub fn open_cookie(
    key: &Secret,
    instance: &str,
    value: &str,
    now: i64,
) -> Result<Verified, CookieError> {
    if value.len() > MAX_COOKIE_LEN {
        return Err(CookieError::Malformed);
    }
    let (body, tag) = value.rsplit_once('.').ok_or(CookieError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| CookieError::Malformed)?;
    cookie_mac(key, instance, body)
        .verify_slice(&tag)
        .map_err(|_| CookieError::BadMac)?;
    let mut parts = body.split('.');
    let (Some("v1"), Some(phone), Some(at), Some(exp), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(CookieError::Malformed);
    };
    let number = |s: &str| s.parse::<i64>().map_err(|_| CookieError::Malformed);
    let (verified_at, expires_at) = (number(at)?, number(exp)?);
    if phone.is_empty() || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CookieError::Malformed);
    }
    if now >= expires_at {
        return Err(CookieError::Expired);
    }
    Ok(Verified {
        phone: phone.into(),
        verified_at,
        expires_at,
    })
}

/// The values of every cookie called `name` in a `Cookie` header, in order.
pub fn cookie_values<'a>(header: &'a str, name: &str) -> Vec<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .collect()
}

/// A `Cookie` header without the cookies called `name` (`None` when nothing is left), so the
/// origin never sees the verification cookie.
pub fn strip_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split('=').next().map(str::trim) != Some(name))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// True for a header name an origin could read as `X-Verified-Phone`: any case, and with `_`
/// for `-` (CGI-style servers map both to `HTTP_X_VERIFIED_PHONE`).
pub fn is_phone_header(name: &str) -> bool {
    name.len() == PHONE_HEADER.len()
        && name
            .bytes()
            .zip(PHONE_HEADER.bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
}

/// The same-origin path to send a browser to after verifying: `next` when it is a path on
/// this origin, else `/`. Browsers read `\` as `/`, drop tabs and newlines, and some servers
/// decode `%2F`: anything that could reach another host (`//evil`, `/\evil`, `https:`,
/// `/%2F%2Fevil`, control characters) becomes `/`.
pub fn safe_next(next: &str) -> String {
    const HOME: &str = "/";
    if next.is_empty() || next.len() > MAX_NEXT_LEN || next.chars().any(char::is_control) {
        return HOME.into();
    }
    let slashed = next.replace('\\', "/");
    let decoded = percent_decode(&slashed).replace('\\', "/");
    let leaves = |s: &str| !s.starts_with('/') || s.starts_with("//");
    if leaves(&slashed) || leaves(&decoded) || decoded.chars().any(char::is_control) {
        return HOME.into();
    }
    let Ok(base) = url::Url::parse("https://origin.invalid/") else {
        return HOME.into();
    };
    match base.join(&slashed) {
        Ok(u) if u.origin() == base.origin() => {
            let mut s = u.path().to_owned();
            if let Some(q) = u.query() {
                s.push('?');
                s.push_str(q);
            }
            // Resolving dot segments can leave a path that starts with `//` (`/.//evil.com`
            // becomes `//evil.com`), which a browser reads as another host: checked again on
            // the result, not only on the input.
            if leaves(&s) || leaves(&percent_decode(&s).replace('\\', "/")) {
                return HOME.into();
            }
            s
        }
        _ => HOME.into(),
    }
}

/// Escapes text for HTML text and double- or single-quoted attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The verification page's inline script: on the widget's bubbling `verified` event it posts
/// the token, with the page's `next`, to `{prefix}/session`. Static, so the page's CSP allows
/// it by hash.
pub const PAGE_SCRIPT: &str = "document.addEventListener('verified',function(e){var f=document.getElementById('edge-otp-session');if(!f||!e.detail||!e.detail.token)return;f.elements.token.value=e.detail.token;f.submit();});";

/// The CSP `'sha256-…'` source of [`PAGE_SCRIPT`].
pub fn page_script_hash() -> String {
    use sha2::Digest;
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(PAGE_SCRIPT))
    )
}

/// What the verification page shows.
pub struct Page<'a> {
    /// The mount prefix (`/_otp`).
    pub prefix: &'a str,
    /// The instance's publishable key.
    pub publishable_key: &'a str,
    /// Code or link.
    pub mode: PageMode,
    /// Where to go once verified (already [`safe_next`]).
    pub next: &'a str,
    /// A line above the widget (e.g. why verification is asked again).
    pub notice: Option<&'a str>,
}

/// The verification page's HTML; every interpolated value is escaped. Its empty inline icon
/// keeps the browser from asking the site for `/favicon.ico`, which may be protected too.
pub fn page_html(p: &Page<'_>) -> String {
    let prefix = html_escape(p.prefix);
    let notice = p
        .notice
        .map(|n| format!("<p role=\"alert\">{}</p>", html_escape(n)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"robots\" content=\"noindex\">\
<link rel=\"icon\" href=\"data:,\"><title>Verify your phone number</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1c2330}}h1{{font-size:1.4rem}}</style>\
<script type=\"module\" src=\"{prefix}/widget/edge-otp.js\"></script></head>\
<body><main><h1>Verify your phone number</h1>\
<p>This part of the site is for verified visitors. Verify your phone number to continue.</p>{notice}\
<edge-otp endpoint=\"{prefix}\" publishable-key=\"{pk}\" mode=\"{mode}\"></edge-otp>\
<form id=\"edge-otp-session\" method=\"post\" action=\"{prefix}/session\" hidden>\
<input type=\"hidden\" name=\"token\" value=\"\"><input type=\"hidden\" name=\"next\" value=\"{next}\"></form>\
<noscript><p>Verification needs JavaScript.</p></noscript>\
<script>{script}</script></main></body></html>",
        pk = html_escape(p.publishable_key),
        mode = p.mode.as_str(),
        next = html_escape(p.next),
        script = PAGE_SCRIPT,
    )
}

/// The page's Content-Security-Policy: its own scripts (the widget, which compiles Wasm) and
/// the inline script by hash; `extra_script_src` adds origins (Turnstile) when configured.
pub fn page_csp(extra_script_src: &str) -> String {
    let extra = if extra_script_src.is_empty() {
        String::new()
    } else {
        format!(" {extra_script_src}")
    };
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {hash}{extra}; \
connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-src{frames}; \
form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        hash = page_script_hash(),
        frames = if extra.is_empty() { " 'none'" } else { &extra },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const INSTANCE: &str = "11111111-1111-4111-8111-111111111111";

    fn config(json: &str) -> MiddlewareConfig {
        MiddlewareConfig::from_json(json).unwrap()
    }

    fn key(byte: u8) -> Secret {
        cookie_key(&Secret::new(vec![byte; 32]).unwrap())
    }

    #[test]
    fn defaults_fill_an_instance_only_config() {
        let c = config(&format!(r#"{{"instance":"{INSTANCE}"}}"#));
        assert_eq!(c.prefix, "/_otp");
        assert_eq!(c.cookie_name, "edge_otp");
        assert_eq!(c.cookie_ttl, 86_400);
        assert_eq!(c.mode, PageMode::Code);
        assert_eq!(c.origin, None);
        assert_eq!(c.hostname, None);
        assert!(c.protected.is_empty() && c.fresh.is_empty());
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        let cases = [
            (
                r#"{"instance":"x","protectd":[]}"#,
                "unknown field `protectd`",
            ),
            (r#"{"prefix":"/_otp"}"#, "missing field `instance`"),
            (r#"{"instance":" "}"#, "`instance`"),
            (r#"{"instance":"x","prefix":"_otp"}"#, "`prefix`"),
            (r#"{"instance":"x","prefix":"/_otp/"}"#, "`prefix`"),
            (r#"{"instance":"x","prefix":"/"}"#, "`prefix`"),
            (r#"{"instance":"x","prefix":"/a/../b"}"#, "`prefix`"),
            (
                r#"{"instance":"x","hostname":"https://otp.example"}"#,
                "`hostname`",
            ),
            (r#"{"instance":"x","origin":"ftp://h"}"#, "`origin`"),
            (r#"{"instance":"x","origin":"http://h/path"}"#, "`origin`"),
            (r#"{"instance":"x","cookie_ttl":0}"#, "`cookie_ttl`"),
            (
                r#"{"instance":"x","cookie_ttl":99999999999}"#,
                "`cookie_ttl`",
            ),
            (r#"{"instance":"x","cookie_name":"a b"}"#, "`cookie_name`"),
            (r#"{"instance":"x","cookie_name":"a;b"}"#, "`cookie_name`"),
            (
                r#"{"instance":"x","protected":["members"]}"#,
                "must start with `/`",
            ),
            (r#"{"instance":"x","protected":["/a?b"]}"#, "must not hold"),
            (
                r#"{"instance":"x","fresh":[{"pattern":"/a","max_age":-1}]}"#,
                "`max_age`",
            ),
            (
                r#"{"instance":"x","fresh":[{"pattern":"/a"}]}"#,
                "missing field `max_age`",
            ),
            (r#"{"instance":"x","mode":"sms"}"#, "unknown variant `sms`"),
        ];
        for (json, expected) in cases {
            let err = MiddlewareConfig::from_json(json).unwrap_err().0;
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn patterns_match_exact_prefix_and_glob() {
        let table = [
            ("/members", "/members", true),
            ("/members", "/members/", false),
            ("/members", "/membersx", false),
            ("/members", "/Members", true),
            ("/members", "/members;jsessionid=1", true),
            ("/members", "//members", true),
            ("/members", "/%6Dembers", true),
            ("/members", "/public/../members", true),
            ("/members", "/public", false),
            ("/members/*", "/members/", true),
            ("/members/*", "/members/a/b/c", true),
            ("/members/*", "/members", false),
            ("/members/*", "/members%2Fx", true),
            ("/members/*", "/members/..%2Fpublic", true),
            ("/members/*", "/public/x", false),
            ("/members*", "/members", true),
            ("/members*", "/members-area/x", true),
            ("/docs/*/private", "/docs/v1/private", true),
            ("/docs/*/private", "/docs/v1/v2/private", false),
            ("/docs/*/private", "/docs//private", true),
            ("/*.pdf", "/report.pdf", true),
            ("/*.pdf", "/a/report.pdf", false),
            ("/*", "/", true),
            ("/*", "/anything/at/all", true),
        ];
        for (pattern, path, expected) in table {
            let p = PathPattern::parse(pattern).unwrap();
            assert_eq!(p.matches(path), expected, "{pattern} vs {path}");
        }
    }

    #[test]
    fn canonical_path_resolves_what_origins_resolve() {
        let table = [
            ("/", "/"),
            ("/a/b/", "/a/b/"),
            ("//a///b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/../../a", "/a"),
            ("/A%2Fb", "/a/b"),
            ("/a;x=1/b;y", "/a/b"),
            ("/a\\b", "/a/b"),
            ("/%zz", "/%zz"),
            ("/%", "/%"),
            ("/%4", "/%4"),
        ];
        for (path, expected) in table {
            assert_eq!(canonical_path(path), expected, "{path}");
        }
    }

    #[test]
    fn requirements_and_decisions_follow_protected_and_fresh() {
        let c = config(&format!(
            r#"{{"instance":"{INSTANCE}","protected":["/members","/members/*"],
                "fresh":[{{"pattern":"/members/billing*","max_age":300}},{{"pattern":"/admin/*","max_age":60}}]}}"#
        ));
        assert_eq!(c.requirement("/"), Requirement::Open);
        assert_eq!(c.requirement("/members"), Requirement::Verified);
        assert_eq!(
            c.requirement("/members/billing/x"),
            Requirement::FreshWithin(300)
        );
        assert_eq!(c.requirement("/admin/x"), Requirement::FreshWithin(60));
        let now = 1_000_000;
        let cookie = |age: i64| Verified {
            phone: "201234567890".into(),
            verified_at: now - age,
            expires_at: now + 100,
        };
        let pass = |p: &str| Decision::Pass {
            phone: Some(p.into()),
        };
        let table: [(&str, Option<Verified>, Decision); 8] = [
            ("/", None, Decision::Pass { phone: None }),
            ("/", Some(cookie(10)), pass("201234567890")),
            ("/members", None, Decision::Verify),
            ("/members", Some(cookie(50_000)), pass("201234567890")),
            ("/members/billing", Some(cookie(300)), pass("201234567890")),
            ("/members/billing", Some(cookie(301)), Decision::Verify),
            ("/admin/x", Some(cookie(61)), Decision::Verify),
            ("/admin/x", None, Decision::Verify),
        ];
        for (path, cookie, expected) in table {
            assert_eq!(c.decide(path, cookie.as_ref(), now), expected, "{path}");
        }
    }

    #[test]
    fn mount_splits_service_and_site() {
        let c = config(&format!(
            r#"{{"instance":"{INSTANCE}","hostname":"otp.example.com"}}"#
        ));
        assert_eq!(c.mount("otp.example.com", "/health"), Mount::Root);
        assert_eq!(c.mount("OTP.example.com", "/x"), Mount::Root);
        assert_eq!(
            c.mount("www.example.com", "/_otp/health"),
            Mount::Prefix("/health")
        );
        assert_eq!(c.mount("www.example.com", "/_otp"), Mount::Prefix("/"));
        assert_eq!(c.mount("www.example.com", "/_otpx/health"), Mount::Site);
        assert_eq!(c.mount("www.example.com", "/health"), Mount::Site);
    }

    #[test]
    fn cookie_key_and_seal_match_known_answers() {
        // python3: k = hmac.new(b"\x07"*32, b"edge-otp/middleware-cookie-key/v1", sha256).digest()
        //   body = "v1.201234567890.1700000000.1700086400"
        //   hmac.new(k, b"edge-otp/middleware-cookie/v1\0" + INSTANCE + b"\0" + body, sha256)
        let k = key(7);
        let v = Verified {
            phone: "201234567890".into(),
            verified_at: 1_700_000_000,
            expires_at: 1_700_086_400,
        };
        let sealed = seal_cookie(&k, INSTANCE, &v);
        assert_eq!(sealed, KAT_COOKIE);
        assert_eq!(open_cookie(&k, INSTANCE, &sealed, 1_700_000_001), Ok(v));
    }

    const KAT_COOKIE: &str =
        "v1.201234567890.1700000000.1700086400.nIqPQ36ipSmHgSeZom1WFOEO3r6CW__B547wmR3iZmA";

    #[test]
    fn tampered_expired_and_foreign_cookies_never_open() {
        let k = key(7);
        let v = Verified {
            phone: "201234567890".into(),
            verified_at: 1_000,
            expires_at: 2_000,
        };
        let good = seal_cookie(&k, INSTANCE, &v);
        let (body, tag) = good.rsplit_once('.').unwrap();
        let other_phone = good.replace("201234567890", "201234567891");
        let later = good.replace(".2000.", ".9000.");
        let flipped_tag = format!(
            "{body}.{}{}",
            if tag.starts_with('A') { 'B' } else { 'A' },
            &tag[1..]
        );
        let table: [(&str, String, &Secret, &str, i64, CookieError); 9] = [
            (
                "other phone",
                other_phone,
                &k,
                INSTANCE,
                1_500,
                CookieError::BadMac,
            ),
            (
                "later expiry",
                later,
                &k,
                INSTANCE,
                1_500,
                CookieError::BadMac,
            ),
            (
                "flipped tag",
                flipped_tag,
                &k,
                INSTANCE,
                1_500,
                CookieError::BadMac,
            ),
            (
                "no tag",
                body.to_owned(),
                &k,
                INSTANCE,
                1_500,
                CookieError::BadMac,
            ),
            (
                "empty",
                String::new(),
                &k,
                INSTANCE,
                1_500,
                CookieError::Malformed,
            ),
            (
                "other key",
                good.clone(),
                &key(8),
                INSTANCE,
                1_500,
                CookieError::BadMac,
            ),
            (
                "other instance",
                good.clone(),
                &k,
                "22222222-2222-4222-8222-222222222222",
                1_500,
                CookieError::BadMac,
            ),
            (
                "at expiry",
                good.clone(),
                &k,
                INSTANCE,
                2_000,
                CookieError::Expired,
            ),
            (
                "huge",
                "a".repeat(10_000),
                &k,
                INSTANCE,
                1_500,
                CookieError::Malformed,
            ),
        ];
        for (what, value, key, instance, now, expected) in table {
            assert_eq!(
                open_cookie(key, instance, &value, now),
                Err(expected),
                "{what}"
            );
        }
        assert!(open_cookie(&k, INSTANCE, &good, 1_999).is_ok());
        // The instance id is compared case-insensitively, like everywhere else.
        assert!(open_cookie(&k, &INSTANCE.to_uppercase(), &good, 1_500).is_ok());
    }

    #[test]
    fn next_is_a_same_origin_path_or_home() {
        let table = [
            ("/members", "/members"),
            ("/members/a?b=c&d=e", "/members/a?b=c&d=e"),
            ("/members#frag", "/members"),
            ("/a b", "/a%20b"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/a%2Fb", "/a%2Fb"),
            ("/%2Fok", "/"),
            ("/a/../b", "/b"),
            ("", "/"),
            ("members", "/"),
            ("//evil.com", "/"),
            ("///evil.com", "/"),
            ("/\\evil.com", "/"),
            ("\\\\evil.com", "/"),
            ("\\/evil.com", "/"),
            ("https://evil.com", "/"),
            ("http:/evil.com", "/"),
            ("javascript:alert(1)", "/"),
            ("/%2F%2Fevil.com", "/"),
            ("/%2f%2fevil.com", "/"),
            ("/%5Cevil.com", "/"),
            ("/%5C%5Cevil.com", "/"),
            ("/\t/evil.com", "/"),
            ("/\n/evil.com", "/"),
            ("/\r\nSet-Cookie: x=1", "/"),
            ("/%0d%0aSet-Cookie:x", "/"),
            ("/\u{0}", "/"),
            ("/\u{7f}", "/"),
            ("/\u{85}x", "/"),
            // Dot segments that resolve to a protocol-relative path (issue 12 item 7).
            ("/.//evil.com", "/"),
            ("/./\\evil.com", "/"),
            ("/a/..//evil.com", "/"),
            ("/%2e//evil.com", "/"),
            ("/.%2f/evil.com", "/.%2f/evil.com"),
            ("/./ok", "/ok"),
        ];
        for (next, expected) in table {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT_LEN))), "/");
    }

    #[test]
    fn cookie_header_helpers_find_and_strip_the_cookie() {
        let h = "a=1; edge_otp=v1.x; b=2;edge_otp=\"v1.y\"; edge_otpx=3";
        assert_eq!(cookie_values(h, "edge_otp"), vec!["v1.x", "v1.y"]);
        assert_eq!(cookie_values("", "edge_otp"), Vec::<&str>::new());
        assert_eq!(
            strip_cookie(h, "edge_otp").as_deref(),
            Some("a=1; b=2; edge_otpx=3")
        );
        assert_eq!(strip_cookie("edge_otp=1", "edge_otp"), None);
        assert_eq!(strip_cookie(" ; ", "edge_otp"), None);
    }

    #[test]
    fn phone_header_spellings_are_recognized() {
        for name in [
            "X-Verified-Phone",
            "x-verified-phone",
            "X_VERIFIED_PHONE",
            "x-verified_phone",
        ] {
            assert!(is_phone_header(name), "{name}");
        }
        for name in [
            "x-verified-phones",
            "x-verified",
            "x.verified.phone",
            "y-verified-phone",
        ] {
            assert!(!is_phone_header(name), "{name}");
        }
    }

    #[test]
    fn page_escapes_everything_it_interpolates() {
        let html = page_html(&Page {
            prefix: "/_otp",
            publishable_key: "pk_\"><script>x</script>",
            mode: PageMode::Link,
            next: "/a?b=\"'<>&",
            notice: Some("<b>again</b>"),
        });
        assert!(html.contains("<script type=\"module\" src=\"/_otp/widget/edge-otp.js\"></script>"));
        assert!(html.contains(
            "<edge-otp endpoint=\"/_otp\" publishable-key=\"pk_&quot;&gt;&lt;script&gt;x&lt;/script&gt;\" mode=\"link\"></edge-otp>"
        ));
        assert!(html.contains("value=\"/a?b=&quot;&#39;&lt;&gt;&amp;\""));
        assert!(html.contains("&lt;b&gt;again&lt;/b&gt;"));
        assert!(html.contains(&format!("<script>{PAGE_SCRIPT}</script>")));
        assert!(html.contains("<link rel=\"icon\" href=\"data:,\">"));
        assert_eq!(html.matches("<script").count(), 2);
    }

    #[test]
    fn csp_allows_the_inline_script_by_hash() {
        // python3: base64.b64encode(hashlib.sha256(PAGE_SCRIPT.encode()).digest())
        assert_eq!(page_script_hash(), KAT_SCRIPT_HASH);
        let csp = page_csp("");
        assert!(csp.contains(&format!(
            "script-src 'self' 'wasm-unsafe-eval' {KAT_SCRIPT_HASH};"
        )));
        assert!(!csp.contains("unsafe-inline'; connect") && csp.contains("frame-ancestors 'none'"));
        assert!(page_csp("https://challenges.cloudflare.com")
            .contains("frame-src https://challenges.cloudflare.com;"));
    }

    const KAT_SCRIPT_HASH: &str = "'sha256-coodDOJmkpl15iaJYEIJ/SnH05sPhWKeU630qk5biZU='";
}
