//! The widget API client: `GET {endpoint}/widget/v1/{route}` or `POST` with a JSON body,
//! answered with JSON. Failures come back as the API's error object (`code`, `message`, `attempts_left`,
//! `retry_after`); a network failure is the code `network`.

use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

/// An answer's body, read field by field.
pub struct Body(pub JsValue);

impl Body {
    pub fn str(&self, key: &str) -> Option<String> {
        Reflect::get(&self.0, &key.into()).ok()?.as_string()
    }

    pub fn num(&self, key: &str) -> Option<f64> {
        Reflect::get(&self.0, &key.into()).ok()?.as_f64()
    }
}

/// A refusal from the API.
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub attempts_left: Option<u32>,
    pub retry_after: Option<u32>,
}

impl Failure {
    fn network() -> Self {
        Self {
            status: 0,
            code: "network".into(),
            attempts_left: None,
            retry_after: None,
        }
    }
}

/// POSTs `fields` (key, JSON value) to `route` and returns the answer's body.
pub async fn post(
    endpoint: &str,
    route: &str,
    fields: &[(&str, JsValue)],
) -> Result<Body, Failure> {
    let body = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&body, &(*k).into(), v);
    }
    let json = JSON::stringify(&body).map_err(|_| Failure::network())?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&json);
    let headers = Object::new();
    let _ = Reflect::set(&headers, &"content-type".into(), &"application/json".into());
    init.set_headers(&headers);
    send(endpoint, route, &init).await
}

/// GETs `route` (with its query string) and returns the answer's body.
pub async fn get(endpoint: &str, route: &str) -> Result<Body, Failure> {
    send(endpoint, route, &RequestInit::new()).await
}

async fn send(endpoint: &str, route: &str, init: &RequestInit) -> Result<Body, Failure> {
    let url = format!("{}/widget/v1/{route}", endpoint.trim_end_matches('/'));
    let req = Request::new_with_str_and_init(&url, init).map_err(|_| Failure::network())?;
    let window = web_sys::window().ok_or_else(Failure::network)?;
    let resp: Response = JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|_| Failure::network())?
        .unchecked_into();
    let status = resp.status();
    let value = match resp.json() {
        Ok(p) => JsFuture::from(p).await.unwrap_or(JsValue::NULL),
        Err(_) => JsValue::NULL,
    };
    if resp.ok() {
        return Ok(Body(value));
    }
    let error = Body(Reflect::get(&value, &"error".into()).unwrap_or(JsValue::NULL));
    Err(Failure {
        status,
        code: error.str("code").unwrap_or_else(|| "error".into()),
        attempts_left: error.num("attempts_left").map(|n| n as u32),
        retry_after: error.num("retry_after").map(|n| n as u32),
    })
}
