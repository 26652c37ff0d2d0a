//! Where accounts are kept: users, grids and the areas users cover, devices with their token
//! hashes, dashboard sessions. One interface, implemented on SQLite here and on PostgreSQL in
//! `postgres/account_tables.rs`, with one test suite run against both
//! (`server/tests/server_tables.rs`). The rules (checks, hashing, who may do what) stay in
//! [`crate::accounts`], which reaches its rows only through this trait.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};
use xuncha_core::sync::Role;

use crate::accounts::{Areas, Grid};
use crate::error::ApiError;
use crate::revoke::DeviceInfo;
use crate::tables::SqliteTables;

/// What a login checks: the role as stored, the password hash, whether the user is disabled.
pub type UserRow = (String, String, bool);

/// A user's name, role (as stored) and contact phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub display_name: String,
    pub role: String,
    pub phone: Option<String>,
}

/// A grid as stored: where it sits, its outline (GeoJSON text) and epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridRow {
    pub grid: Grid,
    pub geometry: Option<String>,
    pub epoch: i64,
}

/// A user as the admin's list shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub profile: Profile,
    pub disabled: bool,
    pub areas: Areas,
}

/// The areas there are: grid ids, and the communities and sub-districts grids belong to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownAreas {
    pub grids: HashSet<String>,
    pub communities: HashSet<String>,
    pub subdistricts: HashSet<String>,
}

/// Areas by user from stored `(user, level, area)` rows (one read for a whole list).
pub(crate) fn areas_by_user(
    rows: impl IntoIterator<Item = (String, String, String)>,
) -> std::collections::HashMap<String, Areas> {
    let mut by_user: std::collections::HashMap<String, Vec<(String, String)>> =
        std::collections::HashMap::new();
    for (user, level, area) in rows {
        by_user.entry(user).or_default().push((level, area));
    }
    by_user
        .into_iter()
        .map(|(user, rows)| (user, areas_from_rows(rows)))
        .collect()
}

/// Areas from stored `(level, area)` rows.
pub(crate) fn areas_from_rows(rows: impl IntoIterator<Item = (String, String)>) -> Areas {
    let mut areas = Areas::default();
    for (level, area) in rows {
        match level.as_str() {
            "grid" => areas.grids.push(area),
            "community" => areas.communities.push(area),
            _ => areas.subdistricts.push(area),
        }
    }
    for list in [
        &mut areas.grids,
        &mut areas.communities,
        &mut areas.subdistricts,
    ] {
        list.sort();
    }
    areas
}

/// The rows behind [`crate::accounts`]. Every method is one step of a caller's transaction.
pub trait AccountTables {
    /// Adds a user; `false` when the id is taken (nothing changed).
    fn insert_user(
        &self,
        id: &str,
        display_name: &str,
        role: Role,
        hash: &str,
        now_ms: i64,
    ) -> Result<bool, ApiError>;
    /// Replaces a user's password hash; `false` when there is no such user.
    fn set_password_hash(&self, id: &str, hash: &str) -> Result<bool, ApiError>;
    fn user_exists(&self, id: &str) -> Result<bool, ApiError>;
    /// The login record of a user.
    fn user_row(&self, id: &str) -> Result<Option<UserRow>, ApiError>;
    /// The role of an enabled user.
    fn enabled_role(&self, id: &str) -> Result<Option<String>, ApiError>;
    fn display_name(&self, id: &str) -> Result<Option<String>, ApiError>;
    /// Every user id.
    fn user_ids(&self) -> Result<HashSet<String>, ApiError>;
    /// A user's display name, role and phone.
    fn profile(&self, id: &str) -> Result<Option<Profile>, ApiError>;
    /// Sets a user's display name, role and phone.
    fn set_profile(&self, id: &str, profile: &Profile) -> Result<(), ApiError>;
    /// Every user with their areas, by id.
    fn users(&self) -> Result<Vec<Listed>, ApiError>;
    /// Enabled workers (with `reminders_only`, those with reminders on): id and display name,
    /// by id.
    fn workers(&self, reminders_only: bool) -> Result<Vec<(String, String)>, ApiError>;
    /// Turns a user's reminders on or off; `false` when there is no such user.
    fn set_reminders(&self, user: &str, on: bool) -> Result<bool, ApiError>;

