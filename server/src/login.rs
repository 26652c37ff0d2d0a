//! Password checks for enrolment and dashboard sign-in: outside the writer (an argon2id check
//! takes tens of milliseconds and 64 MiB, and must not stall pushes), at most a few at a time
//! (a flood of attempts cannot take the memory), and a user name that keeps failing is refused
//! for a while (password guessing).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use serde_json::json;
use xuncha_core::sync::Role;

use crate::AppState;
use crate::accounts;
use crate::error::ApiError;

/// Password checks run at once.
const CONCURRENT_CHECKS: usize = 2;
/// User names and addresses whose failures are remembered at most (the oldest windows are
/// dropped beyond), so a flood of made-up names cannot grow the server's memory.
const TRACKED: usize = 100_000;

/// How many failures a user name, and a client address, may have within a window.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Failed attempts allowed per user name within `window`.
    pub attempts: u32,
    /// Failed attempts allowed per client address within `window`, whatever the names (one
    /// password tried across many users). Higher: an office behind one address has many
    /// workers who mistype.
    pub attempts_per_address: u32,
    /// The window; after that many failures the name or address is refused until it ends.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            attempts: 5,
            attempts_per_address: 30,
            window: Duration::from_secs(300),
        }
    }
}

/// The throttling rule for one key (a user name or a client address) that has `count`
/// failures in a window that began `elapsed` ago: seconds until it may try again, if it has
/// used up `allowed`. (One rule for the in-memory count of one server and the table several
/// instances share, `postgres::throttle`.)
pub fn refused_for(count: u32, elapsed: Duration, allowed: u32, window: Duration) -> Option<u64> {
    let left = window.checked_sub(elapsed)?;
    (count >= allowed).then(|| left.as_secs().max(1))
}

/// The count after one more failure, and whether it starts a new window (the old one is over).
pub fn one_more(count: u32, elapsed: Duration, window: Duration) -> (u32, bool) {
    if elapsed >= window {
        (1, true)
    } else {
        (count + 1, false)
    }
}

/// Failures counted per key (a user name or a client address) within a window.
#[derive(Debug, Default)]
struct Failures(HashMap<String, (u32, Instant)>);

impl Failures {
    /// Seconds until `key` may try again, if it has used up `allowed` in the window.
    fn refused_for(&self, key: &str, allowed: u32, window: Duration) -> Option<u64> {
        let (count, since) = self.0.get(key)?;
        refused_for(*count, since.elapsed(), allowed, window)
    }

    fn add(&mut self, key: &str, window: Duration) {
        if self.0.len() >= TRACKED && !self.0.contains_key(key) {
            self.0.retain(|_, (_, since)| since.elapsed() < window);
            if self.0.len() >= TRACKED {
                self.0.clear();
            }
        }
        let entry = self.0.entry(key.to_owned()).or_insert((0, Instant::now()));
        let (count, new_window) = one_more(entry.0, entry.1.elapsed(), window);
        *entry = (count, if new_window { Instant::now() } else { entry.1 });
    }

    fn take_back(&mut self, key: &str) {
        if let Some(entry) = self.0.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }
}

/// The state of password checking.
#[derive(Debug)]
pub struct LoginGuard {
    limits: LoginLimits,
    checks: tokio::sync::Semaphore,
    /// Failures by user name and by client address, counted when an attempt starts (so
    /// attempts made at once cannot all pass the check before any is counted) and taken back
    /// when it succeeds.
    failures: Mutex<(Failures, Failures)>,
}

/// An attempt counted as failed until it succeeds.
#[derive(Debug)]
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    user: String,
    address: Option<String>,
}

impl Attempt<'_> {
    /// The password was right: the name's failures are forgotten and this attempt does not
    /// count against the address.
    fn succeeded(self) {
        let mut f = self.guard.lock();
        f.0.0.remove(&self.user);
        if let Some(a) = &self.address {
            f.1.take_back(a);
        }
    }
}

impl LoginGuard {
    /// A guard with these limits.
    pub fn new(limits: LoginLimits) -> Self {
        LoginGuard {
            limits,
            checks: tokio::sync::Semaphore::new(CONCURRENT_CHECKS),
            failures: Mutex::new((Failures::default(), Failures::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Failures, Failures)> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an attempt for `user` from `address`: refused (with the seconds to wait) when
    /// either has used up its failures, else counted as failed until it succeeds.
    pub fn begin(&self, user: &str, address: Option<IpAddr>) -> Result<Attempt<'_>, u64> {
        let address = address.map(|a| a.to_string());
        let window = self.limits.window;
        let mut f = self.lock();
        let (by_user, by_address) = &mut *f;
        let refused = by_user
            .refused_for(user, self.limits.attempts, window)
            .or_else(|| {
                address.as_deref().and_then(|a| {
                    by_address.refused_for(a, self.limits.attempts_per_address, window)
                })
            });
        if let Some(seconds) = refused {
            return Err(seconds);
        }
        by_user.add(user, window);
        if let Some(a) = &address {
            by_address.add(a, window);
        }
        Ok(Attempt {
            guard: self,
            user: user.to_owned(),
            address,
        })
    }
}

/// The client's address: the socket's peer, or, when that peer is a trusted reverse proxy,
/// the last address in `X-Forwarded-For` that is not one (absent when served without
/// addresses, as in-process tests are).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientAddr(peer.map(|peer| {
            client_behind(peer, &parts.headers, &state.config.trusted_proxies)
        })))
    }
}

