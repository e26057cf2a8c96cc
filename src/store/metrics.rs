//! Per-instance metrics, counted where the events happen: the link flow (the generate-link
//! doc's Monitoring list: links generated, opened, verified, expired, failed attempts, time to
//! verification) and the code flow ([`code`]: sends, deliveries, failures, fallbacks,
//! verifications, wrong attempts, lockouts, budget refusals, each in total, per channel and
//! per country calling code, and a time-to-verify histogram). Counters are spread over
//! [`SHARDS`] Durable Objects per instance, one picked at random per increment (a code event's
//! counts are batched per isolate first: [`code`]), and summed on read, so no single object is
//! touched by every request. Counts are exact; they are kept per
//! UTC hour for [`HOURLY_DAYS`] days, then per UTC day. Where an Analytics Engine dataset is
//! bound (`OTP_ANALYTICS`), each code event is also written there as a data point (instance,
//! event, channel, country; never a number or a code). Names: docs/operations.md.

use super::table::Schema;
use super::{call, pick_shard, stub, unknown_op, Op, METRICS};
use js_sys::Reflect;
use otp_core::telemetry::{self, CodeEvent};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use wasm_bindgen::JsValue;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// Shards per instance.
pub const SHARDS: u8 = 4;
/// Days for which counters are kept per hour (charts over time); older hours are summed into
/// their day.
pub const HOURLY_DAYS: i64 = 7;
/// The optional Analytics Engine dataset binding.
pub const ANALYTICS: &str = "OTP_ANALYTICS";

/// Increments for one bucket: a UTC hour (`2026-01-31T09`) or, for older data, a day.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddMsg {
    pub day: String,
    pub counts: Vec<(String, i64)>,
}

/// Counts one code-flow event of `instance` on `channel` for recipient `digits` (only its
/// calling code is kept), without holding up the caller: the one-line hook of each emission
/// point in a Durable Object (an object runs its pending work to the end). `seconds` is the
/// time to verify of a [`CodeEvent::Verified`], else 0.
///
/// The counts wait in this isolate's [`PENDING`] for the one `Op::Add` it has in flight, so a
/// busy isolate folds many events (a send and its delivery, concurrent sends) into one call
/// per instance and hour instead of one call each.
pub fn code(
    env: &Env,
    instance: &str,
    event: CodeEvent,
    channel: &str,
    digits: &str,
    seconds: i64,
) {
    let counts = event_counts(env, instance, event, channel, digits, seconds);
    let bucket = (instance.to_owned(), hour_now());
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let slot = p.entry(bucket).or_default();
        for (name, n) in counts {
            *slot.entry(name).or_default() += n;
        }
    });
    if FLUSHING.with(|f| f.replace(true)) {
        return; // the flush in flight takes these next
    }
    let env = env.clone();
    worker::wasm_bindgen_futures::spawn_local(async move {
        loop {
            let batch = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
            if batch.is_empty() {
                break;
            }
            for ((instance, day), counts) in batch {
                let msg = AddMsg {
                    day,
                    counts: counts.into_iter().collect(),
                };
                add_msg(&env, &instance, &msg).await;
            }
        }
        FLUSHING.with(|f| f.set(false));
    });
}