    /// Adds a grid or updates its name and place (its epoch stays).
    fn upsert_grid(&self, grid: &Grid) -> Result<(), ApiError>;
    fn grid_exists(&self, id: &str) -> Result<bool, ApiError>;
    /// Sets the outline of a grid (GeoJSON text).
    fn set_grid_geometry(&self, id: &str, geometry: &str) -> Result<(), ApiError>;
    /// Every grid, by id.
    fn grids(&self) -> Result<Vec<GridRow>, ApiError>;
    fn grid(&self, id: &str) -> Result<Option<GridRow>, ApiError>;
    /// Changes a grid's epoch (part of its phones' scope tag: they pull it again).
    fn bump_grid_epoch(&self, id: &str) -> Result<(), ApiError>;
    /// Replaces the areas a user covers.
    fn replace_areas(&self, user: &str, areas: &Areas) -> Result<(), ApiError>;
    /// The areas a user covers, each list sorted.
    fn areas_of(&self, user: &str) -> Result<Areas, ApiError>;
    /// Every grid id, community and sub-district the grids name.
    fn known_areas(&self) -> Result<KnownAreas, ApiError>;
    /// The grids a user's areas cover, with their epochs, by id.
    fn grids_covered(&self, user: &str) -> Result<Vec<(String, i64)>, ApiError>;
    /// Enabled workers and supervisors whose areas cover `grid` (id, name, role): workers
    /// first, then by name and id.
    fn users_covering(&self, grid: &str) -> Result<Vec<(String, String, String)>, ApiError>;

    /// The user a device is enrolled to.
    fn device_owner(&self, device: &str) -> Result<Option<String>, ApiError>;
    /// Enrols a device (or enrols it again): a new token hash, name and time; not revoked.
    fn enroll_device(
        &self,
        device: &str,
        user: &str,
        name: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), ApiError>;
    /// A new token hash for a device, keeping its name and enrolment time; not revoked.
    fn replace_token(&self, device: &str, user: &str, token_hash: &str) -> Result<(), ApiError>;
    /// The device's number on this server: unique, never reused.
    fn device_number(&self, device: &str) -> Result<i64, ApiError>;
    /// The device, user and role a live token belongs to (device not revoked, user enabled).
    fn token_owner(&self, token_hash: &str) -> Result<Option<(String, String, String)>, ApiError>;

    /// Opens a dashboard session (a device of its own), and ends the sessions expired by now.
    fn open_session(
        &self,
        device: &str,
        user: &str,
        token_hash: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), ApiError>;
    /// The CSRF token of the live session a token opened.
    fn session_csrf(&self, token_hash: &str, now_ms: i64) -> Result<Option<String>, ApiError>;
    /// Ends the session a token opened and revokes its device.
    fn close_session(&self, token_hash: &str) -> Result<(), ApiError>;

    /// Disables or enables a user (their devices are revoked by the caller).
    fn set_disabled(&self, user: &str, disabled: bool) -> Result<(), ApiError>;
    /// Ends every session of a user and revokes their devices but `keep`; how many devices
    /// were still live.
    fn revoke_devices_of(&self, user: &str, keep: &str) -> Result<usize, ApiError>;
    /// Ends a device's session and revokes it; `false` when there is no such device.
    fn revoke_device(&self, device: &str) -> Result<bool, ApiError>;
    /// The devices a user enrolled, newest first.
    fn devices_of(&self, user: &str) -> Result<Vec<DeviceInfo>, ApiError>;

    /// A value of the server's settings table.
    fn meta(&self, key: &str) -> Result<Option<String>, ApiError>;
    /// Adds one to a counter in the settings table (from 1 when absent).
    fn count_up(&self, key: &str) -> Result<(), ApiError>;
    /// The value of a setting, `value` stored first when there is none (the first of several
    /// callers racing wins; all get the stored one).
    fn meta_or_insert(&self, key: &str, value: &str) -> Result<String, ApiError>;

    /// The identity of the server's log (empty until a restore or on a database that never
    /// had one), part of every scope tag.
    fn log_id(&self) -> Result<String, ApiError> {
        Ok(self.meta("log_id")?.unwrap_or_default())
    }
}

