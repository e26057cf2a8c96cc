//! What every surface does with a request before its own work: read a bounded body, find the
//! bearer token and the client's address, count the request toward a rate limit, and run a send
//! once per `Idempotency-Key`. Also the one JSON response builder.

use super::outcome::{internal, Outcome};
use crate::config::ConfigProblem;
use crate::store::idempotency::{self, Begin};
use serde::Serialize;
use serde_json::{Map, Value};
use std::future::Future;
use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Env, Request, Response, Result};

/// Largest request body accepted, in bytes. OTP requests are a few hundred bytes.
pub const MAX_BODY: usize = 16 * 1024;

/// Reads a body of at most `max` bytes: `TooLarge` past it. The one body reader of every
/// route: a declared `Content-Length` over the limit is refused before anything is read, and a
/// body without one (chunked) is read from its stream chunk by chunk, never keeping more than
/// `max` bytes (plus one chunk): past the limit the rest is dropped as it comes and the stream
/// cancelled after [`DRAIN`] more bytes.
pub async fn bytes(req: &mut Request, max: usize) -> std::result::Result<Vec<u8>, Outcome> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(Outcome::TooLarge);
    }
    let Some(stream) = req.inner().body() else {
        return Ok(Vec::new());
    };
    read_capped(&stream, max).await
}

/// How much of a body past its limit is read and thrown away before the stream is cancelled.
/// A body that ends within it leaves its connection clean for the next request (and the local
/// dev proxy's upload whole); a longer one is cut off. Never held: memory stays at the limit.
const DRAIN: usize = 1024 * 1024;

/// Reads `stream` to its end, keeping at most `max` bytes: past them the rest is read and
/// dropped up to [`DRAIN`] bytes, then the stream is cancelled, and the answer is `TooLarge`.
async fn read_capped(
    stream: &web_sys::ReadableStream,
    max: usize,
) -> std::result::Result<Vec<u8>, Outcome> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut out = Vec::new();
    let mut dropped = 0usize;
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|_| Outcome::Malformed)?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            return if dropped > 0 {
                Err(Outcome::TooLarge)
            } else {
                Ok(out)
            };
        }
        let value = Reflect::get(&chunk, &JsValue::from_str("value")).unwrap_or_default();
        let Some(bytes) = value.dyn_ref::<Uint8Array>() else {
            let _ = reader.cancel();
            return Err(Outcome::Malformed);
        };
        let len = bytes.length() as usize;
        if dropped > 0 || out.len() + len > max {
            dropped += len;
            if dropped > DRAIN {
                // Cancelling tells the runtime the rest is unwanted; it then closes the
                // connection rather than read on.
                let _ = reader.cancel();
                return Err(Outcome::TooLarge);
            }
            continue;
        }
        let start = out.len();
        out.resize(start + len, 0);
        bytes.copy_to(&mut out[start..]);
    }
}

/// Reads a JSON object body of at most [`MAX_BODY`] bytes, with its raw bytes. An empty body
/// is an empty object, so a missing field is reported by name rather than as a malformed body.
pub async fn json_object(
    req: &mut Request,
) -> std::result::Result<(Map<String, Value>, Vec<u8>), Outcome> {
    let raw = bytes(req, MAX_BODY).await?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok((Map::new(), raw));
    }
    match otp_core::json::from_bytes::<Value>(&raw) {
        Some(Value::Object(map)) => Ok((map, raw)),
        _ => Err(Outcome::Malformed),
    }
}

