//! An instance's replica following the shared log.
//!
//! Each instance keeps the core's replica (the SQLite store the dashboard, the map index and
//! the jobs read) and brings it up to the log's end by applying the ops after its position, in
//! log order, through the core's own apply: the merge rules and the hazard fold stay in one
//! place, and every replica that has applied the same prefix holds the same state. Ops the
//! pushing instance set aside are kept set aside here too, until the log lets them through
//! (further on, where every replica moves them).
//!
//! The position is written in the transaction that applies its ops, so a replica killed midway
//! resumes where its last commit left it; and applying is idempotent (ops held are skipped), so
//! even a position behind the ops costs only the re-reading.

use std::borrow::Cow;
use std::collections::HashSet;

use postgres::GenericClient;
use rusqlite::{Connection, OptionalExtension};
use xuncha_core::op::Op;
use xuncha_core::store::{Aside, NewRows, Store};

use super::PgError;
use super::log;

/// Ops applied per transaction while catching up.
pub const PAGE: i64 = 500;

/// Whether a follower also writes what its pages changed to the projection tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projections {
    Write,
    Leave,
}

/// Brings `replica` up to the end of the shared log (as far as this moment's snapshot sees),
/// `page` ops per transaction, and with [`Projections::Write`] writes the records each page
/// changed, as the replica then holds them, to the projection tables. Returns the position
/// reached.
pub fn catch_up(
    client: &mut impl GenericClient,
    replica: &mut Store,
    page: i64,
    projections: Projections,
) -> Result<i64, PgError> {
    let log_id = log::id(client)?;
    catch_up_with(
        client,
        &log_id,
        replica,
        page,
        projections,
        |_, _, _| Ok(()),
    )
}

/// [`catch_up`] on the log `log_id` (the database's: [`log::id`]), running `also` in each
/// page's transaction with the page and the rows the replica added for it (a server files
/// them for pulls there).
pub fn catch_up_with(
    client: &mut impl GenericClient,
    log_id: &str,
    replica: &mut Store,
    page: i64,
    projections: Projections,
    mut also: impl FnMut(&Connection, &[log::Logged], &NewRows) -> xuncha_core::Result<()>,
) -> Result<i64, PgError> {
    let mut position = position(replica.conn(), log_id)?;
    loop {
        let logged = log::after(client, position, page)?;
        if logged.is_empty() {
            return Ok(position);
        }
        // Ops let through move from their place earlier in the log (set aside) to here; the
        // others are applied as they came.
        for run in logged.chunk_by(|a, b| a.let_through == b.let_through) {
            let last = run[run.len() - 1].position;
            let let_through = run[0].let_through;
            let run = if let_through {
                Cow::Owned(still_set_aside(replica, run)?)
            } else {
                Cow::Borrowed(run)
            };
            let ops: Vec<Op> = run.iter().map(|l| l.op.clone()).collect();
            let also_here = |conn: &Connection, new_rows: &NewRows| {
                also(conn, &run, new_rows)?;
                record(conn, log_id, last).map_err(xuncha_core::Error::from)
            };
            if let_through {
                replica.let_through(&ops, also_here)
            } else {
                let aside: Aside<'_> = run
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| l.aside.as_ref().map(|a| (i, a)))
                    .collect();
                replica.apply_ops_setting_aside(&ops, &aside, also_here)
            }
            .map_err(PgError::Replica)?;
            position = last;
            if projections == Projections::Write {
                let touched = super::projections::Touched::by(&ops);
                if !touched.is_empty() {
                    let mut tx = client.transaction()?;
                    super::projections::write(&mut tx, replica, &touched, position)?;
                    tx.commit()?;
                }
            }
        }
    }
}

/// The ops of `run` (let through) that `replica` still holds set aside: from a position
/// behind what it applied, those it moved already are not moved twice.
fn still_set_aside(replica: &Store, run: &[log::Logged]) -> Result<Vec<log::Logged>, PgError> {
    let aside: HashSet<(String, u64)> = replica
        .set_aside_ops()
        .map_err(PgError::Replica)?
        .into_iter()
        .map(|(op, _)| (op.device.0, op.seq))
        .collect();
    Ok(run
        .iter()
        .filter(|l| aside.contains(&(l.op.device.as_str().to_owned(), l.op.seq)))
        .cloned()
        .collect())
}

/// The position `replica` has applied up to in the log `log_id` (0: none yet). A replica that
/// followed another database's log is refused: its positions mean nothing here.
pub fn position(replica: &Connection, log_id: &str) -> Result<i64, PgError> {
    let stored: Option<(String, i64)> = replica
        .query_row("SELECT log_id, position FROM server_log_follow", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(|e| PgError::Replica(e.into()))?;
    match stored {
        None => Ok(0),
        Some((id, position)) if id == log_id => Ok(position),
        Some((id, _)) => Err(PgError::OtherLog {
            followed: id,
            here: log_id.to_owned(),
        }),
    }
}

/// Records the position `replica` has applied up to in the log `log_id`.
pub fn record(conn: &Connection, log_id: &str, position: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM server_log_follow", [])?;
    conn.execute(
        "INSERT INTO server_log_follow (log_id, position) VALUES (?1, ?2)",
        rusqlite::params![log_id, position],
    )?;
    Ok(())
}
