//! The replica's SQLite store: the op log and the state derived from it.
//!
//! Every change is an op written together with its domain change in one transaction (the
//! outbox), so nothing is lost if the app dies half-way. Local changes and synced ops take the
//! same path ([`apply`]), so a phone and the server that hold the same ops hold the same state.
//!
//! ```
//! use xuncha_core::model::{PremisesFields, PremisesKind, UserId};
//! use xuncha_core::store::Store;
//!
//! let mut store = Store::open_in_memory()?;
//! store.set_user(UserId::from("wang.wei"))?;
//! let shop = store.add_premises(PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering))?;
//! assert_eq!(store.list_premises(false)?.len(), 1);
//! assert_eq!(store.pending_ops(100)?.len(), 1); // waiting to be pushed
//! # let _ = shop;
//! # Ok::<(), xuncha_core::Error>(())
//! ```

mod apply;
mod checkpoint;
mod photo_files;
pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use apply::{ApplyReport, Aside, NewRows};
use apply::{
    DeviceNumbers, SET_ASIDE, apply_batch, apply_deferred, clear_state, load_hazard_events,
    rebuild, record_set_aside,
};

use crate::calendar::WorkCalendar;
use crate::campaign::{Campaign, Visit};
use crate::checklist::{Catalog, ChecklistKind, evaluate};
use crate::clock::{
    DEFAULT_MAX_CLOCK_AHEAD_MS, Hlc, HlcClock, SystemClock, WallClock, adoption_limit, china_date,
};
use crate::due::{self, Cadence, DueItem, HazardFacts, PremisesFacts};
use crate::error::{Error, Result};
use crate::hazard::{Hazard, HazardAction, HazardEvent, HistoryEntry, fold, transition};
use crate::location::{GridArea, GridIndex, ProximityRule, check_proximity};
use crate::model::{
    CampaignId, DeviceId, Geotag, HazardId, Inspection, InspectionDraft, InspectionId, PhotoRef,
    Premises, PremisesFields, PremisesId, UserId,
};
use crate::op::{Op, OpBody, PremisesPatch};
use crate::sync::SetAside;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Wall clock (tests and simulations inject a manual one).
    pub wall: Arc<dyn WallClock>,
    /// Device id to use when the database is new; a random one when `None`.
    pub device: Option<DeviceId>,
    /// How far ahead of this replica's wall clock (or the server's, when it says) a stamp
    /// seen from elsewhere may move its HLC (see [`HlcClock::observe_within`]).
    pub max_clock_ahead_ms: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wall: Arc::new(SystemClock),
            device: None,
            max_clock_ahead_ms: DEFAULT_MAX_CLOCK_AHEAD_MS,
        }
    }
}

/// A transaction or savepoint under way: undone when dropped unfinished (the work inside
/// failed, panicked, or could not be committed), so the connection is never left open, and
/// device numbers handed out inside it are forgotten.
struct Unfinished<'a> {
    store: &'a mut Store,
    undo: &'static str,
    finished: bool,
}

impl<'a> Unfinished<'a> {
    fn begin(store: &'a mut Store, begin: &str, undo: &'static str) -> Result<Self> {
        store.conn.execute_batch(begin)?;
        Ok(Unfinished {
            store,
            undo,
            finished: false,
        })
    }

    fn finish(&mut self, finish: &str) -> Result<()> {
        self.store.conn.execute_batch(finish)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.store.conn.execute_batch(self.undo);
            self.store.devices.clear();
        }
    }
}

/// What a replica holds, in numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Premises not archived.
    pub premises: usize,
    /// Inspections (the latest version of corrected ones).
    pub inspections: usize,
    /// Hazards neither closed nor withdrawn.
    pub open_hazards: usize,
    /// Ops held.
    pub ops: usize,
}

/// One replica's database.
#[derive(Debug)]
pub struct Store {
    /// Copies the log into the file off the writer's path (file-backed writers only); first,
    /// so it stops before the connection closes.
    checkpointer: Option<checkpoint::Checkpointer>,
    conn: Connection,
    device: DeviceId,
    user: Option<UserId>,
    clock: HlcClock,
    wall: Arc<dyn WallClock>,
    /// See [`StoreOptions::max_clock_ahead_ms`].
    max_clock_ahead_ms: i64,
    devices: DeviceNumbers,
    catalog: &'static Catalog,
    /// Working days: the server's calendar once synced, else the one built in.
    calendar: WorkCalendar,
    /// Re-inspection cadence: the server's once synced, else the defaults.
    cadence: Cadence,
    /// The boundaries of the grids this phone covers, as last synced.
    grids: GridIndex,
    /// The reference stamp as last loaded (`None`: not loaded yet), to reload only on change.
    reference_stamp: Option<Option<String>>,
}

