//! Who decides and remembers: every Durable Object (recipient, link, idempotency, budget,
//! metrics), the write-once KV records, the typed calls into the objects and their names, and
//! the one job runner they share.
//!
//! The API surfaces see a narrow interface per object ("start a challenge", "attempt a code",
//! "claim an idempotency key"); only the objects know SQL, and each single-use decision is
//! made in exactly one object with no `await` between reading and writing its state.
//!
//! May import: `crate::config`, `crate::clock`, `crate::log`, `crate::channels`, `otp-core`.
//! Never `crate::api`.

pub mod budget;
pub mod idempotency;
pub mod jobs;
pub mod link;
pub mod metrics;
mod observe;
pub mod privacy;
pub mod recipient;
pub mod records;
mod table;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::{Env, Error, Method, Request, Result, Stub};

/// An operation on a Durable Object: the path of the internal request that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    // Recipient objects.
    Start,
    CountSend,
    Attempt,
    Send,
    Receipt,
    Get,
    #[cfg(feature = "dev")]
    Outbox,
    Note,
    Index,
    /// Recipient, link and idempotency objects: remove what holds a number.
    Erase,
    // Link objects.
    Create,
    Inbound,
    Confirm,
    Open,
    // Idempotency objects.
    Begin,
    Finish,
    Abort,
    // Budget objects.
    Take,
    Refund,
    // Metrics objects.
    Add,
    Read,
}

impl Op {
    const ALL: &'static [Op] = &[
        Op::Start,
        Op::CountSend,
        Op::Attempt,
        Op::Send,
        Op::Receipt,
        Op::Get,
        #[cfg(feature = "dev")]
        Op::Outbox,
        Op::Note,
        Op::Index,
        Op::Erase,
        Op::Create,
        Op::Inbound,
        Op::Confirm,
        Op::Open,
        Op::Begin,
        Op::Finish,
        Op::Abort,
        Op::Take,
        Op::Refund,
        Op::Add,
        Op::Read,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::CountSend => "count-send",
            Op::Attempt => "attempt",
            Op::Send => "send",
            Op::Receipt => "receipt",
            Op::Get => "get",
            #[cfg(feature = "dev")]
            Op::Outbox => "outbox",
            Op::Note => "note",
            Op::Index => "index",
            Op::Erase => "erase",
            Op::Create => "create",
            Op::Inbound => "inbound",
            Op::Confirm => "confirm",
            Op::Open => "open",
            Op::Begin => "begin",
            Op::Finish => "finish",
            Op::Abort => "abort",
            Op::Take => "take",
            Op::Refund => "refund",
            Op::Add => "add",
            Op::Read => "read",
        }
    }

    /// The operation an object's request carries, from its path (`/start`).
    pub fn of(req: &Request) -> Option<Op> {
        let path = req.path();
        let name = path.strip_prefix('/')?;
        Op::ALL.iter().copied().find(|op| op.as_str() == name)
    }
}

/// Durable Object namespace bindings.
pub const RECIPIENTS: &str = "RECIPIENTS";
pub const LINKS: &str = "LINKS";
pub const IDEMPOTENCY: &str = "IDEMPOTENCY";
pub const BUDGETS: &str = "BUDGETS";
pub const METRICS: &str = "METRICS";

/// The object named `name` in namespace `binding`; in the jurisdiction `DO_JURISDICTION`
/// names (`eu`: the objects run and store their data only there), when it is set.
pub fn stub(env: &Env, binding: &str, name: &str) -> Result<Stub> {
    use wasm_bindgen::JsCast;
    let ns = env.durable_object(binding)?;
    let Some(jd) = crate::config::var(env, "DO_JURISDICTION") else {
        return ns.get_by_name(name);
    };
    // Cloudflare's jurisdictions; another name would fail inside the runtime with its text.
    if !matches!(jd.as_str(), "eu" | "fedramp") {
        crate::log::Line::new("config.problem")
            .str("var", "DO_JURISDICTION")
            .str("error", "must be \"eu\" or \"fedramp\"")
            .error();
        return Err(Error::RustError(
            "DO_JURISDICTION is not a jurisdiction".into(),
        ));
    }
    let sub: js_sys::Function =
        js_sys::Reflect::get(ns.as_ref(), &"jurisdiction".into())?.dyn_into()?;
    sub.call1(ns.as_ref(), &jd.into())?
        .unchecked_into::<worker::ObjectNamespace>()
        .get_by_name(name)
}

/// Sends one internal JSON request to a Durable Object and decodes its JSON answer.
pub async fn call<Q: Serialize, A: DeserializeOwned>(stub: &Stub, op: Op, msg: &Q) -> Result<A> {
    let answer = call_raw(stub, op, serde_json::to_string(msg)?).await?;
    Ok(serde_json::from_str(&answer)?)
}

/// [`call`] without the types: one copy of the request code for every message type.
async fn call_raw(stub: &Stub, op: Op, body: String) -> Result<String> {
    let url = format!("https://object/{}", op.as_str());
    let req = crate::outbound::request(
        Method::Post,
        &url,
        None,
        Some(&JsValue::from_str(&body)),
        false,
    )?;
    let mut resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "durable object answered {} to {}: {}",
            resp.status_code(),
            op.as_str(),
            resp.text().await.unwrap_or_default()
        )));
    }
    resp.text().await
}

/// An object's answer to an operation it does not know.
pub fn unknown_op() -> Result<worker::Response> {
    worker::Response::error("unknown operation", 404)
}

/// A random shard in `0..shards`, for counters spread over several objects.
pub fn pick_shard(shards: u8) -> u8 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    otp_core::rules::budget::pick_shard(u32::from_le_bytes(b), shards)
}

/// A fresh random version-4 UUID: every challenge id.
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(otp_core::ids::uuid_v4(bytes))
}

/// True when an object of namespace `binding` answers a request, whatever its status: the deep
/// health check's probe (object `health`, operation `health`, which no object knows; its body,
/// an empty list, is a no-op for an object that reads every request as a list of items).
pub async fn answers(env: &Env, binding: &str) -> bool {
    let probe = async {
        let url = "https://object/health";
        let body = JsValue::from_str("[]");
        let req = crate::outbound::request(Method::Post, url, None, Some(&body), false)?;
        stub(env, binding, "health")?.fetch_with_request(req).await
    };
    probe.await.is_ok()
}
