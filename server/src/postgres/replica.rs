//! An instance's replica on PostgreSQL (`--database postgres://...`): its connections to the
//! shared database, and the replica's pull index kept in step with the shared log.
//!
//! The replica numbers its ops as the log does: it takes ops only from the log, in log order
//! (followed, or written by this instance under the log's lock after catching up and then
//! appended at the same positions), so an op's id in the replica is its position in the log
//! and a phone's pull cursor means the same on every instance. Each op is filed for pulls
//! (premises, grid, chain) as the instance that took it filed it: the log carries the filing.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use xuncha_core::clock::Hlc;
use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::op::{Op, OpBody};
use xuncha_core::store::NewRows;
use xuncha_core::sync::SetAside;

use super::log::{Entry, Logged};
use super::{Client, PgError};
use crate::db;

/// Connections this instance keeps open to the shared database at most: a burst of requests
/// waits for one rather than opening a connection each (PostgreSQL forks a process per
/// connection and refuses those past its `max_connections`, 100 by default, for every
/// instance together).
pub const MAX_CONNECTIONS: usize = 16;
/// How long a request waits for a connection before opening one anyway (so that a thread
/// holding one while asking for another can never wait for itself).
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(5);

/// The connections open: those idle, and how many there are in all.
#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    open: usize,
}

/// This instance's way to the shared database.
pub struct Shared {
    url: String,
    instance: String,
    /// The shared log's identity ([`super::log::id`]), read once.
    pub log_id: String,
    pool: Mutex<Pool>,
    /// Signalled when a connection is given back or closed.
    freed: Condvar,
    /// The replica's writer's own connection (outside the pool: writes, which hold the log's
    /// lock, never queue behind a burst of requests).
    writer: Mutex<Option<Client>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Connects to the database at `url` and brings it to this build's schema.
    pub fn connect(url: &str, instance: &str) -> Result<Shared, PgError> {
        let mut client = super::connect(url, instance)?;
        super::migrate(&mut client)?;
        Ok(Shared {
            log_id: super::log::id(&mut client)?,
            url: url.to_owned(),
            instance: instance.to_owned(),
            pool: Mutex::new(Pool {
                idle: vec![client],
                open: 1,
            }),
            freed: Condvar::new(),
            writer: Mutex::new(None),
        })
    }

    /// The connection of the replica's writer (one writer at a time per instance).
    pub fn writer_client(&self) -> Result<Pooled<'_>, PgError> {
        let kept = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let client = match kept {
            Some(client) if !client.is_closed() => client,
            _ => super::connect(&self.url, &self.instance)?,
        };
        Ok(Pooled {
            shared: self,
            client: Some(client),
            writer: true,
        })
    }

    /// A connection: an idle one, a new one while fewer than [`MAX_CONNECTIONS`] are open,
    /// else the next one given back (a new one after [`WAIT_FOR_CONNECTION`]). Given back
    /// when dropped (unless it broke).
    pub fn client(&self) -> Result<Pooled<'_>, PgError> {
        let deadline = Instant::now() + WAIT_FOR_CONNECTION;
        let mut pool = self.lock_pool();
        loop {
            if let Some(client) = pool.idle.pop() {
                if client.is_closed() {
                    pool.open -= 1;
                    continue;
                }
                return Ok(self.pooled(client));
            }
            let now = Instant::now();
            if pool.open < MAX_CONNECTIONS || now >= deadline {
                pool.open += 1;
                drop(pool);
                return match super::connect(&self.url, &self.instance) {
                    Ok(client) => Ok(self.pooled(client)),
                    Err(e) => {
                        self.lock_pool().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            pool = self
                .freed
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Connections open now (idle or in use).
    pub fn open_connections(&self) -> usize {
        self.lock_pool().open
    }

    fn pooled(&self, client: Client) -> Pooled<'_> {
        Pooled {
            shared: self,
            client: Some(client),
            writer: false,
        }
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection of its own (to listen on), not from the pool.
    pub fn dedicated(&self) -> Result<Client, PgError> {
        super::connect(&self.url, &self.instance)
    }
}

/// A pooled connection.
pub struct Pooled<'a> {
    shared: &'a Shared,
    client: Option<Client>,
    /// The writer's connection ([`Shared::writer_client`]), given back to its own place.
    writer: bool,
}

impl std::fmt::Debug for Pooled<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled").finish_non_exhaustive()
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("held until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.writer {
            if !client.is_closed() {
                *self.shared.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
            }
            return;
        }
        let mut pool = self.shared.lock_pool();
        if client.is_closed() || pool.open > MAX_CONNECTIONS {
            // Broke, or one of those opened past the bound after a long wait.
            pool.open -= 1;
        } else {
            pool.idle.push(client);
        }
        drop(pool);
        self.shared.freed.notify_one();
    }
}

