//! Xuncha's server: the sync endpoint for phones, accounts, and the authoritative replica in
//! SQLite (built on `xuncha-core`, the same store and merge rules as the phones).
//!
//! [`app`] builds the router from per-resource routers; handlers get the caller through the
//! [`accounts::Caller`] extractor (device token) and do SQLite work on blocking threads via
//! [`AppState::write`] (the one writer) and [`AppState::read`] (a pool of read connections).

pub mod access_log;
pub mod account_tables;
pub mod accounts;
mod admin;
pub mod app;
pub mod backup;
pub mod backup_schedule;
pub mod body;
mod cache;
pub mod cli;
pub mod config_file;
pub mod dashboard;
pub mod db;
pub mod demo;
pub mod error;
pub mod escalation;
pub mod ical;
pub mod import;
pub mod job_tables;
pub mod login;
pub mod metrics;
pub mod object_storage;
pub mod overdue;
pub mod photo_tables;
pub mod photos;
pub mod postgres;
pub mod quarantine_tables;
pub mod reminders;
pub mod revoke;
pub mod status;
pub mod sync;
pub mod tables;
pub mod tls;
pub mod user_import;
pub mod webhook;
pub mod webhook_tables;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use xuncha_core::clock::Hlc;
use xuncha_core::location::GridArea;
use xuncha_core::sync::{
    ENROLL_PATH, EnrollRequest, EnrollResponse, OWN_PATH, PULL_PATH, PUSH_PATH, REFERENCE_PATH,
    ReferenceData, Role,
};

use crate::accounts::{Caller, Scope};
use crate::cache::TtlCache;
use crate::db::Db;
use crate::error::ApiError;

/// Settings of a running server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest request body accepted, after decompression.
    pub max_body_bytes: usize,
    /// Ops stamped further ahead of the server's clock than this are quarantined.
    pub max_clock_ahead_ms: i64,
    /// The issuing office, printed on notices and in their numbers; empty: the sub-district
    /// (and on notices the community) of the shop's grid.
    pub notice_area: String,
    /// How shops reach the issuing office, printed on notices (empty: not printed).
    pub notice_contact: String,
    /// Largest photo accepted for upload.
    pub max_photo_bytes: u64,
    /// The dashboard's base map.
    pub tiles: dashboard::Tiles,
    /// Mark session cookies `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// Wrong passwords allowed per user name and per client address before they are refused
    /// for a while.
    pub login_limits: login::LoginLimits,
    /// Reverse proxies whose `X-Forwarded-For` is believed (the login limits and logs then
    /// use the real client's address).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The hour (China time, 0 to 23) from which the morning reminders go out.
    pub reminder_hour: u32,
    /// Where verified photos are kept: `s3://BUCKET/PREFIX` (S3-compatible object storage),
    /// or none for the `photos/` folder in the data directory.
    pub photo_store: Option<String>,
    /// The shared PostgreSQL database (`postgres://...`) that several instances use; none for
    /// the SQLite file in the data directory.
    pub database: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 16 << 20,
            max_clock_ahead_ms: 12 * 3_600_000,
            notice_area: String::new(),
            notice_contact: String::new(),
            max_photo_bytes: 20 << 20,
            tiles: dashboard::Tiles::default(),
            secure_cookies: false,
            login_limits: login::LoginLimits::default(),
            trusted_proxies: Vec::new(),
            reminder_hour: 7,
            photo_store: None,
            database: None,
        }
    }
}

