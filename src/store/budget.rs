//! Limits against abuse that sit in front of the recipient's own limits (SMS pumping is the
//! main cost risk of an OTP service): the country allowlist, test numbers, the instance's
//! hourly and daily send budgets (approximate: sharded counters, `otp_core::rules::budget`), and the
//! per-number-range cap (exact: one counter object per range), and for the public widget its
//! own daily budgets, per instance and per country calling code, on by default
//! (`WidgetConfig::daily_budget`, `country_daily_budget`). The `[abuse]` checks are off unless
//! the instance sets them. Budgets are taken before the recipient's object decides, and given
//! back ([`refund`]) when it refuses: only sends that happen are charged (docs/security.md).

use super::table::Schema;
use super::{call, pick_shard, stub, Op, BUDGETS};
use otp_core::config::{InstanceConfig, WidgetConfig};
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
    /// The instance's hourly or daily budget (or its widget's daily budget) is spent; retry
    /// after this many seconds.
    Budget { retry_after: i64 },
    /// Too many sends to this number range; retry after this many seconds.
    Range { retry_after: i64 },
    /// The widget's daily budget for the number's country is spent; retry after this many
    /// seconds.
    CountryBudget { retry_after: i64 },
}

/// What the caller may do: send (normally, or as a test number with a fixed code).
pub enum Allowed {
    /// A send, with the units it took from the budgets: hand them back ([`refund`]) if the
    /// send does not happen after all.
    Send(Charge),
    TestNumber(String),
}

/// The units one send took, object by object, so a send that does not happen gives them back.
#[derive(Debug, Default, Clone)]
pub struct Charge(Vec<(String, Vec<Take>)>);

