//! Users, roles, the areas they cover, enrolled devices and their tokens.
//!
//! Passwords are hashed with argon2id (PHC strings). A device token is 32 random bytes, shown
//! once at enrolment; the server keeps only its SHA-256, which is enough for a secret of that
//! entropy and cheap to check on every request.

use std::collections::{BTreeMap, BTreeSet};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::sync::Role;

use crate::account_tables::AccountTables;
use crate::error::ApiError;

/// The user name of the administrator created at first start.
pub const ADMIN_USER: &str = "admin";

/// Who is calling: resolved from the device token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The signed-in user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// The enrolled device the token belongs to.
    pub device: DeviceId,
}

/// What a user may see and write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything (admins).
    All,
    /// These grids.
    Grids(BTreeSet<String>),
}

impl Scope {
    /// Whether premises in `grid` are covered.
    pub fn covers(&self, grid: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Grids(g) => g.contains(grid),
        }
    }
}

/// A grid and where it sits in the hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    /// Grid id, e.g. `XF-03`.
    pub id: String,
    /// Display name, e.g. 幸福社区第三网格.
    pub name: String,
    /// Community (社区).
    #[serde(default)]
    pub community: String,
    /// Sub-district (街道).
    #[serde(default)]
    pub subdistrict: String,
}

/// The areas a user covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Areas {
    /// Grid ids.
    #[serde(default)]
    pub grids: Vec<String>,
    /// Whole communities.
    #[serde(default)]
    pub communities: Vec<String>,
    /// Whole sub-districts.
    #[serde(default)]
    pub subdistricts: Vec<String>,
}

impl Areas {
    /// Each area with its level (`grid`, `community`, `subdistrict`), as they are stored.
    pub fn rows(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        let grids = self.grids.iter().map(|a| ("grid", a.as_str()));
        let communities = self.communities.iter().map(|a| ("community", a.as_str()));
        let subdistricts = self
            .subdistricts
            .iter()
            .map(|a| ("subdistrict", a.as_str()));
        grids.chain(communities).chain(subdistricts)
    }
}

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random token (64 hex characters).
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(hex::encode(bytes))
}

/// The form a token is stored and looked up in.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn check_user_id(id: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_user",
            "用户名须为 1 至 64 个字母、数字或 . _ -",
            format!("user name {id:?} must be 1 to 64 letters, digits, '.', '_' or '-'"),
        ))
    }
}

pub(crate) fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 8 {
        return Err(ApiError::invalid(
            "weak_password",
            "密码至少 8 个字符",
            "the password needs at least 8 characters",
        ));
    }
    Ok(())
}

/// Adds a user.
pub fn create_user(
    conn: &dyn AccountTables,
    id: &str,
    display_name: &str,
    role: Role,
    password: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    check_user_id(id)?;
    check_password(password)?;
    insert_user(
        conn,
        id,
        display_name,
        role,
        &hash_password(password)?,
        now_ms,
    )
}

/// Adds a user whose password is already hashed (refused when the id is taken).
pub fn insert_user(
    conn: &dyn AccountTables,
    id: &str,
    display_name: &str,
    role: Role,
    hash: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    if !conn.insert_user(id, display_name, role, hash, now_ms)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            format!("用户 {id} 已存在"),
            format!("user {id} already exists"),
        ));
    }
    Ok(())
}

/// Sets a user's password (and so revokes nothing: devices keep their tokens).
pub fn set_password(conn: &dyn AccountTables, id: &str, password: &str) -> Result<(), ApiError> {
    check_password(password)?;
    let hash = hash_password(password)?;
    if !conn.set_password_hash(id, &hash)? {
        return Err(ApiError::not_found(format!("user {id}")));
    }
    Ok(())
}

/// Creates the administrator on first start. Returns the generated one-time password when
/// none was given (`XUNCHA_ADMIN_PASSWORD`), so the caller prints it once.
pub fn ensure_admin(
    conn: &dyn AccountTables,
    password: Option<&str>,
    now_ms: i64,
) -> Result<Option<String>, ApiError> {
    if conn.user_exists(ADMIN_USER)? {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.to_owned(), None),
        None => {
            let p = new_token()?[..20].to_owned();
            (p.clone(), Some(p))
        }
    };
    create_user(conn, ADMIN_USER, "管理员", Role::Admin, &password, now_ms)?;
    Ok(generated)
}

/// Adds or updates a grid.
pub fn upsert_grid(conn: &dyn AccountTables, grid: &Grid) -> Result<(), ApiError> {
    if grid.id.is_empty() || grid.id.len() > 64 || grid.name.is_empty() {
        return Err(ApiError::invalid(
            "invalid_grid",
            "网格须有编号（不超过 64 个字符）和名称",
            "a grid needs an id (up to 64 characters) and a name",
        ));
    }
    conn.upsert_grid(grid)
}