/// Whether a trusted reverse proxy says the client reached it over HTTPS
/// (`X-Forwarded-Proto: https`, its last value); from anyone else the header is ignored.
#[derive(Clone, Copy, Debug)]
pub struct ForwardedHttps(pub bool);

impl FromRequestParts<AppState> for ForwardedHttps {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let trusted = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|c| {
                let peer = c.0.ip();
                state
                    .config
                    .trusted_proxies
                    .iter()
                    .any(|net| net.contains(&peer))
            });
        let https = trusted
            && parts
                .headers
                .get_all("x-forwarded-proto")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        Ok(ForwardedHttps(https))
    }
}

/// Who is behind `peer`: itself, unless it is a trusted proxy that says whom it forwards.
fn client_behind(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|net| net.contains(a));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    // Proxies append: the last untrusted hop is the client (earlier entries can be forged).
    forwarded
        .into_iter()
        .rev()
        .find(|a| !is_trusted(a))
        .unwrap_or(peer)
}

fn too_many(seconds: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("密码错误次数过多，请 {} 分钟后再试", seconds.div_ceil(60)),
        format!("too many wrong passwords; try again in {seconds} s"),
    )
    .with_detail(json!({ "retry_after_s": seconds }))
}

/// The role of `user` if `password` is right: the one way enrolment and sign-in check it.
/// `address`: the client's, for the per-address limit.
pub async fn check_password(
    state: &AppState,
    user: &str,
    password: &str,
    address: Option<IpAddr>,
) -> Result<Role, ApiError> {
    // Several instances count wrong passwords together, in the shared database.
    let (limits, name, at) = (
        state.config.login_limits,
        user.to_owned(),
        address.map(|a| a.to_string()),
    );
    let shared = state
        .blocking(move |db| {
            db.shared_throttle(&limits, &name, at.as_deref())
                .transpose()
        })
        .await?;
    let attempt = match shared {
        Some(allowed) => {
            allowed.map_err(too_many)?;
            None
        }
        None => Some(state.login.begin(user, address).map_err(too_many)?),
    };
    let _permit = state
        .login
        .checks
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let name = user.to_owned();
    let record = state
        .read(move |_, tables| accounts::login_record(tables, &name))
        .await?;
    let password = password.to_owned();
    let checked = tokio::task::spawn_blocking(move || accounts::verify_login(record, &password))
        .await
        .map_err(ApiError::internal)?;
    if checked.is_ok() {
        match attempt {
            Some(attempt) => attempt.succeeded(),
            None => {
                let (name, at) = (user.to_owned(), address.map(|a| a.to_string()));
                state
                    .blocking(move |db| db.shared_throttle_passed(&name, at.as_deref()))
                    .await?;
            }
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(attempts: u32, per_address: u32, ms: u64) -> LoginLimits {
        LoginLimits {
            attempts,
            attempts_per_address: per_address,
            window: Duration::from_millis(ms),
        }
    }

    #[test]
    fn a_name_is_refused_after_its_failures_until_the_window_ends() {
        let guard = LoginGuard::new(limits(2, 100, 800));
        drop(guard.begin("w1", None).unwrap());
        assert!(guard.begin("w1", None).is_ok(), "one failure is allowed");
        assert!(guard.begin("w1", None).is_err());
        assert!(
            guard.begin("w2", None).is_ok(),
            "other names are not affected"
        );
        std::thread::sleep(Duration::from_millis(850));
        // The window ended; a success forgets the failures.
        drop(guard.begin("w1", None).unwrap());
        guard.begin("w1", None).unwrap().succeeded();
        drop(guard.begin("w1", None).unwrap());
        assert!(guard.begin("w1", None).is_ok());
    }

    #[test]
    fn attempts_count_when_they_start_not_when_they_end() {
        let guard = LoginGuard::new(limits(5, 100, 60_000));
        // Forty attempts at once, none finished: only five get to check a password.
        let started: Vec<_> = (0..40).map(|_| guard.begin("w1", None)).collect();
        assert_eq!(started.iter().filter(|a| a.is_ok()).count(), 5);
    }

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_last_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, 198.51.100.9, 10.1.1.1".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let client: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(client_behind(proxy, &headers, &trusted), client);
        // Anyone else's header is not believed.
        let stranger: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(client_behind(stranger, &headers, &trusted), stranger);
        assert_eq!(client_behind(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn one_address_trying_many_names_is_refused_too() {
        let guard = LoginGuard::new(limits(5, 10, 60_000));
        let here = Some(IpAddr::from([203, 0, 113, 7]));
        let there = Some(IpAddr::from([203, 0, 113, 8]));
        for n in 0..10 {
            drop(guard.begin(&format!("user{n}"), here).unwrap());
        }
        assert!(
            guard.begin("user10", here).is_err(),
            "the address used up its failures"
        );
        assert!(
            guard.begin("user10", there).is_ok(),
            "another address is not affected"
        );
        // Right passwords from an office's one address do not count against it.
        let guard = LoginGuard::new(limits(5, 2, 60_000));
        for n in 0..10 {
            guard.begin(&format!("user{n}"), here).unwrap().succeeded();
        }
        assert!(guard.begin("user10", here).is_ok());
    }
}
