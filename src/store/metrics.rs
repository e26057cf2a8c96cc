//! Per-instance metrics (the generate-link doc's Monitoring list: links generated, opened,
//! verified, expired, failed attempts, time to verification), counted where the events
//! happen. Counters are spread over [`SHARDS`] Durable Objects per instance, one picked at
//! random per increment, and summed on read, so no single object is touched by every
//! request. Counts are exact; they are kept per UTC day.

use super::table::Schema;
use super::{call, pick_shard, stub, unknown_op, Op, METRICS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// Shards per instance.
pub const SHARDS: u8 = 4;

/// Increments for one day.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddMsg {
    pub day: String,
    pub counts: Vec<(String, i64)>,
}

/// One counter row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub day: String,
    pub name: String,
    pub value: f64,
}

/// Adds `counts` to one random shard of `instance`'s counters. Errors are logged, never
/// raised: a metric must not fail the request that produced it.
pub async fn add(env: &Env, instance: &str, counts: &[(&str, i64)]) {
    let day = otp_core::time::iso8601(crate::clock::now())[..10].to_owned();
    let msg = AddMsg {
        day,
        counts: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    };
    let result = async {
        let stub = stub(env, METRICS, &shard_name(instance, pick_shard(SHARDS)))?;
        call::<_, serde_json::Value>(&stub, Op::Add, &msg).await
    };
    if let Err(e) = result.await {
        worker::console_error!("metrics for {instance}: {e}");
    }
}

fn shard_name(instance: &str, shard: u8) -> String {
    format!("{}:metrics:{shard}", instance.to_ascii_lowercase())
}

/// The summed counters of `instance`: totals and per day.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub totals: BTreeMap<String, i64>,
    pub days: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Reads and sums every shard of `instance`.
pub async fn read(env: &Env, instance: &str) -> Result<Summary> {
    let mut summary = Summary::default();
    for shard in 0..SHARDS {
        let stub = stub(env, METRICS, &shard_name(instance, shard))?;
        let rows: Vec<Row> = call(&stub, Op::Read, &serde_json::json!({})).await?;
        for row in rows {
            let v = row.value as i64;
            *summary.totals.entry(row.name.clone()).or_default() += v;
            *summary
                .days
                .entry(row.day)
                .or_default()
                .entry(row.name)
                .or_default() += v;
        }
    }
    Ok(summary)
}

/// One shard of one instance's counters.
#[durable_object]
pub struct MetricsObject {
    state: State,
    schema: Schema,
}

impl DurableObject for MetricsObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            schema: Schema::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        self.schema.ensure(
            &sql,
            "CREATE TABLE IF NOT EXISTS counters (day TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (day, name))",
        )?;
        match Op::of(&req) {
            Some(Op::Add) => {
                let msg: AddMsg = req.json().await?;
                for (name, n) in msg.counts {
                    sql.exec(
                        "INSERT INTO counters (day, name, value) VALUES (?, ?, ?) ON CONFLICT (day, name) DO UPDATE SET value = value + excluded.value",
                        vec![msg.day.clone().into(), name.into(), n.into()],
                    )?;
                }
                Response::from_json(&serde_json::json!({"ok": true}))
            }
            Some(Op::Read) => {
                let rows: Vec<Row> = sql
                    .exec("SELECT day, name, value FROM counters ORDER BY day", None)?
                    .to_array()?;
                Response::from_json(&rows)
            }
            _ => unknown_op(),
        }
    }
}
