//! The phone's sync client (feature `client`): push the outbox, then pull until caught up.
//!
//! Blocking calls (the HTTP stack runs its own runtime inside), so a host app calls
//! [`SyncClient::sync`] from a background thread without running an async runtime itself.
//! Nothing leaves the outbox until the server acknowledges it, and the pull cursor is saved in
//! the same transaction as the ops of each page, so an interrupted sync resumes where it
//! stopped. Network failures and 5xx/429 answers are retried with exponential backoff; other
//! refusals come back as [`Error::Server`] with the server's code and messages.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    ENROLL_PATH, EnrollRequest, EnrollResponse, ErrorBody, MAX_PULL_LIMIT, OWN_PATH,
    OwnOpsResponse, PULL_PATH, PUSH_PATH, PullResponse, PushRequest, PushResponse, REFERENCE_PATH,
    ReferenceData,
};
use crate::error::{Error, Result};
use crate::model::UserId;
use crate::store::{Store, get_meta, set_meta};

mod photos;

pub use photos::{PhotoUpload, UploadReport};

const TOKEN_KEY: &str = "sync_token";
const CURSOR_KEY: &str = "pull_cursor";
const CURSOR_CHECK_KEY: &str = "pull_cursor_check";
const SCOPE_KEY: &str = "pull_scope";
const REFERENCE_KEY: &str = "reference_tag";

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Ops per push request.
    pub push_batch: usize,
    /// Ops per pull page.
    pub pull_limit: usize,
    /// Tries per request before giving up (network errors, 5xx, 429).
    pub max_attempts: u32,
    /// First backoff; doubles each retry, with jitter.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Bytes per photo upload request (a dropped connection costs at most one chunk).
    pub photo_chunk_bytes: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            push_batch: 1000,
            // Each page is one transaction on the phone; pages of 5,000 apply about 1.4x
            // faster than pages of 1,000 (BENCHMARKS.md) and stay a few MB in memory.
            pull_limit: MAX_PULL_LIMIT,
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(15),
            timeout: Duration::from_secs(60),
            photo_chunk_bytes: 256 << 10,
        }
    }
}

/// Where a sync is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPhase {
    /// Sending the outbox.
    Push,
    /// Receiving others' ops.
    Pull,
    /// Finished.
    Done,
}

/// Progress reported to the callback after every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    /// Phase.
    pub phase: SyncPhase,
    /// Ops acknowledged by the server in this sync.
    pub pushed: u64,
    /// Ops to push in this sync: those waiting when it started, and any the pull then found
    /// waiting (recorded meanwhile, or lost by a server restored from a backup).
    pub to_push: u64,
    /// Ops received in this sync.
    pub pulled: u64,
}

/// What a sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Ops acknowledged by the server.
    pub pushed: u64,
    /// How many of this device's ops the server holds back in quarantine after this sync
    /// (their clock was too far ahead), however many syncs ago they were sent.
    pub quarantined: u64,
    /// Ops received.
    pub pulled: u64,
    /// Of those, how many were new here.
    pub applied: u64,
    /// Requests retried after a failure.
    pub retries: u32,
    /// How far the server's clock is ahead of this device's (ms; negative: behind).
    pub server_clock_offset_ms: i64,
    /// How many of this device's ops the server holds set aside after this sync: refused for
    /// their author (see [`Store::set_aside_ops`] for which and why), kept but not applied.
    pub set_aside: u64,
}

/// An HTTP client for one server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: Client,
    base: String,
    options: SyncOptions,
}

