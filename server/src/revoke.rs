//! Cutting access off: a user disabled, a lost phone revoked, every session of a user ended,
//! a calendar feed address replaced, and a password change that signs out the other devices.
//!
//! Each change bumps a revocation stamp in `server_meta`. A server clears its token caches at
//! once when the change is made through it, and within a second when another process (the
//! command line) made it: it watches the stamp ([`stamp`]).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::accounts;
use crate::error::ApiError;

/// The revocation stamp: changes whenever access is cut off anywhere.
pub fn stamp(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM server_meta WHERE key = 'revocations'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

fn bump(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO server_meta (key, value) VALUES ('revocations', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )?;
    Ok(())
}

fn require_user(conn: &Connection, user: &str) -> Result<(), ApiError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM server_users WHERE id = ?1)",
        [user],
        |r| r.get(0),
    )?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("user {user}")))
    }
}

/// Revokes every device token and dashboard session of `user` but `keep` (the device making
/// the change, when the user changes their own password). Returns how many were revoked.
pub fn sign_out_everywhere(
    conn: &Connection,
    user: &str,
    keep: Option<&str>,
) -> Result<usize, ApiError> {
    require_user(conn, user)?;
    let keep = keep.unwrap_or("");
    conn.execute(
        "DELETE FROM server_sessions WHERE device_id IN
           (SELECT device_id FROM server_devices WHERE user_id = ?1 AND device_id <> ?2)",
        params![user, keep],
    )?;
    let n = conn.execute(
        "UPDATE server_devices SET revoked = 1
         WHERE user_id = ?1 AND device_id <> ?2 AND revoked = 0",
        params![user, keep],
    )?;
    bump(conn)?;
    Ok(n)
}

/// Disables (or enables again) a user: a disabled user cannot sign in, and every device and
/// session they had is revoked, their calendar feed address replaced (enabling again restores
/// none of it: they enroll again).
pub fn set_disabled(conn: &Connection, user: &str, disabled: bool) -> Result<(), ApiError> {
    require_user(conn, user)?;
    conn.execute(
        "UPDATE server_users SET disabled = ?2 WHERE id = ?1",
        params![user, disabled],
    )?;
    if disabled {
        sign_out_everywhere(conn, user, None)?;
        rotate_feed(conn, user)?;
    }
    bump(conn)?;
    Ok(())
}

/// Revokes one device (a lost or stolen phone): its token stops working at once. What it had
/// not synced stays on it; enrolling it again takes a password.
pub fn revoke_device(conn: &Connection, device: &str) -> Result<(), ApiError> {
    conn.execute("DELETE FROM server_sessions WHERE device_id = ?1", [device])?;
    let n = conn.execute(
        "UPDATE server_devices SET revoked = 1 WHERE device_id = ?1",
        [device],
    )?;
    if n == 0 {
        return Err(ApiError::not_found(format!("device {device}")));
    }
    bump(conn)?;
    Ok(())
}

/// Gives the user a new calendar feed address; the old one answers 404.
pub fn rotate_feed(conn: &Connection, user: &str) -> Result<(), ApiError> {
    require_user(conn, user)?;
    conn.execute(
        "INSERT INTO server_meta (key, value) VALUES ('feed_generation/' || ?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [user],
    )?;
    bump(conn)?;
    Ok(())
}

/// Sets a user's password and signs them out everywhere but `keep` (their own device, when
/// they change it themselves): whoever knew the old one is cut off.
pub fn change_password(
    conn: &Connection,
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
pub fn devices_of(conn: &Connection, user: &str) -> Result<Vec<DeviceInfo>, ApiError> {
    require_user(conn, user)?;
    let mut stmt = conn.prepare(
        "SELECT d.device_id, d.name, d.enrolled_ms, d.revoked,
                EXISTS (SELECT 1 FROM server_sessions s WHERE s.device_id = d.device_id)
                  OR d.device_id LIKE 'web-%'
         FROM server_devices d WHERE d.user_id = ?1 ORDER BY d.enrolled_ms DESC, d.device_id",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok(DeviceInfo {
            device_id: r.get(0)?,
            name: r.get(1)?,
            enrolled_ms: r.get(2)?,
            revoked: r.get(3)?,
            dashboard: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
