//! The phone's side of the sync protocol, written once and independent of how requests
//! travel: push the outbox, then pull until caught up; enrol; upload and download photos.
//!
//! No I/O happens here. Every exchange with the server goes through a [`Transport`] (send one
//! [`Request`], get its whole [`Response`]; wait a while), so the same rules (retries with
//! backoff, acknowledgements, rewinds after a server restore, taking back this device's own
//! ops, set-aside ops, the photo queue) drive the native apps, where blocking reqwest is the
//! transport (`client`, feature `client`), and the field app in the browser, where `fetch` is
//! (`xuncha-web`). The protocol is `async` so that a browser can wait for an answer without a
//! thread; with a blocking transport every await is ready at once.
//!
//! Nothing leaves the outbox until the server acknowledges it, and the pull cursor is saved in
//! the same transaction as the ops of each page, so an interrupted sync resumes where it
//! stopped. Network failures and 5xx/408/429 answers are retried with exponential backoff;
//! other refusals come back as [`Error::Server`] with the server's code and messages. The
//! store is taken ([`StoreAccess`]) only for the local work between requests, never while
//! waiting for the network.

use std::future::Future;
use std::io::Write as _;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
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
const LAST_SYNC_KEY: &str = "last_sync_ms";

/// An HTTP method the protocol uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PATCH.
    Patch,
    /// PUT.
    Put,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
        }
    }
}

/// One request to the server, as the protocol wants it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path and query, after the server's base address (e.g. `/v1/sync/pull?after=0`).
    pub path: String,
    /// The device token, sent as `Authorization: Bearer ...`.
    pub bearer: Option<String>,
    /// Other headers (lower-case names).
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl Request {
    fn new(method: Method, path: String, bearer: Option<&str>) -> Request {
        Request {
            method,
            path,
            bearer: bearer.map(str::to_owned),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A POST of `value` as gzipped JSON.
    fn json<T: Serialize>(path: &str, bearer: Option<&str>, value: &T) -> Result<Request> {
        let mut request = Request::new(Method::Post, path.to_owned(), bearer);
        request.headers = vec![
            ("content-type", "application/json".to_owned()),
            ("content-encoding", "gzip".to_owned()),
        ];
        request.body = gzip_json(value)?;
        Ok(request)
    }
}

/// The server's whole answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body, decompressed.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How requests reach the server. One implementation per shell: blocking reqwest for the
/// native apps, the browser's `fetch` for the field app, a real server in tests.
pub trait Transport {
    /// Sends `request` and reads the whole answer. `Err` (with what happened) when no whole
    /// answer came: the connection failed, timed out or was cut off half-way. Any status is
    /// an answer; retrying is the protocol's job.
    fn send(
        &self,
        request: &Request,
    ) -> impl Future<Output = std::result::Result<Response, String>>;

    /// Waits `duration` (before a retry).
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;

    /// `request` (a GET that changes nothing) is what the protocol will send next, after some
    /// local work: a transport may start it now, so the transfer overlaps that work, and hand
    /// its answer to the [`Transport::send`] of an equal request. By default nothing happens.
    fn prefetch(&self, request: &Request) {
        let _ = request;
    }
}

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
    /// Timeout of one request (applied by the transport).
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
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

/// How the protocol reaches the store: taken for each piece of local work, released while
/// waiting for the server.
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

/// A store of one thread (the browser's worker), borrowed only for each piece of local work
/// so that calls arriving while a request is under way can use it.
impl StoreAccess for std::cell::RefCell<Store> {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        f(&mut self.borrow_mut())
    }
}

/// A store the caller lends for the whole sync.
impl StoreAccess for std::cell::RefCell<&mut Store> {
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        f(&mut self.borrow_mut())
    }
}

/// The protocol's rules, with the options they follow.
#[derive(Clone, Debug, Default)]
pub struct Protocol {
    /// Batch sizes, retries, timeouts.
    pub options: SyncOptions,
}

/// The device token kept by [`Protocol::enroll`].
pub fn token(store: &Store) -> Result<String> {
    get_meta(store.conn(), TOKEN_KEY)?.ok_or(Error::NotEnrolled)
}

/// When the last sync finished (ms since the epoch, this device's clock), if one ever did.
pub fn last_synced_ms(store: &Store) -> Result<Option<i64>> {
    Ok(get_meta(store.conn(), LAST_SYNC_KEY)?.and_then(|v| v.parse().ok()))
}

