//! [`WebhookTables`] on PostgreSQL: deliveries are taken with `FOR UPDATE SKIP LOCKED`, so
//! instances sending at once take different deliveries and none waits for another.

use postgres::GenericClient;

use super::tables::PgTables;
use crate::error::ApiError;
use crate::webhook_tables::{AttemptRow, Delivery, Pending, WebhookTables};

impl<C: GenericClient> WebhookTables for PgTables<'_, C> {
    fn enqueue_delivery(&self, event: &str, body: &str, now_ms: i64) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_webhook_deliveries (event, body, created_ms, next_attempt_ms)
             VALUES ($1, $2, $3, $3)",
            &[&event, &body, &now_ms],
        )?;
        Ok(())
    }

    fn take_due(
        &self,
        now_ms: i64,
        max_attempts: u32,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<Pending>, ApiError> {
        let mut taken: Vec<Pending> = self
            .query(
                "UPDATE server_webhook_deliveries SET next_attempt_ms = $4
                 WHERE id IN (SELECT id FROM server_webhook_deliveries
                     WHERE delivered_ms IS NULL AND next_attempt_ms <= $1 AND attempts < $2
                     ORDER BY next_attempt_ms, id LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, event, body, attempts",
                &[
                    &now_ms,
                    &(max_attempts as i32),
                    &(limit as i64),
                    &(now_ms + lease_ms),
                ],
            )?
            .iter()
            .map(|r| Pending {
                id: r.get(0),
                event: r.get(1),
                body: r.get(2),
                attempts: r.get::<_, i32>(3) as u32,
            })
            .collect();
        taken.sort_by_key(|p| p.id);
        Ok(taken)
    }

    fn record_attempt(&self, a: &AttemptRow) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_webhook_deliveries SET attempts = $2, last_status = $3,
                 last_error = $4, delivered_ms = $5, next_attempt_ms = $6 WHERE id = $1",
            &[
                &a.id,
                &(a.attempts as i32),
                &a.status.map(i32::from),
                &a.error,
                &a.delivered_ms,
                &a.next_attempt_ms,
            ],
        )?;
        Ok(())
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, ApiError> {
        Ok(self
            .query(
                "SELECT id, event, attempts, last_status, delivered_ms
                 FROM server_webhook_deliveries ORDER BY id LIMIT $1",
                &[&(limit as i64)],
            )?
            .iter()
            .map(|r| Delivery {
                id: r.get(0),
                event: r.get(1),
                attempts: r.get::<_, i32>(2) as u32,
                last_status: r.get::<_, Option<i32>>(3).map(|s| s as u16),
                delivered_ms: r.get(4),
            })
            .collect())
    }
}