impl Store {
    /// Opens (creating and migrating as needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens a database that lives in memory only (tests, simulations).
    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, StoreOptions::default())
    }

    /// Opens a file with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let mut store = Self::setup(Connection::open(path.as_ref())?, options)?;
        // In a browser there is no thread to copy the log on: SQLite checkpoints inside the
        // commit that crosses its threshold.
        if cfg!(not(target_family = "wasm")) {
            let limits = checkpoint::Limits::for_page_size(schema::page_size(&store.conn)?);
            store.checkpointer =
                checkpoint::Checkpointer::start(&mut store.conn, path.as_ref(), limits);
        }
        Ok(store)
    }

    /// Opens an in-memory database with explicit options.
    pub fn open_in_memory_with(options: StoreOptions) -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, options)
    }

    fn setup(mut conn: Connection, options: StoreOptions) -> Result<Store> {
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        let device = match get_meta(&conn, "device_id")? {
            Some(d) => DeviceId(d),
            None => {
                let d = options.device.unwrap_or_else(DeviceId::random);
                set_meta(&conn, "device_id", d.as_str())?;
                d
            }
        };
        let user = get_meta(&conn, "user_id")?.map(UserId);
        let last = get_meta(&conn, "hlc")?
            .and_then(|h| h.parse::<u64>().ok())
            .map(Hlc::from_u64)
            .unwrap_or_default();
        let mut store = Self::assemble(conn, device, user, HlcClock::resume(last), options.wall)?;
        store.max_clock_ahead_ms = options.max_clock_ahead_ms;
        // Ops kept from a newer version may be understood now (after an app upgrade).
        store.in_tx(apply_deferred)?;
        Ok(store)
    }

    /// Queries over a read-only connection to a store file that another connection writes
    /// (a server's read pool): nothing is migrated or written, and any change fails with
    /// SQLite's read-only error. Refuses a file at another schema version.
    pub fn read_only(path: impl AsRef<Path>) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::check_version(&conn)?;
        let device = DeviceId(get_meta(&conn, "device_id")?.unwrap_or_default());
        let user = get_meta(&conn, "user_id")?.map(UserId);
        let clock = HlcClock::resume(Hlc::default());
        Self::assemble(conn, device, user, clock, Arc::new(SystemClock))
    }

    /// A store over a set-up connection, with the reference data it holds.
    fn assemble(
        conn: Connection,
        device: DeviceId,
        user: Option<UserId>,
        clock: HlcClock,
        wall: Arc<dyn WallClock>,
    ) -> Result<Store> {
        let mut store = Store {
            checkpointer: None,
            conn,
            device,
            user,
            clock,
            wall,
            max_clock_ahead_ms: DEFAULT_MAX_CLOCK_AHEAD_MS,
            devices: DeviceNumbers::default(),
            catalog: Catalog::builtin(),
            calendar: WorkCalendar::builtin().clone(),
            cadence: Cadence::default(),
            grids: GridIndex::new(Vec::new()),
            reference_stamp: None,
        };
        store.refresh_reference()?;
        Ok(store)
    }

    /// This replica's device id.
    pub fn device_id(&self) -> &DeviceId {
        &self.device
    }

    /// The signed-in user, who authors new ops.
    pub fn user(&self) -> Option<&UserId> {
        self.user.as_ref()
    }

    /// Sets the signed-in user (after enrolment).
    pub fn set_user(&mut self, user: UserId) -> Result<()> {
        set_meta(&self.conn, "user_id", user.as_str())?;
        self.user = Some(user);
        Ok(())
    }

    /// Runs `f` with `user` as the author of new ops, then restores the signed-in user (the
    /// server writes a supervisor's dashboard actions this way).
    pub fn act_as<T>(
        &mut self,
        user: UserId,
        f: impl FnOnce(&mut Store) -> Result<T>,
    ) -> Result<T> {
        let signed_in = self.user.replace(user);
        let out = f(self);
        self.user = signed_in;
        out
    }

    /// The checklists this store evaluates with.
    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    /// Changes the tolerance of [`StoreOptions::max_clock_ahead_ms`] (a server's setting).
    pub fn set_max_clock_ahead_ms(&mut self, ms: i64) {
        self.max_clock_ahead_ms = ms;
    }

    /// The wall time this replica's clock shows (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.wall.now_ms()
    }

    /// The current HLC (the newest stamp issued or seen).
    pub fn hlc(&self) -> Hlc {
        self.clock.last()
    }

    /// Runs `f` in a transaction (a savepoint inside a [`Store::group`]); on error rolls back
    /// and forgets device numbers handed out.
    fn in_tx<T>(
        &mut self,
        f: impl FnOnce(&Connection, &mut DeviceNumbers) -> Result<T>,
    ) -> Result<T> {
        self.atomic(|store| f(&store.conn, &mut store.devices))
    }

    /// Runs `f` all or nothing: in a savepoint, rolled back (with device numbers handed out
    /// inside it forgotten) when `f` fails or panics. Inside a [`Store::group`] it keeps one
    /// member's failure from undoing the others.
    pub fn atomic<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        // On its own, a transaction that takes the write lock at once: a second connection to
        // the file then waits its turn (busy timeout) instead of failing with "database is
        // locked" when its read would have to become a write.
        let (begin, undo, finish) = if self.conn.is_autocommit() {
            ("BEGIN IMMEDIATE", "ROLLBACK", "COMMIT")
        } else {
            (
                "SAVEPOINT atomic",
                "ROLLBACK TO atomic; RELEASE atomic",
                "RELEASE atomic",
            )
        };
        let mut open = Unfinished::begin(self, begin, undo)?;
        let out = f(open.store);
        if out.is_ok() {
            open.finish(finish)?;
        }
        out
    }

    /// Runs `f` in one transaction, all or nothing (many changes, one commit: an import, a
    /// periodic job).
    pub fn all_or_nothing<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.group(|store| store.atomic(f))?
    }

    /// Runs `f` in one transaction with one commit (group commit): every change `f` makes
    /// becomes a savepoint of it, so a change that fails is undone alone and the others stay.
    /// Nothing is durable until `group` returns `Ok`; if the commit fails, everything is
    /// rolled back. A server uses it to write many pushes with one commit.
    pub fn group<T>(&mut self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        let mut open = Unfinished::begin(self, "BEGIN IMMEDIATE", "ROLLBACK")?;
        let out = f(open.store);
        open.finish("COMMIT")?;
        Ok(out)
    }

    /// Writes local changes as ops (contiguous seqs) and applies them, in one transaction.
    fn commit_local(&mut self, bodies: Vec<OpBody>) -> Result<Vec<Op>> {
        let author = self.user.clone().ok_or(Error::NoUser)?;
        let wall_ms = self.wall.now_ms();
        let device = self.device.clone();
        let mut clock = self.clock;
        let ops = self.in_tx(|tx, devices| {
            let device_no = devices.get_or_insert(tx, &device)?;
            let last: i64 = tx
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM ops WHERE device_no = ?1")?
                .query_row([device_no], |r| r.get(0))?;
            let ops: Vec<Op> = bodies
                .into_iter()
                .enumerate()
                .map(|(i, body)| Op {
                    device: device.clone(),
                    seq: last as u64 + 1 + i as u64,
                    hlc: clock.tick(wall_ms.max(0) as u64),
                    author: author.clone(),
                    schema: body.schema(),
                    wall_ms,
                    body,
                })
                .collect();
            apply_batch(tx, devices, &ops, &Aside::new())?;
            queue_photos(tx, &ops, wall_ms)?;
            set_meta(tx, "hlc", &clock.last().as_u64().to_string())?;
            Ok(ops)
        })?;
        self.clock = clock;
        Ok(ops)
    }

    /// Applies ops from elsewhere (a sync pull), all or nothing.
    pub fn apply_ops(&mut self, ops: &[Op]) -> Result<ApplyReport> {
        Ok(self.apply_ops_with(ops, |_, _| Ok(()))?.0)
    }

    /// Applies ops from elsewhere and, in the same transaction, runs `extra` with the op-log
    /// rows the batch added (the server keeps its own bookkeeping beside the op log this way:
    /// scope, receipts, quarantine).
    pub fn apply_ops_with<T>(
        &mut self,
        ops: &[Op],
        extra: impl FnOnce(&Connection, &NewRows) -> Result<T>,
    ) -> Result<(ApplyReport, T)> {
        self.apply_ops_setting_aside(ops, &Aside::new(), extra)
    }

    /// [`Store::apply_ops_with`], keeping the ops in `aside` (by index in `ops`) in the log but
    /// set aside: not applied, not among the new rows, and not moving the clock. A server
    /// keeps a push's refused ops this way instead of refusing the whole push.
    pub fn apply_ops_setting_aside<T>(
        &mut self,
        ops: &[Op],
        aside: &Aside<'_>,
        extra: impl FnOnce(&Connection, &NewRows) -> Result<T>,
    ) -> Result<(ApplyReport, T)> {
        let mut clock = self.clock;
        let limit = self.adoption_limit(None);
        let out = self.in_tx(|tx, devices| {
            let (report, max_hlc, new_rows) = apply_batch(tx, devices, ops, aside)?;
            clock.observe_within(max_hlc, limit);
            set_meta(tx, "hlc", &clock.last().as_u64().to_string())?;
            let extra = extra(tx, &new_rows)?;
            Ok((report, extra))
        })?;
        self.clock = clock;
        Ok(out)
    }

    /// Follows the server's word on this device's ops it set aside: the listed ones leave the
    /// state (kept in the log, with the reason, to show the worker). With `complete` the list
    /// is all the server holds set aside for this device, and own ops set aside here but not
    /// listed any more come back into the state (a supervisor let them through). Returns
    /// whether anything changed. The state is derived again from the log when it does (rare).
    pub fn follow_set_aside(&mut self, listed: &[SetAside], complete: bool) -> Result<bool> {
        let device = self.device.clone();
        self.in_tx(|tx, _| {
            let mut changed = 0;
            let mut find = tx.prepare_cached(
                "SELECT o.id, o.applied FROM ops o JOIN devices d USING (device_no)
                 WHERE d.device_id = ?1 AND o.seq = ?2",
            )?;
            for why in listed {
                let found: Option<(i64, i64)> = find
                    .query_row(params![device.as_str(), why.seq as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                let Some((id, state)) = found else { continue };
                if state != SET_ASIDE {
                    tx.prepare_cached("UPDATE ops SET applied = ?2 WHERE id = ?1")?
                        .execute(params![id, SET_ASIDE])?;
                    changed += 1;
                }
                record_set_aside(tx, id, why)?;
            }
            if complete {
                let kept: Vec<i64> = listed.iter().map(|w| w.seq as i64).collect();
                let kept = serde_json::to_string(&kept)?;
                changed += tx
                    .prepare_cached(
                        "UPDATE ops SET applied = 1 WHERE applied = ?3 AND device_no =
                           (SELECT device_no FROM devices WHERE device_id = ?1)
                         AND seq NOT IN (SELECT value FROM json_each(?2))",
                    )?
                    .execute(params![device.as_str(), kept, SET_ASIDE])?;
                tx.execute_batch(
                    "DELETE FROM set_aside WHERE op_id IN (SELECT id FROM ops WHERE applied <> 2)",
                )?;
            }
            if changed > 0 {
                rebuild(tx)?;
            }
            Ok(changed > 0)
        })
    }

    /// Ops held set aside (refused by the server for their author), with the reason, in
    /// arrival order. On a phone: its own ops the worker should know were not accepted.
    pub fn set_aside_ops(&self) -> Result<Vec<(Op, SetAside)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data,
                    a.code, a.message, a.message_en
             FROM ops o JOIN devices d USING (device_no) JOIN set_aside a ON a.op_id = o.id
             WHERE o.applied = ?1 ORDER BY o.id",
        )?;
        let rows = stmt.query_map([SET_ASIDE], |r| {
            let why = SetAside {
                seq: r.get::<_, i64>(1)? as u64,
                code: r.get(8)?,
                message: r.get(9)?,
                message_en: r.get(10)?,
            };
            Ok(read_op(r)?.map(|op| (op, why)))
        })?;
        rows.map(|r| r?).collect()
    }

    /// Lets ops held set aside through (a supervisor's decision on the server): they leave the
    /// set-aside state and are applied as if they arrived now, at the end of the log (so a
    /// pull cursor past their old place still reaches them), each with an id above every id
    /// the log has held. `extra` runs in the same transaction with the rows added, as in
    /// [`Store::apply_ops_with`].
    pub fn let_through<T>(
        &mut self,
        ops: &[Op],
        extra: impl FnOnce(&Connection, &NewRows) -> Result<T>,
    ) -> Result<(ApplyReport, T)> {
        self.atomic(|store: &mut Store| {
            let tx = &store.conn;
            let mut find = tx.prepare_cached(
                "SELECT o.id FROM ops o JOIN devices d USING (device_no)
                 WHERE d.device_id = ?1 AND o.seq = ?2 AND o.applied = ?3",
            )?;
            let mut parked = Vec::with_capacity(ops.len());
            for op in ops {
                let id: Option<i64> = find
                    .query_row(params![op.device.as_str(), op.seq as i64, SET_ASIDE], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let id = id.ok_or_else(|| {
                    Error::NotFound(format!("op {}/{} set aside", op.device, op.seq))
                })?;
                // Kept (under a seq no op has) until the op is in again: a new row takes the
                // highest id plus one, which would be this row's own were it the last one gone.
                tx.prepare_cached("UPDATE ops SET seq = -seq WHERE id = ?1")?
                    .execute([id])?;
                parked.push(id);
            }
            drop(find);
            let out = store.apply_ops_with(ops, extra)?;
            let tx = &store.conn;
            for id in parked {
                tx.prepare_cached("DELETE FROM set_aside WHERE op_id = ?1")?
                    .execute([id])?;
                tx.prepare_cached("DELETE FROM ops WHERE id = ?1")?
                    .execute([id])?;
            }
            Ok(out)
        })
    }

    /// The database connection, for tables kept beside the replica's own (the server's
    /// accounts and sync bookkeeping) and for read-only queries. The replica's tables must
    /// only be changed through the store's methods.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Highest seq stored from `device` (0 when none).
    pub fn max_seq(&self, device: &DeviceId) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(MAX(o.seq), 0) FROM ops o JOIN devices d USING (device_no)
                 WHERE d.device_id = ?1",
            )?
            .query_row([device.as_str()], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Takes in another replica's clock so local ops order after what it has seen; a stamp
    /// beyond this replica's wall clock plus the tolerance is taken only up to that point.
    pub fn observe_hlc(&mut self, remote: Hlc) -> Result<()> {
        self.observe_hlc_within(remote, None)
    }

    /// Takes in the server's clock along with the server's wall time: a phone whose own clock
    /// is behind adopts the server's stamp (so its ops order after what the server has
    /// seen), but no stamp far ahead of both clocks, even from a server that carries one.
    pub fn observe_server_hlc(&mut self, remote: Hlc, server_time_ms: i64) -> Result<()> {
        self.observe_hlc_within(remote, Some(server_time_ms))
    }

    fn observe_hlc_within(&mut self, remote: Hlc, other_wall_ms: Option<i64>) -> Result<()> {
        let before = self.clock.last();
        self.clock
            .observe_within(remote, self.adoption_limit(other_wall_ms));
        if self.clock.last() == before {
            return Ok(());
        }
        set_meta(&self.conn, "hlc", &self.clock.last().as_u64().to_string())
    }

    /// The latest stamp this replica adopts from elsewhere: its wall clock (or `other_wall_ms`
    /// when later) plus the tolerance.
    fn adoption_limit(&self, other_wall_ms: Option<i64>) -> u64 {
        let wall = self.wall.now_ms().max(other_wall_ms.unwrap_or(i64::MIN));
        adoption_limit(wall, self.max_clock_ahead_ms)
    }

    // ---- premises ----

    /// Adds a premises. One without a grid takes the grid its location lies in (among the
    /// grids this phone holds), so that the server files it where its worker can see it.
    pub fn add_premises(&mut self, mut fields: PremisesFields) -> Result<Premises> {
        fields.validate()?;
        if fields.grid_id.is_none()
            && let Some(at) = fields.location
        {
            fields.grid_id = self.grid_at(at);
        }
        let id = PremisesId::random();
        let patch = PremisesPatch {
            premises_id: id.clone(),
            fields: fields.to_registers(),
        };
        self.commit_local(vec![OpBody::PremisesPatch(patch)])?;
        Ok(Premises { id, fields })
    }

    /// Saves an edited premises record; only the fields that differ from what the replica
    /// holds now become writes, so concurrent edits of other fields survive. Returns the
    /// merged record. An app that shows a record and saves it later should use
    /// [`Store::patch_premises`], which compares with what the user saw.
    pub fn edit_premises(&mut self, id: &PremisesId, fields: PremisesFields) -> Result<Premises> {
        let current = self.premises_registers(id)?;
        self.write_changed_fields(id, &current, fields)
    }

    /// Saves what the user changed: the fields that differ between `before` (the record as
    /// the app showed it) and `after` (as the user left it) become writes, and no other.
    /// Fields the app does not show (it passes them through as it got them, or leaves them at
    /// their defaults in both) keep what they hold, and so do fields a sync changed while the
    /// user was editing.
    pub fn patch_premises(
        &mut self,
        id: &PremisesId,
        before: &PremisesFields,
        after: PremisesFields,
    ) -> Result<Premises> {
        self.write_changed_fields(id, &before.to_registers(), after)
    }

    fn write_changed_fields(
        &mut self,
        id: &PremisesId,
        base: &Map<String, Value>,
        fields: PremisesFields,
    ) -> Result<Premises> {
        fields.validate()?;
        if self.premises_registers(id)?.is_empty() {
            return Err(Error::NotFound(format!("premises {id}")));
        }
        let changed: Map<String, Value> = fields
            .to_registers()
            .into_iter()
            .filter(|(k, v)| base.get(k) != Some(v))
            .collect();
        if !changed.is_empty() {
            self.commit_local(vec![OpBody::PremisesPatch(PremisesPatch {
                premises_id: id.clone(),
                fields: changed,
            })])?;
        }
        self.premises(id)?
            .ok_or_else(|| Error::NotFound(format!("premises {id}")))
    }

    /// Archives (or restores) a premises; nothing is ever deleted.
    pub fn archive_premises(&mut self, id: &PremisesId, archived: bool) -> Result<()> {
        if self.premises_registers(id)?.is_empty() {
            return Err(Error::NotFound(format!("premises {id}")));
        }
        let fields = Map::from_iter([("archived".to_owned(), Value::Bool(archived))]);
        self.commit_local(vec![OpBody::PremisesPatch(PremisesPatch {
            premises_id: id.clone(),
            fields,
        })])?;
        Ok(())
    }

    fn premises_registers(&self, id: &PremisesId) -> Result<Map<String, Value>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT field, value FROM premises_fields WHERE premises_id = ?1")?;
        let rows = stmt.query_map([id.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut map = Map::new();
        for row in rows {
            let (field, value) = row?;
            map.insert(field, serde_json::from_str(&value)?);
        }
        Ok(map)
    }

    /// One premises; `None` when unknown, or while only part of it has arrived by sync.
    pub fn premises(&self, id: &PremisesId) -> Result<Option<Premises>> {
        let regs = self.premises_registers(id)?;
        if regs.is_empty() {
            return Ok(None);
        }
        Ok(PremisesFields::from_registers(regs)
            .ok()
            .map(|fields| Premises {
                id: id.clone(),
                fields,
            }))
    }

    /// All premises, by name; archived ones only when asked.
    pub fn list_premises(&self, include_archived: bool) -> Result<Vec<Premises>> {
        self.premises_where(
            "SELECT premises_id, field, value FROM premises_fields ORDER BY premises_id",
            [],
            include_archived,
        )
    }

    /// The premises filed under `grid` (by their `grid_id`), sorted like [`Store::list_premises`];
    /// reads only their registers (a grid's sticker sheet on a city's server).
    pub fn premises_of_grid(&self, grid: &str, include_archived: bool) -> Result<Vec<Premises>> {
        self.premises_where(
            "SELECT premises_id, field, value FROM premises_fields WHERE premises_id IN (
                 SELECT premises_id FROM premises_fields
                 WHERE field = 'grid_id' AND json_extract(value, '$') = ?1)
             ORDER BY premises_id",
            [grid],
            include_archived,
        )
    }

    /// Premises from a query of `(premises_id, field, value)` rows ordered by premises, sorted
    /// by name.
    fn premises_where(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        include_archived: bool,
    ) -> Result<Vec<Premises>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut by_id: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut rows = stmt.query(params)?;
        while let Some(r) = rows.next()? {
            let value: String = r.get(2)?;
            by_id
                .entry(r.get(0)?)
                .or_default()
                .insert(r.get(1)?, serde_json::from_str(&value)?);
        }
        let mut out: Vec<Premises> = by_id
            .into_iter()
            .filter_map(|(id, regs)| {
                PremisesFields::from_registers(regs)
                    .ok()
                    .map(|fields| Premises {
                        id: PremisesId(id),
                        fields,
                    })
            })
            .filter(|p| include_archived || !p.fields.archived)
            .collect();
        out.sort_by(|a, b| {
            a.fields
                .name
                .cmp(&b.fields.name)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    // ---- inspections ----

    /// Checks the answers against the newest checklists, derives the hazards and records the
    /// inspection. Nothing is stored when an answer does not fit.
    pub fn record_inspection(&mut self, draft: InspectionDraft) -> Result<Inspection> {
        let user = self.user.clone().ok_or(Error::NoUser)?;
        let premises = self
            .premises(&draft.premises_id)?
            .ok_or_else(|| Error::NotFound(format!("premises {}", draft.premises_id)))?;
        if premises.fields.archived {
            return Err(Error::invalid(
                "premises_id",
                "the premises is archived; restore it before inspecting",
            ));
        }
        if let Some(g) = &draft.geotag {
            g.validate()?;
        }
        let mut kinds = draft.kinds.clone();
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() {
            return Err(Error::invalid(
                "kinds",
                "choose at least one inspection type",
            ));
        }
        let lists: Vec<_> = kinds
            .iter()
            .map(|k| {
                self.catalog
                    .latest(*k)
                    .ok_or_else(|| Error::NotFound(format!("checklist {k:?}")))
            })
            .collect::<Result<_>>()?;
        let now = self.wall.now_ms();
        let today = china_date(now);
        let id = InspectionId::random();
        let superseded = match &draft.supersedes {
            Some(s) => {
                let old = self
                    .inspection(s)?
                    .ok_or_else(|| Error::NotFound(format!("inspection {s}")))?;
                if old.premises_id != draft.premises_id {
                    return Err(Error::invalid(
                        "supersedes",
                        "a correction must be for the same premises",
                    ));
                }
                Some(old)
            }
            None => None,
        };
        let root = superseded
            .as_ref()
            .map_or_else(|| id.clone(), |o| o.root.clone());
        let findings = evaluate(&lists, &premises.fields, &draft.answers, today, &root)?;
        let proximity = match (premises.fields.location, &draft.geotag) {
            (Some(at), Some(fix)) => Some(check_proximity(at, fix, &ProximityRule::default())),
            _ => None,
        };
        let inspection = Inspection {
            id,
            premises_id: draft.premises_id,
            checklists: lists.iter().map(|l| l.reference()).collect(),
            inspector: user,
            performed_on: today,
            recorded_at_ms: now,
            geotag: draft.geotag,
            answers: draft.answers,
            findings,
            note: draft.note,
            supersedes: draft.supersedes,
            proximity,
            root,
            extra: BTreeMap::new(),
        };
        let mut bodies = vec![OpBody::Inspection(Box::new(inspection.clone()))];
        // A correction that no longer finds a hazard withdraws it.
        for old in superseded.iter().flat_map(|o| o.findings.iter()) {
            let still = inspection
                .findings
                .iter()
                .any(|f| f.hazard_id == old.hazard_id);
            let open = self
                .hazard(&old.hazard_id)?
                .is_some_and(|h| h.status.is_open());
            if !still && open {
                bodies.push(OpBody::HazardEvent(HazardEvent {
                    hazard_id: old.hazard_id.clone(),
                    action: HazardAction::Withdrawn,
                    geotag: inspection.geotag.clone(),
                    note: Some(format!("corrected by inspection {}", inspection.id)),
                }));
            }
        }
        self.commit_local(bodies)?;
        Ok(inspection)
    }

    /// One inspection by id (superseded ones too).
    pub fn inspection(&self, id: &InspectionId) -> Result<Option<Inspection>> {
        let body: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT o.data FROM inspections i JOIN ops o ON o.id = i.op_id WHERE i.id = ?1",
            )?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// The current inspections of a premises (corrections replace what they supersede), newest first.
    pub fn inspections_of(&self, premises: &PremisesId) -> Result<Vec<Inspection>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.data FROM inspections i JOIN ops o ON o.id = i.op_id WHERE i.premises_id = ?1
               AND NOT EXISTS (SELECT 1 FROM inspections c WHERE c.supersedes = i.id
                 AND c.premises_id = i.premises_id AND c.root = i.root)
             ORDER BY i.performed_on DESC, i.hlc DESC",
        )?;
        let rows = stmt.query_map([premises.as_str()], |r| r.get::<_, String>(0))?;
        rows.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
    }

    // ---- hazards ----

    /// One hazard's current state.
    pub fn hazard(&self, id: &HazardId) -> Result<Option<Hazard>> {
        let state: Option<String> = self
            .conn
            .prepare_cached("SELECT state FROM hazards WHERE id = ?1")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?;
        Ok(state.map(|s| serde_json::from_str(&s)).transpose()?)
    }

    /// Open hazards, earliest deadline first (no deadline last).
    pub fn open_hazards(&self) -> Result<Vec<Hazard>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state FROM hazards WHERE status NOT IN ('closed', 'withdrawn')
             ORDER BY deadline IS NULL, deadline, id",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|s| Ok(serde_json::from_str(&s?)?)).collect()
    }

    /// Every hazard of a premises, open and closed, the latest found first.
    pub fn hazards_of(&self, premises: &PremisesId) -> Result<Vec<Hazard>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state FROM hazards WHERE premises_id = ?1
             ORDER BY json_extract(state, '$.origin.found_on') DESC, id",
        )?;
        let rows = stmt.query_map([premises.as_str()], |r| r.get::<_, String>(0))?;
        rows.map(|s| Ok(serde_json::from_str(&s?)?)).collect()
    }

    /// Everything that happened to a hazard, in order, with events its state did not allow flagged.
    pub fn hazard_history(&self, id: &HazardId) -> Result<Vec<HistoryEntry>> {
        let (origin, entries) = load_hazard_events(&self.conn, id)?;
        if entries.is_empty() {
            return Err(Error::NotFound(format!("hazard {id}")));
        }
        Ok(fold(id, origin.as_ref(), &entries).1)
    }

    /// Records an action on a hazard, if its current state here allows it.
    pub fn record_hazard_event(
        &mut self,
        id: &HazardId,
        action: HazardAction,
        geotag: Option<Geotag>,
        note: Option<String>,
    ) -> Result<Hazard> {
        let h = self
            .hazard(id)?
            .ok_or_else(|| Error::NotFound(format!("hazard {id}")))?;
        if transition(h.status, h.origin.finding.severity, &action).is_none() {
            return Err(Error::Transition {
                hazard: id.clone(),
                action: action.name().into(),
                status: h.status.as_str().into(),
            });
        }
        if let Some(g) = &geotag {
            g.validate()?;
        }
        check_action_changes_something(
            &h,
            &action,
            china_date(self.wall.now_ms()),
            &self.calendar,
        )?;
        if matches!(&action, HazardAction::FixedOnSpot { photos } if photos.is_empty()) {
            return Err(Error::invalid(
                "photos",
                "a hazard fixed on the spot needs an after-photo (当场整改须拍整改后照片)",
            ));
        }
        // A notice without a number takes the number of the visit's notice if one of its
        // other hazards has one (one notice per shop and visit, listing its hazards), else
        // this phone's next one (see `crate::notice`).
        let action = match action {
            HazardAction::NoticeIssued {
                deadline,
                notice_no: None,
            } => HazardAction::NoticeIssued {
                deadline,
                notice_no: match self.visit_notice_no(&h)? {
                    Some(n) => Some(n),
                    None => self.next_notice_no()?,
                },
            },
            other => other,
        };
        self.commit_local(vec![OpBody::HazardEvent(HazardEvent {
            hazard_id: id.clone(),
            action,
            geotag,
            note,
        })])?;
        self.hazard(id)?
            .ok_or_else(|| Error::NotFound(format!("hazard {id}")))
    }

    /// The number of the notice already issued for another hazard found in the same visit
    /// (the same inspection, or a correction of it).
    fn visit_notice_no(&self, h: &Hazard) -> Result<Option<String>> {
        let root = self
            .inspection(&h.origin.inspection_id)?
            .map_or_else(|| h.origin.inspection_id.clone(), |i| i.root);
        Ok(self
            .conn
            .prepare_cached(
                "SELECT json_extract(h.state, '$.notice_no') FROM hazards h
                 JOIN inspections i ON i.id = json_extract(h.state, '$.origin.inspection_id')
                 WHERE h.premises_id = ?1 AND i.root = ?2 AND h.id <> ?3
                   AND json_extract(h.state, '$.notice_no') IS NOT NULL
                 ORDER BY h.id LIMIT 1",
            )?
            .query_row(
                params![h.origin.premises_id.as_str(), root.as_str(), h.id.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sets how this phone numbers notices: the area's short name and the device code the
    /// server assigned at enrolment.
    pub fn set_notice_numbering(&mut self, area: &str, device_code: &str) -> Result<()> {
        set_meta(&self.conn, "notice_area", area)?;
        set_meta(&self.conn, "device_code", device_code)
    }

    /// Hands out this phone's next notice number for the current year, or `None` before
    /// enrolment gave it a device code. The counter is saved before the number is used, so a
    /// crash can leave a gap but never a duplicate.
    pub fn next_notice_no(&mut self) -> Result<Option<String>> {
        let (Some(area), Some(code)) = (
            get_meta(&self.conn, "notice_area")?,
            get_meta(&self.conn, "device_code")?,
        ) else {
            return Ok(None);
        };
        let year = chrono::Datelike::year(&china_date(self.wall.now_ms()));
        let key = format!("notice_seq_{year}");
        let n = get_meta(&self.conn, &key)?
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
            + 1;
        set_meta(&self.conn, &key, &n.to_string())?;
        Ok(Some(crate::notice::format_notice_no(&area, year, &code, n)))
    }

    // ---- what is due ----

    /// The working-day calendar in use.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }

    /// The re-inspection cadence in use.
    pub fn cadence(&self) -> &Cadence {
        &self.cadence
    }

    /// Replaces the reference data (calendar file and cadence, as the server sends them);
    /// checked before anything is kept.
    pub fn set_reference(&mut self, calendar_json: &str, cadence: &Cadence) -> Result<()> {
        let calendar = WorkCalendar::from_json(calendar_json)?;
        set_meta(&self.conn, "calendar_json", calendar_json)?;
        set_meta(&self.conn, "cadence_json", &serde_json::to_string(cadence)?)?;
        self.bump_reference_stamp()?;
        self.calendar = calendar;
        self.cadence = cadence.clone();
        Ok(())
    }

    /// The calendar file in use (as JSON text) and the cadence: what a server sends phones.
    pub fn reference(&self) -> Result<(String, Cadence)> {
        let calendar = get_meta(&self.conn, "calendar_json")?
            .unwrap_or_else(|| crate::calendar::EMBEDDED.to_owned());
        Ok((calendar, self.cadence.clone()))
    }

    /// Replaces the grid boundaries (as the server sends them for this user's area).
    pub fn set_grids(&mut self, grids: &[GridArea]) -> Result<()> {
        set_meta(&self.conn, "grids_json", &serde_json::to_string(grids)?)?;
        self.bump_reference_stamp()?;
        self.grids = GridIndex::from_areas(grids);
        Ok(())
    }

    /// Marks the reference data changed, for other connections' [`Store::refresh_reference`].
    fn bump_reference_stamp(&self) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('reference_stamp', '1')
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            [],
        )?;
        Ok(())
    }

    /// The grids this phone holds, as the server last sent them: (id, name), in its order.
    pub fn grid_names(&self) -> Result<Vec<(String, String)>> {
        let areas: Vec<crate::location::GridArea> = match get_meta(&self.conn, "grids_json")? {
            Some(json) => serde_json::from_str(&json)?,
            None => Vec::new(),
        };
        Ok(areas.into_iter().map(|a| (a.id, a.name)).collect())
    }

    /// The grid a position lies in, among the grids synced to this phone.
    pub fn grid_at(&self, at: crate::model::LatLon) -> Option<String> {
        self.grids.grid_at(at).map(str::to_owned)
    }

    /// Loads the calendar, cadence and grid boundaries the database holds, if they changed
    /// since last loaded (a long-lived [`Store::read_only`] calls it before its queries).
    pub fn refresh_reference(&mut self) -> Result<()> {
        // A stamp, not the data: the grids' boundaries can be megabytes.
        let stamp = get_meta(&self.conn, "reference_stamp")?;
        if self.reference_stamp.as_ref() == Some(&stamp) {
            return Ok(());
        }
        let grids = get_meta(&self.conn, "grids_json")?;
        let calendar = get_meta(&self.conn, "calendar_json")?;
        let cadence = get_meta(&self.conn, "cadence_json")?;
        self.grids = match grids {
            Some(json) => GridIndex::from_areas(&serde_json::from_str::<Vec<GridArea>>(&json)?),
            None => GridIndex::new(Vec::new()),
        };
        self.calendar = match calendar {
            Some(json) => WorkCalendar::from_json(&json)?,
            None => WorkCalendar::builtin().clone(),
        };
        self.cadence = match cadence {
            Some(json) => serde_json::from_str(&json)?,
            None => Cadence::default(),
        };
        self.reference_stamp = Some(stamp);
        Ok(())
    }

    /// The worker's due list at `now_ms` (see [`crate::due`]), most urgent first. Reads only
    /// what the list depends on, so it stays fast on a phone with thousands of premises.
    pub fn due(&self, now_ms: i64) -> Result<Vec<DueItem>> {
        let today = china_date(now_ms);
        let premises = self.premises_facts()?;
        let mut items = due::due(
            &premises,
            &self.last_inspected()?,
            &self.open_hazard_facts()?,
            today,
            &self.cadence,
            &self.calendar,
        );
        let running: Vec<Campaign> = self
            .campaigns()?
            .into_iter()
            .filter(|c| !c.ended && c.starts_on <= today)
            .collect();
        if let Some(since) = running.iter().map(|c| c.starts_on).min() {
            let visits = self.visits_since(since)?;
            items.extend(crate::campaign::due_items(
                &running, &premises, &visits, today,
            ));
            due::sort_by_urgency(&mut items);
        }
        Ok(items)
    }

    // ---- campaigns ----

    /// Records (or changes, or ends) one grid's part of a campaign (a supervisor's doing; the
    /// server refuses it from workers).
    pub fn record_campaign(&mut self, campaign: Campaign) -> Result<Campaign> {
        campaign.validate()?;
        self.commit_local(vec![OpBody::Campaign(campaign.clone())])?;
        Ok(campaign)
    }

    /// Every campaign record this replica holds (a phone: its grids' parts), by campaign
    /// and grid.
    pub fn campaigns(&self) -> Result<Vec<Campaign>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM campaigns ORDER BY campaign_id, grid_id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Where each premises of a campaign stands, by grid record.
    pub fn campaign_progress(
        &self,
        id: &CampaignId,
    ) -> Result<Vec<(Campaign, Vec<crate::campaign::PremisesProgress>)>> {
        let parts: Vec<Campaign> = self
            .campaigns()?
            .into_iter()
            .filter(|c| &c.campaign_id == id)
            .collect();
        let Some(since) = parts.iter().map(|c| c.starts_on).min() else {
            return Err(Error::NotFound(format!("campaign {id}")));
        };
        let premises = self.premises_facts()?;
        let visits = self.visits_since(since)?;
        let by_premises = crate::campaign::visits_by_premises(&visits);
        Ok(parts
            .into_iter()
            .map(|c| {
                let progress = crate::campaign::progress(&c, &premises, &by_premises);
                (c, progress)
            })
            .collect())
    }

    /// Visits on or after `since`, each inspection's latest correction only.
    fn visits_since(&self, since: chrono::NaiveDate) -> Result<Vec<Visit>> {
        #[derive(serde::Deserialize)]
        struct Code {
            code: String,
        }
        #[derive(serde::Deserialize)]
        struct Answered {
            checklists: Vec<crate::model::ChecklistRef>,
            #[serde(default)]
            findings: Vec<Code>,
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.premises_id, i.performed_on, i.inspector, o.data
             FROM inspections i JOIN ops o ON o.id = i.op_id
             WHERE i.performed_on >= ?1
               AND NOT EXISTS (SELECT 1 FROM inspections later WHERE later.supersedes = i.id)",
        )?;
        let mut rows = stmt.query([since.to_string()])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let Ok(performed_on) = text_at(r, 1)?.parse() else {
                continue;
            };
            let answered: Answered = serde_json::from_str(text_at(r, 3)?)?;
            out.push(Visit {
                premises_id: PremisesId(r.get(0)?),
                performed_on,
                inspector: UserId(r.get(2)?),
                checklists: answered.checklists.iter().map(|c| c.kind).collect(),
                findings: answered.findings.into_iter().map(|f| f.code).collect(),
            });
        }
        Ok(out)
    }

    fn premises_facts(&self) -> Result<Vec<PremisesFacts>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT premises_id, field, value FROM premises_fields
             WHERE field IN ('kind', 'gas_use', 'sleeps_on_site', 'max_occupants', 'archived', 'grid_id')
             ORDER BY premises_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out: Vec<PremisesFacts> = Vec::new();
        while let Some(r) = rows.next()? {
            let id = text_at(r, 0)?;
            if out.last().is_none_or(|f| f.id.as_str() != id) {
                out.push(PremisesFacts {
                    id: PremisesId(id.to_owned()),
                    kind: crate::model::PremisesKind::Other,
                    gas_use: crate::model::GasUse::None,
                    sleeps_on_site: false,
                    max_occupants: None,
                    archived: false,
                    grid_id: None,
                });
            }
            let (Some(f), field, value) = (out.last_mut(), text_at(r, 1)?, text_at(r, 2)?) else {
                continue;
            };
            match field {
                "kind" => f.kind = serde_json::from_str(value).unwrap_or(f.kind),
                "gas_use" => f.gas_use = serde_json::from_str(value).unwrap_or(f.gas_use),
                "sleeps_on_site" => f.sleeps_on_site = value == "true",
                "max_occupants" => f.max_occupants = serde_json::from_str(value).ok().flatten(),
                "grid_id" => f.grid_id = serde_json::from_str(value).ok().flatten(),
                _ => f.archived = value == "true",
            }
        }
        Ok(out)
    }

    fn last_inspected(&self) -> Result<HashMap<PremisesId, chrono::NaiveDate>> {
        let mut last = HashMap::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT premises_id, MAX(performed_on) FROM inspections GROUP BY premises_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if let Ok(d) = text_at(r, 1)?.parse::<chrono::NaiveDate>() {
                last.insert(PremisesId(r.get(0)?), d);
            }
        }
        Ok(last)
    }

    fn open_hazard_facts(&self) -> Result<Vec<HazardFacts>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, premises_id, status, severity, deadline, json_extract(state, '$.origin.found_on')
             FROM hazards WHERE status NOT IN ('closed', 'withdrawn')",
        )?;
        let rows = stmt.query_map([], |r| {
            let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
            let date = |i: usize| -> rusqlite::Result<Option<chrono::NaiveDate>> {
                Ok(r.get::<_, Option<String>>(i)?.and_then(|d| d.parse().ok()))
            };
            Ok((text(0)?, text(1)?, text(2)?, text(3)?, date(4)?, date(5)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, premises, status, severity, deadline, found_on) = row?;
            out.push(HazardFacts {
                id: HazardId(id),
                premises_id: PremisesId(premises),
                status: serde_json::from_value(Value::String(status))?,
                severity: serde_json::from_value(Value::String(severity))?,
                deadline,
                found_on: found_on.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// When the app should next show a reminder (ms since the epoch), if anything is pending.
    pub fn next_reminder_at(&self, now_ms: i64) -> Result<Option<i64>> {
        Ok(due::next_reminder_at(&self.due(now_ms)?, now_ms))
    }

    // ---- sync support ----

    /// This device's ops not yet acknowledged by the server, oldest first.
    pub fn pending_ops(&self, limit: usize) -> Result<Vec<Op>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data
             FROM ops o JOIN devices d USING (device_no)
             WHERE d.device_id = ?1 AND o.seq > ?2 ORDER BY o.seq LIMIT ?3",
        )?;
        let acked = self.acked_seq()? as i64;
        let rows = stmt.query_map(params![self.device.as_str(), acked, limit as i64], read_op)?;
        rows.map(|r| r?).collect()
    }

    /// A device's ops after seq `after`, at most `limit`, in seq order, whatever their state
    /// (applied, deferred or set aside).
    pub fn own_ops_after(&self, device: &DeviceId, after: u64, limit: usize) -> Result<Vec<Op>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data
             FROM ops o JOIN devices d USING (device_no)
             WHERE d.device_id = ?1 AND o.seq > ?2 ORDER BY o.seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                device.as_str(),
                after.min(i64::MAX as u64) as i64,
                limit as i64
            ],
            read_op,
        )?;
        rows.map(|r| r?).collect()
    }

    /// How many of this device's ops wait to be pushed.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self
            .max_seq(&self.device)?
            .saturating_sub(self.acked_seq()?))
    }

    /// Highest seq of this device the server has acknowledged.
    pub fn acked_seq(&self) -> Result<u64> {
        Ok(get_meta(&self.conn, "acked_seq")?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// Records that the server acknowledged this device's ops up to `seq`.
    pub fn mark_acked(&mut self, seq: u64) -> Result<()> {
        if seq > self.acked_seq()? {
            set_meta(&self.conn, "acked_seq", &seq.to_string())?;
        }
        Ok(())
    }

    /// Moves the acknowledgement back (the server says it holds less, e.g. after it was
    /// restored from a backup), so those ops are pushed again, and their photos queued again
    /// (the server may have lost them too; an upload finding one there skips it).
    pub fn rewind_acked(&mut self, seq: u64) -> Result<()> {
        if seq >= self.acked_seq()? {
            return Ok(());
        }
        let wall_ms = self.wall.now_ms();
        self.atomic(|s: &mut Store| {
            set_meta(&s.conn, "acked_seq", &seq.to_string())?;
            let again = s.pending_ops(i64::MAX as usize)?;
            queue_photos(&s.conn, &again, wall_ms)
        })
    }

    /// Takes back this device's own ops as the server holds them (`held`, oldest first, from
    /// some seq on), after the phone's database was restored from an older copy: the server
    /// holds ops of this device the phone no longer has, and the phone may meanwhile have
    /// written new ops under seqs the server already holds with other content. The server's
    /// ops are taken in; the phone's own ops from the first one the server holds otherwise
    /// on (unsynced work) keep their content, clock and author but move after the server's
    /// last seq, to be pushed. The state is derived again from the log. Returns how many ops
    /// moved. `held_to` is the highest seq the server holds of this device; it becomes the
    /// acknowledged seq.
    pub fn adopt_own_ops(&mut self, held: &[Op], held_to: u64) -> Result<usize> {
        let device = self.device.clone();
        if held.iter().any(|op| op.device != device) {
            return Err(Error::Batch(
                "ops of another device are not this phone's own".into(),
            ));
        }
        let first = held.first().map_or(held_to + 1, |op| op.seq);
        let mine: Vec<Op> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data
                 FROM ops o JOIN devices d USING (device_no)
                 WHERE d.device_id = ?1 AND o.seq >= ?2 ORDER BY o.seq",
            )?;
            let rows = stmt.query_map(params![device.as_str(), first as i64], read_op)?;
            rows.map(|r| r?).collect::<Result<_>>()?
        };
        let by_seq: HashMap<u64, &Op> = held.iter().map(|op| (op.seq, op)).collect();
        // From the first op the server does not hold as it is here, the phone's ops move.
        let diverge = mine.iter().position(|op| {
            by_seq
                .get(&op.seq)
                .is_none_or(|theirs| !same_op(theirs, op))
        });
        let moving: Vec<Op> = diverge.map_or_else(Vec::new, |i| mine[i..].to_vec());
        let last = held_to.max(held.last().map_or(0, |op| op.seq));
        let moved = moving.len();
        self.in_tx(|tx, devices| {
            // The state is derived again at the end; cleared first, nothing refers to the
            // rows about to go.
            clear_state(tx)?;
            let mut forget = tx.prepare_cached(
                "DELETE FROM ops WHERE seq = ?2
                   AND device_no = (SELECT device_no FROM devices WHERE device_id = ?1)",
            )?;
            for op in &moving {
                tx.prepare_cached(
                    "DELETE FROM set_aside WHERE op_id IN (SELECT o.id FROM ops o
                       JOIN devices d USING (device_no) WHERE d.device_id = ?1 AND o.seq = ?2)",
                )?
                .execute(params![device.as_str(), op.seq as i64])?;
                forget.execute(params![device.as_str(), op.seq as i64])?;
            }
            let renumbered: Vec<Op> = moving
                .into_iter()
                .enumerate()
                .map(|(i, op)| Op {
                    seq: last + 1 + i as u64,
                    ..op
                })
                .collect();
            apply_batch(tx, devices, held, &Aside::new())?;
            apply_batch(tx, devices, &renumbered, &Aside::new())?;
            rebuild(tx)?;
            set_meta(tx, "acked_seq", &last.to_string())
        })?;
        Ok(moved)
    }

    // ---- photo upload queue ----

    /// Photos this device recorded that wait for upload (not refused), oldest first.
    pub fn pending_photos(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sha256 FROM photo_uploads WHERE refused = 0 ORDER BY queued_ms, sha256",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Queues photos for upload again because the server lacks them; ids of the wrong shape
    /// are ignored, and photos queued already keep their place.
    pub fn requeue_photos(&mut self, sha256s: &[String]) -> Result<()> {
        let ids = sha256s.iter().map(String::as_str);
        queue_photo_ids(
            &self.conn,
            ids.filter(|s| PhotoRef::is_photo_id(s)),
            self.wall.now_ms(),
        )
    }

    /// How many photos wait for upload.
    pub fn pending_photo_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM photo_uploads WHERE refused = 0")?
            .query_row([], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Photos the server refused for good, with its reason.
    pub fn refused_photos(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sha256, COALESCE(last_error, '') FROM photo_uploads WHERE refused = 1 ORDER BY sha256",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The server verified the photo: it leaves the queue.
    pub fn photo_uploaded(&mut self, sha256: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM photo_uploads WHERE sha256 = ?1")?
            .execute([sha256])?;
        Ok(())
    }

    /// An upload attempt failed; `refused`: for good (the photo stays listed, not retried).
    pub fn photo_upload_failed(&mut self, sha256: &str, error: &str, refused: bool) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE photo_uploads SET attempts = attempts + 1, last_error = ?2, refused = ?3
                 WHERE sha256 = ?1",
            )?
            .execute(params![sha256, error, refused])?;
        Ok(())
    }

    /// How much the replica holds, counted in SQL (premises not archived, inspections not
    /// corrected since, hazards still open, ops).
    pub fn counts(&self) -> Result<Counts> {
        let count = |sql: &str| -> Result<usize> {
            let n: i64 = self.conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
            Ok(n as usize)
        };
        Ok(Counts {
            premises: count(
                "SELECT COUNT(*) FROM (SELECT premises_id FROM premises_fields GROUP BY premises_id
                 HAVING SUM(field = 'name') > 0 AND SUM(field = 'archived' AND value = 'true') = 0)",
            )?,
            inspections: count(
                "SELECT COUNT(*) FROM inspections i
                 WHERE NOT EXISTS (SELECT 1 FROM inspections c WHERE c.supersedes = i.id
                 AND c.premises_id = i.premises_id AND c.root = i.root)",
            )?,
            open_hazards: count(
                "SELECT COUNT(*) FROM hazards WHERE status NOT IN ('closed', 'withdrawn')",
            )?,
            ops: self.op_count()?,
        })
    }

    /// How many ops this replica holds.
    pub fn op_count(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM ops")?
            .query_row([], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Every op held, in arrival order (for relaying and tests).
    pub fn all_ops(&self) -> Result<Vec<Op>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data
             FROM ops o JOIN devices d USING (device_no) ORDER BY o.id",
        )?;
        let rows = stmt.query_map([], read_op)?;
        rows.map(|r| r?).collect()
    }

    /// A digest of the replica's state: equal digests mean equal premises, inspections,
    /// hazards and kept-but-unapplied ops. Op payloads are fed as the values they hold (parsed
    /// and encoded again), not as stored text, so two replicas holding one op in two spellings
    /// (its author's and a re-encoding, e.g. an op of a newer app) agree.
    pub fn digest(&self) -> Result<String> {
        let mut h = Sha256::new();
        let mut feed = |sql: &str, payload_col: Option<usize>| -> Result<()> {
            let mut stmt = self.conn.prepare(sql)?;
            let cols = stmt.column_count();
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                for i in 0..cols {
                    match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Text(t) if payload_col == Some(i) => {
                            let value: Value = serde_json::from_slice(t)?;
                            h.update(serde_json::to_vec(&value)?);
                        }
                        rusqlite::types::ValueRef::Text(t) => h.update(t),
                        rusqlite::types::ValueRef::Integer(n) => h.update(n.to_le_bytes()),
                        rusqlite::types::ValueRef::Null => h.update([0xff]),
                        other => h.update(format!("{other:?}")),
                    }
                    h.update([0]);
                }
                h.update([b'\n']);
            }
            h.update([b'|']);
            Ok(())
        };
        feed(
            "SELECT premises_id, field, value FROM premises_fields ORDER BY premises_id, field",
            None,
        )?;
        feed(
            "SELECT i.id, o.data FROM inspections i JOIN ops o ON o.id = i.op_id ORDER BY i.id",
            Some(1),
        )?;
        feed("SELECT id, state FROM hazards ORDER BY id", None)?;
        feed(
            "SELECT campaign_id, grid_id, data FROM campaigns ORDER BY campaign_id, grid_id",
            Some(2),
        )?;
        feed(
            "SELECT d.device_id, o.seq, o.data FROM ops o JOIN devices d USING (device_no)
             WHERE o.applied = 0 ORDER BY d.device_id, o.seq",
            Some(2),
        )?;
        Ok(hex::encode(h.finalize()))
    }

    /// The inspection types a routine visit to these premises covers (gas only where gas is used).
    pub fn default_kinds(premises: &PremisesFields) -> Vec<ChecklistKind> {
        let mut kinds = vec![ChecklistKind::FireExtinguisher];
        if premises.gas_use != crate::model::GasUse::None {
            kinds.push(ChecklistKind::GasAlarm);
        }
        kinds.extend([ChecklistKind::EBike, ChecklistKind::Exits]);
        kinds
    }
}