impl AccountTables for SqliteTables {
    fn insert_user(
        &self,
        id: &str,
        display_name: &str,
        role: Role,
        hash: &str,
        now_ms: i64,
    ) -> Result<bool, ApiError> {
        Ok(self.execute(
            "INSERT OR IGNORE INTO server_users (id, display_name, role, password_hash, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, display_name, role.as_str(), hash, now_ms],
        )? > 0)
    }

    fn set_password_hash(&self, id: &str, hash: &str) -> Result<bool, ApiError> {
        Ok(self.execute(
            "UPDATE server_users SET password_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )? > 0)
    }

    fn user_exists(&self, id: &str) -> Result<bool, ApiError> {
        Ok(self.query_row(
            "SELECT EXISTS (SELECT 1 FROM server_users WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?)
    }

    fn user_row(&self, id: &str) -> Result<Option<UserRow>, ApiError> {
        Ok(self
            .query_row(
                "SELECT role, password_hash, disabled FROM server_users WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    fn enabled_role(&self, id: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .prepare_cached("SELECT role FROM server_users WHERE id = ?1 AND disabled = 0")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn display_name(&self, id: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .prepare_cached("SELECT display_name FROM server_users WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn user_ids(&self) -> Result<HashSet<String>, ApiError> {
        Ok(self
            .prepare("SELECT id FROM server_users")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn profile(&self, id: &str) -> Result<Option<Profile>, ApiError> {
        Ok(self
            .query_row(
                "SELECT display_name, role, phone FROM server_users WHERE id = ?1",
                [id],
                |r| {
                    Ok(Profile {
                        display_name: r.get(0)?,
                        role: r.get(1)?,
                        phone: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn set_profile(&self, id: &str, profile: &Profile) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_users SET display_name = ?2, role = ?3, phone = ?4 WHERE id = ?1",
            params![id, profile.display_name, profile.role, profile.phone],
        )?;
        Ok(())
    }

    fn users(&self) -> Result<Vec<Listed>, ApiError> {
        let mut areas = areas_by_user(
            self.prepare("SELECT user_id, level, area FROM server_user_areas")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        );
        let mut stmt = self.prepare(
            "SELECT id, display_name, role, phone, disabled FROM server_users ORDER BY id",
        )?;
        let users = stmt
            .query_map([], |r| {
                let id: String = r.get(0)?;
                Ok(Listed {
                    areas: areas.remove(&id).unwrap_or_default(),
                    id,
                    profile: Profile {
                        display_name: r.get(1)?,
                        role: r.get(2)?,
                        phone: r.get(3)?,
                    },
                    disabled: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(users)
    }

    fn workers(&self, reminders_only: bool) -> Result<Vec<(String, String)>, ApiError> {
        let mut stmt = self.prepare_cached(
            "SELECT id, display_name FROM server_users
             WHERE role = 'worker' AND disabled = 0 AND (reminders = 1 OR NOT ?1) ORDER BY id",
        )?;
        let rows = stmt
            .query_map([reminders_only], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn set_reminders(&self, user: &str, on: bool) -> Result<bool, ApiError> {
        Ok(self
            .prepare_cached("UPDATE server_users SET reminders = ?2 WHERE id = ?1")?
            .execute(params![user, on])?
            > 0)
    }

    fn areas_of(&self, user: &str) -> Result<Areas, ApiError> {
        let rows: Vec<(String, String)> = self
            .prepare_cached("SELECT level, area FROM server_user_areas WHERE user_id = ?1")?
            .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(areas_from_rows(rows))
    }

    fn known_areas(&self) -> Result<KnownAreas, ApiError> {
        let mut known = KnownAreas::default();
        let mut stmt = self.prepare("SELECT id, community, subdistrict FROM server_grids")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            known.grids.insert(r.get(0)?);
            known.communities.insert(r.get(1)?);
            known.subdistricts.insert(r.get(2)?);
        }
        Ok(known)
    }

    fn upsert_grid(&self, grid: &Grid) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_grids (id, name, community, subdistrict) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, community = excluded.community,
                 subdistrict = excluded.subdistrict",
            params![grid.id, grid.name, grid.community, grid.subdistrict],
        )?;
        Ok(())
    }

    fn grid_exists(&self, id: &str) -> Result<bool, ApiError> {
        Ok(self.query_row(
            "SELECT EXISTS (SELECT 1 FROM server_grids WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?)
    }

    fn set_grid_geometry(&self, id: &str, geometry: &str) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_grids SET geometry = ?2 WHERE id = ?1",
            params![id, geometry],
        )?;
        Ok(())
    }

    fn grids(&self) -> Result<Vec<GridRow>, ApiError> {
        let mut stmt = self.prepare_cached(
            "SELECT id, name, community, subdistrict, geometry, epoch FROM server_grids ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], grid_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn grid(&self, id: &str) -> Result<Option<GridRow>, ApiError> {
        Ok(self
            .prepare_cached(
                "SELECT id, name, community, subdistrict, geometry, epoch FROM server_grids
                 WHERE id = ?1",
            )?
            .query_row([id], grid_row)
            .optional()?)
    }

    fn bump_grid_epoch(&self, id: &str) -> Result<(), ApiError> {
        self.prepare_cached("UPDATE server_grids SET epoch = epoch + 1 WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    fn replace_areas(&self, user: &str, areas: &Areas) -> Result<(), ApiError> {
        self.execute("DELETE FROM server_user_areas WHERE user_id = ?1", [user])?;
        let mut insert = self.prepare_cached(
            "INSERT OR IGNORE INTO server_user_areas (user_id, level, area) VALUES (?1, ?2, ?3)",
        )?;
        for (level, area) in areas.rows() {
            insert.execute(params![user, level, area])?;
        }
        Ok(())
    }

    fn grids_covered(&self, user: &str) -> Result<Vec<(String, i64)>, ApiError> {
        let mut stmt = self.prepare_cached(
            "SELECT g.id, g.epoch FROM server_grids g
             WHERE EXISTS (SELECT 1 FROM server_user_areas a WHERE a.user_id = ?1 AND (
                 (a.level = 'grid' AND a.area = g.id) OR
                 (a.level = 'community' AND a.area = g.community) OR
                 (a.level = 'subdistrict' AND a.area = g.subdistrict)))
             ORDER BY g.id",
        )?;
        let rows = stmt
            .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn users_covering(&self, grid: &str) -> Result<Vec<(String, String, String)>, ApiError> {
        let mut stmt = self.prepare_cached(
            "SELECT DISTINCT u.id, u.display_name, u.role FROM server_users u
             JOIN server_user_areas a ON a.user_id = u.id
             JOIN server_grids g ON g.id = ?1
             WHERE u.disabled = 0 AND u.role IN ('worker', 'supervisor') AND (
                 (a.level = 'grid' AND a.area = g.id) OR
                 (a.level = 'community' AND a.area = g.community) OR
                 (a.level = 'subdistrict' AND a.area = g.subdistrict))
             ORDER BY u.role = 'supervisor', u.display_name, u.id",
        )?;
        let rows = stmt
            .query_map([grid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn device_owner(&self, device: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .query_row(
                "SELECT user_id FROM server_devices WHERE device_id = ?1",
                [device],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn enroll_device(
        &self,
        device: &str,
        user: &str,
        name: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_devices (device_id, user_id, name, token_hash, enrolled_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (device_id) DO UPDATE SET token_hash = excluded.token_hash,
                 name = excluded.name, enrolled_ms = excluded.enrolled_ms, revoked = 0",
            params![device, user, name, token_hash, now_ms],
        )?;
        Ok(())
    }

    fn replace_token(&self, device: &str, user: &str, token_hash: &str) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_devices (device_id, user_id, token_hash, enrolled_ms)
             VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (device_id) DO UPDATE SET token_hash = excluded.token_hash, revoked = 0",
            params![device, user, token_hash],
        )?;
        Ok(())
    }

    fn device_number(&self, device: &str) -> Result<i64, ApiError> {
        Ok(self.query_row(
            "SELECT rowid FROM server_devices WHERE device_id = ?1",
            [device],
            |r| r.get(0),
        )?)
    }

    fn token_owner(&self, token_hash: &str) -> Result<Option<(String, String, String)>, ApiError> {
        Ok(self
            .prepare_cached(
                "SELECT d.device_id, u.id, u.role FROM server_devices d
                 JOIN server_users u ON u.id = d.user_id
                 WHERE d.token_hash = ?1 AND d.revoked = 0 AND u.disabled = 0",
            )?
            .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
    }

    fn open_session(
        &self,
        device: &str,
        user: &str,
        token_hash: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_devices (device_id, user_id, name, token_hash, enrolled_ms)
             VALUES (?1, ?2, 'browser', ?3, ?4)",
            params![device, user, token_hash, now_ms],
        )?;
        self.execute(
            "INSERT INTO server_sessions (device_id, csrf, expires_ms) VALUES (?1, ?2, ?3)",
            params![device, csrf, expires_ms],
        )?;
        // Expired sessions are removed as new ones open.
        self.execute(
            "UPDATE server_devices SET revoked = 1 WHERE device_id IN
                (SELECT device_id FROM server_sessions WHERE expires_ms <= ?1)",
            [now_ms],
        )?;
        self.execute(
            "DELETE FROM server_sessions WHERE expires_ms <= ?1",
            [now_ms],
        )?;
        Ok(())
    }

    fn session_csrf(&self, token_hash: &str, now_ms: i64) -> Result<Option<String>, ApiError> {
        Ok(self
            .prepare_cached(
                "SELECT s.csrf FROM server_sessions s JOIN server_devices d USING (device_id)
                 WHERE d.token_hash = ?1 AND s.expires_ms > ?2",
            )?
            .query_row(params![token_hash, now_ms], |r| r.get(0))
            .optional()?)
    }

    fn close_session(&self, token_hash: &str) -> Result<(), ApiError> {
        self.execute(
            "DELETE FROM server_sessions WHERE device_id IN
                (SELECT device_id FROM server_devices WHERE token_hash = ?1)",
            [token_hash],
        )?;
        self.execute(
            "UPDATE server_devices SET revoked = 1 WHERE token_hash = ?1",
            [token_hash],
        )?;
        Ok(())
    }

    fn set_disabled(&self, user: &str, disabled: bool) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_users SET disabled = ?2 WHERE id = ?1",
            params![user, disabled],
        )?;
        Ok(())
    }

    fn revoke_devices_of(&self, user: &str, keep: &str) -> Result<usize, ApiError> {
        self.execute(
            "DELETE FROM server_sessions WHERE device_id IN
               (SELECT device_id FROM server_devices WHERE user_id = ?1 AND device_id <> ?2)",
            params![user, keep],
        )?;
        Ok(self.execute(
            "UPDATE server_devices SET revoked = 1
             WHERE user_id = ?1 AND device_id <> ?2 AND revoked = 0",
            params![user, keep],
        )?)
    }

    fn revoke_device(&self, device: &str) -> Result<bool, ApiError> {
        self.execute("DELETE FROM server_sessions WHERE device_id = ?1", [device])?;
        Ok(self.execute(
            "UPDATE server_devices SET revoked = 1 WHERE device_id = ?1",
            [device],
        )? > 0)
    }

    fn devices_of(&self, user: &str) -> Result<Vec<DeviceInfo>, ApiError> {
        let mut stmt = self.prepare(
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

    fn meta(&self, key: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .prepare_cached("SELECT value FROM server_meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn meta_or_insert(&self, key: &str, value: &str) -> Result<String, ApiError> {
        self.execute(
            "INSERT OR IGNORE INTO server_meta (key, value) VALUES (?1, ?2)",
            [key, value],
        )?;
        Ok(
            self.query_row("SELECT value FROM server_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })?,
        )
    }

    fn count_up(&self, key: &str) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_meta (key, value) VALUES (?1, '1')
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            [key],
        )?;
        Ok(())
    }
}

fn grid_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GridRow> {
    Ok(GridRow {
        grid: Grid {
            id: r.get(0)?,
            name: r.get(1)?,
            community: r.get(2)?,
            subdistrict: r.get(3)?,
        },
        geometry: r.get(4)?,
        epoch: r.get(5)?,
    })
}
