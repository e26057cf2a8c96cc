//! The one job runner of the Durable Objects. Due work (deliveries, link replies, expiry,
//! site callbacks) lives in a SQLite `jobs` table, each job with its own attempt counter, and
//! the object's single alarm is set to the earliest due job (a second `set_alarm` would
//! replace the first, so nothing else sets it). A job ends [`Outcome::Done`], is retried on its
//! kind's [`Retry`] policy (otp-core), or gives up; the runner records which, never panics.
//!
//! The same alarm ends the object's retention: each activity pushes a `lapse` time (the
//! instance's `retention_days` ahead, [`Jobs::touch`]); with no job left the alarm is set to
//! it, and when it comes the object deletes all of its storage ([`Jobs::settle`]).

use super::table::Schema;
use otp_core::rules::schedule::Retry;
use serde::{Deserialize, Serialize};
use worker::{Env, Result, SqlStorage, Storage};

/// The table; created by the owning object before first use.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)";

/// How long a job that started running is held, in milliseconds: it is due again only this
/// long after it started, which is when its run is taken for lost (its isolate went away).
/// Longer than the longest outbound deadline (`OUTBOUND_TIMEOUT_MS`, at most 30 s), so a slow
/// send is never started a second time while the first is still waiting for its answer.
pub const LEASE_MS: i64 = 60_000;

/// What a job does; stored by name in the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Deliver a challenge's code (recipient object).
    Deliver,
    /// Deliver a queued free-text message (recipient object).
    Message,
    /// Expire a link challenge (link object).
    Expire,
    /// Hand a link reply to the recipient's object (link object).
    Reply,
    /// POST a signed callback to the site (link object).
    Callback,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deliver => "deliver",
            Self::Message => "message",
            Self::Expire => "expire",
            Self::Reply => "reply",
            Self::Callback => "callback",
        }
    }
}

/// A job that is due.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub target: String,
    pub attempts: i64,
}

/// How one run of a job ended.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// Worth another try later, on the kind's retry policy.
    Retry(String),
    /// Will never work.
    GiveUp(String),
}

impl From<crate::channels::DeliveryError> for Outcome {
    fn from(e: crate::channels::DeliveryError) -> Self {
        match e {
            crate::channels::DeliveryError::Retryable(why) => Self::Retry(why),
            crate::channels::DeliveryError::Permanent(why) => Self::GiveUp(why),
        }
    }
}

/// What an object does with its jobs.
#[allow(async_fn_in_trait)]
pub trait Runner {
    /// Runs one job once.
    async fn run(&self, job: &Job) -> Outcome;
    /// How jobs of `kind` are retried.
    fn retry(&self, kind: JobKind) -> Retry;
    /// After a job gave up (a permanent failure, or its last retry failed).
    fn gave_up(&self, job: &Job, why: &str) -> Result<()>;
}

/// The jobs table of one object.
pub struct Jobs<'a> {
    sql: &'a SqlStorage,
}

#[derive(Deserialize)]
struct Next {
    job_ms: Option<f64>,
    lapse_ms: Option<f64>,
}

impl<'a> Jobs<'a> {
    pub fn new(sql: &'a SqlStorage) -> Self {
        Self { sql }
    }

    /// Adds a job due at `due_ms` (Unix milliseconds); returns its id.
    pub fn enqueue(&self, kind: JobKind, target: &str, due_ms: i64) -> Result<i64> {
        #[derive(Deserialize)]
        struct Id {
            id: f64,
        }
        let row: Id = self
            .sql
            .exec(
                "INSERT INTO jobs (kind, target, due_ms) VALUES (?, ?, ?) RETURNING id",
                vec![kind.as_str().into(), target.into(), due_ms.into()],
            )?
            .one()?;
        Ok(row.id as i64)
    }

    /// Jobs due at `now_ms`, oldest first.
    fn due(&self, now_ms: i64) -> Result<Vec<Job>> {
        self.sql
            .exec(
                "SELECT id, kind, target, attempts FROM jobs WHERE due_ms <= ? ORDER BY due_ms, id",
                vec![now_ms.into()],
            )?
            .to_array()
    }

    /// Removes every job (an object starting over).
    pub fn clear(&self) -> Result<()> {
        self.sql.exec("DELETE FROM jobs", None)?;
        Ok(())
    }

    fn finish(&self, id: i64) -> Result<()> {
        self.sql
            .exec("DELETE FROM jobs WHERE id = ?", vec![id.into()])?;
        Ok(())
    }

