//! Jobs that run once per period (the morning digest, the workers' reminders): a run claims
//! its period in the transaction that does its work, so a run that fails claims nothing and
//! one that commits is the only one, on one server or several. One interface, implemented on
//! SQLite here (the last day in the settings table) and on PostgreSQL in `postgres/jobs.rs`
//! (a row per job and period), one test suite for both (`server/tests/server_tables.rs`).

use rusqlite::OptionalExtension;

use crate::error::ApiError;
use crate::tables::SqliteTables;

/// Periods claimed by jobs.
pub trait JobTables {
    /// Claims `period` (a day, `YYYY-MM-DD`) for `job`: `true` when no run had, `false` when
    /// one did (nothing changed).
    fn claim_period(&self, job: &str, period: &str) -> Result<bool, ApiError>;
}

impl JobTables for SqliteTables {
    fn claim_period(&self, job: &str, period: &str) -> Result<bool, ApiError> {
        // One writer: reading and writing in its transaction is enough. The key is the one
        // the jobs always used (`digest_date`, `reminder_date`).
        let key = format!("{job}_date");
        let last: Option<String> = self
            .prepare_cached("SELECT value FROM server_meta WHERE key = ?1")?
            .query_row([&key], |r| r.get(0))
            .optional()?;
        if last.as_deref() == Some(period) {
            return Ok(false);
        }
        self.prepare_cached(
            "INSERT INTO server_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([&key, period])?;
        Ok(true)
    }
}