/// Shared state of the HTTP handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    db: Arc<Db>,
    /// Settings.
    pub config: Arc<Config>,
    /// The newest HLC the server has issued or seen, returned on every exchange.
    hlc: Arc<AtomicU64>,
    /// Bounds concurrent reads to the connections kept open, so a burst of requests waits
    /// briefly instead of opening (and parsing the schema on) a connection each.
    reads: Arc<tokio::sync::Semaphore>,
    /// Recently seen tokens, so most requests authenticate without touching the database.
    auth_cache: Arc<TtlCache<String, Caller>>,
    /// Recently computed scopes (and their tags) by user.
    scope_cache: Arc<TtlCache<xuncha_core::model::UserId, (Scope, String)>>,
    /// Photo storage and uploads in progress.
    photos: Arc<photos::Photos>,
    /// The dashboard's in-memory hazard index.
    map_index: dashboard::SharedIndex,
    /// Figures for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Password checks: off the writer, a few at a time, throttled per user name.
    pub login: Arc<login::LoginGuard>,
}

/// A session the log follower keeps (to listen, to lead), or `None` after saying why it has
/// none (it tries again on its next turn).
fn follower_session<T>(made: Option<Result<T, postgres::PgError>>, failing: &str) -> Option<T> {
    match made? {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::warn!(error = %e, "log follower: {failing}");
            None
        }
    }
}

/// The job of writing the projection tables, led by one instance (see `follow_shared_log`).
const PROJECTIONS_JOB: &str = "projections";

/// How long a cached token stays trusted (a revoked token works at most this long).
const AUTH_CACHE_TTL: Duration = Duration::from_secs(30);
/// Cached tokens kept at most.
const AUTH_CACHE_MAX: usize = 100_000;

/// Errors the server reports to its operator.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The replica failed.
    #[error(transparent)]
    Core(#[from] xuncha_core::Error),
    /// The data directory is not usable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An operation was refused.
    #[error("{}", .0.en)]
    Api(ApiError),
    /// The photo store (object storage) cannot be used.
    #[error("{0}")]
    PhotoStore(String),
    /// The shared PostgreSQL database cannot be used.
    #[error(transparent)]
    Database(#[from] postgres::PgError),
}

impl From<ApiError> for ServerError {
    fn from(e: ApiError) -> Self {
        ServerError::Api(e)
    }
}

/// The database file in a data directory.
pub fn db_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("xuncha.sqlite3")
}

/// An instance's replica of the shared log when the state is in PostgreSQL (`--database`):
/// a file of its own, so it is never mistaken for a server's database.
pub fn replica_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("replica.sqlite3")
}