/// The token of an `Authorization: Bearer …` header, trimmed; empty when absent.
pub fn bearer(req: &Request) -> String {
    let header = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

/// A JSON response with a status and extra headers, never cached.
pub fn json<T: Serialize>(status: u16, body: &T, headers: &[(&str, String)]) -> Result<Response> {
    let mut resp = Response::from_json(body)?.with_status(status);
    let h = resp.headers_mut();
    h.set("cache-control", "no-store")?;
    for (k, v) in headers {
        h.set(k, v)?;
    }
    Ok(resp)
}

/// A query parameter of the request's URL.
pub fn query(url: &worker::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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

/// Where and with what a login was started, for the link's confirm page: the place the edge
/// puts the request in (`request.cf` city and country) and the browser its `User-Agent` names
/// (family and system, never the raw string), each bounded; `None` for what is not known.
pub fn started_by(req: &Request) -> (Option<String>, Option<String>) {
    let header = |k: &str| req.headers().get(k).ok().flatten().unwrap_or_default();
    let near = cf_fields(req, ["city", "country"]).and_then(|[city, country]| {
        otp_core::web::login::place(city.as_deref(), country.as_deref())
    });
    (near, otp_core::web::login::browser(&header("user-agent")))
}

/// The visitor's country (ISO 3166 alpha-2) as Cloudflare sees it, when it knows.
pub fn visitor_country(req: &Request) -> Option<String> {
    let [country] = cf_fields(req, ["country"])?;
    country.filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
}

/// Fields of the request's `cf` object; `None` where there is none, or where it is the
/// placeholder `wrangler dev` gives every request (Austin, US; colo DFW), which says nothing.
fn cf_fields<const N: usize>(req: &Request, keys: [&str; N]) -> Option<[Option<String>; N]> {
    let cf = Reflect::get(req.inner(), &"cf".into()).ok()?;
    let get = |k: &str| {
        Reflect::get(&cf, &k.into())
            .ok()
            .and_then(|v| v.as_string())
    };
    let placeholder =
        get("colo").as_deref() == Some("DFW") && get("postalCode").as_deref() == Some("78701");
    (!placeholder).then(|| keys.map(get))
}

/// The client as per-address rate limits count it: its IPv4 address, or its IPv6 /64
/// (`otp_core::web::client::rate_key`), so rotating through one subscriber's addresses does
/// not buy more requests.
pub fn client_key(req: &Request) -> String {
    otp_core::web::client::rate_key(&client_ip(req))
}

/// Counts one request under `key` with the rate limiting binding `binding`: `Ok(false)` when
/// the limit refuses it. A missing binding is a configuration problem; a failing one lets the
/// request through (logged), since the recipient's own limits still hold.
pub async fn rate_limit_allows(
    env: &Env,
    binding: &str,
    key: String,
) -> std::result::Result<bool, ConfigProblem> {
    let limiter = env.rate_limiter(binding).map_err(|_| {
        ConfigProblem(format!(
            "rate limiting binding {binding} is missing (wrangler.toml [[ratelimits]])"
        ))
    })?;
    match limiter.limit(key).await {
        Ok(outcome) => Ok(outcome.success),
        Err(e) => {
            let line = crate::log::Line::new("ratelimit.error").str("binding", binding);
            line.text("error", &e.to_string())
                .str("outcome", "let_through")
                .error();
            Ok(true)
        }
    }
}

/// The `Idempotency-Key` header, checked.
pub fn idempotency_key(req: &Request) -> std::result::Result<Option<String>, Outcome> {
    match req.headers().get("idempotency-key").ok().flatten() {
        None => Ok(None),
        Some(k) if otp_core::rules::idempotency::valid_key(&k) => Ok(Some(k)),
        Some(_) => Err(Outcome::InvalidIdempotencyKey),
    }
}

/// A success to keep for replays: its status and the body a replay starts from (which never
/// holds a code).
pub struct Kept {
    pub status: u16,
    pub body: String,
}

/// Runs `work` once per `Idempotency-Key` within `scope` (instance and credential): a repeat
/// of the same request is answered by `replay` from the first success (nothing is sent
/// again), a different request under the key is a conflict, and a failure frees the key so a
/// corrected retry can run. `work` answers with the response and what to keep of it.
pub async fn once<W, WF, R, RF>(
    env: &Env,
    scope: &str,
    key: Option<String>,
    path: &str,
    raw: &[u8],
    work: W,
    replay: R,
) -> std::result::Result<Response, Outcome>
where
    W: FnOnce() -> WF,
    WF: Future<Output = std::result::Result<(Response, Kept), Outcome>>,
    R: FnOnce(Kept) -> RF,
    RF: Future<Output = std::result::Result<Response, Outcome>>,
{
    let Some(key) = key else {
        return Ok(work().await?.0);
    };
    let fingerprint = otp_core::rules::idempotency::fingerprint("POST", path, raw);
    let (begin, claim) = idempotency::claim(env, scope, &key, fingerprint)
        .await
        .map_err(internal)?;
    match begin {
        Begin::Fresh => {}
        Begin::Replay { status, body } => return replay(Kept { status, body }).await,
        Begin::InProgress => return Err(Outcome::IdempotencyInProgress),
        Begin::Conflict => return Err(Outcome::IdempotencyConflict),
    }
    match work().await {
        Ok((resp, kept)) => {
            claim.finish(kept.status, kept.body).await;
            Ok(resp)
        }
        Err(e) => {
            claim.abort().await;
            Err(e)
        }
    }
}