/// An action recorded here must make sense today: a deadline after today (a notice with a
/// past deadline would be overdue the moment it is printed), an extension to a working day
/// (the owner is re-checked then: not on a Sunday or a holiday), and an extension, a
/// reassignment or an escalation that changes something. (Ops from elsewhere are not judged by this: an
/// offline phone's extension may be past by the time it syncs, and the fold keeps it.)
fn check_action_changes_something(
    h: &Hazard,
    action: &HazardAction,
    today: chrono::NaiveDate,
    calendar: &WorkCalendar,
) -> Result<()> {
    match action {
        HazardAction::NoticeIssued { deadline, .. }
        | HazardAction::RecheckFailed { deadline, .. }
        | HazardAction::DeadlineExtended { deadline }
            if *deadline <= today =>
        {
            Err(Error::invalid(
                "deadline",
                format!(
                    "整改期限须晚于今天 / the deadline {deadline} must be after today ({today})"
                ),
            ))
        }
        HazardAction::DeadlineExtended { deadline } if !calendar.is_working_day(*deadline) => {
            let next = calendar.on_or_after(*deadline);
            Err(Error::invalid(
                "deadline",
                format!(
                    "{deadline} 不是工作日，可改为 {next} / {deadline} is not a working day; the next one is {next}"
                ),
            ))
        }
        HazardAction::DeadlineExtended { deadline } if h.deadline == Some(*deadline) => {
            Err(Error::invalid(
                "deadline",
                format!("整改期限已是 {deadline} / the deadline already is {deadline}"),
            ))
        }
        HazardAction::Reassigned { to } if *to == h.assignee => Err(Error::invalid(
            "to",
            format!("隐患已由 {to} 负责 / {to} already follows this hazard up"),
        )),
        HazardAction::Escalated { level } if *level <= h.escalation => Err(Error::invalid(
            "level",
            format!(
                "隐患已升级到第 {} 级 / already escalated to level {}",
                h.escalation, h.escalation
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether two copies of an op under one `(device, seq)` are the same op.
fn same_op(a: &Op, b: &Op) -> bool {
    a.hlc == b.hlc
        && a.author == b.author
        && a.schema == b.schema
        && a.wall_ms == b.wall_ms
        && a.body == b.body
}

/// Queues the photos of this device's new ops for upload.
fn queue_photos(tx: &Connection, ops: &[Op], now_ms: i64) -> Result<()> {
    let photos: Vec<_> = ops.iter().flat_map(|op| op.body.photos()).collect();
    queue_photo_ids(tx, photos.iter().map(|p| p.sha256.as_str()), now_ms)
}

/// Adds photos to the upload queue; ones queued already keep their place.
fn queue_photo_ids<'a>(
    tx: &Connection,
    sha256s: impl Iterator<Item = &'a str>,
    now_ms: i64,
) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO photo_uploads (sha256, queued_ms) VALUES (?1, ?2)",
    )?;
    for sha in sha256s {
        stmt.execute(params![sha, now_ms])?;
    }
    Ok(())
}

fn read_op(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Op>> {
    let kind: String = r.get(6)?;
    let schema: u32 = r.get(4)?;
    let data: String = r.get(7)?;
    let device = DeviceId(r.get(0)?);
    let seq = r.get::<_, i64>(1)? as u64;
    let hlc = Hlc::from_u64(r.get::<_, i64>(2)? as u64);
    let author = UserId(r.get(3)?);
    let wall_ms = r.get(5)?;
    Ok(OpBody::decode(&kind, schema, &data)
        .map(|body| Op {
            device,
            seq,
            hlc,
            author,
            schema,
            wall_ms,
            body,
        })
        .map_err(Error::from))
}

/// A text column, borrowed from the row.
fn text_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    Ok(r.get_ref(i)?.as_str()?)
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute([key, value])?;
    Ok(())
}
