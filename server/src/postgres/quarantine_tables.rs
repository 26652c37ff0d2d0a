//! [`QuarantineTables`] on PostgreSQL: the same rows and answers as the SQLite implementation.

use postgres::GenericClient;

use super::tables::PgTables;
use crate::error::ApiError;
use crate::quarantine_tables::{Held, QuarantineTables};

fn held(r: &postgres::Row) -> Held {
    Held {
        device: r.get(0),
        seq: r.get(1),
        hlc: r.get(2),
        received_ms: r.get(3),
        op: r.get(4),
    }
}

impl<C: GenericClient> PgTables<'_, C> {
    /// Whether the quarantine is empty, asked once per handle (until it holds or releases).
    fn nothing_held(&self) -> Result<bool, ApiError> {
        if let Some(known) = self.nothing_held.get() {
            return Ok(known);
        }
        let empty = !self.exists("SELECT 1 FROM server_quarantine LIMIT 1", &[])?;
        self.nothing_held.set(Some(empty));
        Ok(empty)
    }
}

impl<C: GenericClient> QuarantineTables for PgTables<'_, C> {
    fn hold(&self, h: &Held) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_quarantine (device_id, seq, hlc, received_ms, op)
             VALUES ($1, $2, $3, $4, $5)",
            &[&h.device, &h.seq, &h.hlc, &h.received_ms, &h.op],
        )?;
        self.nothing_held.set(Some(false));
        Ok(())
    }

    fn held_count(&self, device: &str) -> Result<i64, ApiError> {
        if self.nothing_held()? {
            return Ok(0);
        }
        Ok(self
            .query_opt(
                "SELECT COUNT(*) FROM server_quarantine WHERE device_id = $1",
                &[&device],
            )?
            .map_or(0, |r| r.get(0)))
    }

    fn held_max_seq(&self, device: &str) -> Result<u64, ApiError> {
        if self.nothing_held()? {
            return Ok(0);
        }
        Ok(self
            .query_opt(
                "SELECT COALESCE(MAX(seq), 0) FROM server_quarantine WHERE device_id = $1",
                &[&device],
            )?
            .map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn held_op(&self, device: &str, seq: u64) -> Result<Option<String>, ApiError> {
        if self.nothing_held()? {
            return Ok(None);
        }
        Ok(self
            .query_opt(
                "SELECT op FROM server_quarantine WHERE device_id = $1 AND seq = $2",
                &[&device, &(seq as i64)],
            )?
            .map(|r| r.get(0)))
    }

    fn held_after(&self, device: &str, seq: i64, limit: usize) -> Result<Vec<String>, ApiError> {
        Ok(self
            .query(
                "SELECT op FROM server_quarantine WHERE device_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
                &[&device, &seq, &(limit as i64)],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn all_held(&self) -> Result<Vec<Held>, ApiError> {
        Ok(self
            .query(
                "SELECT device_id, seq, hlc, received_ms, op FROM server_quarantine
                 ORDER BY device_id COLLATE \"C\", seq",
                &[],
            )?
            .iter()
            .map(held)
            .collect())
    }

    fn oldest_held(&self, limit: usize) -> Result<Vec<Held>, ApiError> {
        Ok(self
            .query(
                "SELECT device_id, seq, hlc, received_ms, op FROM server_quarantine
                 ORDER BY received_ms, device_id COLLATE \"C\", seq LIMIT $1",
                &[&(limit as i64)],
            )?
            .iter()
            .map(held)
            .collect())
    }

    fn release_held(&self, keys: &[(String, i64)]) -> Result<(), ApiError> {
        let (devices, seqs): (Vec<&str>, Vec<i64>) =
            keys.iter().map(|(d, s)| (d.as_str(), *s)).unzip();
        self.execute(
            "DELETE FROM server_quarantine q USING unnest($1::text[], $2::bigint[]) AS k (d, s)
             WHERE q.device_id = k.d AND q.seq = k.s",
            &[&devices, &seqs],
        )?;
        self.nothing_held.set(None);
        Ok(())
    }

    fn held_total(&self) -> Result<i64, ApiError> {
        Ok(self
            .query_opt("SELECT COUNT(*) FROM server_quarantine", &[])?
            .map_or(0, |r| r.get(0)))
    }
}
