//! [`PhotoTables`] on PostgreSQL: the same rows and answers as the SQLite implementation.

use std::collections::HashSet;

use postgres::GenericClient;

use super::tables::PgTables;
use crate::error::ApiError;
use crate::photo_tables::{PhotoRecord, PhotoTables};

impl<C: GenericClient> PhotoTables for PgTables<'_, C> {
    fn record_photo(&self, p: &PhotoRecord) -> Result<(), ApiError> {
        self.execute(
            "INSERT INTO server_photos (sha256, bytes, width, height, uploaded_by, uploaded_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
            &[
                &p.sha256,
                &p.bytes,
                &(p.width as i32),
                &(p.height as i32),
                &p.uploaded_by,
                &p.uploaded_ms,
            ],
        )?;
        Ok(())
    }

    fn uploaded_by(&self, sha256: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .query_opt(
                "SELECT uploaded_by FROM server_photos WHERE sha256 = $1",
                &[&sha256],
            )?
            .map(|r| r.get(0)))
    }

    fn photos_held(&self, sha256s: &[String]) -> Result<HashSet<String>, ApiError> {
        Ok(self
            .query(
                "SELECT sha256 FROM server_photos WHERE sha256 = ANY($1)",
                &[&sha256s],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn photo_count(&self) -> Result<i64, ApiError> {
        Ok(self
            .query_opt("SELECT COUNT(*) FROM server_photos", &[])?
            .map_or(0, |r| r.get(0)))
    }
}
