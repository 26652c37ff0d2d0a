//! Copying a SQLite server's op log into an empty shared log on PostgreSQL: the first half of
//! moving a district onto PostgreSQL (issue #20's `migrate-to-postgres`; accounts and the
//! other server tables follow once they live in PostgreSQL too).
//!
//! Ops keep their arrival order (the SQLite log's row order), their scope (the pull index's
//! premises and grid, and when the server received them) and, for ops set aside, the reason.
//! Positions and the chain are the new log's own, and the log has a new identity, so phones
//! pull again from the start, as after a restore. Replicas following the copy derive the same
//! state the SQLite server holds (same digest).

use rusqlite::Connection;
use xuncha_core::clock::Hlc;
use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::op::{Op, OpBody};
use xuncha_core::sync::SetAside;

use super::log::{self, Entry};
use super::{Client, PgError};

/// Ops copied per transaction.
const PAGE: i64 = 2_000;

/// What a copy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Ops copied.
    pub ops: usize,
    /// Of them, ops set aside.
    pub set_aside: usize,
    /// The end of the new log.
    pub end: i64,
}

/// One op of the SQLite log with what the server kept beside it.
struct Row {
    op: Op,
    premises_id: Option<String>,
    grid_id: Option<String>,
    received_ms: i64,
    aside: Option<SetAside>,
}

/// Copies the whole op log of the SQLite server database `source` into the shared log, which
/// must be empty (a second copy would double every op's position).
pub fn log_from_sqlite(source: &Connection, client: &mut Client) -> Result<Copied, PgError> {
    let (end, _) = log::end(client)?;
    if end > 0 {
        return Err(PgError::LogNotEmpty { end });
    }
    let mut copied = Copied::default();
    let mut after = 0i64;
    loop {
        let (rows, last) = page(source, after).map_err(|e| PgError::Replica(e.into()))?;
        let Some(last) = last else { break };
        after = last;
        let entries: Vec<Entry<'_>> = rows
            .iter()
            .map(|r| Entry {
                op: &r.op,
                premises_id: r.premises_id.as_deref(),
                grid_id: r.grid_id.as_deref(),
                aside: r.aside.as_ref(),
            })
            .collect();
        // Received times differ per op: grouped by time, appended in order in one transaction.
        let mut tx = client.transaction()?;
        let mut start = 0;
        while start < rows.len() {
            let at = rows[start].received_ms;
            let len = rows[start..]
                .iter()
                .take_while(|r| r.received_ms == at)
                .count();
            let appended = log::append_in(&mut tx, &entries[start..start + len], at)?;
            copied.ops += appended.positions.iter().flatten().count();
            copied.end = appended.end;
            start += len;
        }
        tx.commit()?;
        copied.set_aside += rows.iter().filter(|r| r.aside.is_some()).count();
    }
    Ok(copied)
}

/// The ops after row `after`, at most [`PAGE`], and the last row id read.
fn page(source: &Connection, after: i64) -> rusqlite::Result<(Vec<Row>, Option<i64>)> {
    let mut stmt = source.prepare_cached(
        "SELECT o.id, d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data,
                s.premises_id, s.grid_id, COALESCE(s.received_ms, o.wall_ms),
                a.code, a.message, a.message_en
         FROM ops o JOIN devices d USING (device_no)
              LEFT JOIN server_op_scope s ON s.op_id = o.id
              LEFT JOIN set_aside a ON a.op_id = o.id
         WHERE o.id > ?1 ORDER BY o.id LIMIT ?2",
    )?;
    let mut rows = Vec::new();
    let mut last = None;
    let mut query = stmt.query(rusqlite::params![after, PAGE])?;
    while let Some(r) = query.next()? {
        last = Some(r.get::<_, i64>(0)?);
        let kind: String = r.get(7)?;
        let schema: u32 = r.get(5)?;
        let data: String = r.get(8)?;
        let body = OpBody::decode(&kind, schema, &data).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
        })?;
        let seq = r.get::<_, i64>(2)? as u64;
        let aside = match r.get::<_, Option<String>>(12)? {
            Some(code) => Some(SetAside {
                seq,
                code,
                message: r.get(13)?,
                message_en: r.get(14)?,
            }),
            None => None,
        };
        rows.push(Row {
            op: Op {
                device: DeviceId(r.get(1)?),
                seq,
                hlc: Hlc::from_u64(r.get::<_, i64>(3)? as u64),
                author: UserId(r.get(4)?),
                schema,
                wall_ms: r.get(6)?,
                body,
            },
            premises_id: r.get(9)?,
            grid_id: r.get(10)?,
            received_ms: r.get(11)?,
            aside,
        });
    }
    Ok((rows, last))
}
