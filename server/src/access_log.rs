//! One line per request for operators (`tracing`, target `xuncha::access`): a request id
//! (also sent back as `X-Request-Id`), the signed-in user and device when there is one, the
//! route as routed (ids left out), status, latency, response bytes and the client's address
//! (behind a trusted proxy, the real one). Plain text to stderr (journald) by default, JSON
//! with `--log-format json`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::AppState;
use crate::login::ClientAddr;

/// Who made the request, filled in by the [`crate::accounts::Caller`] extractor when it
/// succeeds (the log line is written after the handler, which the middleware cannot see into).
#[derive(Clone, Debug, Default)]
pub struct Who(Arc<Mutex<Option<(String, String)>>>);

impl Who {
    /// Notes the signed-in user and device.
    pub fn set(&self, user: &str, device: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((user.to_owned(), device.to_owned()));
    }

    fn get(&self) -> (String, String) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }
}

/// Request ids for [`tower_http::request_id`]: the process's start time and a counter
/// (unique across restarts, short). An id a proxy in front already set is kept.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ids;

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let start = START.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
        let id = format!("{start:x}-{:x}", COUNT.fetch_add(1, Ordering::Relaxed));
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Before [`Ids`]: a request id from outside is kept only when it looks like one (at most 64
/// letters, digits, `-`, `_`, `.` or `:`, as nginx's `$request_id` or a UUID), so a client
/// cannot write what it likes into the log; otherwise the server makes its own.
pub async fn plausible_request_id(mut request: Request, next: Next) -> Response {
    let odd = request.headers().get("x-request-id").is_some_and(|v| {
        let v = v.as_bytes();
        v.is_empty()
            || v.len() > 64
            || !v
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if odd {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// The middleware.
pub async fn log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|r| r.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let who = Who::default();
    let (mut parts, body) = request.into_parts();
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = parts.method.to_string();
    let Ok(ClientAddr(client)) = ClientAddr::from_request_parts(&mut parts, &state).await;
    parts.extensions.insert(who.clone());
    let started = Instant::now();
    let response = next.run(Request::from_parts(parts, body)).await;
    let bytes = response.body().size_hint().exact().unwrap_or(0);
    let (user, device) = who.get();
    tracing::info!(
        target: "xuncha::access",
        request_id = %id,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        bytes,
        user = %user,
        device = %device,
        client = %client.map(|c| c.to_string()).unwrap_or_default(),
        "request"
    );
    response
}

/// How the log is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event (journald adds the time).
    #[default]
    Text,
    /// One JSON object per line (for Loki, Elasticsearch and the like).
    Json,
}

/// Sends the server's log (requests, jobs, start-up) to stderr from `level` up; `RUST_LOG`,
/// when set, takes precedence (e.g. `RUST_LOG=xuncha::access=off,info` drops request lines).
pub fn init(format: LogFormat, level: tracing::Level) {
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::from_level(level).into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