impl SyncClient {
    /// A client for the server at `base_url` (e.g. `https://xuncha.example.cn`).
    pub fn new(base_url: &str, options: SyncOptions) -> Result<SyncClient> {
        install_tls_provider();
        let http = Client::builder()
            .timeout(options.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("xuncha-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Network(format!("cannot set up HTTP: {e}")))?;
        Ok(SyncClient {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            options,
        })
    }

    /// Enrolls this device with a user name and password; keeps the token in the store and
    /// signs the user in.
    pub fn enroll(
        &self,
        store: &mut Store,
        user: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<EnrollResponse> {
        let request = EnrollRequest {
            user: user.to_owned(),
            password: password.to_owned(),
            device_id: store.device_id().clone(),
            device_name: device_name.map(str::to_owned),
        };
        let body = gzip_json(&request)?;
        let mut retries = 0;
        let answer: EnrollResponse = self.call(&mut retries, || {
            self.http
                .post(format!("{}{ENROLL_PATH}", self.base))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(body.clone())
        })?;
        set_meta(store.conn(), TOKEN_KEY, &answer.token)?;
        store.set_user(UserId(answer.user.0.clone()))?;
        if !answer.device_code.is_empty() {
            store.set_notice_numbering(&answer.notice_area, &answer.device_code)?;
        }
        store.observe_hlc(answer.server_hlc)?;
        Ok(answer)
    }

    /// The device token kept by [`SyncClient::enroll`].
    pub fn token(store: &Store) -> Result<String> {
        get_meta(store.conn(), TOKEN_KEY)?.ok_or(Error::NotEnrolled)
    }

    /// Pushes the outbox, then pulls until caught up. `progress` is called after every request.
    pub fn sync(
        &self,
        store: &mut Store,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport> {
        self.sync_shared(&Exclusive(RefCell::new(store)), progress)
    }

    /// [`SyncClient::sync`] on a store shared with the app (a `Mutex<Store>`): the store is
    /// taken only for the local work between requests, never while waiting for the network,
    /// so the app can record an inspection while a slow sync runs.
    pub fn sync_shared(
        &self,
        store: &impl StoreAccess,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport> {
        let (token, to_push) = store.with_store(|s| Ok((Self::token(s)?, s.pending_count()?)))?;
        let mut report = SyncReport::default();
        let mut state = SyncProgress {
            phase: SyncPhase::Push,
            pushed: 0,
            to_push,
            pulled: 0,
        };
        progress(&state);
        // A push the server refuses (a broken batch, not one op: those it sets aside) does not
        // keep the phone from receiving others' work: pull anyway, then report the refusal.
        let pushed = self.push_all(store, &token, &mut report, &mut state, progress);
        if let Err(e) = &pushed
            && !matches!(e, Error::Server { status, .. } if *status < 500)
        {
            return pushed.map(|()| report);
        }
        state.phase = SyncPhase::Pull;
        let missing_own = self.pull_all(store, &token, &mut report, &mut state, progress)?;
        pushed?;
        if missing_own {
            self.take_back_own_ops(store, &token, &mut report.retries)?;
        }
        // Ops the pull found the server had lost, or the app recorded meanwhile.
        let to_push = store.with_store(|s| s.pending_count())?;
        if to_push > 0 {
            state.phase = SyncPhase::Push;
            state.to_push = state.pushed + to_push;
            progress(&state);
            self.push_all(store, &token, &mut report, &mut state, progress)?;
        }
        self.refresh_reference(store, &token, &mut report)?;
        report.set_aside = store.with_store(|s| s.set_aside_ops())?.len() as u64;
        state.phase = SyncPhase::Done;
        progress(&state);
        Ok(report)
    }

    fn push_all(
        &self,
        store: &impl StoreAccess,
        token: &str,
        report: &mut SyncReport,
        state: &mut SyncProgress,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<()> {
        let mut rewound = false;
        let mut took_back = false;
        loop {
            let ops = store.with_store(|s| s.pending_ops(self.options.push_batch))?;
            let Some(last) = ops.last().map(|op| op.seq) else {
                return Ok(());
            };
            let pulled_to = store.with_store(|s| pull_cursor(s))?;
            let body = gzip_json(&PushRequest {
                ops,
                pulled_to: Some(pulled_to),
            })?;
            let sent = store.with_store(|s| Ok(s.now_ms()))?;
            let answer: Result<PushResponse> = self.push(token, &body, &mut report.retries);
            let answer = match answer {
                Ok(a) => a,
                // The server holds less than we thought (restored from a backup): push again
                // from what it has. Once per sync, so a confused server cannot loop us.
                Err(Error::Server { code, .. }) if code == "seq_gap" && !rewound => {
                    rewound = true;
                    let held = self.server_acked(token, &mut report.retries)?;
                    store.with_store(|s| s.rewind_acked(held))?;
                    continue;
                }
                // The server holds other ops under seqs this phone used again: its database
                // was restored from an older copy. Take the server's back, move the new work
                // after them and push again. Once per sync.
                Err(Error::Server { code, .. }) if code == "op_conflict" && !took_back => {
                    took_back = true;
                    self.take_back_own_ops(store, token, &mut report.retries)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let own_max = store.with_store(|s| s.max_seq(&s.device_id().clone()))?;
            if answer.acked_seq > own_max && !took_back {
                // The server holds more of this phone's ops than it has (restored from an
                // older copy): take them back before going on after them.
                took_back = true;
                self.take_back_own_ops(store, token, &mut report.retries)?;
                continue;
            }
            if answer.acked_seq < last {
                return Err(Error::Network(format!(
                    "server acknowledged up to {} of ops up to {last}",
                    answer.acked_seq
                )));
            }
            let before = store.with_store(|s| {
                let before = s.acked_seq()?;
                s.follow_set_aside(&answer.set_aside, false)?;
                s.mark_acked(answer.acked_seq)?;
                s.observe_server_hlc(answer.server_hlc, answer.server_time_ms)?;
                Ok(before)
            })?;
            report.pushed += answer.acked_seq.saturating_sub(before);
            report.quarantined = answer.held.max(answer.quarantined) as u64;
            report.server_clock_offset_ms = answer.server_time_ms - sent;
            state.pushed = report.pushed;
            progress(state);
        }
    }

    /// Takes back this device's ops as the server holds them, from the last seq both agree
    /// on, and moves this phone's own unsynced work after them ([`Store::adopt_own_ops`]).
    fn take_back_own_ops(
        &self,
        store: &impl StoreAccess,
        token: &str,
        retries: &mut u32,
    ) -> Result<()> {
        let mut after =
            store.with_store(|s| Ok(s.acked_seq()?.min(s.max_seq(&s.device_id().clone())?)))?;
        let mut held = Vec::new();
        let held_to = loop {
            let url = format!(
                "{}{OWN_PATH}?after={after}&limit={}",
                self.base, self.options.pull_limit
            );
            let page: OwnOpsResponse =
                self.call(retries, || self.http.get(&url).bearer_auth(token))?;
            if let Some(last) = page.ops.last() {
                after = last.seq;
            }
            held.extend(page.ops);
            if !page.more {
                break page.held_to;
            }
        };
        store.with_store(|s| s.adopt_own_ops(&held, held_to).map(|_| ()))
    }

    /// What the server holds of this device, read from a push of nothing.
    fn server_acked(&self, token: &str, retries: &mut u32) -> Result<u64> {
        let body = gzip_json(&PushRequest {
            ops: Vec::new(),
            pulled_to: None,
        })?;
        let answer = self.push(token, &body, retries)?;
        Ok(answer.acked_seq)
    }

    /// One push request (a gzipped [`PushRequest`]), with retries.
    fn push(&self, token: &str, body: &[u8], retries: &mut u32) -> Result<PushResponse> {
        self.call(retries, || {
            self.http
                .post(format!("{}{PUSH_PATH}", self.base))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(body.to_vec())
        })
    }

    /// Pulls until caught up; returns whether the server holds ops of this device the phone
    /// lacks (its database was restored from an older copy).
    fn pull_all(
        &self,
        store: &impl StoreAccess,
        token: &str,
        report: &mut SyncReport,
        state: &mut SyncProgress,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<bool> {
        let mut missing_own = false;
        loop {
            let (cursor, check, known_scope) = store.with_store(|s| {
                Ok((
                    pull_cursor(s)?,
                    get_meta(s.conn(), CURSOR_CHECK_KEY)?,
                    get_meta(s.conn(), SCOPE_KEY)?,
                ))
            })?;
            // The next page is fetched on a thread of its own while this one applies the
            // last, so the phone's writing overlaps the server's reading and the transfer.
            // One page waits at most (a few MB): the fetcher blocks until it is taken.
            let retries = AtomicU32::new(0);
            let outcome = std::thread::scope(|threads| {
                let (pages, fetched) = std::sync::mpsc::sync_channel(0);
                let retries = &retries;
                threads.spawn(move || self.fetch_pages(token, (cursor, check), &pages, retries));
                apply_pages(
                    store,
                    (cursor, known_scope),
                    &fetched,
                    report,
                    state,
                    progress,
                    &mut missing_own,
                )
                // Leaving drops `fetched`: a fetcher still running stops at its next page.
            });
            report.retries += retries.load(Ordering::Relaxed);
            match outcome? {
                Pulled::Everything => return Ok(missing_own),
                Pulled::ScopeChanged => continue,
            }
        }
    }

    /// Fetches pages from `cursor` on until the last (or a failure), handing each over.
    fn fetch_pages(
        &self,
        token: &str,
        (mut cursor, mut check): (u64, Option<String>),
        pages: &SyncSender<Result<PullResponse>>,
        retries: &AtomicU32,
    ) {
        loop {
            let mut url = format!(
                "{}{PULL_PATH}?after={cursor}&limit={}",
                self.base, self.options.pull_limit
            );
            if let Some(check) = &check {
                url.push_str("&check=");
                url.push_str(check);
            }
            let mut tries = 0;
            let page: Result<PullResponse> =
                self.call(&mut tries, || self.http.get(&url).bearer_auth(token));
            retries.fetch_add(tries, Ordering::Relaxed);
            let next = match &page {
                Ok(p) if p.more => Some((p.cursor, p.cursor_check.clone())),
                _ => None,
            };
            if pages.send(page).is_err() {
                return; // the applier stopped
            }
            match next {
                Some(c) => (cursor, check) = c,
                None => return,
            }
        }
    }

    /// Takes the server's calendar and cadence when they changed.
    fn refresh_reference(
        &self,
        store: &impl StoreAccess,
        token: &str,
        report: &mut SyncReport,
    ) -> Result<()> {
        let url = format!("{}{REFERENCE_PATH}", self.base);
        let data: ReferenceData = self.call(&mut report.retries, || {
            self.http.get(&url).bearer_auth(token)
        })?;
        store.with_store(|s| {
            if get_meta(s.conn(), REFERENCE_KEY)?.as_deref() != Some(data.tag.as_str()) {
                s.set_reference(&data.calendar.to_string(), &data.cadence)?;
                s.set_grids(&data.grids)?;
                set_meta(s.conn(), REFERENCE_KEY, &data.tag)?;
            }
            Ok(())
        })
    }

    /// Sends a request, retrying network failures and 5xx/408/429 with backoff, and decodes
    /// the JSON answer or the server's error.
    fn call<T: DeserializeOwned>(
        &self,
        retries: &mut u32,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self.send(retries, &request)?;
            if !response.status().is_success() {
                return Err(server_error(response));
            }
            // A body cut off half-way is retried like a failed request.
            let failure = match response.bytes() {
                Ok(bytes) => return Ok(serde_json::from_slice(&bytes)?),
                Err(e) => format!("reading the answer failed: {e}"),
            };
            if attempt >= self.options.max_attempts {
                return Err(Error::Network(failure));
            }
            *retries += 1;
            std::thread::sleep(self.backoff(attempt));
        }
    }

    /// Sends a request until it gets an answer that is not worth retrying (a success or a
    /// refusal); network failures and 5xx/408/429 are retried with backoff.
    fn send(&self, retries: &mut u32, request: &dyn Fn() -> RequestBuilder) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match request().send() {
                Ok(response) if retryable(response.status()) => {
                    format!("server answered {}", response.status())
                }
                Ok(response) => return Ok(response),
                Err(e) => format!("{e}"),
            };
            if attempt >= self.options.max_attempts {
                return Err(Error::Network(format!(
                    "{failure} (gave up after {attempt} attempts)"
                )));
            }
            *retries += 1;
            std::thread::sleep(self.backoff(attempt));
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .options
            .initial_backoff
            .saturating_mul(1 << attempt.min(16).saturating_sub(1))
            .min(self.options.max_backoff);
        // Up to 50% jitter so many phones coming back online do not retry in step.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
    }
}

/// Where the next pull starts (0: from the beginning).
fn pull_cursor(store: &Store) -> Result<u64> {
    Ok(get_meta(store.conn(), CURSOR_KEY)?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// Applies fetched pages in order, each in one transaction with the cursor after it.
#[allow(clippy::too_many_arguments)] // one pull's state, threaded through
fn apply_pages(
    store: &impl StoreAccess,
    (mut cursor, mut known_scope): (u64, Option<String>),
    fetched: &Receiver<Result<PullResponse>>,
    report: &mut SyncReport,
    state: &mut SyncProgress,
    progress: &mut dyn FnMut(&SyncProgress),
    missing_own: &mut bool,
) -> Result<Pulled> {
    for page in fetched {
        let page = page?;
        // The server holds fewer of this device's ops than it acknowledged (restored from a
        // backup): they are pending again, and the sync pushes them after the pull. More
        // than the phone has: the phone was restored from an older copy.
        if let Some(held) = page.acked_seq {
            *missing_own |= store.with_store(|s| {
                s.rewind_acked(held)?;
                Ok(held > s.max_seq(&s.device_id().clone())?)
            })?;
        }
        if !page.missing_photos.is_empty() {
            store.with_store(|s| s.requeue_photos(&page.missing_photos))?;
        }
        if let Some(listed) = &page.set_aside {
            store.with_store(|s| s.follow_set_aside(listed, true))?;
        }
        // What the user may see changed (new grids): start again from the beginning;
        // ops already held are skipped as duplicates.
        if cursor > 0 && known_scope.as_deref() != Some(page.scope.as_str()) {
            store.with_store(|s| {
                set_meta(s.conn(), CURSOR_KEY, "0")?;
                s.conn()
                    .execute("DELETE FROM meta WHERE key = ?1", [CURSOR_CHECK_KEY])?;
                set_meta(s.conn(), SCOPE_KEY, &page.scope)
            })?;
            return Ok(Pulled::ScopeChanged);
        }
        let next = page.cursor.to_string();
        let applied = store.with_store(|s| {
            let (applied, ()) = s.apply_ops_with(&page.ops, |tx, _| {
                set_meta(tx, CURSOR_KEY, &next)?;
                match &page.cursor_check {
                    Some(check) => set_meta(tx, CURSOR_CHECK_KEY, check)?,
                    None => {
                        tx.execute("DELETE FROM meta WHERE key = ?1", [CURSOR_CHECK_KEY])?;
                    }
                }
                set_meta(tx, SCOPE_KEY, &page.scope)
            })?;
            s.observe_server_hlc(page.server_hlc, page.server_time_ms)?;
            Ok(applied)
        })?;
        report.pulled += page.ops.len() as u64;
        report.applied += applied.applied as u64;
        state.pulled = report.pulled;
        progress(state);
        if !page.more {
            return Ok(Pulled::Everything);
        }
        cursor = page.cursor;
        known_scope = Some(page.scope);
    }
    // The fetcher always hands over a last page or a failure before it ends.
    Err(Error::Network(
        "the pull ended without its last page".into(),
    ))
}

/// How a run of pulled pages ended.
enum Pulled {
    /// The last page is applied.
    Everything,
    /// The user's scope changed: pull again from the beginning.
    ScopeChanged,
}

/// Makes ring the process's TLS provider (reqwest is built without one, so that only ring is
/// linked). Any HTTP client built with this crate's reqwest needs it; calling it again, or
/// after the host app installed its own, changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

fn server_error(response: Response) -> Error {
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Error::Server {
            status,
            code: body.error.code,
            message: body.error.message,
            message_en: body.error.message_en,
        },
        Err(_) => Error::Server {
            status,
            code: "http".to_owned(),
            message: format!("服务器返回 {status}"),
            message_en: format!(
                "server answered {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        },
    }
}

fn gzip_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(value)?;
    let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::default());
    enc.write_all(&json)
        .and_then(|()| enc.finish())
        .map_err(|e| Error::Network(format!("compressing the request failed: {e}")))
}

/// How a sync reaches the store: taken for each piece of local work, released while waiting
/// for the server.
pub trait StoreAccess {
    /// Runs `f` with the store.
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T>;
}

/// A store shared between the app's threads.
impl StoreAccess for std::sync::Mutex<Store> {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        // A panic on another thread does not poison the store for good.
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A store the caller lends for the whole sync.
struct Exclusive<'a>(RefCell<&'a mut Store>);

impl StoreAccess for Exclusive<'_> {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        f(&mut self.0.borrow_mut())
    }
}