    fn retry_at(&self, id: i64, due_ms: i64, error: &str) -> Result<()> {
        self.sql.exec(
            "UPDATE jobs SET attempts = attempts + 1, due_ms = ?, last_error = ? WHERE id = ?",
            vec![due_ms.into(), error.into(), id.into()],
        )?;
        Ok(())
    }

    /// Holds a job for one run: due again only when the lease is over.
    fn lease(&self, id: i64, until_ms: i64) -> Result<()> {
        self.sql.exec(
            "UPDATE jobs SET due_ms = ? WHERE id = ?",
            vec![until_ms.into(), id.into()],
        )?;
        Ok(())
    }

    /// Runs `job` once and records its outcome: finished, rescheduled, or given up. The job is
    /// leased first ([`LEASE_MS`]), so neither the alarm nor another run picks it up while
    /// this run waits on the network.
    pub async fn run(&self, runner: &impl Runner, job: &Job, now_ms: i64) -> Result<()> {
        self.lease(job.id, now_ms + LEASE_MS)?;
        match runner.run(job).await {
            Outcome::Done => self.finish(job.id),
            Outcome::Retry(why) => match runner.retry(job.kind).delay(job.attempts as u32 + 1) {
                Some(delay) => self.retry_at(job.id, now_ms + delay * 1000, &why),
                None => {
                    runner.gave_up(job, &why)?;
                    self.finish(job.id)
                }
            },
            Outcome::GiveUp(why) => {
                runner.gave_up(job, &why)?;
                self.finish(job.id)
            }
        }
    }

    /// Runs every job due at `now_ms`, oldest first.
    pub async fn run_due(&self, runner: &impl Runner, now_ms: i64) -> Result<()> {
        for job in self.due(now_ms)? {
            // An earlier job's run awaited the network: another run may have taken or
            // finished this one meanwhile.
            if self.is_due(job.id, now_ms)? {
                self.run(runner, &job, now_ms).await?;
            }
        }
        Ok(())
    }

    /// True while job `id` exists and is due at `now_ms` (not leased by a run).
    fn is_due(&self, id: i64, now_ms: i64) -> Result<bool> {
        #[derive(Deserialize)]
        struct Count {
            n: f64,
        }
        let row: Count = self
            .sql
            .exec(
                "SELECT COUNT(*) AS n FROM jobs WHERE id = ? AND due_ms <= ?",
                vec![id.into(), now_ms.into()],
            )?
            .one()?;
        Ok(row.n > 0.0)
    }

    /// Records activity: the object's data is kept until `until` (Unix seconds), then
    /// deleted by [`Jobs::settle`]. Kept in the object's `kv` table.
    pub fn touch(&self, until: i64) -> Result<()> {
        super::table::write(self.sql, "lapse", &until)
    }

    /// The earliest due job, and when the object's retention lapses.
    fn next_ms(&self) -> Result<Next> {
        self.sql
            .exec(
                "SELECT (SELECT MIN(due_ms) FROM jobs) AS job_ms, \
                 (SELECT CAST(v AS INTEGER) * 1000 FROM kv WHERE k = 'lapse') AS lapse_ms",
                None,
            )?
            .one()
    }

    /// After an alarm's jobs ran: deletes all of the object's storage once its retention
    /// lapsed with no job left, or arms the alarm again. An object keeps one alarm for both:
    /// the earliest due job, else the retention lapse.
    pub async fn settle(&self, storage: &Storage, env: &Env, schema: &Schema) -> Result<()> {
        let next = self.next_ms()?;
        if next.job_ms.is_none()
            && next
                .lapse_ms
                .is_some_and(|l| l as i64 <= crate::clock::now_ms())
        {
            return schema.wipe(storage).await;
        }
        self.arm(storage, env).await
    }

    /// Sets the object's alarm to the earliest due job, or, with none left, to its retention
    /// lapse; clears it when there is neither.
    pub async fn arm(&self, storage: &Storage, env: &Env) -> Result<()> {
        let next = self.next_ms()?;
        match next.job_ms.or(next.lapse_ms) {
            Some(due) => {
                let mut wait = (due as i64 - crate::clock::now_ms()).max(0);
                if let Some(cap) = crate::clock::alarm_cap_ms(env) {
                    wait = wait.min(cap);
                }
                storage
                    .set_alarm(std::time::Duration::from_millis(wait as u64))
                    .await
            }
            None => storage.delete_alarm().await,
        }
    }
}
