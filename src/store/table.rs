//! The small key -> JSON table every Durable Object keeps in its
//! SQLite database, read and written synchronously (no `await`, so a load-decide-save
//! sequence is atomic within the object).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{Result, SqlStorage};

/// The table; created by the owning object before first use.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)";

#[derive(Deserialize)]
struct Row {
    v: String,
}

/// Reads key `key`, if present.
pub fn read<T: DeserializeOwned>(sql: &SqlStorage, key: &str) -> Result<Option<T>> {
    let rows: Vec<Row> = sql
        .exec("SELECT v FROM kv WHERE k = ?", vec![key.into()])?
        .to_array()?;
    rows.first()
        .map(|r| serde_json::from_str(&r.v).map_err(worker::Error::from))
        .transpose()
}

/// Writes key `key`.
pub fn write<T: Serialize>(sql: &SqlStorage, key: &str, value: &T) -> Result<()> {
    sql.exec(
        "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        vec![key.into(), serde_json::to_string(value)?.into()],
    )?;
    Ok(())
}

/// A [`Schema::wipe`] under way.
pub type Wiping<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>;

/// An object's tables, created once per object instance (not on every request).
#[derive(Default)]
pub struct Schema(std::cell::Cell<bool>);

impl Schema {
    /// Runs `ddl` (`CREATE TABLE IF NOT EXISTS …` statements) the first time only.
    pub fn ensure(&self, sql: &SqlStorage, ddl: &str) -> Result<()> {
        if !self.0.get() {
            sql.exec(ddl, None)?;
            self.0.set(true);
        }
        Ok(())
    }

    /// Deletes all of the object's storage and its alarm (retention lapsed, or an erasure);
    /// the tables are created again on next use. Boxed: one copy for its four callers.
    pub fn wipe<'a>(&'a self, storage: &'a worker::Storage) -> Wiping<'a> {
        Box::pin(async move {
            storage.delete_alarm().await?;
            storage.delete_all().await?;
            self.0.set(false);
            Ok(())
        })
    }
}