/// Replaces the areas a user covers.
pub fn set_areas(conn: &dyn AccountTables, user: &str, areas: &Areas) -> Result<(), ApiError> {
    if !conn.user_exists(user)? {
        return Err(ApiError::not_found(format!("user {user}")));
    }
    for grid in &areas.grids {
        if !conn.grid_exists(grid)? {
            return Err(ApiError::invalid(
                "unknown_grid",
                format!("网格 {grid} 不存在，请先添加"),
                format!("grid {grid} does not exist; add it first"),
            ));
        }
    }
    conn.replace_areas(user, areas)
}

/// What a login checks: a user's role, password hash and whether they are disabled.
pub type LoginRecord = (Role, String, bool);

/// The login record of a user (`None`: no such user).
pub fn login_record(conn: &dyn AccountTables, user: &str) -> Result<Option<LoginRecord>, ApiError> {
    Ok(conn
        .user_row(user)?
        .map(|(role, hash, disabled)| (Role::parse(&role).unwrap_or(Role::Worker), hash, disabled)))
}

/// The role of a user whose password is right; one error for any wrong name or password.
pub fn check_login(conn: &dyn AccountTables, user: &str, password: &str) -> Result<Role, ApiError> {
    verify_login(login_record(conn, user)?, password)
}

/// Checks a password against a login record (argon2id: tens of milliseconds and 64 MiB, so
/// run it off the async runtime and outside the writer).
pub fn verify_login(record: Option<LoginRecord>, password: &str) -> Result<Role, ApiError> {
    let bad_login = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_login",
            "用户名或密码错误",
            "wrong user name or password",
        )
    };
    let Some((role, hash, disabled)) = record else {
        // Spend the same time as for a real user, so timing does not reveal user names.
        let _ = verify_password(password, DUMMY_HASH);
        return Err(bad_login());
    };
    if !verify_password(password, &hash) || disabled {
        return Err(bad_login());
    }
    Ok(role)
}

/// How long a dashboard session lasts.
pub const SESSION_MS: i64 = 12 * 3_600_000;

/// A dashboard session: the cookie token and the CSRF token the page sends back.
#[derive(Debug)]
pub struct Session {
    /// Who.
    pub caller: Caller,
    /// The cookie's value (stored hashed, like device tokens).
    pub token: String,
    /// Sent by the page in `X-CSRF-Token` with every change.
    pub csrf: String,
}

/// Signs a supervisor or admin in to the dashboard. A session is a device of its own
/// (`web-…`), so everything that checks device tokens checks sessions too.
pub fn open_session(
    conn: &dyn AccountTables,
    user: &str,
    password: &str,
    now_ms: i64,
) -> Result<Session, ApiError> {
    let role = check_login(conn, user, password)?;
    open_session_as(conn, user, role, now_ms)
}

/// Opens a dashboard session for a user whose password was checked (see [`verify_login`]).
pub fn open_session_as(
    conn: &dyn AccountTables,
    user: &str,
    role: Role,
    now_ms: i64,
) -> Result<Session, ApiError> {
    if role == Role::Worker {
        return Err(ApiError::forbidden(
            "dashboard_forbidden",
            "监管平台仅供网格长、社区和街道人员使用；网格员请使用手机应用",
            "the dashboard is for supervisors and admins; grid workers use the phone app",
        ));
    }
    let device = DeviceId(format!("web-{}", &new_token()?[..16]));
    let token = new_token()?;
    let csrf = new_token()?;
    conn.open_session(
        device.as_str(),
        user,
        &token_hash(&token),
        &csrf,
        now_ms,
        now_ms + SESSION_MS,
    )?;
    Ok(Session {
        caller: Caller {
            user: UserId(user.to_owned()),
            role,
            device,
        },
        token,
        csrf,
    })
}

/// The caller of a live session, and its CSRF token.
pub fn session_caller(
    conn: &dyn AccountTables,
    token: &str,
    now_ms: i64,
) -> Result<(Caller, String), ApiError> {
    let csrf = conn
        .session_csrf(&token_hash(token), now_ms)?
        .ok_or_else(ApiError::unauthorized)?;
    Ok((authenticate(conn, token)?, csrf))
}

/// Ends a session.
pub fn close_session(conn: &dyn AccountTables, token: &str) -> Result<(), ApiError> {
    conn.close_session(&token_hash(token))
}

/// Checks the password and issues a new token for the device (an earlier token of the same
/// device stops working). A device belongs to one user.
pub fn enroll(
    conn: &dyn AccountTables,
    user: &str,
    password: &str,
    device: &DeviceId,
    device_name: Option<&str>,
    now_ms: i64,
) -> Result<(Caller, String), ApiError> {
    let role = check_login(conn, user, password)?;
    enroll_as(conn, user, role, device, device_name, now_ms)
}

