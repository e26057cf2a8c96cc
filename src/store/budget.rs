//! Limits against abuse that sit in front of the recipient's own limits (SMS pumping is the
//! main cost risk of an OTP service): the country allowlist, test numbers, the instance's
//! hourly and daily send budgets (approximate: sharded counters, `otp_core::rules::budget`), and the
//! per-number-range cap (exact: one counter object per range). Every check is off unless the
//! instance's `[abuse]` table sets it. Budgets are spent before the challenge is created, so a
//! send refused later by the recipient's own limits still counts (documented).

use super::table::Schema;
use super::{call, pick_shard, stub, Op, BUDGETS};
use otp_core::config::InstanceConfig;
use otp_core::rules::budget::{self, Window};
use otp_core::Recipient;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// Shards of an instance's budget counters.
pub const SHARDS: u8 = 4;
/// The number-range cap's window, in seconds.
pub const PREFIX_WINDOW: i64 = 600;

/// Why a send was refused before it reached the recipient's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The number's country is not on the instance's allowlist.
    Country,
    /// The instance's hourly or daily budget is spent; retry after this many seconds.
    Budget { retry_after: i64 },
    /// Too many sends to this number range; retry after this many seconds.
    Range { retry_after: i64 },
}

/// What the caller may do: send (normally, or as a test number with a fixed code).
pub enum Allowed {
    Send,
    TestNumber(String),
}

/// Runs the checks for a send to `to`. `test_key` says the caller used a test credential.
pub async fn check(
    env: &Env,
    inst: &InstanceConfig,
    to: &Recipient,
    test_key: bool,
    now: i64,
) -> Result<std::result::Result<Allowed, Refused>> {
    let abuse = &inst.abuse;
    if let Some(code) = abuse.test_code(to.digits()) {
        if test_key || abuse.test_numbers_enabled {
            worker::console_log!("instance {}: test number {} used", inst.id, to.e164());
            return Ok(Ok(Allowed::TestNumber(code.to_owned())));
        }
    }
    if !otp_core::rules::country::is_allowed(to.digits(), &abuse.allowed_countries) {
        return Ok(Err(Refused::Country));
    }
    let mut items = Vec::new();
    for (limit, w, tag) in [
        (abuse.hourly_budget, Window::Hour, "h"),
        (abuse.daily_budget, Window::Day, "d"),
    ] {
        if let Some(limit) = limit {
            items.push(Take {
                key: format!("{tag}:{}", budget::window_key(now, w)),
                limit: budget::shard_limit(limit, SHARDS),
                expires_at: now + w.secs(),
                retry_after: budget::retry_after(now, w),
            });
        }
    }
    if !items.is_empty() {
        let shard = pick_shard(SHARDS);
        let name = format!("{}:budget:{shard}", inst.id.to_ascii_lowercase());
        if let Some(retry_after) = take(env, &name, &items).await? {
            return Ok(Err(Refused::Budget { retry_after }));
        }
    }
    if let Some(limit) = abuse.prefix_limit {
        let prefix = otp_core::rules::country::prefix(to.digits(), abuse.prefix_len.unwrap_or(7));
        let window = now - now.rem_euclid(PREFIX_WINDOW);
        let item = Take {
            key: format!("p:{window}"),
            limit,
            expires_at: window + PREFIX_WINDOW,
            retry_after: (window + PREFIX_WINDOW - now).max(1),
        };
        let name = format!("{}:range:{prefix}", inst.id.to_ascii_lowercase());
        if let Some(retry_after) = take(env, &name, &[item]).await? {
            return Ok(Err(Refused::Range { retry_after }));
        }
    }
    Ok(Ok(Allowed::Send))
}

/// One counter to take a unit from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Take {
    pub key: String,
    pub limit: u64,
    pub expires_at: i64,
    pub retry_after: i64,
}

#[derive(Serialize, Deserialize)]
struct TakeReply {
    retry_after: Option<i64>,
}

/// Takes one unit from every counter of `items` in object `name`, all or none; `Some(wait)`
/// when one is spent.
async fn take(env: &Env, name: &str, items: &[Take]) -> Result<Option<i64>> {
    let reply: TakeReply = call(&stub(env, BUDGETS, name)?, Op::Take, &items).await?;
    Ok(reply.retry_after)
}

/// Counters with an expiry: a shard of an instance's budget, or one number range.
#[durable_object]
pub struct BudgetObject {
    state: State,
    schema: Schema,
}

impl DurableObject for BudgetObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            schema: Schema::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        #[derive(Deserialize)]
        struct Row {
            value: f64,
        }
        let sql = self.state.storage().sql();
        self.schema.ensure(
            &sql,
            "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
        )?;
        let items: Vec<Take> = req.json().await?;
        let now = crate::clock::now();
        sql.exec(
            "DELETE FROM counters WHERE expires_at <= ?",
            vec![now.into()],
        )?;
        // Check every counter, then take from all: no await in between, so it is atomic.
        for item in &items {
            let rows: Vec<Row> = sql
                .exec(
                    "SELECT value FROM counters WHERE key = ?",
                    vec![item.key.clone().into()],
                )?
                .to_array()?;
            let used = rows.first().map(|r| r.value as u64).unwrap_or(0);
            if used >= item.limit {
                return Response::from_json(&TakeReply {
                    retry_after: Some(item.retry_after),
                });
            }
        }
        for item in &items {
            sql.exec(
                "INSERT INTO counters (key, value, expires_at) VALUES (?, 1, ?) ON CONFLICT (key) DO UPDATE SET value = value + 1",
                vec![item.key.clone().into(), item.expires_at.into()],
            )?;
        }
        Response::from_json(&TakeReply { retry_after: None })
    }
}
