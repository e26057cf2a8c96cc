//! One scheduler per Durable Object: due work lives in a SQLite `jobs` table, each job with
//! its own attempt counter, and the object's single alarm is set to the earliest due job.
//! (A second `set_alarm` would replace the first, so nothing else may set it.)

use serde::Deserialize;
use worker::{Result, ScheduledTime, SqlStorage, Storage};

/// The table; created by the owning object before first use.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)";

/// A job that is due.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub target: String,
    pub attempts: i64,
}

/// The jobs table of one object.
pub struct Jobs<'a> {
    sql: &'a SqlStorage,
}

#[derive(Deserialize)]
struct Due {
    due_ms: Option<f64>,
}

impl<'a> Jobs<'a> {
    pub fn new(sql: &'a SqlStorage) -> Self {
        Self { sql }
    }

    /// Adds a job due at `due_ms` (Unix milliseconds); returns its id.
    pub fn enqueue(&self, kind: &str, target: &str, due_ms: i64) -> Result<i64> {
        #[derive(Deserialize)]
        struct Id {
            id: f64,
        }
        let row: Id = self
            .sql
            .exec(
                "INSERT INTO jobs (kind, target, due_ms) VALUES (?, ?, ?) RETURNING id",
                vec![kind.into(), target.into(), due_ms.into()],
            )?
            .one()?;
        Ok(row.id as i64)
    }

    /// Jobs due at `now_ms`, oldest first.
    pub fn due(&self, now_ms: i64) -> Result<Vec<Job>> {
        self.sql
            .exec(
                "SELECT id, kind, target, attempts FROM jobs WHERE due_ms <= ? ORDER BY due_ms, id",
                vec![now_ms.into()],
            )?
            .to_array()
    }

    /// Removes a finished (or abandoned) job.
    pub fn finish(&self, id: i64) -> Result<()> {
        self.sql
            .exec("DELETE FROM jobs WHERE id = ?", vec![id.into()])?;
        Ok(())
    }

    /// Records a failed run and moves the job to `due_ms`.
    pub fn retry_at(&self, id: i64, due_ms: i64, error: &str) -> Result<()> {
        self.sql.exec(
            "UPDATE jobs SET attempts = attempts + 1, due_ms = ?, last_error = ? WHERE id = ?",
            vec![due_ms.into(), error.into(), id.into()],
        )?;
        Ok(())
    }

    /// When the earliest job is due, if any.
    pub fn next_due(&self) -> Result<Option<i64>> {
        let row: Due = self
            .sql
            .exec("SELECT MIN(due_ms) AS due_ms FROM jobs", None)?
            .one()?;
        Ok(row.due_ms.map(|d| d as i64))
    }

    /// Sets the object's alarm to the earliest due job, or clears it when none is left.
    pub async fn arm(&self, storage: &Storage) -> Result<()> {
        match self.next_due()? {
            Some(due) => {
                let at = js_sys::Date::new(&(due as f64).into());
                storage.set_alarm(ScheduledTime::new(at)).await
            }
            None => storage.delete_alarm().await,
        }
    }
}
