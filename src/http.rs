//! HTTP plumbing shared by the surfaces: bounded JSON bodies and JSON responses.

use serde::Serialize;
use serde_json::{Map, Value};
use worker::{Request, Response, Result};

/// Largest request body accepted, in bytes. OTP requests are a few hundred bytes.
pub const MAX_BODY: usize = 16 * 1024;

/// Why a request body was refused before any field was looked at.
pub enum BodyError {
    /// Larger than [`MAX_BODY`].
    TooLarge,
    /// Not a JSON object.
    NotAnObject,
}

/// Reads a JSON object body of at most [`MAX_BODY`] bytes. An empty body is an empty object,
/// so a missing field is reported by name rather than as a malformed body.
pub async fn json_object(
    req: &mut Request,
) -> Result<std::result::Result<Map<String, Value>, BodyError>> {
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Ok(Err(BodyError::TooLarge));
    }
    let bytes = req.bytes().await?;
    if bytes.len() > MAX_BODY {
        return Ok(Err(BodyError::TooLarge));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Ok(Map::new()));
    }
    Ok(match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(BodyError::NotAnObject),
    })
}

/// A JSON response with a status and extra headers.
pub fn json<T: Serialize>(status: u16, body: &T, headers: &[(&str, String)]) -> Result<Response> {
    let mut resp = Response::from_json(body)?.with_status(status);
    let h = resp.headers_mut();
    h.set("cache-control", "no-store")?;
    for (k, v) in headers {
        h.set(k, v)?;
    }
    Ok(resp)
}

/// 404 for paths the Worker does not serve.
pub fn not_found() -> Result<Response> {
    failure(404, "Not found.", &[])
}

/// The failure envelope every JSON surface shares: `{success: false, message, data: null}`,
/// plus Laravel-style `errors` on a 422.
#[derive(Serialize)]
pub struct Failure<'a, E: Serialize = ()> {
    pub success: bool,
    pub message: &'a str,
    pub data: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<E>,
}

/// A failure in the shared envelope.
pub fn failure(status: u16, message: &str, headers: &[(&str, String)]) -> Result<Response> {
    let body: Failure<'_> = Failure {
        success: false,
        message,
        data: (),
        errors: None,
    };
    json(status, &body, headers)
}

/// Current time in Unix seconds (the Workers clock).
pub fn now() -> i64 {
    (worker::Date::now().as_millis() / 1000) as i64
}

/// True when the request was addressed to a loopback host (127.0.0.0/8, localhost, [::1]).
#[cfg_attr(not(feature = "dev"), allow(dead_code))]
pub fn is_loopback(req: &Request) -> bool {
    let Ok(url) = req.url() else { return false };
    match url.host_str() {
        Some("localhost" | "[::1]") => true,
        Some(h) => h.starts_with("127.") && h.split('.').count() == 4,
        None => false,
    }
}

/// The client's address, as Cloudflare reports it (`local` when absent: tests, `wrangler dev`).
pub fn client_ip(req: &Request) -> String {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// Counts one request under `key` with the rate limiting binding `binding`: `Ok(false)` when
/// the limit refuses it. A missing binding is a configuration problem; a failing one lets the
/// request through (logged), since the recipient's own limits still hold.
pub async fn rate_limit_allows(
    env: &worker::Env,
    binding: &str,
    key: String,
) -> std::result::Result<bool, crate::service::ConfigProblem> {
    let limiter = env.rate_limiter(binding).map_err(|_| {
        crate::service::ConfigProblem(format!(
            "rate limiting binding {binding} is missing (wrangler.toml [[ratelimits]])"
        ))
    })?;
    match limiter.limit(key).await {
        Ok(outcome) => Ok(outcome.success),
        Err(e) => {
            worker::console_error!("rate limiter {binding}: {e}; request let through");
            Ok(true)
        }
    }
}
