//! The op log several instances share, in the order phones pull it.
//!
//! The pull cursor is an op's position in the log. With several writers a sequence number
//! taken at insert can commit after a higher one: a phone that pulled past the higher one
//! would never see the lower. Here an append takes a transaction-scoped advisory lock before
//! it numbers its ops (`end + 1`, ...), so appends are serialised and positions commit in the
//! order they are given: what a reader sees is always a prefix of the log. (Under READ
//! COMMITTED, the default, the statement after the lock sees the previous append's commit.)
//!
//! Appends are idempotent by `(device, seq)`: an op held already is skipped, another op under
//! the same `(device, seq)` is refused, as the core's store does on one machine. (An op let
//! through after being set aside is held a second time, marked: see [`Entry::let_through`].)
//! An append is a fixed number of statements whatever the batch size (lock, end, held, insert,
//! notify).

use std::collections::HashMap;
use std::time::Duration;

use postgres::GenericClient;
use postgres::fallible_iterator::FallibleIterator;
use xuncha_core::clock::Hlc;
use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::op::{Op, OpBody};
use xuncha_core::sync::SetAside;

use super::{Client, LOCK_LOG_APPEND, LOCK_SPACE, PgError, Transaction};

/// The channel an append notifies (with the new end) when it commits.
pub const CHANNEL: &str = "xuncha_log";

/// An op to append and where it is filed for pulls.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub op: &'a Op,
    /// The premises the op is about.
    pub premises_id: Option<&'a str>,
    /// The grid it is filed under (`None`: only admins see it).
    pub grid_id: Option<&'a str>,
    /// Set aside rather than applied, and why.
    pub aside: Option<&'a SetAside>,
    /// When the server received it (ms): the push's time, or the original server's for ops
    /// copied from one.
    pub received_ms: i64,
    /// It moved its premises to `grid_id`: every op of the premises is filed there from now.
    pub refile: bool,
    /// An op held set aside earlier in the log, let through: every replica moves it here.
    pub let_through: bool,
}

/// What an append did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// For each entry, its new position, or `None` when the log held it already.
    pub positions: Vec<Option<i64>>,
    /// The end of the log after the append.
    pub end: i64,
}

/// An op as the log holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Logged {
    pub position: i64,
    pub op: Op,
    pub premises_id: Option<String>,
    pub grid_id: Option<String>,
    pub received_ms: i64,
    /// The chain value at this position (see `db::cursor_check`).
    pub chain: Vec<u8>,
    /// Set aside rather than applied, and why.
    pub aside: Option<SetAside>,
    /// See [`Entry::refile`].
    pub refile: bool,
    /// See [`Entry::let_through`].
    pub let_through: bool,
}

/// Appends `entries` in a transaction of its own and commits.
pub fn append(client: &mut Client, entries: &[Entry<'_>]) -> Result<Appended, PgError> {
    let mut tx = client.transaction()?;
    let appended = append_in(&mut tx, entries)?;
    tx.commit()?;
    Ok(appended)
}

/// Appends `entries` inside the caller's transaction (which may write what the ops imply in
/// the same commit). Holds the log's lock until that transaction ends: keep it short.
pub fn append_in(tx: &mut Transaction<'_>, entries: &[Entry<'_>]) -> Result<Appended, PgError> {
    append_group_in(tx, &[entries])?
        .pop()
        .unwrap_or_else(|| Ok(Appended::default()))
}

/// Takes the log's lock for the rest of the transaction: appends by others wait, and what
/// is read of the log meanwhile is all there will be before this transaction's own appends.
pub fn lock(tx: &mut Transaction<'_>) -> Result<(), PgError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_SPACE, &LOCK_LOG_APPEND],
    )?;
    Ok(())
}

/// Takes the log's lock for the rest of the transaction if no one holds it (or waits for it);
/// else returns false at once.
pub fn try_lock(tx: &mut Transaction<'_>) -> Result<bool, PgError> {
    Ok(tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1, $2)",
            &[&LOCK_SPACE, &LOCK_LOG_APPEND],
        )?
        .get(0))
}

