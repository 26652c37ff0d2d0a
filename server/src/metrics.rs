//! `GET /metrics`: the server's figures for Prometheus (OpenMetrics text format). Requests by
//! route and status with their latency, ops pushed and pulled, group commits, and what the
//! replica holds (counted when scraped). Meant for the operators' network, like `/status`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use xuncha_core::calendar::YearStatus;

use xuncha_core::model::Severity;

use crate::AppState;
use crate::accounts::Scope;
use crate::dashboard::map::Filter;
use crate::error::ApiError;

/// A request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/v1/photos/{sha256}`), never the raw path, so ids do not
    /// multiply the series; `unmatched` for 404s.
    route: String,
    status: u16,
}

/// A route's labels (latency).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// What became of pushed ops.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// A year of the working-day calendar.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct YearLabels {
    year: i32,
}

/// What the replica holds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeldLabels {
    what: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The server's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pushed: Family<OutcomeLabels, Counter>,
    pulled: Counter,
    held: Family<HeldLabels, Gauge>,
    calendar_official: Family<YearLabels, Gauge>,
    overdue: Family<SeverityLabels, Gauge>,
    last_backup: Gauge,
    backup_failing: Gauge,
}

/// A hazard's severity.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    severity: &'static str,
}

impl Metrics {
    /// Registers everything; `group` is the writer's (commits, writes) counters.
    pub fn new(group: (Counter, Counter)) -> Metrics {
        let mut registry = Registry::with_prefix("xuncha");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time until the answer's status and headers, by route (a streamed body follows)",
            latency.clone(),
        );
        let pushed = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "pushed_ops",
            "Ops received in pushes: applied, duplicates, deferred (unknown to this version), quarantined (clock ahead)",
            pushed.clone(),
        );
        let pulled = Counter::default();
        registry.register("pulled_ops", "Ops sent in pulls", pulled.clone());
        registry.register(
            "group_commits",
            "Commits of grouped writes (pushes)",
            group.0,
        );
        registry.register(
            "grouped_writes",
            "Writes committed in groups; divided by group_commits, the mean group size",
            group.1,
        );
        let held = Family::<HeldLabels, Gauge>::default();
        registry.register(
            "held",
            "What the replica holds: premises, inspections, open hazards, ops, ops in quarantine, stored photos",
            held.clone(),
        );
        let calendar_official = Family::<YearLabels, Gauge>::default();
        registry.register(
            "calendar_official",
            "1 when the working-day calendar of the year is the official one, 0 when provisional or missing",
            calendar_official.clone(),
        );
        let overdue = Family::<SeverityLabels, Gauge>::default();
        registry.register(
            "overdue_hazards",
            "Open hazards past their rectification deadline (逾期隐患), by severity",
            overdue.clone(),
        );
        let last_backup = Gauge::default();
        registry.register(
            "last_backup_timestamp_seconds",
            "When `xuncha-server backup` last copied the database (Unix time; 0: never)",
            last_backup.clone(),
        );
        let backup_failing = Gauge::default();
        registry.register(
            "backup_failing",
            "1 when the last scheduled backup failed (see /status for why), else 0",
            backup_failing.clone(),
        );
        Metrics {
            last_backup,
            backup_failing,
            overdue,
            registry,
            requests,
            latency,
            pushed,
            pulled,
            held,
            calendar_official,
        }
    }

    /// Counts the outcome of a push.
    pub fn pushed(&self, applied: usize, duplicates: usize, deferred: usize, quarantined: usize) {
        for (outcome, n) in [
            ("applied", applied),
            ("duplicate", duplicates),
            ("deferred", deferred),
            ("quarantined", quarantined),
        ] {
            self.pushed
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n as u64);
        }
    }

    /// Counts ops sent in a pull.
    pub fn pulled(&self, n: usize) {
        self.pulled.inc_by(n as u64);
    }
}

/// Middleware: counts every answer and its latency by route.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Only the methods the API uses: a client inventing methods must not invent series.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = state.now_ms();
    let (counts, extra, years, (last_backup_ms, backup_failing)) = state
        .read_store(move |store, tables| {
            let extra = [
                ("quarantined_ops", tables.held_total()?),
                ("photos", tables.photo_count()?),
            ];
            Ok((
                store.counts()?,
                extra,
                crate::status::calendar_years(store.calendar(), now),
                (
                    crate::backup::last_backup_ms(store.conn())?,
                    crate::backup::last_failure(store.conn())?.is_some(),
                ),
            ))
        })
        .await?;
    let today = crate::dashboard::today(&state);
    let overdue = crate::dashboard::with_index(&state, move |index, _, _| {
        let only_overdue = Filter {
            overdue: true,
            ..Filter::default()
        };
        let (mut major, mut general) = (0, 0);
        for (_, p) in index.matching(&Scope::All, &only_overdue, today) {
            if p.severity == Severity::SuspectedMajor {
                major += 1;
            } else {
                general += 1;
            }
        }
        Ok([("suspected_major", major), ("general", general)])
    })
    .await?;
    let metrics = &state.metrics;
    for (severity, n) in overdue {
        metrics
            .overdue
            .get_or_create(&SeverityLabels { severity })
            .set(n);
    }
    let held = [
        ("premises", counts.premises as i64),
        ("inspections", counts.inspections as i64),
        ("open_hazards", counts.open_hazards as i64),
        ("ops", counts.ops as i64),
    ];
    for (what, n) in held.into_iter().chain(extra) {
        metrics.held.get_or_create(&HeldLabels { what }).set(n);
    }
    for y in years {
        metrics
            .calendar_official
            .get_or_create(&YearLabels { year: y.year })
            .set(i64::from(y.status == YearStatus::Official));
    }
    metrics
        .last_backup
        .set(last_backup_ms.map_or(0, |ms| ms.div_euclid(1000)));
    metrics.backup_failing.set(i64::from(backup_failing));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics.registry)
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
