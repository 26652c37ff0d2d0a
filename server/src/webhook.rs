//! Outgoing webhooks, so a city's SMS or WeChat gateway can tell people about escalations and
//! overdue hazards. Events are queued in the database (in the same write as what caused them),
//! then delivered with an HMAC-SHA256 signature of the body, retried with exponential backoff,
//! and every attempt is logged in `server_webhook_deliveries`.
//!
//! Headers: `X-Xuncha-Event`, `X-Xuncha-Delivery` (the delivery id: receivers de-duplicate on
//! it, since a retry after a lost answer delivers twice), and
//! `X-Xuncha-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::error::ApiError;
use crate::webhook_tables::{AttemptRow, Pending, WebhookTables};

/// How long a delivery taken for sending is kept from other senders: longer than an attempt
/// can take (the client gives up sooner), so only a sender that died leaves it to another.
pub const LEASE_MS: i64 = 120_000;

/// Where and how to deliver.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Receiver URL.
    pub url: String,
    /// Shared secret for the signature.
    pub secret: String,
    /// Attempts before a delivery is given up (it stays in the log).
    pub max_attempts: u32,
    /// Wait after the first failure; doubles each time, up to an hour.
    pub first_retry: Duration,
}

/// Queues an event (call inside the write that caused it).
pub fn enqueue<T: Serialize>(
    conn: &dyn WebhookTables,
    event: &str,
    payload: &T,
    now_ms: i64,
) -> Result<(), ApiError> {
    let body = serde_json::to_string(
        &serde_json::json!({ "event": event, "at_ms": now_ms, "data": payload }),
    )
    .map_err(ApiError::internal)?;
    conn.enqueue_delivery(event, &body, now_ms)
}

/// The signature header's value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Deliveries due at `now_ms` (at most `limit`), taken for sending (see [`LEASE_MS`]).
pub fn take_due(
    conn: &dyn WebhookTables,
    now_ms: i64,
    max_attempts: u32,
    limit: usize,
) -> Result<Vec<Pending>, ApiError> {
    conn.take_due(now_ms, max_attempts, limit, LEASE_MS)
}

/// The outcome of one attempt.
#[derive(Debug)]
pub struct Attempt {
    id: i64,
    attempts: u32,
    status: Option<u16>,
    error: Option<String>,
}

/// Sends one delivery (no database access, so it runs outside the writer).
pub async fn send(http: &reqwest::Client, config: &WebhookConfig, p: Pending) -> Attempt {
    let result = http
        .post(&config.url)
        .header("content-type", "application/json")
        .header("x-xuncha-event", &p.event)
        .header("x-xuncha-delivery", p.id.to_string())
        .header(
            "x-xuncha-signature",
            signature(&config.secret, p.body.as_bytes()),
        )
        .body(p.body)
        .send()
        .await;
    let (status, error) = match result {
        Ok(res) if res.status().is_success() => (Some(res.status().as_u16()), None),
        Ok(res) => (
            Some(res.status().as_u16()),
            Some(format!("answered {}", res.status())),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    Attempt {
        id: p.id,
        attempts: p.attempts + 1,
        status,
        error,
    }
}

/// Logs an attempt: delivered, or the next try scheduled with backoff.
pub fn record(
    conn: &dyn WebhookTables,
    config: &WebhookConfig,
    a: &Attempt,
    now_ms: i64,
) -> Result<(), ApiError> {
    let backoff = config
        .first_retry
        .saturating_mul(1 << a.attempts.saturating_sub(1).min(16))
        .min(Duration::from_secs(3600));
    conn.record_attempt(&AttemptRow {
        id: a.id,
        attempts: a.attempts,
        status: a.status,
        error: a.error.clone(),
        delivered_ms: a.error.is_none().then_some(now_ms),
        next_attempt_ms: now_ms + backoff.as_millis() as i64,
    })
}

/// Delivers what is due; returns how many were delivered. Called periodically.
pub async fn deliver_due(
    state: &crate::AppState,
    http: &reqwest::Client,
    config: &WebhookConfig,
    now_ms: i64,
) -> Result<usize, ApiError> {
    let max = config.max_attempts;
    let pending = state
        .tables(move |tables| take_due(tables, now_ms, max, 100))
        .await?;
    let mut delivered = 0;
    for p in pending {
        let attempt = send(http, config, p).await;
        delivered += usize::from(attempt.error.is_none());
        let c = config.clone();
        state
            .tables(move |tables| record(tables, &c, &attempt, now_ms))
            .await?;
    }
    Ok(delivered)
}
