//! Password checks for enrolment and dashboard sign-in: outside the writer (an argon2id check
//! takes tens of milliseconds and 64 MiB, and must not stall pushes), at most a few at a time
//! (a flood of attempts cannot take the memory), and a user name that keeps failing is refused
//! for a while (password guessing).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use xuncha_core::sync::Role;

use crate::AppState;
use crate::accounts;
use crate::error::ApiError;

/// Password checks run at once.
const CONCURRENT_CHECKS: usize = 2;
/// User names whose failures are remembered at most (the map is cleared beyond).
const TRACKED_USERS: usize = 100_000;

/// How many failures a user name may have within a window.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Failed attempts allowed within `window`.
    pub attempts: u32,
    /// The window; after `attempts` failures the name is refused until it ends.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            attempts: 5,
            window: Duration::from_secs(300),
        }
    }
}

/// The state of password checking.
#[derive(Debug)]
pub struct LoginGuard {
    limits: LoginLimits,
    checks: tokio::sync::Semaphore,
    /// Failures by user name: how many, and when the first of the window was.
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginGuard {
    /// A guard with these limits.
    pub fn new(limits: LoginLimits) -> Self {
        LoginGuard {
            limits,
            checks: tokio::sync::Semaphore::new(CONCURRENT_CHECKS),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `user` may try again, if they are refused now.
    fn refused_for(&self, user: &str) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = failures.get(user)?;
        let left = self.limits.window.checked_sub(since.elapsed())?;
        (*count >= self.limits.attempts).then(|| left.as_secs().max(1))
    }

    fn record(&self, user: &str, ok: bool) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            failures.remove(user);
            return;
        }
        if failures.len() >= TRACKED_USERS {
            failures.clear();
        }
        let entry = failures
            .entry(user.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.limits.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
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
pub async fn check_password(
    state: &AppState,
    user: &str,
    password: &str,
) -> Result<Role, ApiError> {
    let guard = &state.login;
    if let Some(seconds) = guard.refused_for(user) {
        return Err(too_many(seconds));
    }
    let _permit = guard.checks.acquire().await.map_err(ApiError::internal)?;
    let name = user.to_owned();
    let record = state
        .read(move |conn| accounts::login_record(conn, &name))
        .await?;
    let password = password.to_owned();
    let checked = tokio::task::spawn_blocking(move || accounts::verify_login(record, &password))
        .await
        .map_err(ApiError::internal)?;
    guard.record(user, checked.is_ok());
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_refused_after_its_failures_until_the_window_ends() {
        let guard = LoginGuard::new(LoginLimits {
            attempts: 2,
            window: Duration::from_millis(800),
        });
        guard.record("w1", false);
        assert_eq!(guard.refused_for("w1"), None, "one failure is allowed");
        guard.record("w1", false);
        assert!(guard.refused_for("w1").is_some());
        assert_eq!(
            guard.refused_for("w2"),
            None,
            "other names are not affected"
        );
        std::thread::sleep(Duration::from_millis(850));
        assert_eq!(guard.refused_for("w1"), None, "the window ended");
        // A new window starts with the next failure; a success forgets them.
        guard.record("w1", false);
        guard.record("w1", true);
        guard.record("w1", false);
        assert_eq!(guard.refused_for("w1"), None);
    }
}