impl AppState {
    /// Opens (creating and migrating as needed) the server's database in `data_dir`.
    pub fn open(data_dir: &Path, config: Config) -> Result<AppState, ServerError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let io = |source| ServerError::DataDir {
            path: data_dir.display().to_string(),
            source,
        };
        let photos = match &config.photo_store {
            None => photos::Photos::open(data_dir, config.max_photo_bytes).map_err(io)?,
            Some(url) => {
                let bucket =
                    object_storage::S3Storage::open(url).map_err(ServerError::PhotoStore)?;
                // Said at start, not at the first photo: a wrong key or bucket stops the server.
                bucket.check().map_err(ServerError::PhotoStore)?;
                let photos = photos::Photos::open_with(
                    data_dir,
                    Box::new(bucket.clone()),
                    config.max_photo_bytes,
                )
                .map_err(io)?;
                // Several instances: an upload cut off on one resumes on another.
                if config.database.is_some() {
                    photos.with_shared_uploads(Box::new(bucket))
                } else {
                    photos
                }
            }
        };
        let db = match &config.database {
            None => Db::open(&db_path(data_dir))?,
            Some(url) => {
                let instance = format!("xuncha-server:{}", std::process::id());
                Db::open_shared(&replica_path(data_dir), url, &instance)?
            }
        };
        let state = Self::new(db, photos, config);
        state.follow_shared_log();
        Ok(state)
    }

    /// On PostgreSQL, a thread that brings the replica up to the log's end whenever another
    /// instance appends (told by `NOTIFY`; every second regardless, so a lost connection or
    /// notice costs a second, never an op).
    fn follow_shared_log(&self) {
        if !self.db.is_shared() {
            return;
        }
        let db = self.db.clone();
        std::thread::Builder::new()
            .name("log-follower".into())
            .spawn(move || {
                let mut listener = None;
                // One instance writes the projection tables (the others would write the same
                // rows again); when it stops, its session ends and another takes the lead.
                let mut leadership = None;
                loop {
                    if leadership.is_none() {
                        leadership = follower_session(db.leadership(), "no session to lead on");
                    }
                    if listener.is_none() {
                        listener = follower_session(db.listener(), "cannot listen");
                    }
                    let waited = match listener.as_mut() {
                        Some(client) => {
                            postgres::log::wait_for_append(client, Duration::from_secs(1))
                                .map(|_| ())
                        }
                        None => {
                            std::thread::sleep(Duration::from_secs(1));
                            Ok(())
                        }
                    };
                    if let Err(e) = waited {
                        tracing::warn!(error = %e, "log follower: listening failed");
                        listener = None;
                    }
                    if let Err(e) = db.catch_up() {
                        tracing::warn!(error = %e.en, "log follower: catching up failed");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                    let leading = leadership.as_mut().map(|l| l.try_lead(PROJECTIONS_JOB));
                    match leading {
                        Some(Ok(true)) => {
                            if let Err(e) = db.project() {
                                tracing::warn!(error = %e.en, "log follower: projecting failed");
                            }
                        }
                        Some(Ok(false)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "log follower: leading failed");
                            leadership = None;
                        }
                        None => {}
                    }
                }
            })
            .expect("a thread to follow the log");
    }

    /// Wraps an open database and photo store.
    pub fn new(db: Db, photos: photos::Photos, config: Config) -> AppState {
        let bound = config.max_clock_ahead_ms;
        let _ = db.write(|w| {
            w.store().set_max_clock_ahead_ms(bound);
            Ok(())
        });
        AppState {
            photos: Arc::new(photos),
            map_index: Arc::default(),
            metrics: Arc::new(metrics::Metrics::new(db.group_counters())),
            login: Arc::new(login::LoginGuard::new(config.login_limits)),
            db: Arc::new(db),
            config: Arc::new(config),
            hlc: Arc::new(AtomicU64::new(0)),
            reads: Arc::new(tokio::sync::Semaphore::new(db::READERS)),
            auth_cache: Arc::new(TtlCache::new(AUTH_CACHE_TTL, AUTH_CACHE_MAX)),
            scope_cache: Arc::new(TtlCache::new(AUTH_CACHE_TTL, AUTH_CACHE_MAX)),
        }
    }

    /// Runs `f` with the database on a blocking thread, never on the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(ApiError::internal)?
    }

    /// Runs `f` with the writer on a blocking thread.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut tables::Writer<'_>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.blocking(move |db| db.write(f)).await
    }

    /// Runs `f` with the writer on a blocking thread, committed together with the other
    /// writes queued meanwhile ([`db::Db::write_grouped`]).
    pub async fn write_grouped<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut tables::Writer<'_>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.blocking(move |db| db.write_grouped(f)).await
    }

    /// Runs `f` with the server's tables alone on a blocking thread (accounts, sessions,
    /// photo records...: nothing of the replica), each statement its own unit unless `f`
    /// makes one. On PostgreSQL it does not wait for the log.
    pub async fn tables<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn tables::ServerTables) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.blocking(move |db| db.tables(f)).await
    }

    /// [`AppState::tables`] in one transaction: all of it or none.
    pub async fn tables_atomic<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn tables::ServerTables) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.blocking(move |db| db.tables_atomic(f)).await
    }

    /// Runs `f` with a read-only connection on a blocking thread.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &dyn tables::ServerTables) -> Result<T, ApiError>
        + Send
        + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self.reads.acquire().await.map_err(ApiError::internal)?;
        self.blocking(move |db| db.read(f)).await
    }

    /// Runs `f` with a read-only store on a blocking thread ([`db::Db::read_store`]).
    pub async fn read_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&xuncha_core::store::Store, &dyn tables::ServerTables) -> Result<T, ApiError>
        + Send
        + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self.reads.acquire().await.map_err(ApiError::internal)?;
        self.blocking(move |db| db.read_store(f)).await
    }

    /// Brings the replica up to the shared log's end (on PostgreSQL; nothing on SQLite).
    pub async fn catch_up(&self) -> Result<(), ApiError> {
        self.blocking(|db| db.catch_up()).await
    }

    /// Resolves a device token, from the cache when it was seen recently.
    pub async fn authenticate(&self, token: String) -> Result<Caller, ApiError> {
        let key = accounts::token_hash(&token);
        if let Some(caller) = self.auth_cache.get(&key) {
            return Ok(caller);
        }
        let caller = self
            .read(move |_, tables| accounts::authenticate(tables, &token))
            .await?;
        self.auth_cache.insert(key, caller.clone());
        Ok(caller)
    }

    /// What a caller may see, and its tag; cached like tokens.
    pub async fn scope(&self, caller: &Caller) -> Result<(Scope, String), ApiError> {
        if let Some(hit) = self.scope_cache.get(&caller.user) {
            return Ok(hit);
        }
        let c = caller.clone();
        let found = self
            .read(move |_, tables| accounts::scope_of(tables, &c))
            .await?;
        self.scope_cache.insert(caller.user.clone(), found.clone());
        Ok(found)
    }

    /// Forgets cached tokens and scopes (after enrolments and account changes).
    pub fn forget_tokens(&self) {
        self.auth_cache.clear();
        self.scope_cache.clear();
    }

    /// The database, for blocking callers (jobs, tools).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Wall-clock now, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// Takes in an HLC and returns the server's current one (never behind its wall clock,
    /// never further ahead of it than the quarantine bound: one released op from a phone days
    /// ahead must not move every phone's clock that far).
    pub fn observe_hlc(&self, seen: Hlc) -> Hlc {
        let now = self.now_ms();
        let wall = Hlc::new(now.max(0) as u64, 0);
        let limit = xuncha_core::clock::adoption_limit(now, self.config.max_clock_ahead_ms);
        let limit = Hlc::new(limit, 0);
        let seen = seen.min(limit).max(wall);
        let prev = self.hlc.fetch_max(seen.as_u64(), Ordering::AcqRel);
        // A stamp kept from before the bound was lowered is not handed on either.
        Hlc::from_u64(prev.max(seen.as_u64())).min(limit.max(wall))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// A device token (`Authorization: Bearer`), or else a dashboard session cookie; with a
    /// cookie, anything but a read must carry the session's CSRF token in `X-CSRF-Token`
    /// (on top of the cookie being `SameSite=Strict`).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        if let Some(token) = bearer {
            let caller = state.authenticate(token).await?;
            noted(parts, &caller);
            return Ok(caller);
        }
        let cookie =
            dashboard::session_cookie(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let now = state.now_ms();
        let (caller, csrf) = state
            .read(move |_, tables| accounts::session_caller(tables, &cookie, now))
            .await?;
        let safe =
            parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        if !safe && sent != Some(csrf.as_str()) {
            return Err(ApiError::forbidden(
                "csrf",
                "页面已过期，请刷新后重试",
                "missing or wrong X-CSRF-Token; reload the page",
            ));
        }
        noted(parts, &caller);
        Ok(caller)
    }
}