impl Charge {
    /// True when nothing was taken (no budget is configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a send comes from: the widget's public API carries its own default budgets.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A server API (Hypersender, WhatOTP): an authenticated backend.
    Api,
    /// The widget API: anyone on the internet, through an allowed page.
    Widget(&'a WidgetConfig),
}

/// Runs the checks for a send to `to`. `test_key` says the caller used a test credential.
/// Every budget is taken all-or-none: a later check that refuses gives back what the earlier
/// ones took, so a refused send costs no budget. A refusal is logged and counted
/// (`code.budget_refused`, under the instance's first channel).
pub async fn check(
    env: &Env,
    inst: &InstanceConfig,
    to: &Recipient,
    test_key: bool,
    source: Source<'_>,
    now: i64,
) -> Result<std::result::Result<Allowed, Refused>> {
    let verdict = decide(env, inst, to, test_key, source, now).await?;
    if let Err(refused) = &verdict {
        let why = match refused {
            Refused::Country => "country",
            Refused::Budget { .. } => "budget",
            Refused::Range { .. } => "range",
            Refused::CountryBudget { .. } => "country_budget",
        };
        let channel = inst.channel.as_str();
        let line = crate::log::Line::new("code.budget_refused").str("instance", &inst.id);
        line.str("channel", channel)
            .to(to.digits())
            .str("outcome", why)
            .info();
        let event = otp_core::telemetry::CodeEvent::BudgetRefused;
        super::metrics::code_now(env, &inst.id, event, channel, to.digits(), 0).await;
    }
    Ok(verdict)
}

async fn decide(
    env: &Env,
    inst: &InstanceConfig,
    to: &Recipient,
    test_key: bool,
    source: Source<'_>,
    now: i64,
) -> Result<std::result::Result<Allowed, Refused>> {
    let abuse = &inst.abuse;
    if let Some(code) = abuse.test_code(to.digits()) {
        if test_key || abuse.test_numbers_enabled {
            crate::log::Line::new("code.test_number")
                .str("instance", &inst.id)
                .to(to.digits())
                .info();
            return Ok(Ok(Allowed::TestNumber(code.to_owned())));
        }
    }
    if !otp_core::rules::country::is_allowed(to.digits(), &abuse.allowed_countries) {
        return Ok(Err(Refused::Country));
    }
    let id = inst.id.to_ascii_lowercase();
    let mut charge = Charge::default();
    if let Err(refused) = instance_budgets(env, inst, source, now, &mut charge).await? {
        return Ok(Err(refused));
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
        let name = format!("{id}:range:{prefix}");
        if let Some(retry_after) = take(env, &name, std::slice::from_ref(&item)).await? {
            refund(env, &charge).await;
            return Ok(Err(Refused::Range { retry_after }));
        }
        charge.0.push((name, vec![item]));
    }
    if let Source::Widget(w) = source {
        let country = otp_core::rules::country::calling_code(to.digits()).unwrap_or("other");
        if w.country_daily_budget > 0 {
            let item = Take {
                key: format!("wc:{}", budget::window_key(now, Window::Day)),
                limit: w.country_daily_budget,
                expires_at: now + Window::Day.secs(),
                retry_after: budget::retry_after(now, Window::Day),
            };
            let name = format!("{id}:country:{country}");
            if let Some(retry_after) = take(env, &name, std::slice::from_ref(&item)).await? {
                refund(env, &charge).await;
                return Ok(Err(Refused::CountryBudget { retry_after }));
            }
            charge.0.push((name, vec![item]));
        }
    }
    Ok(Ok(Allowed::Send(charge)))
}

/// The instance-wide budgets of a send whose recipient is not known yet (a login link any
/// chat may claim): the hourly and daily budgets only.
pub async fn check_instance(
    env: &Env,
    inst: &InstanceConfig,
    now: i64,
) -> Result<std::result::Result<Charge, Refused>> {
    let mut charge = Charge::default();
    Ok(instance_budgets(env, inst, Source::Api, now, &mut charge)
        .await?
        .map(|()| charge))
}

/// Takes one unit from the instance's hourly and daily budgets and, for the widget, its
/// instance-wide daily one: sharded counters, one shard per send.
async fn instance_budgets(
    env: &Env,
    inst: &InstanceConfig,
    source: Source<'_>,
    now: i64,
    charge: &mut Charge,
) -> Result<std::result::Result<(), Refused>> {
    let abuse = &inst.abuse;
    let widget_daily = match source {
        Source::Widget(w) if w.daily_budget > 0 => Some(w.daily_budget),
        _ => None,
    };
    let mut items = Vec::new();
    for (limit, w, tag) in [
        (abuse.hourly_budget, Window::Hour, "h"),
        (abuse.daily_budget, Window::Day, "d"),
        (widget_daily, Window::Day, "wd"),
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
        let id = inst.id.to_ascii_lowercase();
        let name = format!("{id}:budget:{}", pick_shard(SHARDS));
        if let Some(retry_after) = take(env, &name, &items).await? {
            return Ok(Err(Refused::Budget { retry_after }));
        }
        charge.0.push((name, items));
    }
    Ok(Ok(()))
}

/// Gives back the units of a send that did not happen (the recipient's object refused it, or
/// a later budget did). Best effort: a failure is logged, and the budget then errs on the
/// strict side by one unit. Between the take and the refund a concurrent send may see the
/// unit as spent: budgets are approximate by that much too.
pub async fn refund(env: &Env, charge: &Charge) {
    for (name, items) in &charge.0 {
        let keys: Vec<&str> = items.iter().map(|t| t.key.as_str()).collect();
        let given: Result<TakeReply> =
            async { call(&stub(env, BUDGETS, name)?, Op::Refund, &keys).await }.await;
        if let Err(e) = given {
            crate::log::Line::new("budget.error")
                .str("op", "refund")
                .text("error", &e.to_string())
                .error();
        }
    }
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
        if Op::of(&req) == Some(Op::Refund) {
            // One unit back on each counter, never below zero.
            let keys: Vec<String> = req.json().await?;
            for key in keys {
                sql.exec(
                    "UPDATE counters SET value = value - 1 WHERE key = ? AND value > 0",
                    vec![key.into()],
                )?;
            }
            return Response::from_json(&TakeReply { retry_after: None });
        }
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
