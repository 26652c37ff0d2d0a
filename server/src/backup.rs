//! Online backup of a data directory: a consistent copy of the database and the photo files,
//! taken while the server runs (`xuncha-server backup DIR`).
//!
//! The database is copied with `VACUUM INTO`, which reads one snapshot while the server goes on
//! writing; the photos are copied after it, so every photo the copy refers to is there (files
//! are written before the rows that name them and never change). The copy is written under a
//! temporary name and renamed when complete.
//!
//! A server started on a copy gives it a new log id (see [`log_id`]). It has lost what
//! came after it: phones see the new id in their pull scope and pull again from the start (a
//! cursor into the old log could skip ops the restored log numbers anew), and push again what
//! the server no longer holds (a pull says how much of the phone's own work it has).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::{ServerError, db_path};

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// Size of the database copy.
    pub database_bytes: u64,
    /// Photo files copied (full size and thumbnails).
    pub photo_files: usize,
}

/// The id of this database's op log: empty for the original, a new random one each time a
/// server starts on a backup copy (see [`start_restored`]). Part of every pull scope tag, so a
/// phone notices when the log it pulled from is replaced by a restored copy, even the same
/// copy restored twice (and an upgrade, which keeps the original's empty id, makes no phone
/// pull everything again).
pub fn log_id(conn: &Connection) -> rusqlite::Result<String> {
    Ok(conn
        .prepare_cached("SELECT value FROM server_meta WHERE key = 'log_id'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// At a server's start: a database that is a fresh backup copy gets a log id of its own.
/// Returns whether it was one.
pub fn start_restored(conn: &Connection) -> rusqlite::Result<bool> {
    let tx = conn.unchecked_transaction()?;
    let restored = tx.execute("DELETE FROM server_meta WHERE key = ?1", [RESTORED])? > 0;
    if restored {
        set_meta(&tx, "log_id", &new_log_id()?)?;
    }
    tx.commit()?;
    Ok(restored)
}

/// Marks a backup copy: the first server started on it gives it a new log id.
const RESTORED: &str = "backup_copy";

/// Eight random bytes as hex (a failing random source surfaces as an SQL value error).
fn new_log_id() -> rusqlite::Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(hex::encode(bytes))
}

/// Copies the database and photos of `data` into `dest` (created; must not hold a database).
pub fn backup(data: &Path, dest: &Path) -> Result<BackupReport, ServerError> {
    backup_linking(data, dest, None)
}

/// [`backup`], hard-linking the photos an earlier copy in `previous` already holds (photo
/// files never change) instead of copying them again.
pub fn backup_linking(
    data: &Path,
    dest: &Path,
    previous: Option<&Path>,
) -> Result<BackupReport, ServerError> {
    let source = db_path(data);
    if !source.is_file() {
        return Err(io_error(data)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no database here (xuncha.sqlite3)",
        )));
    }
    std::fs::create_dir_all(dest).map_err(io_error(dest))?;
    let target = db_path(dest);
    if target.exists() {
        return Err(io_error(dest)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already holds a database; back up into a new directory",
        )));
    }
    let partial = target.with_extension("sqlite3.part");
    let _ = std::fs::remove_file(&partial);
    let live = Connection::open(&source).map_err(xuncha_core::Error::from)?;
    live.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(xuncha_core::Error::from)?;
    let at = chrono::Utc::now().timestamp_millis().to_string();
    copy_database(&live, &partial, &at).map_err(xuncha_core::Error::from)?;
    std::fs::rename(&partial, &target).map_err(io_error(dest))?;
    let database_bytes = std::fs::metadata(&target).map_err(io_error(dest))?.len();

    let earlier = previous.map(|p| p.join("photos"));
    let photo_files = copy_photos(
        &data.join("photos"),
        &dest.join("photos"),
        earlier.as_deref(),
    )?;
    // Noted once the backup is complete (shown on `/status` and in `/metrics`, to alert on
    // when backups stop).
    set_meta(&live, LAST_BACKUP, &at).map_err(xuncha_core::Error::from)?;
    Ok(BackupReport {
        database_bytes,
        photo_files,
    })
}

/// One consistent snapshot of the `live` database into the new file `to`, marked as a copy
/// and with the time `at` of the backup.
fn copy_database(live: &Connection, to: &Path, at: &str) -> rusqlite::Result<()> {
    live.execute("VACUUM INTO ?1", [to.to_string_lossy()])?;
    let copy = Connection::open(to)?;
    set_meta(&copy, RESTORED, "1")?;
    set_meta(&copy, LAST_BACKUP, at)
}

const LAST_BACKUP: &str = "last_backup_ms";
const FAILED_BACKUP: &str = "last_backup_failure";

/// Notes that a scheduled backup failed (at `ms`, why), for `/status` and `/metrics`.
pub fn record_failure(conn: &Connection, ms: i64, why: &str) -> rusqlite::Result<()> {
    set_meta(conn, FAILED_BACKUP, &format!("{ms} {why}"))
}

/// Clears the failure once a backup succeeds.
pub fn clear_failure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM server_meta WHERE key = ?1", [FAILED_BACKUP])?;
    Ok(())
}