/// `Cache-Control: no-store` for answers that carry data (JSON, CSV, spreadsheets, GeoJSON,
/// calendars), none for pages, scripts and pictures.
fn data_not_stored(response: &axum::response::Response) -> Option<HeaderValue> {
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    let data = [
        "application/json",
        "application/geo+json",
        "text/csv",
        "text/calendar",
    ]
    .iter()
    .any(|t| kind.starts_with(t))
        || kind.contains("spreadsheetml");
    data.then(|| HeaderValue::from_static("no-store"))
}

/// Tells the access log who is calling.
fn noted(parts: &Parts, caller: &Caller) {
    if let Some(who) = parts.extensions.get::<access_log::Who>() {
        who.set(caller.user.as_str(), caller.device.as_str());
    }
}

/// Body of `POST /v1/me/password`.
#[derive(Debug, serde::Deserialize)]
struct NewPassword {
    current: String,
    new: String,
}

/// `POST /v1/me/password`: a user changes their own password; every other device and session
/// of theirs is signed out (whoever knew the old one is cut off), this one stays.
async fn change_own_password(
    State(state): State<AppState>,
    caller: Caller,
    client: login::ClientAddr,
    body::JsonBody(req): body::JsonBody<NewPassword>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    login::check_password(&state, caller.user.as_str(), &req.current, client.0).await?;
    let user = caller.user.clone();
    state
        .tables(move |tables| {
            revoke::change_password(
                tables,
                user.as_str(),
                &req.new,
                Some(caller.device.as_str()),
            )
        })
        .await?;
    state.forget_tokens();
    Ok(axum::Json(serde_json::json!({ "changed": true })))
}