/// Waits until whoever holds the log's lock now lets it go (its append committed or undone),
/// without queueing for the lock: a shared hold, taken and given back in a transaction of its
/// own.
pub fn wait_for_writer(client: &mut Client) -> Result<(), PgError> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock_shared($1, $2)",
        &[&LOCK_SPACE, &LOCK_LOG_APPEND],
    )?;
    tx.commit()?;
    Ok(())
}

/// Appends several pushes at once (the pushes that arrived together: one lock, one insert,
/// one commit for all), each all or nothing: a push carrying another op under a held
/// `(device, seq)` is refused alone, and nothing of it is stored. Returns each push's outcome
/// in order; the error of the whole is the database's.
pub fn append_group_in(
    tx: &mut Transaction<'_>,
    pushes: &[&[Entry<'_>]],
) -> Result<Vec<Result<Appended, PgError>>, PgError> {
    lock(tx)?;
    let (mut end, mut chain) = tail(tx)?;
    let held = held(tx, pushes.iter().flat_map(|p| p.iter()))?;

    // Ops new in this group, by (device, seq, let through): a push may carry an op twice, or
    // one an earlier push of the group carried.
    let mut fresh: HashMap<Key<'_>, &Op> = HashMap::new();
    let mut rows = Rows::default();
    let mut outcomes = Vec::with_capacity(pushes.len());
    for push in pushes {
        let staged = match stage(push, &held, &fresh) {
            Ok(staged) => staged,
            Err(refused) => {
                outcomes.push(Err(refused));
                continue;
            }
        };
        let mut positions = Vec::with_capacity(push.len());
        for (entry, data) in push.iter().zip(staged) {
            let Some(data) = data else {
                positions.push(None);
                continue;
            };
            let op = entry.op;
            fresh.insert(key(entry), op);
            end += 1;
            chain = crate::db::chain_next(&chain, op.device.as_str(), op.seq as i64, hlc(op));
            rows.push(end, entry, data, chain.clone());
            positions.push(Some(end));
        }
        outcomes.push(Ok(Appended { positions, end }));
    }
    if !rows.position.is_empty() {
        tx.execute(
            "INSERT INTO ops (position, device_id, seq, hlc, author, schema, wall_ms, kind, data,
                              received_ms, premises_id, grid_id, chain, aside_code,
                              aside_message, aside_message_en, refile, let_through)
             SELECT p, d, s, h, a, sc, w, k, da, r, pr, g, c, ac, am, ae, rf, lt
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[],
                         $6::int[], $7::bigint[], $8::text[], $9::text[], $10::bigint[],
                         $11::text[], $12::text[], $13::bytea[], $14::text[], $15::text[],
                         $16::text[], $17::bool[], $18::bool[])
                  AS t (p, d, s, h, a, sc, w, k, da, r, pr, g, c, ac, am, ae, rf, lt)",
            &[
                &rows.position,
                &rows.device,
                &rows.seq,
                &rows.hlc,
                &rows.author,
                &rows.schema,
                &rows.wall_ms,
                &rows.kind,
                &rows.data,
                &rows.received_ms,
                &rows.premises_id,
                &rows.grid_id,
                &rows.chain,
                &rows.aside_code,
                &rows.aside_message,
                &rows.aside_message_en,
                &rows.refile,
                &rows.let_through,
            ],
        )?;
        // Delivered to listeners when (and only if) the transaction commits.
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &end.to_string()])?;
    }
    Ok(outcomes)
}

/// Checks a push against what is held and what the group adds: for each entry, its encoded
/// body when it is new, `None` when it is held already (the same op sent again). Another op
/// under a held `(device, seq)` refuses the push.
fn stage<'a>(
    push: &[Entry<'a>],
    held: &HashMap<(String, u64, bool), Stored>,
    fresh: &HashMap<Key<'a>, &Op>,
) -> Result<Vec<Option<String>>, PgError> {
    let mut own: HashMap<Key<'a>, &Op> = HashMap::new();
    let mut staged = Vec::with_capacity(push.len());
    for entry in push {
        let op = entry.op;
        let key = key(entry);
        let data = encode(op)?;
        let held_key = (op.device.as_str().to_owned(), op.seq, entry.let_through);
        if let Some(stored) = held.get(&held_key) {
            same_or_conflict(stored == &Stored::of(op, &data), op)?;
            staged.push(None);
        } else if let Some(earlier) = fresh.get(&key).or_else(|| own.get(&key)) {
            same_or_conflict(*earlier == op, op)?;
            staged.push(None);
        } else {
            own.insert(key, op);
            staged.push(Some(data));
        }
    }
    Ok(staged)
}

