//! The requests the Worker makes: to its Durable Objects, to providers and callbacks, to the
//! site's origin and its static assets. Built on web-sys directly, because worker's
//! `RequestInit` conversion carries every Cloudflare fetch option (image resizing among
//! them), about 11 KB of Wasm this service never uses.
//!
//! May import: `worker` only.

use wasm_bindgen::JsValue;
use worker::{Headers, Request, Result};

/// A request to `url` with `method` (a `worker::Method`, or the name a client sent), optional
/// headers and body; redirects are answered, not followed, when `manual_redirect` (callbacks and the
/// origin: a redirect is their answer).
pub fn request(
    method: impl AsRef<str>,
    url: &str,
    headers: Option<&Headers>,
    body: Option<&JsValue>,
    manual_redirect: bool,
) -> Result<Request> {
    build(method.as_ref(), url, headers, body, manual_redirect)
}

/// [`request`] for one method name (one copy in the Wasm, whatever the callers pass).
fn build(
    method: &str,
    url: &str,
    headers: Option<&Headers>,
    body: Option<&JsValue>,
    manual_redirect: bool,
) -> Result<Request> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(h) = headers {
        init.set_headers(&h.0);
    }
    if let Some(b) = body {
        init.set_body(b);
    }
    if manual_redirect {
        init.set_redirect(web_sys::RequestRedirect::Manual);
    }
    Ok(web_sys::Request::new_with_str_and_init(url, &init)?.into())
}
