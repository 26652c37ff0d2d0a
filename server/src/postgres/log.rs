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
//! the same `(device, seq)` is refused, as the core's store does on one machine. An append is a
//! fixed number of statements whatever the batch size (lock, end, held, insert, notify).

use std::collections::HashMap;
use std::time::Duration;

use postgres::GenericClient;
use postgres::fallible_iterator::FallibleIterator;
use xuncha_core::clock::Hlc;
use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::op::{Op, OpBody};

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
}

/// Appends `entries` in a transaction of its own and commits.
pub fn append(
    client: &mut Client,
    entries: &[Entry<'_>],
    received_ms: i64,
) -> Result<Appended, PgError> {
    let mut tx = client.transaction()?;
    let appended = append_in(&mut tx, entries, received_ms)?;
    tx.commit()?;
    Ok(appended)
}

/// Appends `entries` inside the caller's transaction (which may write what the ops imply in
/// the same commit). Holds the log's lock until that transaction ends: keep it short.
pub fn append_in(
    tx: &mut Transaction<'_>,
    entries: &[Entry<'_>],
    received_ms: i64,
) -> Result<Appended, PgError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_SPACE, &LOCK_LOG_APPEND],
    )?;
    let (mut end, mut chain) = tail(tx)?;
    let held = held(tx, entries)?;

    let mut positions = Vec::with_capacity(entries.len());
    // Ops new in this batch, by (device, seq): a batch may carry the same op twice.
    let mut fresh: HashMap<(&str, u64), &Op> = HashMap::new();
    let mut rows = Rows::default();
    for entry in entries {
        let op = entry.op;
        let key = (op.device.as_str(), op.seq);
        let data = encode(op)?;
        if let Some(stored) = held.get(&(op.device.as_str().to_owned(), op.seq)) {
            same_or_conflict(stored == &Stored::of(op, &data), op)?;
            positions.push(None);
            continue;
        }
        if let Some(earlier) = fresh.get(&key) {
            same_or_conflict(*earlier == op, op)?;
            positions.push(None);
            continue;
        }
        fresh.insert(key, op);
        end += 1;
        chain = crate::db::chain_next(&chain, op.device.as_str(), op.seq as i64, hlc(op));
        rows.push(end, entry, data, chain.clone());
        positions.push(Some(end));
    }
    if !rows.position.is_empty() {
        tx.execute(
            "INSERT INTO ops (position, device_id, seq, hlc, author, schema, wall_ms, kind, data,
                              received_ms, premises_id, grid_id, chain)
             SELECT p, d, s, h, a, sc, w, k, da, $10, pr, g, c
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[],
                         $6::int[], $7::bigint[], $8::text[], $9::text[], $11::text[],
                         $12::text[], $13::bytea[])
                  AS t (p, d, s, h, a, sc, w, k, da, pr, g, c)",
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
                &received_ms,
                &rows.premises_id,
                &rows.grid_id,
                &rows.chain,
            ],
        )?;
        // Delivered to listeners when (and only if) the transaction commits.
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &end.to_string()])?;
    }
    Ok(Appended { positions, end })
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
                    received_ms, premises_id, grid_id, chain
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
            Ok(Logged {
                position: r.get(0),
                op: Op {
                    device: DeviceId(r.get(1)),
                    seq: r.get::<_, i64>(2) as u64,
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
            })
        })
        .collect()
}

/// The end of the log and the chain value there, hex (as a phone keeps it beside its cursor).
pub fn end(client: &mut impl GenericClient) -> Result<(i64, Option<String>), PgError> {
    let (end, chain) = tail(client)?;
    Ok((end, (end > 0).then(|| hex::encode(chain))))
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

/// What the log holds under the `(device, seq)` of `entries`, by that key.
fn held(
    tx: &mut Transaction<'_>,
    entries: &[Entry<'_>],
) -> Result<HashMap<(String, u64), Stored>, PgError> {
    let devices: Vec<&str> = entries.iter().map(|e| e.op.device.as_str()).collect();
    let seqs: Vec<i64> = entries.iter().map(|e| e.op.seq as i64).collect();
    let rows = tx.query(
        "SELECT o.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data
         FROM ops o JOIN unnest($1::text[], $2::bigint[]) AS k (d, s)
           ON o.device_id = k.d AND o.seq = k.s",
        &[&devices, &seqs],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                (r.get(0), r.get::<_, i64>(1) as u64),
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
    premises_id: Vec<Option<&'a str>>,
    grid_id: Vec<Option<&'a str>>,
    chain: Vec<Vec<u8>>,
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
        self.premises_id.push(entry.premises_id);
        self.grid_id.push(entry.grid_id);
        self.chain.push(chain);
    }
}

/// The op's HLC as stored (the SQLite replica keeps it the same way).
fn hlc(op: &Op) -> i64 {
    op.hlc.as_u64() as i64
}