/// How an entry is told apart from the others: its op's `(device, seq)`, and whether it is
/// the op let through.
type Key<'a> = (&'a str, u64, bool);

fn key<'a>(entry: &Entry<'a>) -> Key<'a> {
    (entry.op.device.as_str(), entry.op.seq, entry.let_through)
}

/// The ops after `position`, in log order, at most `limit`.
pub fn after(
    client: &mut impl GenericClient,
    position: i64,
    limit: i64,
) -> Result<Vec<Logged>, PgError> {
    client
        .query(
            "SELECT position, device_id, seq, hlc, author, schema, wall_ms, kind, data,
                    received_ms, premises_id, grid_id, chain, aside_code, aside_message,
                    aside_message_en, refile, let_through
             FROM ops WHERE position > $1 ORDER BY position LIMIT $2",
            &[&position, &limit],
        )?
        .iter()
        .map(|r| {
            let kind: String = r.get(7);
            let schema = r.get::<_, i32>(5) as u32;
            let data: String = r.get(8);
            let body =
                OpBody::decode(&kind, schema, &data).map_err(|e| PgError::Decode(e.to_string()))?;
            let seq = r.get::<_, i64>(2) as u64;
            let aside = r.get::<_, Option<String>>(13).map(|code| SetAside {
                seq,
                code,
                message: r.get::<_, Option<String>>(14).unwrap_or_default(),
                message_en: r.get::<_, Option<String>>(15).unwrap_or_default(),
            });
            Ok(Logged {
                position: r.get(0),
                op: Op {
                    device: DeviceId(r.get(1)),
                    seq,
                    hlc: Hlc::from_u64(r.get::<_, i64>(3) as u64),
                    author: UserId(r.get(4)),
                    schema,
                    wall_ms: r.get(6),
                    body,
                },
                received_ms: r.get(9),
                premises_id: r.get(10),
                grid_id: r.get(11),
                chain: r.get(12),
                aside,
                refile: r.get(16),
                let_through: r.get(17),
            })
        })
        .collect()
}

/// The end of the log and the chain value there, hex (as a phone keeps it beside its cursor).
pub fn end(client: &mut impl GenericClient) -> Result<(i64, Option<String>), PgError> {
    let (end, chain) = tail(client)?;
    Ok((end, (end > 0).then(|| hex::encode(chain))))
}

/// The log's identity (made when the database was created).
pub fn id(client: &mut impl GenericClient) -> Result<String, PgError> {
    Ok(client
        .query_one("SELECT value FROM server_meta WHERE key = 'log_id'", &[])?
        .get(0))
}

/// Starts listening for appends on this session (see [`wait_for_append`]).
pub fn listen(client: &mut Client) -> Result<(), PgError> {
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(())
}

/// Waits up to `timeout` for an append by any instance; returns the highest end announced,
/// `None` when nothing was. A follower still reads the log from its own position (a missed
/// notification costs a poll interval, never an op).
pub fn wait_for_append(client: &mut Client, timeout: Duration) -> Result<Option<i64>, PgError> {
    let mut notifications = client.notifications();
    let first = notifications.timeout_iter(timeout).next()?;
    let Some(first) = first else {
        return Ok(None);
    };
    // Whatever else has arrived meanwhile, without waiting again.
    let mut announced = vec![first];
    announced.extend(notifications.iter().collect::<Vec<_>>()?);
    Ok(announced
        .iter()
        .filter(|n| n.channel() == CHANNEL)
        .filter_map(|n| n.payload().parse::<i64>().ok())
        .max())
}

/// The last position and its chain value (0 and empty for an empty log).
fn tail(client: &mut impl GenericClient) -> Result<(i64, Vec<u8>), PgError> {
    Ok(client
        .query_opt(
            "SELECT position, chain FROM ops ORDER BY position DESC LIMIT 1",
            &[],
        )?
        .map(|r| (r.get(0), r.get(1)))
        .unwrap_or_default())
}