/// Issues a device token to a user whose password was checked (see [`verify_login`]).
pub fn enroll_as(
    conn: &dyn AccountTables,
    user: &str,
    role: Role,
    device: &DeviceId,
    device_name: Option<&str>,
    now_ms: i64,
) -> Result<(Caller, String), ApiError> {
    if device.as_str().is_empty() || device.as_str().len() > 64 {
        return Err(ApiError::invalid(
            "invalid_device",
            "设备编号须为 1 至 64 个字符",
            "device id must be 1 to 64 characters",
        ));
    }
    let owner = conn.device_owner(device.as_str())?;
    if owner.as_deref().is_some_and(|o| o != user) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "device_taken",
            "该设备已登记给其他用户；换人使用请清除应用数据后重新登记",
            "this device is enrolled to another user; clear the app's data to enroll it anew",
        ));
    }
    let token = new_token()?;
    conn.enroll_device(
        device.as_str(),
        user,
        device_name,
        &token_hash(&token),
        now_ms,
    )?;
    Ok((
        Caller {
            user: UserId(user.to_owned()),
            role,
            device: device.clone(),
        },
        token,
    ))
}

/// The device's short code (from its row number: unique on this server, never reused).
pub fn device_code(conn: &dyn AccountTables, device: &DeviceId) -> Result<String, ApiError> {
    let n = conn.device_number(device.as_str())?;
    Ok(xuncha_core::notice::device_code(n as u64))
}

/// Issues a token without a password (operators' tools and load tests on the server itself).
pub fn issue_token(
    conn: &dyn AccountTables,
    user: &str,
    device: &DeviceId,
) -> Result<String, ApiError> {
    let token = new_token()?;
    conn.replace_token(device.as_str(), user, &token_hash(&token))?;
    Ok(token)
}

/// Resolves a bearer token.
pub fn authenticate(conn: &dyn AccountTables, token: &str) -> Result<Caller, ApiError> {
    let (device, user, role) = conn
        .token_owner(&token_hash(token))?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Caller {
        user: UserId(user),
        role: Role::parse(&role).unwrap_or(Role::Worker),
        device: DeviceId(device),
    })
}

/// An enabled user's role and what they may see and write, by name (`None`: no such user, or
/// disabled), for checks on someone's behalf other than the caller's (an assignee, the author
/// of an op set aside).
pub fn role_and_scope(
    conn: &dyn AccountTables,
    user: &UserId,
) -> Result<Option<(Role, Scope)>, ApiError> {
    let role = conn.enabled_role(user.as_str())?;
    let Some(role) = role.as_deref().and_then(Role::parse) else {
        return Ok(None);
    };
    let someone = Caller {
        user: user.clone(),
        role,
        device: DeviceId::from("-"),
    };
    Ok(Some((role, scope_of(conn, &someone)?.0)))
}

/// The grids a caller covers, and a tag that changes whenever what they may see changes.
pub fn scope_of(conn: &dyn AccountTables, caller: &Caller) -> Result<(Scope, String), ApiError> {
    // The log's id is part of the tag: a phone pulls again from the start when the server's
    // log is replaced by a restored backup (the original's id is empty: tags stay as they were).
    let log = conn.log_id()?;
    if caller.role == Role::Admin {
        let tag = if log.is_empty() {
            "all".to_owned()
        } else {
            format!("all-{log}")
        };
        return Ok((Scope::All, tag));
    }
    let mut grids = BTreeSet::new();
    let mut tag = Sha256::new();
    if !log.is_empty() {
        tag.update(format!("{log};"));
    }
    for (id, epoch) in conn.grids_covered(caller.user.as_str())? {
        tag.update(format!("{id}:{epoch};"));
        grids.insert(id);
    }
    Ok((Scope::Grids(grids), hex::encode(&tag.finalize()[..8])))
}

/// Display names of users by id; ids without an account are left out (`system`, the server's
/// own actions, is named by the pages).
pub fn display_names<'a>(
    conn: &dyn AccountTables,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut names = BTreeMap::new();
    for id in ids {
        if names.contains_key(id) {
            continue;
        }
        if let Some(name) = conn.display_name(id)? {
            names.insert(id.to_owned(), name);
        }
    }
    Ok(names)
}

/// Someone who could follow up a shop's hazards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assignee {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `worker` or `supervisor`.
    pub role: &'static str,
}

/// The enabled workers and supervisors whose area covers `grid` (their phones receive its
/// shops): workers first, then by name.
pub fn users_covering(conn: &dyn AccountTables, grid: &str) -> Result<Vec<Assignee>, ApiError> {
    let mut out = Vec::new();
    for (id, name, role) in conn.users_covering(grid)? {
        out.push(Assignee {
            id,
            name,
            role: if role == "worker" {
                "worker"
            } else {
                "supervisor"
            },
        });
    }
    Ok(out)
}

/// A valid argon2id hash of a random string, verified against when the user is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4RJbSQtVDBGkD8Vv4sR+M1RCfhVL2yTQGpVMW6l0XxQ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