/// Files a page of the log in the replica's pull index as the instance that took each op
/// filed it, in the transaction that applied the page. Refuses a replica that numbered an op
/// otherwise than the log (it holds ops that did not come from this log).
pub fn file_page(
    conn: &Connection,
    page: &[Logged],
    new_rows: &NewRows,
) -> xuncha_core::Result<()> {
    let mut chain = db::last_chain(conn)?;
    let mut index = conn.prepare_cached(
        "INSERT INTO server_op_scope (op_id, premises_id, grid_id, received_ms, chain)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut refs = conn.prepare_cached(
        "INSERT OR IGNORE INTO server_photo_refs (sha256, premises_id) VALUES (?1, ?2)",
    )?;
    for &(at, id) in new_rows {
        let logged = &page[at];
        if id != logged.position {
            return Err(xuncha_core::Error::Batch(format!(
                "本地副本与共享日志不一致，请删除副本文件后重启 / the replica numbered op {}/{} as {id}, the log holds it at {}: remove the replica file and start again",
                logged.op.device, logged.op.seq, logged.position
            )));
        }
        if logged.aside.is_some() {
            continue;
        }
        let op = &logged.op;
        chain = db::chain_next(&chain, op.device.as_str(), op.seq as i64, hlc(op));
        index.execute(params![
            id,
            logged.premises_id,
            logged.grid_id,
            logged.received_ms,
            chain
        ])?;
        if let Some(premises) = &logged.premises_id {
            for photo in op.body.photos() {
                refs.execute(params![photo.sha256, premises])?;
            }
        }
    }
    // After the page's rows, as the pushing instance did after its batch's.
    let mut refile =
        conn.prepare_cached("UPDATE server_op_scope SET grid_id = ?2 WHERE premises_id = ?1")?;
    for logged in page.iter().filter(|l| l.refile && l.aside.is_none()) {
        refile.execute(params![logged.premises_id, logged.grid_id])?;
    }
    Ok(())
}

/// Premises a push moved to another grid, noted by the push (see `sync::push_batch`) in a
/// table of the writer's connection so the append marks them ([`Entry::refile`]).
pub const REFILED_TABLE: &str =
    "CREATE TEMP TABLE IF NOT EXISTS server_refiled (premises_id TEXT PRIMARY KEY)";

/// Ops set aside that the writer let through (see `sync::retry_set_aside`), noted in a table
/// of the writer's connection so the append marks them ([`Entry::let_through`]).
pub const LET_THROUGH_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS server_let_through
     (device_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (device_id, seq))";

/// An op the replica took after the log's end, with its filing, to append at its position.
#[derive(Clone, Debug)]
pub struct Taken {
    pub position: i64,
    pub op: Op,
    pub premises_id: Option<String>,
    pub grid_id: Option<String>,
    pub received_ms: i64,
    pub aside: Option<SetAside>,
    pub refile: bool,
    pub let_through: bool,
}

impl Taken {
    pub fn entry(&self) -> Entry<'_> {
        Entry {
            op: &self.op,
            premises_id: self.premises_id.as_deref(),
            grid_id: self.grid_id.as_deref(),
            aside: self.aside.as_ref(),
            received_ms: self.received_ms,
            refile: self.refile,
            let_through: self.let_through,
        }
    }
}