thread_local! {
    /// Code-flow counts not yet sent to a shard, by (instance, hour).
    static PENDING: RefCell<BTreeMap<(String, String), BTreeMap<String, i64>>> =
        const { RefCell::new(BTreeMap::new()) };
    /// Whether a task of this isolate is sending [`PENDING`].
    static FLUSHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The hour bucket counts land in: `2026-01-31T09`.
fn hour_now() -> String {
    otp_core::time::iso8601(crate::clock::now())[..13].to_owned()
}

/// `OTP_ANALYTICS.writeDataPoint({indexes: [instance], blobs, doubles: [1, seconds]})` when the
/// dataset is bound, through the binding's own method (no wrapper types in the Worker).
fn write_data_point(
    env: &Env,
    instance: &str,
    blobs: [&str; 3],
    seconds: i64,
) -> std::result::Result<(), JsValue> {
    let dataset = Reflect::get(env.as_ref(), &ANALYTICS.into())?;
    if dataset.is_undefined() {
        return Ok(());
    }
    let point = js_sys::Object::new();
    let list = |items: &[JsValue]| items.iter().collect::<js_sys::Array>();
    Reflect::set(&point, &"indexes".into(), &list(&[instance.into()]))?;
    let blobs: Vec<JsValue> = blobs.iter().map(|b| (*b).into()).collect();
    Reflect::set(&point, &"blobs".into(), &list(&blobs))?;
    let doubles = [1.0.into(), (seconds as f64).into()];
    Reflect::set(&point, &"doubles".into(), &list(&doubles))?;
    let write: js_sys::Function = Reflect::get(&dataset, &"writeDataPoint".into())?.into();
    write.call1(&dataset, &point).map(|_| ())
}

/// [`code`], awaited: for the Worker's own request path, which may end when it answers.
pub async fn code_now(
    env: &Env,
    instance: &str,
    event: CodeEvent,
    channel: &str,
    digits: &str,
    seconds: i64,
) {
    let counts = event_counts(env, instance, event, channel, digits, seconds);
    add_owned(env, instance, counts).await
}

/// The counters one code event adds (and its Analytics Engine data point, written at once).
fn event_counts(
    env: &Env,
    instance: &str,
    event: CodeEvent,
    channel: &str,
    digits: &str,
    seconds: i64,
) -> Vec<(String, i64)> {
    let country = telemetry::country(digits);
    let mut counts: Vec<(String, i64)> = telemetry::code_counters(event, channel, country)
        .into_iter()
        .map(|n| (n, 1))
        .collect();
    if event == CodeEvent::Verified {
        counts.push((telemetry::verify_bucket(seconds), 1));
        counts.push(("code.ttv_seconds".into(), seconds));
    }
    let blobs = [event.name(), channel, country];
    if let Err(e) = write_data_point(env, instance, blobs, seconds) {
        crate::log::fault("metrics.error", &format!("{e:?}"));
    }
    counts
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
    let counts = counts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    add_owned(env, instance, counts).await
}

async fn add_owned(env: &Env, instance: &str, counts: Vec<(String, i64)>) {
    let msg = AddMsg {
        day: hour_now(),
        counts,
    };
    add_msg(env, instance, &msg).await
}

/// Sends `msg` to one random shard of `instance`'s counters; errors are logged.
async fn add_msg(env: &Env, instance: &str, msg: &AddMsg) {
    let result = async {
        let stub = stub(env, METRICS, &shard_name(instance, pick_shard(SHARDS)))?;
        call::<_, serde_json::Value>(&stub, Op::Add, msg).await
    };
    if let Err(e) = result.await {
        crate::log::fault("metrics.error", &e);
    }
}

fn shard_name(instance: &str, shard: u8) -> String {
    format!("{}:metrics:{shard}", instance.to_ascii_lowercase())
}

/// Counters by name.
pub type Counts = BTreeMap<String, i64>;

/// The summed counters of `instance`: totals, per day, and per hour (the last
/// [`HOURLY_DAYS`] days).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub totals: Counts,
    pub days: BTreeMap<String, Counts>,
    pub hours: BTreeMap<String, Counts>,
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
            let day = row.day.get(..10).unwrap_or(&row.day).to_owned();
            if row.day.len() > 10 {
                let hour = summary.hours.entry(row.day).or_default();
                *hour.entry(row.name.clone()).or_default() += v;
            }
            *summary
                .days
                .entry(day)
                .or_default()
                .entry(row.name)
                .or_default() += v;
        }
    }
    Ok(summary)
}

/// The code flow's figures, from an instance's summed counters.
#[derive(Debug, Serialize)]
pub struct CodeReport {
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub fallbacks: i64,
    pub verified: i64,
    pub wrong_attempts: i64,
    pub lockouts: i64,
    pub budget_refusals: i64,
    /// verified / sent, `None` before the first send.
    pub conversion_rate: Option<f64>,
    /// From the time-to-verify histogram (interpolated in its bucket).
    pub median_seconds_to_verify: Option<f64>,
    /// Per channel, per country calling code: event (`sent`, `verified`, …) -> count.
    pub by_channel: BTreeMap<String, Counts>,
    pub by_country: BTreeMap<String, Counts>,
}

