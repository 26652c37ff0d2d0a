//! The server's database: the replica (one writer) plus the server's own tables, and a small
//! pool of read-only connections so pulls and lookups never wait for a push (SQLite WAL).

use std::path::{Path, PathBuf};
use std::sync::mpsc::TryRecvError;
use std::sync::{Condvar, Mutex};

use prometheus_client::metrics::counter::Counter;
use rusqlite::{Connection, OptionalExtension};
use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::store::{Store, StoreOptions};

use crate::error::ApiError;
use crate::postgres::replica::{self, Shared};
use crate::postgres::tables::PgTables;
use crate::postgres::{PgError, follow, log};
use crate::tables::{ServerTables, SqliteTables, Writer};

/// A migration file: its name and its SQL.
macro_rules! migration {
    ($name:literal) => {
        ($name, include_str!(concat!("../migrations/", $name)))
    };
}

/// The server's numbered migrations, applied after the replica's own.
pub const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001_accounts_sync.sql"),
    migration!("0002_webhooks.sql"),
    migration!("0003_grid_geometry.sql"),
    migration!("0004_photos.sql"),
    migration!("0005_sessions.sql"),
    migration!("0006_op_chain.sql"),
    migration!("0007_reminders.sql"),
    migration!("0008_people.sql"),
    migration!("0009_user_phone.sql"),
    migration!("0010_log_follow.sql"),
];

/// The migrations an upgrade of the database at `path` would apply, replica's first, by
/// name; read without changing the file. A database of a newer build is refused.
pub fn pending_migrations(path: &Path) -> Result<Vec<String>, xuncha_core::Error> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let replica: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = xuncha_core::store::schema::MIGRATIONS.len() as i64;
    if replica > known {
        return Err(xuncha_core::Error::SchemaTooNew {
            found: replica,
            known,
        });
    }
    let server = server_version(&conn)?;
    if server > MIGRATIONS.len() as i64 {
        return Err(xuncha_core::Error::SchemaTooNew {
            found: server,
            known: MIGRATIONS.len() as i64,
        });
    }
    let mut out: Vec<String> = xuncha_core::store::schema::MIGRATIONS
        .iter()
        .skip(replica as usize)
        .map(|(name, _)| format!("mobile-core/migrations/{name}"))
        .collect();
    out.extend(
        MIGRATIONS
            .iter()
            .skip(server as usize)
            .map(|(name, _)| format!("server/migrations/{name}")),
    );
    Ok(out)
}

/// The server schema version a database is at (0: none yet).
fn server_version(conn: &Connection) -> Result<i64, xuncha_core::Error> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'server_meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM server_meta WHERE key = 'schema_version'), 0)",
        [],
        |r| r.get(0),
    )?)
}

/// The author of ops the server writes on its own.
pub const SYSTEM_USER: &str = "system";

/// Most writes committed together: bounds how long a group holds the writer (a morning's
/// sync storm becomes a series of groups, not one transaction that outlasts the clients'
/// timeouts).
pub const MAX_GROUP: usize = 32;

/// Read connections kept open; also how many reads run at once.
pub const READERS: usize = 8;

/// Tells a grouped write's caller how it ended, once the group's commit is known.
type Delivery = Box<dyn FnOnce(Result<(), xuncha_core::Error>) + Send>;
/// A write waiting for the writer, to be run in the next group.
type GroupJob = Box<dyn FnOnce(&mut Store, Option<&dyn ServerTables>) -> Delivery + Send>;

/// Writes waiting to be committed together, and whether a group is being run.
#[derive(Default)]
struct Group {
    queue: Vec<GroupJob>,
    leading: bool,
}

/// Held by the thread running a group; gives the lead back when dropped.
struct Leading<'a>(&'a Db);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.lock_group().leading = false;
        self.0.group_done.notify_all();
    }
}

