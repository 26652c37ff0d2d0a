//! Where the records of verified photos are kept (who uploaded each, its size), shared by
//! every instance. One interface, implemented on SQLite here and on PostgreSQL in
//! `postgres/photo_tables.rs`, one test suite for both (`server/tests/server_tables.rs`).
//! Which premises refer to a photo is derived from the op log and stays with each replica.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};

use crate::error::ApiError;
use crate::tables::SqliteTables;

/// A verified photo's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoRecord {
    pub sha256: String,
    pub bytes: i64,
    pub width: u32,
    pub height: u32,
    pub uploaded_by: String,
    pub uploaded_ms: i64,
}

/// The rows of verified photos.
pub trait PhotoTables {
    /// Records a verified photo (the first record of a photo stays).
    fn record_photo(&self, photo: &PhotoRecord) -> Result<(), ApiError>;
    /// Who uploaded a photo, if the server holds it.
    fn uploaded_by(&self, sha256: &str) -> Result<Option<String>, ApiError>;
    /// Which of `sha256s` the server holds.
    fn photos_held(&self, sha256s: &[String]) -> Result<HashSet<String>, ApiError>;
    /// Photos held.
    fn photo_count(&self) -> Result<i64, ApiError>;

    /// Whether the server holds a photo.
    fn photo_held(&self, sha256: &str) -> Result<bool, ApiError> {
        Ok(self.uploaded_by(sha256)?.is_some())
    }
}

impl PhotoTables for SqliteTables {
    fn record_photo(&self, p: &PhotoRecord) -> Result<(), ApiError> {
        self.prepare_cached(
            "INSERT OR IGNORE INTO server_photos
                 (sha256, bytes, width, height, uploaded_by, uploaded_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            p.sha256,
            p.bytes,
            p.width,
            p.height,
            p.uploaded_by,
            p.uploaded_ms
        ])?;
        Ok(())
    }

    fn uploaded_by(&self, sha256: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .prepare_cached("SELECT uploaded_by FROM server_photos WHERE sha256 = ?1")?
            .query_row([sha256], |r| r.get(0))
            .optional()?)
    }

    fn photos_held(&self, sha256s: &[String]) -> Result<HashSet<String>, ApiError> {
        // One statement for the whole list (a phone's first pull names all its photos).
        let list = serde_json::to_string(sha256s).map_err(ApiError::internal)?;
        Ok(self
            .prepare_cached(
                "SELECT p.sha256 FROM json_each(?1) j JOIN server_photos p ON p.sha256 = j.value",
            )?
            .query_map([list], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn photo_count(&self) -> Result<i64, ApiError> {
        Ok(self.query_row("SELECT COUNT(*) FROM server_photos", [], |r| r.get(0))?)
    }
}