/// The ops the replica took after position `end`, in order, with how each is filed; the
/// premises moved meanwhile are forgotten, their last op marked to re-file them, and so are
/// the ops let through, each marked.
pub fn taken_after(conn: &Connection, end: i64, now_ms: i64) -> Result<Vec<Taken>, PgError> {
    let replica = |e: rusqlite::Error| PgError::Replica(e.into());
    let mut stmt = conn
        .prepare_cached(
            "SELECT o.id, d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind,
                    o.data, s.premises_id, s.grid_id, s.received_ms, a.code, a.message,
                    a.message_en
             FROM ops o JOIN devices d USING (device_no)
             LEFT JOIN server_op_scope s ON s.op_id = o.id
             LEFT JOIN set_aside a ON a.op_id = o.id
             WHERE o.id > ?1 ORDER BY o.id",
        )
        .map_err(replica)?;
    let rows = stmt
        .query_map([end], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                (
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<i64>>(11)?,
                ),
                (
                    r.get::<_, Option<String>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                    r.get::<_, Option<String>>(14)?,
                ),
            ))
        })
        .map_err(replica)?;
    let mut taken = Vec::new();
    for row in rows {
        let (id, device, seq, hlc, author, schema, wall_ms, kind, data, filed, aside) =
            row.map_err(replica)?;
        let body =
            OpBody::decode(&kind, schema, &data).map_err(|e| PgError::Decode(e.to_string()))?;
        let seq = seq as u64;
        taken.push(Taken {
            position: id,
            op: Op {
                device: DeviceId(device),
                seq,
                hlc: Hlc::from_u64(hlc as u64),
                author: UserId(author),
                schema,
                wall_ms,
                body,
            },
            premises_id: filed.0,
            grid_id: filed.1,
            received_ms: filed.2.unwrap_or(now_ms),
            aside: aside.0.map(|code| SetAside {
                seq,
                code,
                message: aside.1.unwrap_or_default(),
                message_en: aside.2.unwrap_or_default(),
            }),
            refile: false,
            let_through: false,
        });
    }
    let moved: HashSet<String> = conn
        .prepare_cached("SELECT premises_id FROM temp.server_refiled")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(replica)?;
    for premises in &moved {
        if let Some(last) = taken
            .iter_mut()
            .rev()
            .find(|t| t.aside.is_none() && t.premises_id.as_deref() == Some(premises.as_str()))
        {
            last.refile = true;
        }
    }
    conn.execute("DELETE FROM temp.server_refiled", [])
        .map_err(replica)?;
    let let_through: HashSet<(String, u64)> = conn
        .prepare_cached("SELECT device_id, seq FROM temp.server_let_through")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(replica)?;
    for t in &mut taken {
        t.let_through = let_through.contains(&(t.op.device.as_str().to_owned(), t.op.seq));
    }
    conn.execute("DELETE FROM temp.server_let_through", [])
        .map_err(replica)?;
    Ok(taken)
}

/// Writes the records that the ops after the projection tables' position changed, as the
/// replica now holds them, to those tables, up to the replica's end. Off the write path: a
/// write commits and answers first, and a follower (told by the append) projects it. The
/// position is shared (any instance may have gone further), and rows carry their position and
/// only move forward, so instances projecting at once do no harm.
pub fn project(client: &mut Client, replica: &xuncha_core::store::Store) -> Result<(), PgError> {
    let end: i64 = replica
        .conn()
        .query_row("SELECT COALESCE(MAX(id), 0) FROM ops", [], |r| r.get(0))
        .map_err(|e| PgError::Replica(e.into()))?;
    let mut done = super::projections::written_to(client)?;
    while done < end {
        let page = super::log::after(client, done, super::follow::PAGE)?;
        let page: Vec<_> = page.into_iter().filter(|l| l.position <= end).collect();
        let Some(last) = page.last().map(|l| l.position) else {
            break;
        };
        let ops: Vec<Op> = page.into_iter().map(|l| l.op).collect();
        let mut tx = client.transaction()?;
        super::projections::write(
            &mut tx,
            replica,
            &super::projections::Touched::by(&ops),
            last,
        )?;
        tx.commit()?;
        done = last;
    }
    Ok(())
}

/// The op's HLC as stored.
fn hlc(op: &Op) -> i64 {
    op.hlc.as_u64() as i64
}
