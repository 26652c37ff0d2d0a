//! Database set-up: connection pragmas and numbered migrations keyed on `PRAGMA user_version`.
//!
//! Each file in `migrations/` is applied once, in order, in its own transaction. Released
//! files are never edited (a test pins their hashes); a change is a new file.
//! (rusqlite_migration does the same job but pins an older rusqlite; this is small enough.)

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; version N is reached after the first N.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_op_log.sql",
        include_str!("../../migrations/0001_op_log.sql"),
    ),
    (
        "0002_domain.sql",
        include_str!("../../migrations/0002_domain.sql"),
    ),
    (
        "0003_photo_uploads.sql",
        include_str!("../../migrations/0003_photo_uploads.sql"),
    ),
    (
        "0004_set_aside.sql",
        include_str!("../../migrations/0004_set_aside.sql"),
    ),
    (
        "0005_photo_files.sql",
        include_str!("../../migrations/0005_photo_files.sql"),
    ),
    (
        "0006_campaigns.sql",
        include_str!("../../migrations/0006_campaigns.sql"),
    ),
];

/// Page size of new files: 8 KB instead of SQLite's 4 KB. An inspection's op (1-2 KB of
/// JSON) leaves less slack per page and a sync's commit writes fewer frames: the mixed
/// workload applied in pages of 5,000 ops 1.1 to 1.3x faster, an inspection recorded as fast
/// (BENCHMARKS.md). A file keeps the size it was created with (changing it takes a VACUUM).
pub const PAGE_SIZE: i64 = 8192;

/// The write-ahead log is checkpointed once it holds this much (see below).
pub const WAL_CHECKPOINT_BYTES: i64 = 32 * 1024 * 1024;

/// Sets the pragmas every connection needs.
pub fn configure(conn: &Connection) -> Result<()> {
    // Before the file is first written (WAL mode is written to it); no effect afterwards.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // WAL: readers never block the writer. synchronous=NORMAL: a commit survives the app
    // being killed (the usual way a phone app dies); only an OS crash can lose the last ones.
    // The browser's OPFS file pool has no shared memory for the log's index; with the one
    // connection a browser tab holds in exclusive locking mode, SQLite keeps that index in
    // the connection's own memory, and commits append to the log as on a phone.
    if cfg!(target_family = "wasm") {
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 16 MB; 64 MB in a browser, where a page not in the cache is read through the OPFS
    // pool's JavaScript rather than from the operating system's cache.
    let cache_kb = if cfg!(target_family = "wasm") {
        64_000
    } else {
        16_000
    };
    conn.pragma_update(None, "cache_size", -cache_kb)?;
    // Checkpoint the WAL every 32 MB instead of SQLite's 4 MB: a sync writes pages of the
    // randomly keyed register and hazard tables again and again, and each checkpoint copies
    // them (and fsyncs); fewer, larger checkpoints made pulls of 1,000-op pages 1.3 to 1.45x
    // faster (BENCHMARKS.md). The log is cut back to 32 MB after a checkpoint. A store's
    // writer hands this job to a background thread (`checkpoint.rs`).
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        WAL_CHECKPOINT_BYTES / page_size(conn)?,
    )?;
    conn.pragma_update(None, "journal_size_limit", WAL_CHECKPOINT_BYTES)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // The apply path cycles through more statements than rusqlite's default cache of 16;
    // re-preparing them costs more than running them.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// The file's page size in bytes.
pub fn page_size(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "page_size", |r| r.get(0))?)
}

/// Brings the database up to the newest schema; refuses a file from a newer app.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// The file's schema version; refuses one from a newer build.
fn version_known(conn: &Connection) -> Result<i64> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(Error::SchemaTooNew {
            found: current,
            known,
        });
    }
    Ok(current)
}

/// Checks, without changing anything, that the file is at this build's schema version (for
/// read-only connections, which cannot migrate).
pub fn check_version(conn: &Connection) -> Result<()> {
    let (current, known) = (version_known(conn)?, MIGRATIONS.len() as i64);
    if current < known {
        return Err(Error::invalid(
            "database",
            format!("schema version {current} needs migrating to {known} by a writer first"),
        ));
    }
    Ok(())
}

/// Applies migrations up to `target` (tests build databases at older versions with it).
pub fn migrate_to(conn: &mut Connection, target: usize) -> Result<()> {
    let current = version_known(conn)?;
    for (version, (_, sql)) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target)
        .skip(current as usize)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (version + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
