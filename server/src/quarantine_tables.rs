//! Where ops stamped too far in the future wait (quarantine) until the server's clock catches
//! up or an admin releases them, shared by every instance. One interface, implemented on
//! SQLite here and on PostgreSQL in `postgres/quarantine_tables.rs`, one test suite for both
//! (`server/tests/server_tables.rs`). The rules (what is held, what is released) are in
//! `sync.rs`.

use rusqlite::{OptionalExtension, params};

use crate::error::ApiError;
use crate::tables::SqliteTables;

/// An op held in quarantine (as JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub device: String,
    pub seq: i64,
    pub hlc: i64,
    pub received_ms: i64,
    pub op: String,
}

/// The quarantine.
pub trait QuarantineTables {
    /// Holds an op.
    fn hold(&self, held: &Held) -> Result<(), ApiError>;
    /// How many of a device's ops are held.
    fn held_count(&self, device: &str) -> Result<i64, ApiError>;
    /// The highest seq of a device's ops held (0: none).
    fn held_max_seq(&self, device: &str) -> Result<u64, ApiError>;
    /// A device's op held under `seq`, as JSON.
    fn held_op(&self, device: &str, seq: u64) -> Result<Option<String>, ApiError>;
    /// A device's ops held after `seq`, in seq order, at most `limit`, as JSON.
    fn held_after(&self, device: &str, seq: i64, limit: usize) -> Result<Vec<String>, ApiError>;
    /// Every op held, by device and seq.
    fn all_held(&self) -> Result<Vec<Held>, ApiError>;
    /// The ops held longest, at most `limit` (the admin's list).
    fn oldest_held(&self, limit: usize) -> Result<Vec<Held>, ApiError>;
    /// Lets ops out of the quarantine (they are being applied).
    fn release_held(&self, keys: &[(String, i64)]) -> Result<(), ApiError>;
    /// Ops held in all.
    fn held_total(&self) -> Result<i64, ApiError>;
}

fn held_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Held> {
    Ok(Held {
        device: r.get(0)?,
        seq: r.get(1)?,
        hlc: r.get(2)?,
        received_ms: r.get(3)?,
        op: r.get(4)?,
    })
}

impl QuarantineTables for SqliteTables {
    fn hold(&self, h: &Held) -> Result<(), ApiError> {
        self.prepare_cached(
            "INSERT INTO server_quarantine (device_id, seq, hlc, received_ms, op)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![h.device, h.seq, h.hlc, h.received_ms, h.op])?;
        Ok(())
    }

    fn held_count(&self, device: &str) -> Result<i64, ApiError> {
        Ok(self
            .prepare_cached("SELECT COUNT(*) FROM server_quarantine WHERE device_id = ?1")?
            .query_row([device], |r| r.get(0))?)
    }

    fn held_max_seq(&self, device: &str) -> Result<u64, ApiError> {
        let n: i64 = self
            .prepare_cached(
                "SELECT COALESCE(MAX(seq), 0) FROM server_quarantine WHERE device_id = ?1",
            )?
            .query_row([device], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn held_op(&self, device: &str, seq: u64) -> Result<Option<String>, ApiError> {
        Ok(self
            .prepare_cached("SELECT op FROM server_quarantine WHERE device_id = ?1 AND seq = ?2")?
            .query_row(params![device, seq as i64], |r| r.get(0))
            .optional()?)
    }

    fn held_after(&self, device: &str, seq: i64, limit: usize) -> Result<Vec<String>, ApiError> {
        Ok(self
            .prepare_cached(
                "SELECT op FROM server_quarantine WHERE device_id = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )?
            .query_map(params![device, seq, limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn all_held(&self) -> Result<Vec<Held>, ApiError> {
        Ok(self
            .prepare(
                "SELECT device_id, seq, hlc, received_ms, op FROM server_quarantine
                 ORDER BY device_id, seq",
            )?
            .query_map([], held_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn oldest_held(&self, limit: usize) -> Result<Vec<Held>, ApiError> {
        Ok(self
            .prepare(
                "SELECT device_id, seq, hlc, received_ms, op FROM server_quarantine
                 ORDER BY received_ms, device_id, seq LIMIT ?1",
            )?
            .query_map([limit as i64], held_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn release_held(&self, keys: &[(String, i64)]) -> Result<(), ApiError> {
        let mut delete =
            self.prepare_cached("DELETE FROM server_quarantine WHERE device_id = ?1 AND seq = ?2")?;
        for (device, seq) in keys {
            delete.execute(params![device, seq])?;
        }
        Ok(())
    }

    fn held_total(&self) -> Result<i64, ApiError> {
        Ok(self.query_row("SELECT COUNT(*) FROM server_quarantine", [], |r| r.get(0))?)
    }
}