/// What the log holds under the `(device, seq)` of `entries`, by that key and whether it is
/// the op let through.
fn held<'a>(
    tx: &mut Transaction<'_>,
    entries: impl Iterator<Item = &'a Entry<'a>>,
) -> Result<HashMap<(String, u64, bool), Stored>, PgError> {
    let (devices, seqs): (Vec<&str>, Vec<i64>) = entries
        .map(|e| (e.op.device.as_str(), e.op.seq as i64))
        .unzip();
    let rows = tx.query(
        // One index probe per key (`OFFSET 0` keeps the planner from turning it into a join
        // that sorts the whole log, as it does while the log's statistics are young).
        "SELECT o.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data,
                o.let_through
         FROM unnest($1::text[], $2::bigint[]) AS k (d, s)
         CROSS JOIN LATERAL (SELECT * FROM ops WHERE device_id = k.d AND seq = k.s OFFSET 0) o",
        &[&devices, &seqs],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                (r.get(0), r.get::<_, i64>(1) as u64, r.get(8)),
                Stored {
                    hlc: r.get(2),
                    author: r.get(3),
                    schema: r.get(4),
                    wall_ms: r.get(5),
                    kind: r.get(6),
                    data: r.get(7),
                },
            )
        })
        .collect())
}

/// The content of a stored op that must match when it is sent again.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    hlc: i64,
    author: String,
    schema: i32,
    wall_ms: i64,
    kind: String,
    data: String,
}

impl Stored {
    fn of(op: &Op, data: &str) -> Stored {
        Stored {
            hlc: hlc(op),
            author: op.author.as_str().to_owned(),
            schema: op.schema as i32,
            wall_ms: op.wall_ms,
            kind: op.body.kind().to_owned(),
            data: data.to_owned(),
        }
    }
}

fn same_or_conflict(same: bool, op: &Op) -> Result<(), PgError> {
    if same {
        Ok(())
    } else {
        Err(PgError::OpConflict {
            device: op.device.as_str().to_owned(),
            seq: op.seq,
        })
    }
}

/// The op's body as the core encodes it.
fn encode(op: &Op) -> Result<String, PgError> {
    let mut data = Vec::with_capacity(256);
    op.body
        .encode_data(&mut data)
        .map_err(|e| PgError::Decode(e.to_string()))?;
    String::from_utf8(data).map_err(|e| PgError::Decode(e.to_string()))
}

/// The columns of the rows an append inserts, as arrays (one statement for the batch).
#[derive(Default)]
struct Rows<'a> {
    position: Vec<i64>,
    device: Vec<&'a str>,
    seq: Vec<i64>,
    hlc: Vec<i64>,
    author: Vec<&'a str>,
    schema: Vec<i32>,
    wall_ms: Vec<i64>,
    kind: Vec<&'a str>,
    data: Vec<String>,
    received_ms: Vec<i64>,
    premises_id: Vec<Option<&'a str>>,
    grid_id: Vec<Option<&'a str>>,
    chain: Vec<Vec<u8>>,
    aside_code: Vec<Option<&'a str>>,
    aside_message: Vec<Option<&'a str>>,
    aside_message_en: Vec<Option<&'a str>>,
    refile: Vec<bool>,
    let_through: Vec<bool>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, position: i64, entry: &Entry<'a>, data: String, chain: Vec<u8>) {
        let op = entry.op;
        self.position.push(position);
        self.device.push(op.device.as_str());
        self.seq.push(op.seq as i64);
        self.hlc.push(hlc(op));
        self.author.push(op.author.as_str());
        self.schema.push(op.schema as i32);
        self.wall_ms.push(op.wall_ms);
        self.kind.push(op.body.kind());
        self.data.push(data);
        self.received_ms.push(entry.received_ms);
        self.premises_id.push(entry.premises_id);
        self.grid_id.push(entry.grid_id);
        self.chain.push(chain);
        let aside = entry.aside;
        self.aside_code.push(aside.map(|a| a.code.as_str()));
        self.aside_message.push(aside.map(|a| a.message.as_str()));
        self.aside_message_en
            .push(aside.map(|a| a.message_en.as_str()));
        self.refile.push(entry.refile);
        self.let_through.push(entry.let_through);
    }
}

/// The op's HLC as stored (the SQLite replica keeps it the same way).
fn hlc(op: &Op) -> i64 {
    op.hlc.as_u64() as i64
}