/// The last backup failure not yet followed by a success: when (ms) and why.
pub fn last_failure(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM server_meta WHERE key = ?1")?
        .query_row([FAILED_BACKUP], |r| r.get(0))
        .optional()?;
    Ok(text.and_then(|t| {
        let (ms, why) = t.split_once(' ')?;
        Some((ms.parse().ok()?, why.to_owned()))
    }))
}

/// When the last backup of this database was taken (ms since the epoch), if ever.
pub fn last_backup_ms(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT CAST(value AS INTEGER) FROM server_meta WHERE key = ?1")?
        .query_row([LAST_BACKUP], |r| r.get(0))
        .optional()
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO server_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// Copies the photo files (`ab/abcdef….jpg`) missing from `to`, linking those `earlier` holds;
/// files being written (`.part`) are left out.
fn copy_photos(from: &Path, to: &Path, earlier: Option<&Path>) -> Result<usize, ServerError> {
    let Ok(fans) = std::fs::read_dir(from) else {
        return Ok(0); // no photos yet
    };
    let mut copied = 0;
    for fan in fans {
        let fan = fan.map_err(io_error(from))?.path();
        if !fan.is_dir() {
            continue;
        }
        let fan_to: PathBuf = to.join(fan.file_name().unwrap_or_default());
        for file in std::fs::read_dir(&fan).map_err(io_error(&fan))? {
            let file = file.map_err(io_error(&fan))?.path();
            if file.extension().is_some_and(|e| e == "part") || !file.is_file() {
                continue;
            }
            let target = fan_to.join(file.file_name().unwrap_or_default());
            if target.exists() {
                continue;
            }
            std::fs::create_dir_all(&fan_to).map_err(io_error(&fan_to))?;
            let name = file.file_name().unwrap_or_default();
            let fan_name = fan.file_name().unwrap_or_default();
            let linked = earlier
                .is_some_and(|e| std::fs::hard_link(e.join(fan_name).join(name), &target).is_ok());
            if !linked {
                let partial = target.with_extension("part");
                std::fs::copy(&file, &partial).map_err(io_error(&file))?;
                std::fs::rename(&partial, &target).map_err(io_error(&target))?;
            }
            copied += 1;
        }
    }
    Ok(copied)
}

/// Names the path an I/O error happened at.
fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError {
    let path = path.display().to_string();
    move |source| ServerError::DataDir { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_start_on_a_copy_gives_it_a_log_id_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (data, dest) = (dir.path().join("data"), dir.path().join("copy"));
        std::fs::create_dir_all(&data).unwrap();
        let live = Connection::open(db_path(&data)).unwrap();
        live.execute_batch("CREATE TABLE server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .unwrap();
        assert_eq!(log_id(&live).unwrap(), "", "the original's");
        assert_eq!(last_backup_ms(&live).unwrap(), None);

        let report = backup(&data, &dest).unwrap();
        assert!(report.database_bytes > 0);
        assert_eq!(report.photo_files, 0);
        assert!(!db_path(&dest).with_extension("sqlite3.part").exists());
        let taken = last_backup_ms(&live).unwrap().unwrap();
        assert!(!start_restored(&live).unwrap(), "the original is no copy");
        assert_eq!(log_id(&live).unwrap(), "", "and keeps its id");

        // Each start on a fresh copy gives it an id of its own, once.
        let started = |dir: &Path| {
            let copy = Connection::open(db_path(dir)).unwrap();
            assert_eq!(last_backup_ms(&copy).unwrap(), Some(taken));
            assert!(start_restored(&copy).unwrap());
            assert!(!start_restored(&copy).unwrap(), "only the first start");
            log_id(&copy).unwrap()
        };
        let again = dir.path().join("again");
        std::fs::create_dir_all(&again).unwrap();
        std::fs::copy(db_path(&dest), db_path(&again)).unwrap();
        let first = started(&dest);
        assert_eq!(first.len(), 16);
        assert_ne!(started(&again), first, "the same copy restored twice");
    }

    #[test]
    fn photos_are_copied_once_and_files_being_written_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(from.join("ab")).unwrap();
        for name in ["abc.jpg", "abc.thumb.jpg", "abd.part"] {
            std::fs::write(from.join("ab").join(name), name).unwrap();
        }
        assert_eq!(copy_photos(&from, &to, None).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(to.join("ab/abc.thumb.jpg")).unwrap(),
            "abc.thumb.jpg"
        );
        assert!(!to.join("ab/abd.part").exists());
        assert_eq!(copy_photos(&from, &to, None).unwrap(), 0, "already there");
        assert_eq!(copy_photos(&dir.path().join("none"), &to, None).unwrap(), 0);
        // A later copy links what the earlier one holds: the same file, not a second one.
        let later = dir.path().join("c");
        assert_eq!(copy_photos(&from, &later, Some(&to)).unwrap(), 2);
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (
            std::fs::metadata(to.join("ab/abc.jpg")).unwrap(),
            std::fs::metadata(later.join("ab/abc.jpg")).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    }

    #[test]
    fn a_directory_without_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = backup(dir.path(), &dir.path().join("copy")).unwrap_err();
        assert!(err.to_string().contains("no database"), "{err}");
    }
}
