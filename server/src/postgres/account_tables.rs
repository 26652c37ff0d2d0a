//! [`AccountTables`] on PostgreSQL: the same rows and answers as the SQLite implementation
//! (`crate::account_tables`), one test suite for both (`server/tests/server_tables.rs`).

use std::collections::HashSet;

use postgres::GenericClient;
use xuncha_core::sync::Role;

use super::tables::PgTables;
use crate::account_tables::{
    AccountTables, GridRow, KnownAreas, Listed, Profile, UserRow, areas_by_user, areas_from_rows,
};
use crate::accounts::{Areas, Grid};
use crate::error::ApiError;
use crate::revoke::DeviceInfo;

impl<C: GenericClient> AccountTables for PgTables<'_, C> {
    fn log_id(&self) -> Result<String, ApiError> {
        if let Some(id) = self.log_id.get() {
            return Ok(id.clone());
        }
        let id = self.meta("log_id")?.unwrap_or_default();
        Ok(self.log_id.get_or_init(|| id).clone())
    }

    fn insert_user(
        &self,
        id: &str,
        display_name: &str,
        role: Role,
        hash: &str,
        now_ms: i64,
    ) -> Result<bool, ApiError> {
        Ok(self.execute(
            "INSERT INTO server_users (id, display_name, role, password_hash, created_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[&id, &display_name, &role.as_str(), &hash, &now_ms],
        )? > 0)
    }

    fn set_password_hash(&self, id: &str, hash: &str) -> Result<bool, ApiError> {
        Ok(self.execute(
            "UPDATE server_users SET password_hash = $2 WHERE id = $1",
            &[&id, &hash],
        )? > 0)
    }

    fn user_exists(&self, id: &str) -> Result<bool, ApiError> {
        self.exists("SELECT 1 FROM server_users WHERE id = $1", &[&id])
    }

    fn user_row(&self, id: &str) -> Result<Option<UserRow>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT role, password_hash, disabled FROM server_users WHERE id = $1",
                &[&id],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    fn enabled_role(&self, id: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT role FROM server_users WHERE id = $1 AND NOT disabled",
                &[&id],
            )?
            .map(|r| r.get(0)))
    }

    fn display_name(&self, id: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT display_name FROM server_users WHERE id = $1",
                &[&id],
            )?
            .map(|r| r.get(0)))
    }

    fn user_ids(&self) -> Result<HashSet<String>, ApiError> {
        Ok(self
            .query("SELECT id FROM server_users", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn profile(&self, id: &str) -> Result<Option<Profile>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT display_name, role, phone FROM server_users WHERE id = $1",
                &[&id],
            )?
            .map(|r| Profile {
                display_name: r.get(0),
                role: r.get(1),
                phone: r.get(2),
            }))
    }

    fn set_profile(&self, id: &str, profile: &Profile) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_users SET display_name = $2, role = $3, phone = $4 WHERE id = $1",
            &[&id, &profile.display_name, &profile.role, &profile.phone],
        )?;
        Ok(())
    }

    fn users(&self) -> Result<Vec<Listed>, ApiError> {
        let mut areas = areas_by_user(
            self.query("SELECT user_id, level, area FROM server_user_areas", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2))),
        );
        let rows = self.query(
            "SELECT id, display_name, role, phone, disabled FROM server_users
             ORDER BY id COLLATE \"C\"",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: String = r.get(0);
                Listed {
                    areas: areas.remove(&id).unwrap_or_default(),
                    id,
                    profile: Profile {
                        display_name: r.get(1),
                        role: r.get(2),
                        phone: r.get(3),
                    },
                    disabled: r.get(4),
                }
            })
            .collect())
    }

    fn workers(&self, reminders_only: bool) -> Result<Vec<(String, String)>, ApiError> {
        Ok(self
            .query(
                "SELECT id, display_name FROM server_users
                 WHERE role = 'worker' AND NOT disabled AND (reminders OR NOT $1)
                 ORDER BY id COLLATE \"C\"",
                &[&reminders_only],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn set_reminders(&self, user: &str, on: bool) -> Result<bool, ApiError> {
        Ok(self.execute(
            "UPDATE server_users SET reminders = $2 WHERE id = $1",
            &[&user, &on],
        )? > 0)
    }

    fn areas_of(&self, user: &str) -> Result<Areas, ApiError> {
        Ok(areas_from_rows(
            self.query(
                "SELECT level, area FROM server_user_areas WHERE user_id = $1",
                &[&user],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1))),
        ))
    }

    fn known_areas(&self) -> Result<KnownAreas, ApiError> {
        let mut known = KnownAreas::default();
        for r in self.query("SELECT id, community, subdistrict FROM server_grids", &[])? {
            known.grids.insert(r.get(0));
            known.communities.insert(r.get(1));
            known.subdistricts.insert(r.get(2));
        }
        Ok(known)
    }

    fn upsert_grid(&self, grid: &Grid) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_grids (id, name, community, subdistrict) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, community = excluded.community,
                 subdistrict = excluded.subdistrict",
            &[&grid.id, &grid.name, &grid.community, &grid.subdistrict],
        )?;
        Ok(())
    }

    fn grid_exists(&self, id: &str) -> Result<bool, ApiError> {
        self.exists("SELECT 1 FROM server_grids WHERE id = $1", &[&id])
    }

    fn set_grid_geometry(&self, id: &str, geometry: &str) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_grids SET geometry = $2 WHERE id = $1",
            &[&id, &geometry],
        )?;
        Ok(())
    }

    fn grids(&self) -> Result<Vec<GridRow>, ApiError> {
        Ok(self
            .query(
                "SELECT id, name, community, subdistrict, geometry, epoch FROM server_grids
                 ORDER BY id COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(grid_row)
            .collect())
    }

    fn grid(&self, id: &str) -> Result<Option<GridRow>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT id, name, community, subdistrict, geometry, epoch FROM server_grids
                 WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(grid_row))
    }

    fn bump_grid_epoch(&self, id: &str) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_grids SET epoch = epoch + 1 WHERE id = $1",
            &[&id],
        )?;
        Ok(())
    }

    fn replace_areas(&self, user: &str, areas: &Areas) -> Result<(), ApiError> {
        self.execute("DELETE FROM server_user_areas WHERE user_id = $1", &[&user])?;
        let (levels, names): (Vec<&str>, Vec<&str>) = areas.rows().unzip();
        self.execute(
            "INSERT INTO server_user_areas (user_id, level, area)
             SELECT $1, l, a FROM unnest($2::text[], $3::text[]) AS t (l, a)
             ON CONFLICT DO NOTHING",
            &[&user, &levels, &names],
        )?;
        Ok(())
    }

    fn grids_covered(&self, user: &str) -> Result<Vec<(String, i64)>, ApiError> {
        Ok(self
            .query(
                "SELECT g.id, g.epoch FROM server_grids g
                 WHERE EXISTS (SELECT 1 FROM server_user_areas a WHERE a.user_id = $1 AND (
                     (a.level = 'grid' AND a.area = g.id) OR
                     (a.level = 'community' AND a.area = g.community) OR
                     (a.level = 'subdistrict' AND a.area = g.subdistrict)))
                 ORDER BY g.id COLLATE \"C\"",
                &[&user],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn users_covering(&self, grid: &str) -> Result<Vec<(String, String, String)>, ApiError> {
        Ok(self
            .query(
                "SELECT id, display_name, role FROM (
                     SELECT DISTINCT u.id, u.display_name, u.role FROM server_users u
                     JOIN server_user_areas a ON a.user_id = u.id
                     JOIN server_grids g ON g.id = $1
                     WHERE NOT u.disabled AND u.role IN ('worker', 'supervisor') AND (
                         (a.level = 'grid' AND a.area = g.id) OR
                         (a.level = 'community' AND a.area = g.community) OR
                         (a.level = 'subdistrict' AND a.area = g.subdistrict))) t
                 ORDER BY role = 'supervisor', display_name COLLATE \"C\", id COLLATE \"C\"",
                &[&grid],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn device_owner(&self, device: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT user_id FROM server_devices WHERE device_id = $1",
                &[&device],
            )?
            .map(|r| r.get(0)))
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
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device_id) DO UPDATE SET token_hash = excluded.token_hash,
                 name = excluded.name, enrolled_ms = excluded.enrolled_ms, revoked = false",
            &[&device, &user, &name, &token_hash, &now_ms],
        )?;
        Ok(())
    }

    fn replace_token(&self, device: &str, user: &str, token_hash: &str) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_devices (device_id, user_id, token_hash, enrolled_ms)
             VALUES ($1, $2, $3, 0)
             ON CONFLICT (device_id) DO UPDATE SET token_hash = excluded.token_hash,
                 revoked = false",
            &[&device, &user, &token_hash],
        )?;
        Ok(())
    }

    fn device_number(&self, device: &str) -> Result<i64, ApiError> {
        self.query_opt(
            "SELECT device_no FROM server_devices WHERE device_id = $1",
            &[&device],
        )?
        .map(|r| r.get(0))
        .ok_or_else(|| ApiError::not_found(format!("device {device}")))
    }

    fn token_owner(&self, token_hash: &str) -> Result<Option<(String, String, String)>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT d.device_id, u.id, u.role FROM server_devices d
                 JOIN server_users u ON u.id = d.user_id
                 WHERE d.token_hash = $1 AND NOT d.revoked AND NOT u.disabled",
                &[&token_hash],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
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
             VALUES ($1, $2, 'browser', $3, $4)",
            &[&device, &user, &token_hash, &now_ms],
        )?;
        self.execute(
            "INSERT INTO server_sessions (device_id, csrf, expires_ms) VALUES ($1, $2, $3)",
            &[&device, &csrf, &expires_ms],
        )?;
        // Expired sessions are removed as new ones open.
        self.execute(
            "UPDATE server_devices SET revoked = true WHERE device_id IN
                (SELECT device_id FROM server_sessions WHERE expires_ms <= $1)",
            &[&now_ms],
        )?;
        self.execute(
            "DELETE FROM server_sessions WHERE expires_ms <= $1",
            &[&now_ms],
        )?;
        Ok(())
    }

    fn session_csrf(&self, token_hash: &str, now_ms: i64) -> Result<Option<String>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT s.csrf FROM server_sessions s JOIN server_devices d USING (device_id)
                 WHERE d.token_hash = $1 AND s.expires_ms > $2",
                &[&token_hash, &now_ms],
            )?
            .map(|r| r.get(0)))
    }

    fn close_session(&self, token_hash: &str) -> Result<(), ApiError> {
        self.execute(
            "DELETE FROM server_sessions WHERE device_id IN
                (SELECT device_id FROM server_devices WHERE token_hash = $1)",
            &[&token_hash],
        )?;
        self.execute(
            "UPDATE server_devices SET revoked = true WHERE token_hash = $1",
            &[&token_hash],
        )?;
        Ok(())
    }

    fn set_disabled(&self, user: &str, disabled: bool) -> Result<(), ApiError> {
        self.execute(
            "UPDATE server_users SET disabled = $2 WHERE id = $1",
            &[&user, &disabled],
        )?;
        Ok(())
    }

    fn revoke_devices_of(&self, user: &str, keep: &str) -> Result<usize, ApiError> {
        self.execute(
            "DELETE FROM server_sessions WHERE device_id IN
               (SELECT device_id FROM server_devices WHERE user_id = $1 AND device_id <> $2)",
            &[&user, &keep],
        )?;
        Ok(self.execute(
            "UPDATE server_devices SET revoked = true
             WHERE user_id = $1 AND device_id <> $2 AND NOT revoked",
            &[&user, &keep],
        )? as usize)
    }

    fn revoke_device(&self, device: &str) -> Result<bool, ApiError> {
        self.execute(
            "DELETE FROM server_sessions WHERE device_id = $1",
            &[&device],
        )?;
        Ok(self.execute(
            "UPDATE server_devices SET revoked = true WHERE device_id = $1",
            &[&device],
        )? > 0)
    }

    fn devices_of(&self, user: &str) -> Result<Vec<DeviceInfo>, ApiError> {
        Ok(self
            .query(
                "SELECT d.device_id, d.name, d.enrolled_ms, d.revoked,
                        EXISTS (SELECT 1 FROM server_sessions s WHERE s.device_id = d.device_id)
                          OR d.device_id LIKE 'web-%'
                 FROM server_devices d WHERE d.user_id = $1
                 ORDER BY d.enrolled_ms DESC, d.device_id COLLATE \"C\"",
                &[&user],
            )?
            .iter()
            .map(|r| DeviceInfo {
                device_id: r.get(0),
                name: r.get(1),
                enrolled_ms: r.get(2),
                revoked: r.get(3),
                dashboard: r.get(4),
            })
            .collect())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .query_opt("SELECT value FROM server_meta WHERE key = $1", &[&key])?
            .map(|r| r.get(0)))
    }

    fn meta_or_insert(&self, key: &str, value: &str) -> Result<String, ApiError> {
        self.execute(
            "INSERT INTO server_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )?;
        self.query_opt("SELECT value FROM server_meta WHERE key = $1", &[&key])?
            .map(|r| r.get(0))
            .ok_or_else(|| ApiError::internal(format!("setting {key} vanished")))
    }

    fn count_up(&self, key: &str) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_meta (key, value) VALUES ($1, '1')
             ON CONFLICT (key) DO UPDATE SET value = (server_meta.value::bigint + 1)::text",
            &[&key],
        )?;
        Ok(())
    }
}

fn grid_row(r: &postgres::Row) -> GridRow {
    GridRow {
        grid: Grid {
            id: r.get(0),
            name: r.get(1),
            community: r.get(2),
            subdistrict: r.get(3),
        },
        geometry: r.get(4),
        epoch: r.get(5),
    }
}
