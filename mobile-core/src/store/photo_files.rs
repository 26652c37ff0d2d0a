//! Photos kept inside the database, for shells without a file system (the browser's field
//! app); native apps use [`crate::photo::PhotoDir`] instead.

use rusqlite::OptionalExtension as _;

use super::Store;
use crate::error::Result;
use crate::model::PhotoRef;

impl Store {
    /// Keeps a processed photo and its thumbnail; keeping the same photo again is a no-op.
    /// The reference is what an answer or hazard action attaches.
    pub fn put_photo_file(
        &mut self,
        photo: &PhotoRef,
        jpeg: &[u8],
        thumbnail: &[u8],
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO photo_files (sha256, jpeg, thumbnail) VALUES (?1, ?2, ?3)",
            )?
            .execute(rusqlite::params![photo.sha256, jpeg, thumbnail])?;
        Ok(())
    }

    /// A kept photo's JPEG or thumbnail.
    pub fn photo_file(&self, sha256: &str, thumbnail: bool) -> Result<Option<Vec<u8>>> {
        let sql = if thumbnail {
            "SELECT thumbnail FROM photo_files WHERE sha256 = ?1"
        } else {
            "SELECT jpeg FROM photo_files WHERE sha256 = ?1"
        };
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row([sha256], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_kept_photo_comes_back_once() {
        let mut store = Store::open_in_memory().unwrap();
        let photo = PhotoRef {
            sha256: "ab".repeat(32),
            bytes: 3,
            width: 1,
            height: 1,
        };
        store.put_photo_file(&photo, b"big", b"sm").unwrap();
        store.put_photo_file(&photo, b"other", b"x").unwrap();
        assert_eq!(
            store.photo_file(&photo.sha256, false).unwrap().unwrap(),
            b"big"
        );
        assert_eq!(
            store.photo_file(&photo.sha256, true).unwrap().unwrap(),
            b"sm"
        );
        assert_eq!(store.photo_file(&"cd".repeat(32), false).unwrap(), None);
    }
}