impl Protocol {
    /// The protocol with `options`.
    pub fn new(options: SyncOptions) -> Protocol {
        Protocol { options }
    }

    /// Enrolls this device with a user name and password; keeps the token in the store and
    /// signs the user in.
    pub async fn enroll(
        &self,
        transport: &impl Transport,
        store: &impl StoreAccess,
        user: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<EnrollResponse> {
        let device_id = store.with_store(|s| Ok(s.device_id().clone()))?;
        let request = Request::json(
            ENROLL_PATH,
            None,
            &EnrollRequest {
                user: user.to_owned(),
                password: password.to_owned(),
                device_id,
                device_name: device_name.map(str::to_owned),
            },
        )?;
        let mut retries = 0;
        let answer: EnrollResponse = self.call(transport, &mut retries, &request).await?;
        store.with_store(|s| {
            set_meta(s.conn(), TOKEN_KEY, &answer.token)?;
            s.set_user(UserId(answer.user.0.clone()))?;
            if !answer.device_code.is_empty() {
                s.set_notice_numbering(&answer.notice_area, &answer.device_code)?;
            }
            s.observe_hlc(answer.server_hlc)
        })?;
        Ok(answer)
    }

    /// Turns the signed-in user's morning reminder (the server's `worker.reminder` message
    /// through the SMS or WeChat gateway) on or off.
    pub async fn set_reminders(
        &self,
        transport: &impl Transport,
        store: &impl StoreAccess,
        on: bool,
    ) -> Result<()> {
        let token = store.with_store(|s| token(s))?;
        let mut request = Request::new(Method::Put, "/v1/me/reminders".to_owned(), Some(&token));
        request.headers = vec![("content-type", "application/json".to_owned())];
        request.body = serde_json::to_vec(&serde_json::json!({ "on": on }))?;
        let mut retries = 0;
        let _: serde_json::Value = self.call(transport, &mut retries, &request).await?;
        Ok(())
    }

    /// Pushes the outbox, then pulls until caught up. `progress` is called after every request.
    pub async fn sync(
        &self,
        transport: &impl Transport,
        store: &impl StoreAccess,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport> {
        let (token, to_push) = store.with_store(|s| Ok((token(s)?, s.pending_count()?)))?;
        let sync = Sync {
            protocol: self,
            transport,
            store,
            token: &token,
        };
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
        let pushed = sync.push_all(&mut report, &mut state, progress).await;
        if let Err(e) = &pushed
            && !matches!(e, Error::Server { status, .. } if *status < 500)
        {
            return pushed.map(|()| report);
        }
        state.phase = SyncPhase::Pull;
        let missing_own = sync.pull_all(&mut report, &mut state, progress).await?;
        pushed?;
        if missing_own {
            sync.take_back_own_ops(&mut report.retries).await?;
        }
        // Ops the pull found the server had lost, or the app recorded meanwhile.
        let to_push = store.with_store(|s| s.pending_count())?;
        if to_push > 0 {
            state.phase = SyncPhase::Push;
            state.to_push = state.pushed + to_push;
            progress(&state);
            sync.push_all(&mut report, &mut state, progress).await?;
        }
        sync.refresh_reference(&mut report).await?;
        report.set_aside = store.with_store(|s| {
            set_meta(s.conn(), LAST_SYNC_KEY, &s.now_ms().to_string())?;
            Ok(s.set_aside_ops()?.len() as u64)
        })?;
        state.phase = SyncPhase::Done;
        progress(&state);
        Ok(report)
    }

    /// Sends a request, retrying failures, and decodes the JSON answer or the server's error.
    async fn call<T: DeserializeOwned>(
        &self,
        transport: &impl Transport,
        retries: &mut u32,
        request: &Request,
    ) -> Result<T> {
        let response = self.send(transport, retries, request).await?;
        if !response.is_success() {
            return Err(server_error(&response));
        }
        Ok(serde_json::from_slice(&response.body)?)
    }

    /// Sends a request until it gets an answer that is not worth retrying (a success or a
    /// refusal); failures to answer and 5xx/408/429 are retried with backoff.
    async fn send(
        &self,
        transport: &impl Transport,
        retries: &mut u32,
        request: &Request,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match transport.send(request).await {
                Ok(response) if retryable(response.status) => {
                    format!("server answered {}", response.status)
                }
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            if attempt >= self.options.max_attempts {
                return Err(Error::Network(format!(
                    "{failure} (gave up after {attempt} attempts)"
                )));
            }
            *retries += 1;
            transport.sleep(self.backoff(attempt)).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .options
            .initial_backoff
            .saturating_mul(1 << attempt.min(16).saturating_sub(1))
            .min(self.options.max_backoff);
        // Up to 50% jitter so many phones coming back online do not retry in step.
        let random = uuid::Uuid::new_v4().as_u128();
        base + base.mul_f64((random % 1000) as f64 / 2000.0)
    }
}

/// One sync under way: the protocol, its transport, the store and the token.
struct Sync<'a, T, S> {
    protocol: &'a Protocol,
    transport: &'a T,
    store: &'a S,
    token: &'a str,
}

impl<T: Transport, S: StoreAccess> Sync<'_, T, S> {
    async fn call<R: DeserializeOwned>(&self, retries: &mut u32, request: &Request) -> Result<R> {
        self.protocol.call(self.transport, retries, request).await
    }

    fn push_request(&self, request: &PushRequest) -> Result<Request> {
        Request::json(PUSH_PATH, Some(self.token), request)
    }

    async fn push_all(
        &self,
        report: &mut SyncReport,
        state: &mut SyncProgress,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<()> {
        let store = self.store;
        let mut rewound = false;
        let mut took_back = false;
        loop {
            let ops = store.with_store(|s| s.pending_ops(self.protocol.options.push_batch))?;
            let Some(last) = ops.last().map(|op| op.seq) else {
                return Ok(());
            };
            let pulled_to = store.with_store(|s| pull_cursor(s))?;
            let request = self.push_request(&PushRequest {
                ops,
                pulled_to: Some(pulled_to),
            })?;
            let sent = store.with_store(|s| Ok(s.now_ms()))?;
            let answer: Result<PushResponse> = self.call(&mut report.retries, &request).await;
            let answer = match answer {
                Ok(a) => a,
                // The server holds less than we thought (restored from a backup): push again
                // from what it has. Once per sync, so a confused server cannot loop us.
                Err(Error::Server { code, .. }) if code == "seq_gap" && !rewound => {
                    rewound = true;
                    let held = self.server_acked(&mut report.retries).await?;
                    store.with_store(|s| s.rewind_acked(held))?;
                    continue;
                }
                // The server holds other ops under seqs this phone used again: its database
                // was restored from an older copy. Take the server's back, move the new work
                // after them and push again. Once per sync.
                Err(Error::Server { code, .. }) if code == "op_conflict" && !took_back => {
                    took_back = true;
                    self.take_back_own_ops(&mut report.retries).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let own_max = store.with_store(|s| s.max_seq(&s.device_id().clone()))?;
            if answer.acked_seq > own_max && !took_back {
                // The server holds more of this phone's ops than it has (restored from an
                // older copy): take them back before going on after them.
                took_back = true;
                self.take_back_own_ops(&mut report.retries).await?;
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
    async fn take_back_own_ops(&self, retries: &mut u32) -> Result<()> {
        let mut after = self
            .store
            .with_store(|s| Ok(s.acked_seq()?.min(s.max_seq(&s.device_id().clone())?)))?;
        let mut held = Vec::new();
        let held_to = loop {
            let path = format!(
                "{OWN_PATH}?after={after}&limit={}",
                self.protocol.options.pull_limit
            );
            let request = Request::new(Method::Get, path, Some(self.token));
            let page: OwnOpsResponse = self.call(retries, &request).await?;
            if let Some(last) = page.ops.last() {
                after = last.seq;
            }
            held.extend(page.ops);
            if !page.more {
                break page.held_to;
            }
        };
        self.store
            .with_store(|s| s.adopt_own_ops(&held, held_to).map(|_| ()))
    }

    /// What the server holds of this device, read from a push of nothing.
    async fn server_acked(&self, retries: &mut u32) -> Result<u64> {
        let request = self.push_request(&PushRequest {
            ops: Vec::new(),
            pulled_to: None,
        })?;
        let answer: PushResponse = self.call(retries, &request).await?;
        Ok(answer.acked_seq)
    }

    fn pull_request(&self, cursor: u64, check: Option<&str>) -> Request {
        let mut path = format!(
            "{PULL_PATH}?after={cursor}&limit={}",
            self.protocol.options.pull_limit
        );
        if let Some(check) = check {
            path.push_str("&check=");
            path.push_str(check);
        }
        Request::new(Method::Get, path, Some(self.token))
    }

    /// Pulls until caught up, each page in one transaction with the cursor after it; returns
    /// whether the server holds ops of this device the phone lacks (its database was restored
    /// from an older copy). The next page is asked for ([`Transport::prefetch`]) before this
    /// one is applied, so the phone's writing overlaps the server's reading and the transfer.
    async fn pull_all(
        &self,
        report: &mut SyncReport,
        state: &mut SyncProgress,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<bool> {
        let store = self.store;
        let mut missing_own = false;
        'from_cursor: loop {
            let (mut cursor, check, mut known_scope) = store.with_store(|s| {
                Ok((
                    pull_cursor(s)?,
                    get_meta(s.conn(), CURSOR_CHECK_KEY)?,
                    get_meta(s.conn(), SCOPE_KEY)?,
                ))
            })?;
            let mut request = self.pull_request(cursor, check.as_deref());
            loop {
                let page: PullResponse = self.call(&mut report.retries, &request).await?;
                // What the user may see changed (new grids): start again from the beginning;
                // ops already held are skipped as duplicates.
                let scope_changed = cursor > 0 && known_scope.as_deref() != Some(&page.scope);
                let next = (page.more && !scope_changed)
                    .then(|| self.pull_request(page.cursor, page.cursor_check.as_deref()));
                if let Some(next) = &next {
                    self.transport.prefetch(next);
                }
                // The server holds fewer of this device's ops than it acknowledged (restored
                // from a backup): they are pending again, and the sync pushes them after the
                // pull. More than the phone has: the phone was restored from an older copy.
                if let Some(held) = page.acked_seq {
                    missing_own |= store.with_store(|s| {
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
                if scope_changed {
                    store.with_store(|s| {
                        set_meta(s.conn(), CURSOR_KEY, "0")?;
                        s.conn()
                            .execute("DELETE FROM meta WHERE key = ?1", [CURSOR_CHECK_KEY])?;
                        set_meta(s.conn(), SCOPE_KEY, &page.scope)
                    })?;
                    continue 'from_cursor;
                }
                let applied = store.with_store(|s| apply_page(s, &page))?;
                report.pulled += page.ops.len() as u64;
                report.applied += applied;
                state.pulled = report.pulled;
                progress(state);
                match next {
                    None => return Ok(missing_own),
                    Some(next) => {
                        request = next;
                        cursor = page.cursor;
                        known_scope = Some(page.scope);
                    }
                }
            }
        }
    }

    /// Takes the server's calendar and cadence when they changed.
    async fn refresh_reference(&self, report: &mut SyncReport) -> Result<()> {
        let request = Request::new(Method::Get, REFERENCE_PATH.to_owned(), Some(self.token));
        let data: ReferenceData = self.call(&mut report.retries, &request).await?;
        self.store.with_store(|s| {
            if get_meta(s.conn(), REFERENCE_KEY)?.as_deref() != Some(data.tag.as_str()) {
                s.set_reference(&data.calendar.to_string(), &data.cadence)?;
                s.set_grids(&data.grids)?;
                set_meta(s.conn(), REFERENCE_KEY, &data.tag)?;
            }
            Ok(())
        })
    }
}

/// Applies one pulled page in one transaction with the cursor after it; returns how many of
/// its ops were new here.
fn apply_page(store: &mut Store, page: &PullResponse) -> Result<u64> {
    let next = page.cursor.to_string();
    let (applied, ()) = store.apply_ops_with(&page.ops, |tx, _| {
        set_meta(tx, CURSOR_KEY, &next)?;
        match &page.cursor_check {
            Some(check) => set_meta(tx, CURSOR_CHECK_KEY, check)?,
            None => {
                tx.execute("DELETE FROM meta WHERE key = ?1", [CURSOR_CHECK_KEY])?;
            }
        }
        set_meta(tx, SCOPE_KEY, &page.scope)
    })?;
    store.observe_server_hlc(page.server_hlc, page.server_time_ms)?;
    Ok(applied.applied as u64)
}

/// Where the next pull starts (0: from the beginning).
fn pull_cursor(store: &Store) -> Result<u64> {
    Ok(get_meta(store.conn(), CURSOR_KEY)?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn retryable(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// The server's refusal as an error, with its code and messages when it sent them.
fn server_error(response: &Response) -> Error {
    let status = response.status;
    match serde_json::from_slice::<ErrorBody>(&response.body) {
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
                String::from_utf8_lossy(&response.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
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