/// The database.
pub struct Db {
    writer: Mutex<Store>,
    /// Grouped writes waiting for the writer (see [`Db::write_grouped`]).
    group: Mutex<Group>,
    /// Signalled when a group has been committed and answered.
    group_done: Condvar,
    /// Groups committed and the writes they held, since start.
    grouped_commits: Counter,
    grouped_writes: Counter,
    /// `None` for an in-memory database (tests): reads then share the writer.
    path: Option<PathBuf>,
    readers: Mutex<Vec<Store>>,
    /// Highest op id in the pull index, so a pull with nothing new needs no query.
    /// The end of the pull index and the check of its op ([`cursor_check`]), read together.
    end: std::sync::RwLock<(u64, Option<String>)>,
    /// On PostgreSQL (several instances): the shared log and tables. The replica then takes
    /// ops only from the log, in its order (see `postgres::replica`).
    shared: Option<Shared>,
    /// Held while this instance writes the projection tables (one writer of them at a time).
    projecting: Mutex<()>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.path)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating and migrating) the database file.
    pub fn open(path: &Path) -> Result<Db, xuncha_core::Error> {
        let store = Store::open_with(path, server_options())?;
        Self::setup(store, Some(path.to_owned()))
    }

    /// An in-memory database (tests).
    pub fn open_in_memory() -> Result<Db, xuncha_core::Error> {
        Self::setup(Store::open_in_memory_with(server_options())?, None)
    }

    /// Opens this instance's replica at `path` following the shared database at `url` (its
    /// schema brought up to date), caught up with the log.
    pub fn open_shared(path: &Path, url: &str, instance: &str) -> Result<Db, PgError> {
        let shared = Shared::connect(url, instance)?;
        let store = Store::open_with(path, server_options()).map_err(PgError::Replica)?;
        Self::setup_shared(store, Some(path.to_owned()), shared)
    }

    /// [`Db::open_shared`] with the replica in memory (tests).
    pub fn open_shared_in_memory(url: &str, instance: &str) -> Result<Db, PgError> {
        let shared = Shared::connect(url, instance)?;
        let store = Store::open_in_memory_with(server_options()).map_err(PgError::Replica)?;
        Self::setup_shared(store, None, shared)
    }

    fn setup_shared(store: Store, path: Option<PathBuf>, shared: Shared) -> Result<Db, PgError> {
        let mut db = Self::setup(store, path).map_err(PgError::Replica)?;
        {
            let store = db.writer.get_mut().unwrap_or_else(|p| p.into_inner());
            // The truth is PostgreSQL's (committed, fsynced, first): a replica that loses its
            // last commits to a power cut has lost its position with them, and takes those ops
            // from the log again. So its commits need not wait for the disk.
            store
                .conn()
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| PgError::Replica(e.into()))?;
            store
                .conn()
                .execute_batch(&format!(
                    "{};{}",
                    replica::REFILED_TABLE,
                    replica::LET_THROUGH_TABLE
                ))
                .map_err(|e| PgError::Replica(e.into()))?;
            // A replica holding ops that did not come from this log would misnumber it.
            if follow::position(store.conn(), &shared.log_id)? == 0
                && store.op_count().unwrap_or(0) > 0
            {
                return Err(PgError::Replica(xuncha_core::Error::Batch(
                    "本地副本中已有不是来自共享日志的记录，请删除副本文件后重启 / the replica holds ops that did not come from the shared log: remove the replica file and start again".into(),
                )));
            }
        }
        db.shared = Some(shared);
        db.follow_log()
            .map_err(|e| PgError::Replica(xuncha_core::Error::Batch(e.en)))?;
        Ok(db)
    }

    /// The shared tables alone, for tools that change accounts (`xuncha-server user ...`): the
    /// replica is an empty one in memory, and no op may be written through it.
    pub fn open_tables_only(url: &str, instance: &str) -> Result<Db, PgError> {
        let shared = Shared::connect(url, instance)?;
        let store = Store::open_in_memory_with(server_options()).map_err(PgError::Replica)?;
        let mut db = Self::setup(store, None).map_err(PgError::Replica)?;
        db.shared = Some(shared);
        Ok(db)
    }

    /// Connections open to the shared database (`None` on SQLite).
    pub fn shared_connections(&self) -> Option<usize> {
        self.shared.as_ref().map(Shared::open_connections)
    }

    /// Whether this server keeps its state in PostgreSQL, beside other instances.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Brings the replica up to the end of the shared log (nothing on SQLite), writing what
    /// it changed to the projection tables. Blocking.
    pub fn follow_log(&self) -> Result<(), ApiError> {
        self.catch_up()?;
        self.project()
    }

    /// Brings the replica up to the end of the shared log (nothing on SQLite). Blocking.
    pub fn catch_up(&self) -> Result<(), ApiError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut store = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut client = shared.writer_client()?;
        catch_up_replica(&mut *client, &shared.log_id, &mut store)?;
        Ok(self.note_end(store.conn())?)
    }

    /// Writes to the projection tables what the replica holds beyond their position (nothing
    /// on SQLite). Blocking.
    pub fn project(&self) -> Result<(), ApiError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut client = shared.client()?;
        // From a read connection, so writes go on meanwhile.
        let _one = self.projecting.lock().unwrap_or_else(|p| p.into_inner());
        self.read_store(|store, _| Ok(replica::project(&mut client, store)?))
    }

    /// A session of its own to the shared database, to lead jobs on (`None` on SQLite).
    pub fn leadership(&self) -> Option<Result<crate::postgres::jobs::Leadership, PgError>> {
        self.shared
            .as_ref()
            .map(|s| Ok(crate::postgres::jobs::Leadership::new(s.dedicated()?)))
    }

    /// On PostgreSQL, the sign-in throttle all instances share (`postgres::throttle`): this
    /// attempt counted, or the seconds until the name or address may try again. `None` on
    /// SQLite (the in-memory count of `login::LoginGuard` serves one server).
    pub fn shared_throttle(
        &self,
        limits: &crate::login::LoginLimits,
        user: &str,
        address: Option<&str>,
    ) -> Option<Result<Result<(), u64>, ApiError>> {
        let shared = self.shared.as_ref()?;
        Some((|| {
            let mut client = shared.client()?;
            Ok(crate::postgres::throttle::begin(
                &mut client,
                limits,
                user,
                address,
            )?)
        })())
    }

    /// The password was right: [`Db::shared_throttle`] forgets the name's failures.
    pub fn shared_throttle_passed(
        &self,
        user: &str,
        address: Option<&str>,
    ) -> Result<(), ApiError> {
        if let Some(shared) = &self.shared {
            let mut client = shared.client()?;
            crate::postgres::throttle::succeeded(&mut *client, user, address)?;
        }
        Ok(())
    }

    /// A connection of its own to the shared database, to listen for appends.
    pub fn listener(&self) -> Option<Result<postgres::Client, PgError>> {
        self.shared.as_ref().map(|s| {
            let mut client = s.dedicated()?;
            log::listen(&mut client)?;
            Ok(client)
        })
    }

    /// Runs `work` on the replica under the shared log's lock, after catching up with the log;
    /// the ops it made are filed for pulls ([`index_new_ops`], unless `work` filed them) and
    /// appended to the log at the positions the replica gave them, in one PostgreSQL commit
    /// with what `work` wrote to the shared tables, before the replica commits. If anything
    /// fails, nothing of it stays in either.
    fn under_log_lock<T>(
        &self,
        shared: &Shared,
        store: &mut Store,
        work: impl FnOnce(&mut Store, &dyn ServerTables) -> T,
    ) -> Result<T, ApiError> {
        let mut client = shared.writer_client()?;
        let log_id = &shared.log_id;
        // What others appended meanwhile, applied before taking the log's lock (while another
        // instance holds it), so that under the lock there is little or nothing left to apply.
        catch_up_replica(&mut *client, log_id, store)?;
        let mut tx = client.transaction().map_err(PgError::from)?;
        if !log::try_lock(&mut tx)? {
            // Another instance is writing. Queued now, this one would be given the lock as
            // that group commits and apply the group under it, while every instance waits.
            // Instead: wait for that commit, apply the group outside the lock (while the other
            // runs its next group, if it has one), and only then queue.
            tx.rollback().map_err(PgError::from)?;
            log::wait_for_writer(&mut client)?;
            catch_up_replica(&mut *client, log_id, store)?;
            tx = client.transaction().map_err(PgError::from)?;
            log::lock(&mut tx)?;
        }
        catch_up_replica(&mut tx, log_id, store)?;
        let end = follow::position(store.conn(), log_id)?;
        let out = store.atomic(|store| {
            let out = work(store, &PgTables::new(&mut tx));
            let now = chrono::Utc::now().timestamp_millis();
            index_new_ops(store.conn(), now)?;
            let taken = replica::taken_after(store.conn(), end, now)?;
            if let Some(last) = taken.last() {
                let entries: Vec<log::Entry<'_>> =
                    taken.iter().map(replica::Taken::entry).collect();
                let appended = log::append_in(&mut tx, &entries)?;
                let expected: Vec<Option<i64>> = taken.iter().map(|t| Some(t.position)).collect();
                if appended.positions != expected {
                    return Err(ApiError::internal(
                        "the shared log numbered ops otherwise than the replica",
                    ));
                }
                follow::record(store.conn(), log_id, last.position)?;
            }
            tx.commit().map_err(PgError::from)?;
            Ok::<_, ApiError>(out)
        })?;
        // The projection tables follow off this path (`follow_log`, told by the append).
        Ok(out)
    }

    fn setup(mut store: Store, path: Option<PathBuf>) -> Result<Db, xuncha_core::Error> {
        // A push is answered once it is committed, and the phone then forgets it may have to
        // send it again: the commit must survive a power loss, so the log is synced at each
        // commit (group commit shares one sync among the pushes that arrived together). Phones
        // keep NORMAL: what an OS crash loses there was not acknowledged, or is still on the
        // server.
        store.conn().pragma_update(None, "synchronous", "FULL")?;
        migrate(store.conn())?;
        // Ops the server writes itself (escalations, later dashboard actions) are authored so.
        // (Always: a database seeded by the demo, or copied from a phone, names someone else.)
        if store.user().map(UserId::as_str) != Some(SYSTEM_USER) {
            store.set_user(UserId::from(SYSTEM_USER))?;
        }
        if crate::backup::start_restored(store.conn())? {
            tracing::warn!(
                "started on a backup copy (从备份恢复): phones pull again and resend what it lacks"
            );
        }
        let now = chrono::Utc::now().timestamp_millis();
        // Rows indexed before chains existed get theirs (once, at the first start).
        fill_chains(store.conn(), 0)?;
        index_new_ops(store.conn(), now)?;
        let end = log_end(store.conn())?;
        Ok(Db {
            writer: Mutex::new(store),
            group: Mutex::new(Group::default()),
            group_done: Condvar::new(),
            grouped_commits: Counter::default(),
            grouped_writes: Counter::default(),
            path,
            readers: Mutex::new(Vec::new()),
            end: std::sync::RwLock::new(end),
            shared: None,
            projecting: Mutex::new(()),
        })
    }

    /// Runs `f` with the writer. Blocking: call from a blocking thread.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut store = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = &self.shared {
            let out = self.under_log_lock(shared, &mut store, |store, tables| {
                f(&mut Writer::new(store, Some(tables)))
            })?;
            self.note_end(store.conn())?;
            return out;
        }
        let out = f(&mut Writer::new(&mut store, None));
        // Ops the server wrote itself (dashboard actions, jobs) join the pull index too.
        index_new_ops(store.conn(), chrono::Utc::now().timestamp_millis())?;
        self.note_end(store.conn())?;
        out
    }

    /// Runs `f` with the server's tables alone (no replica work). Blocking.
    pub fn tables<T>(
        &self,
        f: impl FnOnce(&dyn ServerTables) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if let Some(shared) = &self.shared {
            let mut client = shared.client()?;
            return f(&PgTables::new(&mut *client));
        }
        let store = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(SqliteTables::of(store.conn()))
    }

    /// Runs `f` with the server's tables alone in one transaction: all of it or none.
    pub fn tables_atomic<T>(
        &self,
        f: impl FnOnce(&dyn ServerTables) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if let Some(shared) = &self.shared {
            let mut client = shared.client()?;
            let mut tx = client.transaction().map_err(PgError::from)?;
            let out = f(&PgTables::new(&mut tx))?;
            tx.commit().map_err(PgError::from)?;
            return Ok(out);
        }
        let store = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = store.conn().unchecked_transaction()?;
        let out = f(SqliteTables::of(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` with the writer like [`Db::write`], but commits it together with the other
    /// writes queued meanwhile (group commit): whoever gets the writer runs every queued job,
    /// each in its own savepoint, and commits once. A job that fails is undone alone; if the
    /// commit fails, every job of the group gets the error. Meant for pushes: with many
    /// devices pushing at once, one commit (and one WAL checkpoint) serves many of them.
    /// Blocking: call from a blocking thread.
    pub fn write_grouped<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        let job: GroupJob = Box::new(move |store: &mut Store, shared| {
            let out = store.atomic(|store| f(&mut Writer::new(store, shared)));
            Box::new(move |committed: Result<(), xuncha_core::Error>| {
                let _ = send.send(committed.map_err(ApiError::from).and(out));
            })
        });
        let mut group = self.lock_group();
        group.queue.push(job);
        // Whoever finds no group running leads one with everything queued; the others wait
        // for their answer (or for the leader to finish, to lead the next group themselves).
        loop {
            match receive.try_recv() {
                Ok(answer) => return answer,
                // Our write was in a group that could not commit (its answer went with it).
                Err(TryRecvError::Disconnected) => {
                    return Err(ApiError::internal(
                        "a group of writes could not be committed",
                    ));
                }
                Err(TryRecvError::Empty) => {}
            }
            if group.leading {
                group = self
                    .group_done
                    .wait(group)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            group.leading = true;
            let take = group.queue.len().min(MAX_GROUP);
            let jobs: Vec<GroupJob> = group.queue.drain(..take).collect();
            drop(group);
            {
                // Hands the lead back even if a write panics, so the others are not stranded.
                let _leading = Leading(self);
                // Our own answer is in the channel (or gone with a failed commit): the next
                // turn of the loop takes it.
                if let Err(e) = self.run_group(jobs) {
                    tracing::error!(error = %e.en, "group of writes failed");
                }
            }
            group = self.lock_group();
        }
    }

    /// Grouped writes so far: (commits, writes). Writes / commits is the mean group size.
    pub fn group_stats(&self) -> (u64, u64) {
        (self.grouped_commits.get(), self.grouped_writes.get())
    }

    /// Writes waiting for the next group, and whether a group is running (tests wait on it).
    pub fn group_queue(&self) -> (usize, bool) {
        let group = self.lock_group();
        (group.queue.len(), group.leading)
    }

    /// The group counters themselves, for the metrics registry.
    pub fn group_counters(&self) -> (Counter, Counter) {
        (self.grouped_commits.clone(), self.grouped_writes.clone())
    }

    fn lock_group(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs queued writes in one transaction and tells each how it ended.
    fn run_group(&self, jobs: Vec<GroupJob>) -> Result<(), ApiError> {
        let mut store = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.grouped_commits.inc();
        self.grouped_writes.inc_by(jobs.len() as u64);
        if let Some(shared) = &self.shared {
            let ran = self.under_log_lock(shared, &mut store, |store, tables| {
                jobs.into_iter()
                    .map(|job| job(store, Some(tables)))
                    .collect::<Vec<_>>()
            })?;
            for deliver in ran {
                deliver(Ok(()));
            }
            self.note_end(store.conn())?;
            return Ok(());
        }
        let ran = store.group(|store| {
            jobs.into_iter()
                .map(|job| job(store, None))
                .collect::<Vec<_>>()
        });
        // When the commit fails the deliveries are dropped with the group's work, and the
        // waiting callers get an error from their channel.
        for deliver in ran? {
            deliver(Ok(()));
        }
        index_new_ops(store.conn(), chrono::Utc::now().timestamp_millis())?;
        self.note_end(store.conn())?;
        Ok(())
    }

    /// Highest op id in the pull index (the cursor of a phone that has everything).
    pub fn max_indexed(&self) -> u64 {
        self.end().0
    }

    /// The end of the pull index with its cursor check.
    pub fn end(&self) -> (u64, Option<String>) {
        self.end.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn note_end(&self, conn: &Connection) -> rusqlite::Result<()> {
        let end = log_end(conn)?;
        *self.end.write().unwrap_or_else(|p| p.into_inner()) = end;
        Ok(())
    }

    /// Runs `f` with a read-only connection. Blocking: call from a blocking thread.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection, &dyn ServerTables) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.with_reader(false, |store, tables| f(store.conn(), tables))
    }

    /// Runs `f` with a read-only store (the replica's queries: hazards, due lists), so that
    /// pages of the dashboard never wait for a push. Blocking: call from a blocking thread.
    pub fn read_store<T>(
        &self,
        f: impl FnOnce(&Store, &dyn ServerTables) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.with_reader(true, f)
    }

    /// A pooled read-only store; `reference`: reload calendar and cadence first if changed.
    fn with_reader<T>(
        &self,
        reference: bool,
        f: impl FnOnce(&Store, &dyn ServerTables) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        // On PostgreSQL the tables are the shared ones, on a pooled connection.
        let mut client = match &self.shared {
            Some(shared) => Some(shared.client()?),
            None => None,
        };
        let pg = client.as_mut().map(|c| PgTables::new(&mut **c));
        let Some(path) = &self.path else {
            let store = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tables: &dyn ServerTables = match &pg {
                Some(pg) => pg,
                None => SqliteTables::of(store.conn()),
            };
            return f(&store, tables);
        };
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut store = match idle {
            Some(s) => s,
            None => Store::read_only(path)?,
        };
        // An admin may have changed the calendar or cadence through the writer.
        if reference {
            store.refresh_reference()?;
        }
        let tables: &dyn ServerTables = match &pg {
            Some(pg) => pg,
            None => SqliteTables::of(store.conn()),
        };
        let out = f(&store, tables);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < READERS {
            idle.push(store);
        }
        out
    }
}

/// Brings this instance's replica to the end of the shared log, filing each op for pulls as
/// it was filed (`postgres::replica`).
fn catch_up_replica(
    client: &mut impl postgres::GenericClient,
    log_id: &str,
    store: &mut Store,
) -> Result<i64, PgError> {
    follow::catch_up_with(
        client,
        log_id,
        store,
        follow::PAGE,
        follow::Projections::Leave,
        replica::file_page,
    )
}

fn server_options() -> StoreOptions {
    StoreOptions {
        device: Some(DeviceId::from("server")),
        ..StoreOptions::default()
    }
}

/// Applies the server's migrations not yet applied, each in its own transaction.
fn migrate(conn: &Connection) -> Result<(), xuncha_core::Error> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    )?;
    let version = server_version(conn)?;
    // A database an upgraded server already migrated: this older build would misread it.
    if version > MIGRATIONS.len() as i64 {
        return Err(xuncha_core::Error::SchemaTooNew {
            found: version,
            known: MIGRATIONS.len() as i64,
        });
    }
    for (i, (_, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(i + 1).to_string()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The end of the pull index and its cursor check.
fn log_end(conn: &Connection) -> rusqlite::Result<(u64, Option<String>)> {
    let end = max_indexed(conn)?;
    Ok((end, cursor_check(conn, end)?))
}

/// What a phone keeps beside a pull cursor: the chain value at that place in the log, a digest
/// of every op indexed up to it. A cursor whose chain differs points into another log, such as
/// a copy of the data directory that lost its newest commits and numbered ops anew: the phone
/// then pulls from the start instead of skipping the ops the server numbered again.
pub(crate) fn cursor_check(conn: &Connection, id: u64) -> rusqlite::Result<Option<String>> {
    if id == 0 {
        return Ok(None);
    }
    let chain: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT chain FROM server_op_scope WHERE op_id = ?1")?
        .query_row([id as i64], |r| r.get(0))
        .optional()?;
    Ok(chain.flatten().map(hex::encode))
}

/// The chain value after `prev` for the op `(device, seq, hlc)`.
pub fn chain_next(prev: &[u8], device: &str, seq: i64, hlc: i64) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(prev);
    h.update(device.as_bytes());
    h.update([0]);
    h.update(seq.to_le_bytes());
    h.update(hlc.to_le_bytes());
    h.finalize()[..12].to_vec()
}

/// The chain value of the last chained row of the pull index (empty at the start).
pub(crate) fn last_chain(conn: &Connection) -> rusqlite::Result<Vec<u8>> {
    Ok(conn
        .prepare_cached(
            "SELECT chain FROM server_op_scope WHERE chain IS NOT NULL
             ORDER BY op_id DESC LIMIT 1",
        )?
        .query_row([], |r| r.get::<_, Vec<u8>>(0))
        .optional()?
        .unwrap_or_default())
}

/// Chains the rows of the pull index after `after` that have no chain value yet, in order
/// (`after` 0 at start: rows indexed before chains existed).
fn fill_chains(conn: &Connection, after: u64) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String, i64, i64)> = conn
        .prepare_cached(
            "SELECT s.op_id, d.device_id, o.seq, o.hlc
             FROM server_op_scope s JOIN ops o ON o.id = s.op_id JOIN devices d USING (device_no)
             WHERE s.op_id > ?1 AND s.chain IS NULL ORDER BY s.op_id",
        )?
        .query_map([after as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut chain = last_chain(conn)?;
    let mut set = conn.prepare_cached("UPDATE server_op_scope SET chain = ?2 WHERE op_id = ?1")?;
    for (id, device, seq, hlc) in rows {
        chain = chain_next(&chain, &device, seq, hlc);
        set.execute(rusqlite::params![id, chain])?;
    }
    Ok(())
}

fn max_indexed(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT COALESCE(MAX(op_id), 0) FROM server_op_scope")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Files every op of the log not yet in the pull index under the grid of the premises it
/// touches (through the hazard for hazard events). Set-based, so one statement per batch.
pub(crate) fn index_new_ops(conn: &Connection, received_ms: i64) -> rusqlite::Result<usize> {
    let before = max_indexed(conn)?;
    let added = conn.prepare_cached(
        "INSERT INTO server_op_scope (op_id, premises_id, grid_id, received_ms)
         SELECT t.id, t.premises_id,
                COALESCE(t.grid_id, (SELECT json_extract(pf.value, '$') FROM premises_fields pf
                 WHERE pf.premises_id = t.premises_id AND pf.field = 'grid_id')),
                ?1
         FROM (SELECT o.id, CASE o.kind
                   WHEN 'hazard_event' THEN
                       (SELECT h.premises_id FROM hazards h WHERE h.id = json_extract(o.data, '$.hazard_id'))
                   ELSE json_extract(o.data, '$.premises_id') END AS premises_id,
                   -- A campaign is filed under the grid it names.
                   CASE o.kind WHEN 'campaign' THEN json_extract(o.data, '$.grid_id') END AS grid_id
               FROM ops o
               WHERE o.id > (SELECT COALESCE(MAX(op_id), 0) FROM server_op_scope)
                 AND o.applied <> 2) t",
    )?
    .execute([received_ms])?;
    if added > 0 {
        // Photos the new ops refer to, by premises (an upload is allowed to those who see it).
        conn.prepare_cached(
            "INSERT OR IGNORE INTO server_photo_refs (sha256, premises_id)
             SELECT j.value, s.premises_id
             FROM server_op_scope s JOIN ops o ON o.id = s.op_id, json_tree(o.data) j
             WHERE s.op_id > ?1 AND o.kind IN ('inspection', 'hazard_event')
               AND s.premises_id IS NOT NULL AND j.key = 'sha256' AND j.type = 'text'",
        )?
        .execute([before as i64])?;
        fill_chains(conn, before)?;
    }
    Ok(added)
}
