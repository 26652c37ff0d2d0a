//! Where outgoing webhook deliveries are queued and logged, shared by every instance. One
//! interface, implemented on SQLite here and on PostgreSQL in `postgres/webhook_tables.rs`,
//! one test suite for both (`server/tests/server_tables.rs`). A delivery taken for sending
//! is leased: no other sender takes it until the lease ends, and if its sender dies the
//! delivery is due again then (receivers de-duplicate on the delivery id).

use rusqlite::params;

use crate::error::ApiError;
use crate::tables::SqliteTables;

/// A delivery taken for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub event: String,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: i64,
    /// Attempts made, this one included.
    pub attempts: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// When it was delivered (`None`: not yet).
    pub delivered_ms: Option<i64>,
    /// When to try again if not delivered.
    pub next_attempt_ms: i64,
}

/// A delivery as the log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub event: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub delivered_ms: Option<i64>,
}

/// The webhook delivery queue and log.
pub trait WebhookTables {
    /// Queues an event's body, due at once.
    fn enqueue_delivery(&self, event: &str, body: &str, now_ms: i64) -> Result<(), ApiError>;
    /// Takes up to `limit` deliveries due at `now_ms` with fewer than `max_attempts` attempts,
    /// oldest due first, leasing each until `now_ms + lease_ms`.
    fn take_due(
        &self,
        now_ms: i64,
        max_attempts: u32,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<Pending>, ApiError>;
    /// Logs an attempt.
    fn record_attempt(&self, attempt: &AttemptRow) -> Result<(), ApiError>;
    /// The log: the first `limit` deliveries, in the order they were queued.
    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, ApiError>;
}

impl WebhookTables for SqliteTables {
    fn enqueue_delivery(&self, event: &str, body: &str, now_ms: i64) -> Result<(), ApiError> {
        self.prepare_cached(
            "INSERT INTO server_webhook_deliveries (event, body, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?3)",
        )?
        .execute(params![event, body, now_ms])?;
        Ok(())
    }

    fn take_due(
        &self,
        now_ms: i64,
        max_attempts: u32,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<Pending>, ApiError> {
        let mut rows: Vec<(i64, Pending)> = self
            .prepare_cached(
                "UPDATE server_webhook_deliveries SET next_attempt_ms = ?4
                 WHERE id IN (SELECT id FROM server_webhook_deliveries
                     WHERE delivered_ms IS NULL AND next_attempt_ms <= ?1 AND attempts < ?2
                     ORDER BY next_attempt_ms, id LIMIT ?3)
                 RETURNING id, event, body, attempts",
            )?
            .query_map(
                params![now_ms, max_attempts, limit as i64, now_ms + lease_ms],
                |r| {
                    Ok((
                        r.get(0)?,
                        Pending {
                            id: r.get(0)?,
                            event: r.get(1)?,
                            body: r.get(2)?,
                            attempts: r.get(3)?,
                        },
                    ))
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        // RETURNING gives no order: by id, as they were queued.
        rows.sort_by_key(|(id, _)| *id);
        Ok(rows.into_iter().map(|(_, p)| p).collect())
    }

    fn record_attempt(&self, a: &AttemptRow) -> Result<(), ApiError> {
        self.prepare_cached(
            "UPDATE server_webhook_deliveries SET attempts = ?2, last_status = ?3, last_error = ?4,
                 delivered_ms = ?5, next_attempt_ms = ?6 WHERE id = ?1",
        )?
        .execute(params![
            a.id,
            a.attempts,
            a.status,
            a.error,
            a.delivered_ms,
            a.next_attempt_ms
        ])?;
        Ok(())
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, ApiError> {
        Ok(self
            .prepare_cached(
                "SELECT id, event, attempts, last_status, delivered_ms
                 FROM server_webhook_deliveries ORDER BY id LIMIT ?1",
            )?
            .query_map([limit as i64], |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    event: r.get(1)?,
                    attempts: r.get(2)?,
                    last_status: r.get(3)?,
                    delivered_ms: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }
}
