//! Cutting access off: a user disabled, a lost phone revoked, every session of a user ended,
//! a calendar feed address replaced, and a password change that signs out the other devices.
//!
//! Each change bumps a revocation stamp in `server_meta`. A server clears its token caches at
//! once when the change is made through it, and within a second when another process (the
//! command line) made it: it watches the stamp ([`stamp`]).

use serde::Serialize;

use crate::account_tables::AccountTables;
use crate::accounts;
use crate::error::ApiError;

/// The revocation stamp: changes whenever access is cut off anywhere.
pub fn stamp(conn: &dyn AccountTables) -> Result<i64, ApiError> {
    Ok(conn
        .meta("revocations")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn bump(conn: &dyn AccountTables) -> Result<(), ApiError> {
    conn.count_up("revocations")
}

fn require_user(conn: &dyn AccountTables, user: &str) -> Result<(), ApiError> {
    if conn.user_exists(user)? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("user {user}")))
    }
}

/// Revokes every device token and dashboard session of `user` but `keep` (the device making
/// the change, when the user changes their own password). Returns how many were revoked.
pub fn sign_out_everywhere(
    conn: &dyn AccountTables,
    user: &str,
    keep: Option<&str>,
) -> Result<usize, ApiError> {
    require_user(conn, user)?;
    let n = conn.revoke_devices_of(user, keep.unwrap_or(""))?;
    bump(conn)?;
    Ok(n)
}

/// Disables (or enables again) a user: a disabled user cannot sign in, and every device and
/// session they had is revoked, their calendar feed address replaced (enabling again restores
/// none of it: they enroll again).
pub fn set_disabled(conn: &dyn AccountTables, user: &str, disabled: bool) -> Result<(), ApiError> {
    require_user(conn, user)?;
    conn.set_disabled(user, disabled)?;
    if disabled {
        sign_out_everywhere(conn, user, None)?;
        rotate_feed(conn, user)?;
    }
    bump(conn)?;
    Ok(())
}

/// Revokes one device (a lost or stolen phone): its token stops working at once. What it had
/// not synced stays on it; enrolling it again takes a password.
pub fn revoke_device(conn: &dyn AccountTables, device: &str) -> Result<(), ApiError> {
    if !conn.revoke_device(device)? {
        return Err(ApiError::not_found(format!("device {device}")));
    }
    bump(conn)?;
    Ok(())
}

/// Gives the user a new calendar feed address; the old one answers 404.
pub fn rotate_feed(conn: &dyn AccountTables, user: &str) -> Result<(), ApiError> {
    require_user(conn, user)?;
    conn.count_up(&format!("feed_generation/{user}"))?;
    bump(conn)?;
    Ok(())
}

/// Sets a user's password and signs them out everywhere but `keep` (their own device, when
/// they change it themselves): whoever knew the old one is cut off.
pub fn change_password(
    conn: &dyn AccountTables,
    user: &str,
    password: &str,
    keep: Option<&str>,
) -> Result<(), ApiError> {
    accounts::set_password(conn, user, password)?;
    sign_out_everywhere(conn, user, keep)?;
    rotate_feed(conn, user)
}

/// An enrolled device, for the admin's list (a lost phone is picked from it).
#[derive(Debug, Serialize)]
pub struct DeviceInfo {
    /// Device id.
    pub device_id: String,
    /// The name it enrolled with (the phone model), or the dashboard's.
    pub name: Option<String>,
    /// When it enrolled (ms since the epoch).
    pub enrolled_ms: i64,
    /// Its token no longer works.
    pub revoked: bool,
    /// A dashboard session rather than a phone.
    pub dashboard: bool,
}

/// The devices a user enrolled, newest first.
pub fn devices_of(conn: &dyn AccountTables, user: &str) -> Result<Vec<DeviceInfo>, ApiError> {
    require_user(conn, user)?;
    conn.devices_of(user)
}