/// Body of `PUT /v1/me/reminders` and `PUT /v1/admin/users/{id}/reminders`.
#[derive(Debug, serde::Deserialize)]
pub struct RemindersSwitch {
    /// Whether the user gets the morning reminder.
    pub on: bool,
}

/// `PUT /v1/me/reminders`: a user turns their morning reminder on or off.
async fn set_own_reminders(
    State(state): State<AppState>,
    caller: Caller,
    body::JsonBody(req): body::JsonBody<RemindersSwitch>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let user = caller.user.clone();
    state
        .tables(move |tables| reminders::set(tables, user.as_str(), req.on))
        .await?;
    Ok(axum::Json(
        serde_json::json!({ "user": caller.user, "reminders": req.on }),
    ))
}

/// `POST /v1/enroll`: user name and password for a device token.
async fn enroll(
    State(state): State<AppState>,
    client: login::ClientAddr,
    headers: HeaderMap,
    body::JsonBody(req): body::JsonBody<EnrollRequest>,
) -> Result<Response, ApiError> {
    let now = state.now_ms();
    let role = login::check_password(&state, &req.user, &req.password, client.0).await?;
    let (caller, token, grids, (device_code, subdistrict)) = state
        .tables(move |conn| {
            let (caller, token) = accounts::enroll_as(
                conn,
                &req.user,
                role,
                &req.device_id,
                req.device_name.as_deref(),
                now,
            )?;
            let grids = match accounts::scope_of(conn, &caller)?.0 {
                Scope::All => Vec::new(),
                Scope::Grids(g) => g.into_iter().collect(),
            };
            let code = accounts::device_code(conn, &caller.device)?;
            // Notice numbers name the issuing office: the configured one, else the
            // sub-district of the worker's grids.
            let area: Option<String> = match grids.first() {
                Some(grid) => conn.grid(grid)?.map(|g| g.grid.subdistrict),
                None => None,
            };
            Ok((caller, token, grids, (code, area.unwrap_or_default())))
        })
        .await?;
    state.forget_tokens();
    let answer = EnrollResponse {
        token,
        user: caller.user,
        role: caller.role,
        grids,
        server_hlc: state.observe_hlc(Hlc::default()),
        device_code,
        notice_area: if state.config.notice_area.is_empty() {
            subdistrict
        } else {
            state.config.notice_area.clone()
        },
    };
    Ok(body::json(&headers, StatusCode::OK, &answer))
}

/// `GET /v1/me`: who the token belongs to and what they cover.
async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (scope, tag) = state.scope(&caller).await?;
    let grids: Option<Vec<String>> = match scope {
        Scope::All => None,
        Scope::Grids(g) => Some(g.into_iter().collect()),
    };
    let user = caller.user.0.clone();
    let feed = state
        .tables(move |tables| ical::feed_path(tables, &user))
        .await?;
    Ok(Json(serde_json::json!({
        "user": caller.user,
        "role": caller.role,
        "device": caller.device,
        "grids": grids,
        "scope": tag,
        "calendar_feed": feed,
    })))
}

