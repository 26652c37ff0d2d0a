//! Copies the write-ahead log back into the database file on a thread of its own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the writer
//! waits while the log is copied and the file synced, about half the time of a large sync
//! (BENCHMARKS.md). Here a commit only looks at the log's size; past [`Limits::soft_pages`] it
//! wakes a checkpointer with its own connection, which copies on the other core while the writer
//! goes on. Should the log still reach [`Limits::hard_pages`] (the writer outpacing the copy),
//! the committing writer waits for a checkpoint that covers its commit, so the log is reset at
//! its next transaction and cannot grow without bound.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

use super::schema::WAL_CHECKPOINT_BYTES;

/// When to checkpoint, in pages of the write-ahead log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Wake the checkpointer (32 MB: larger, rarer copies measured faster).
    pub soft_pages: i32,
    /// Make the writer wait for a checkpoint (256 MB).
    pub hard_pages: i32,
}

impl Limits {
    /// 32 MB and 256 MB in pages of `page_size` bytes.
    pub(crate) fn for_page_size(page_size: i64) -> Limits {
        let pages = |bytes: i64| (bytes / page_size.max(512)).clamp(1, i32::MAX as i64) as i32;
        Limits {
            soft_pages: pages(WAL_CHECKPOINT_BYTES),
            hard_pages: pages(8 * WAL_CHECKPOINT_BYTES),
        }
    }
}

/// How long a writer over the hard limit waits at most (a checkpoint that cannot finish, e.g. a
/// reader holding an old snapshot, must not stop writes).
const HARD_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Progress {
    /// Checkpoints asked for (a generation number).
    requested: u64,
    /// The generation the last finished checkpoint covered.
    done: u64,
    /// Checkpoints run by the thread.
    runs: u64,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        // The state is a few counters, valid whatever a panicking holder did.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The background checkpointer of one writer connection; stops and joins on drop.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread and takes over `writer`'s automatic checkpoint. `None` if that is
    /// not possible (no thread or connection to spare): SQLite's own checkpoint then stays.
    pub(crate) fn start(
        writer: &mut Connection,
        path: &Path,
        limits: Limits,
    ) -> Option<Checkpointer> {
        let own = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        // A connection that has not read the file does not know it is in WAL mode yet, and
        // its checkpoints would do nothing.
        own.pragma_update(None, "journal_mode", "WAL").ok()?;
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || run(&own, &shared))
                .ok()?
        };
        let checkpointer = Checkpointer {
            shared: shared.clone(),
            thread: Some(thread),
        };
        // Replaces SQLite's own automatic checkpoint, which is a WAL hook too. The hook must
        // not fail: an error would report the commit that has just happened as failed.
        let hook = move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= limits.soft_pages {
                let mut p = shared.lock();
                p.requested += 1;
                let mine = p.requested;
                shared.changed.notify_all();
                if pages >= limits.hard_pages {
                    let _ = shared
                        .changed
                        .wait_timeout_while(p, HARD_WAIT, |p| p.done < mine && !p.stop);
                }
            }
            Ok(())
        };
        // On failure the hook is unchanged and the thread is stopped (dropped).
        writer.wal_hook(Some(hook)).ok()?;
        Some(checkpointer)
    }

    /// Checkpoints the thread has run.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> u64 {
        self.shared.lock().runs
    }
}

fn run(conn: &Connection, shared: &Shared) {
    let mut p = shared.lock();
    loop {
        p = shared
            .changed
            .wait_while(p, |p| p.requested == p.done && !p.stop)
            .unwrap_or_else(PoisonError::into_inner);
        if p.stop {
            return;
        }
        let covering = p.requested;
        drop(p);
        // PASSIVE: never blocks the writer or readers; frames a reader still needs are left
        // for the next round. A failure (e.g. the disk full) leaves the log to the next one.
        let _ = conn.wal_checkpoint_v2(Some("main"), CheckpointMode::PASSIVE);
        p = shared.lock();
        p.done = covering;
        p.runs += 1;
        shared.changed.notify_all();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::configure;

    fn wal_frames(conn: &Connection) -> i32 {
        // The log's size as PASSIVE reports it (from the test's connection, which then copies
        // it too).
        conn.wal_checkpoint_v2(Some("main"), CheckpointMode::PASSIVE)
            .map(|(log, _)| log)
            .unwrap_or(-1)
    }

    fn fill(conn: &Connection, rows: usize) {
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..rows {
            tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("{i:0>2000}")])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    fn writer(dir: &Path) -> Connection {
        let conn = Connection::open(dir.join("c.sqlite3")).unwrap();
        configure(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        conn
    }

    #[test]
    fn the_thread_copies_the_log_once_it_passes_the_soft_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer(dir.path());
        let limits = Limits {
            soft_pages: 50,
            hard_pages: 1_000_000,
        };
        let c = Checkpointer::start(&mut conn, &dir.path().join("c.sqlite3"), limits).unwrap();
        let db_file = dir.path().join("c.sqlite3");
        let before = std::fs::metadata(&db_file).unwrap().len();
        fill(&conn, 10);
        assert_eq!(c.runs(), 0, "under the soft limit nothing runs");
        fill(&conn, 400); // ~200 pages
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while c.runs() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(c.runs() >= 1, "the checkpointer ran");
        assert!(
            std::fs::metadata(&db_file).unwrap().len() > before + 400 * 2000,
            "the rows reached the database file"
        );
        // The next write starts the log again from its beginning.
        fill(&conn, 1);
        assert!(wal_frames(&conn) < 50, "log restarted");
    }

    #[test]
    fn a_writer_past_the_hard_limit_waits_for_a_checkpoint_covering_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer(dir.path());
        let limits = Limits {
            soft_pages: 20,
            hard_pages: 40,
        };
        let c = Checkpointer::start(&mut conn, &dir.path().join("c.sqlite3"), limits).unwrap();
        for round in 1..=5 {
            fill(&conn, 200); // ~100 pages each: over the hard limit at every commit
            // The commit returned only after a checkpoint covering it had finished.
            assert!(c.runs() >= round, "round {round}: ran {}", c.runs());
        }
    }

    #[test]
    fn dropping_stops_the_thread_and_data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite3");
        {
            let mut conn = writer(dir.path());
            let c = Checkpointer::start(&mut conn, &path, Limits::for_page_size(8192)).unwrap();
            fill(&conn, 30);
            drop(c);
        }
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 30);
    }
}
