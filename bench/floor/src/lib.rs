//! The benchmark floor: the least a workers-rs Worker can do for one Durable Object round
//! trip with a SQLite write, to compare edge-otp against on the same machine.
//!
//! - `POST /hot`: one round trip to a single object (named "hot") that increments a counter.
//! - `POST /new`: one round trip to a new object per request (a random name), same increment.
//! - `GET /health`: no Durable Object, for readiness checks.

use serde::Deserialize;
use worker::{
    durable_object, event, Context, DurableObject, Env, Method, Request, Response, Result, State,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let name = match (req.method(), req.path().as_str()) {
        (Method::Post, "/hot") => "hot".to_string(),
        (Method::Post, "/new") => format!(
            "new:{:x}:{:x}",
            js_sys::Date::now() as u64,
            (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
        ),
        (Method::Get, "/health") => return Response::ok("ok"),
        _ => return Response::error("not found", 404),
    };
    let stub = env.durable_object("COUNTER")?.get_by_name(&name)?;
    let mut resp = stub.fetch_with_str("https://counter/increment").await?;
    let n = resp.text().await?;
    Response::ok(n)
}

#[derive(Deserialize)]
struct Row {
    n: i64,
}

#[durable_object]
pub struct Counter {
    state: State,
}

impl DurableObject for Counter {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        // Cheap and idempotent; runs once per object instance.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
            None,
        );
        Self { state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        let row: Row = self
            .state
            .storage()
            .sql()
            .exec(
                "INSERT INTO counter (id, n) VALUES (1, 1)
                 ON CONFLICT(id) DO UPDATE SET n = n + 1 RETURNING n",
                None,
            )?
            .one()?;
        Response::ok(row.n.to_string())
    }
}