/// `GET /v1/reference`: the calendar and cadence phones use offline.
async fn reference(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (scope, _) = state.scope(&caller).await?;
    let data = state
        .read_store(move |store, tables| reference_data(store, tables, &scope))
        .await?;
    Ok(body::json(&headers, StatusCode::OK, &data))
}

/// The reference data as served to someone covering `scope`, with its tag.
pub fn reference_data(
    store: &xuncha_core::store::Store,
    tables: &dyn tables::ServerTables,
    scope: &Scope,
) -> Result<ReferenceData, ApiError> {
    use sha2::Digest;
    let (calendar, cadence) = store.reference()?;
    let cadence_json = serde_json::to_string(&cadence).map_err(ApiError::internal)?;
    let grids: Vec<GridArea> = tables
        .grids()?
        .into_iter()
        .filter_map(|g| Some((g.grid.id, g.grid.name, g.geometry?)))
        .map(Ok::<_, ApiError>)
        .filter_map(|row| {
            let (id, name, geometry) = row.ok()?;
            scope.covers(&id).then(|| GridArea {
                id,
                name,
                geometry: serde_json::from_str(&geometry).unwrap_or_default(),
            })
        })
        .collect();
    let grids_json = serde_json::to_string(&grids).map_err(ApiError::internal)?;
    let tag = hex::encode(
        &sha2::Sha256::digest(format!("{calendar}\n{cadence_json}\n{grids_json}"))[..8],
    );
    Ok(ReferenceData {
        tag,
        calendar: serde_json::from_str(&calendar).map_err(ApiError::internal)?,
        cadence,
        grids,
    })
}

/// The OpenAPI document, written by hand and checked against the router by tests.
const OPENAPI: &str = include_str!("../openapi.json");

/// `/status`, `/v1/status` and `/metrics`.
fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status::page))
        .route("/v1/status", get(status::json))
        .route("/metrics", get(metrics::scrape))
}

/// Lets an admin's request through; answers anyone else as if the route did not exist.
async fn admin_or_not_found(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) if caller.role == Role::Admin => {
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        _ => ApiError::not_found("no such endpoint").into_response(),
    }
}

/// The operations listener's app (`--ops-listen`, loopback by default): status, metrics and
/// the health check, without signing in, for monitoring on the machine or its private network.
pub fn ops_app(state: AppState) -> Router {
    ops_routes()
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::not_found("no such endpoint").into_response() })
        .with_state(state)
}

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // The operations endpoints: on the public listener for admins only (to anyone else
        // they do not exist); open on the operations listener ([`ops_app`]).
        .merge(
            ops_routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                admin_or_not_found,
            )),
        )
        .route(
            "/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route(ENROLL_PATH, post(enroll))
        .route("/v1/me", get(me))
        .route("/v1/me/password", post(change_own_password))
        .route("/v1/me/reminders", axum::routing::put(set_own_reminders))
        .route(PUSH_PATH, post(sync::push))
        .route(PULL_PATH, get(sync::pull))
        .route(OWN_PATH, get(sync::own))
        .route(REFERENCE_PATH, get(reference))
        .route("/v1/overdue", get(overdue::overdue))
        .route("/v1/feeds/{user}/{file}", get(ical::feed))
        .merge(admin::router())
        .merge(photos::router())
        .merge(dashboard::router())
        .merge(app::router())
        .fallback(|| async { ApiError::not_found("no such endpoint").into_response() })
        .layer(axum::middleware::map_response(
            dashboard::assets::secure_html,
        ))
        // Answers that carry data (accounts, shops' contacts, tokens, first passwords, exports)
        // are never kept by a browser or a proxy; assets say for themselves how long they keep.
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                data_not_stored,
            ),
        )
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access_log::log,
        ))
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            access_log::Ids,
        ))
        .layer(axum::middleware::from_fn(access_log::plausible_request_id))
        .with_state(state)
}