impl Summary {
    /// The code flow's figures.
    pub fn code(&self) -> CodeReport {
        let t = |k: &str| self.totals.get(k).copied().unwrap_or(0);
        let (sent, verified) = (t(CodeEvent::Sent.name()), t(CodeEvent::Verified.name()));
        let (mut by_channel, mut by_country) = (BTreeMap::new(), BTreeMap::new());
        for (name, &n) in &self.totals {
            let Some((event, dim)) = name.strip_prefix("code.").and_then(|r| r.split_once('@'))
            else {
                continue;
            };
            let (map, key) = match dim.split_once(':') {
                Some(("ch", k)) => (&mut by_channel, k),
                Some(("cc", k)) => (&mut by_country, k),
                _ => continue,
            };
            let counts: &mut Counts = map.entry(key.to_owned()).or_default();
            counts.insert(event.to_owned(), n);
        }
        CodeReport {
            sent,
            delivered: t(CodeEvent::Delivered.name()),
            failed: t(CodeEvent::Failed.name()),
            fallbacks: t(CodeEvent::Fallback.name()),
            verified,
            wrong_attempts: t(CodeEvent::Wrong.name()),
            lockouts: t(CodeEvent::Lockout.name()),
            budget_refusals: t(CodeEvent::BudgetRefused.name()),
            conversion_rate: (sent > 0).then(|| verified as f64 / sent as f64),
            median_seconds_to_verify: telemetry::median_seconds(|bound| {
                let key = match bound {
                    Some(b) => format!("{}{b}", telemetry::VERIFY_HISTOGRAM),
                    None => format!("{}inf", telemetry::VERIFY_HISTOGRAM),
                };
                t(&key)
            }),
            by_channel,
            by_country,
        }
    }
}

/// One shard of one instance's counters.
#[durable_object]
pub struct MetricsObject {
    state: State,
    schema: Schema,
    /// The hour bucket of the last roll-up of old hours into days.
    rolled: RefCell<String>,
}

impl DurableObject for MetricsObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            schema: Schema::default(),
            rolled: RefCell::default(),
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
                // Once per hour (per object in memory): hours older than HOURLY_DAYS become days.
                if *self.rolled.borrow() != msg.day {
                    let cutoff =
                        otp_core::time::iso8601(crate::clock::now() - HOURLY_DAYS * 86_400)[..13]
                            .to_owned();
                    sql.exec(
                        "INSERT INTO counters (day, name, value) SELECT substr(day, 1, 10), name, SUM(value) FROM counters WHERE length(day) = 13 AND day < ? GROUP BY 1, 2 ON CONFLICT (day, name) DO UPDATE SET value = value + excluded.value",
                        vec![cutoff.clone().into()],
                    )?;
                    sql.exec(
                        "DELETE FROM counters WHERE length(day) = 13 AND day < ?",
                        vec![cutoff.into()],
                    )?;
                    *self.rolled.borrow_mut() = msg.day;
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

/// The log line of a link-flow event, from the counters a link object adds: `link.generated`,
/// `link.opened`, `link.claimed`, `link.verified` (with `seconds_to_verify`), `link.expired`,
/// `link.failed`, `link.failed_attempt`.
pub fn log_link(instance: &str, challenge: Option<String>, counts: &[(&str, i64)]) {
    let seconds = counts
        .iter()
        .find(|(k, _)| *k == "verification_seconds_total")
        .map(|(_, v)| *v);
    for (name, _) in counts {
        let event = match *name {
            "failed_attempts" => "link.failed_attempt".to_owned(),
            "verification_seconds_total" => continue,
            other => format!("link.{}", other.strip_prefix("links_").unwrap_or(other)),
        };
        let line = crate::log::Line::new(&event)
            .str("instance", instance)
            .str("challenge", challenge.as_deref().unwrap_or(""));
        match seconds.filter(|_| *name == "links_verified") {
            Some(s) => line.num("seconds_to_verify", s).info(),
            None => line.info(),
        }
    }
}
