//! Applying ops to the database: the one path for local changes and for synced batches.
//!
//! A batch is applied in the caller's transaction: every op is validated first, stored in the
//! op log (exact duplicates skipped, a reused `(device, seq)` with other content refused),
//! then its domain change is made. Premises writes are merged within the batch first
//! ([`LwwBatch`]) and hazards are re-folded once per batch, so large pulls stay cheap.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::Hlc;
use crate::error::{Error, Result};
use crate::hazard::{HazardOrigin, HistoryEntry, fold};
use crate::merge::{FieldWrite, LwwBatch};
use crate::model::{DeviceId, HazardId, UserId};
use crate::op::{Op, OpBody, OpKey};
use crate::sync::SetAside;

/// What a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// New ops stored and applied.
    pub applied: usize,
    /// Ops already held (skipped).
    pub duplicates: usize,
    /// New ops kept but not applied (unknown type or newer schema).
    pub deferred: usize,
    /// New ops kept but set aside (refused for their author).
    pub set_aside: usize,
}

/// `ops.applied`: kept, not understood by this version (applied after an upgrade).
const DEFERRED: i64 = 0;
/// `ops.applied`: part of the state.
const APPLIED: i64 = 1;
/// `ops.applied`: kept, but set aside: refused for its author, never part of the state.
pub(crate) const SET_ASIDE: i64 = 2;

/// Maps device ids to their local numbers; cached across batches.
#[derive(Debug, Default)]
pub(crate) struct DeviceNumbers(HashMap<DeviceId, i64>);

impl DeviceNumbers {
    pub(crate) fn get_or_insert(&mut self, tx: &Connection, device: &DeviceId) -> Result<i64> {
        if let Some(n) = self.0.get(device) {
            return Ok(*n);
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT device_no FROM devices WHERE device_id = ?1")?
            .query_row([device.as_str()], |r| r.get(0))
            .optional()?;
        let n = match found {
            Some(n) => n,
            None => {
                tx.prepare_cached("INSERT INTO devices (device_id) VALUES (?1)")?
                    .execute([device.as_str()])?;
                tx.last_insert_rowid()
            }
        };
        self.0.insert(device.clone(), n);
        Ok(n)
    }

    /// Forgets everything: after a rollback, numbers handed out inside it are void.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// The op-log rows a batch added, in batch order: each new op's index in the batch and its row
/// id (the arrival order a server's pull cursor follows). Ops set aside are not among them.
pub type NewRows = Vec<(usize, i64)>;

/// Ops of a batch to keep set aside, by their index in the batch, with the reason.
pub type Aside<'a> = HashMap<usize, &'a SetAside>;

/// Validates, stores and applies `ops` inside `tx`; the ops in `aside` are stored set aside
/// instead of applied (they need not be valid: a refusal may be why). Returns the report, the
/// highest HLC seen and the rows added.
pub(crate) fn apply_batch(
    tx: &Connection,
    devices: &mut DeviceNumbers,
    ops: &[Op],
    aside: &Aside<'_>,
) -> Result<(ApplyReport, Hlc, NewRows)> {
    for (i, op) in ops.iter().enumerate() {
        if !aside.contains_key(&i) {
            op.validate()?;
        }
    }
    let mut report = ApplyReport::default();
    let mut max_hlc = Hlc::default();
    let mut lww = LwwBatch::default();
    let mut touched: BTreeSet<HazardId> = BTreeSet::new();
    let mut data = Vec::with_capacity(256);
    let mut new_rows = NewRows::with_capacity(ops.len());
    let mut insert_op = tx.prepare_cached(
        "INSERT OR IGNORE INTO ops (device_no, seq, hlc, author, schema, wall_ms, kind, data, applied)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (index, op) in ops.iter().enumerate() {
        let set_aside = aside.get(&index);
        if set_aside.is_none() {
            max_hlc = max_hlc.max(op.hlc);
        }
        let device_no = devices.get_or_insert(tx, &op.device)?;
        op.body.encode_data(&mut data)?;
        let data_text = std::str::from_utf8(&data).map_err(|e| Error::Batch(e.to_string()))?;
        let understood = op.is_understood();
        let state = match (set_aside, understood) {
            (Some(_), _) => SET_ASIDE,
            (None, true) => APPLIED,
            (None, false) => DEFERRED,
        };
        let inserted = insert_op.execute(params![
            device_no,
            op.seq as i64,
            op.hlc.as_u64() as i64,
            op.author.as_str(),
            op.schema,
            op.wall_ms,
            op.body.kind(),
            data_text,
            state,
        ])?;
        if inserted == 0 {
            check_duplicate(tx, device_no, op, data_text)?;
            report.duplicates += 1;
            continue;
        }
        let row = tx.last_insert_rowid();
        if let Some(why) = set_aside {
            record_set_aside(tx, row, why)?;
            report.set_aside += 1;
            continue;
        }
        new_rows.push((index, row));
        if !understood {
            report.deferred += 1;
            continue;
        }
        report.applied += 1;
        apply_domain(tx, op, row, &mut lww, &mut touched)?;
    }
    flush_premises(tx, lww)?;
    for id in &touched {
        refold_hazard(tx, id)?;
    }
    Ok((report, max_hlc, new_rows))
}

/// Keeps why an op was set aside.
pub(crate) fn record_set_aside(tx: &Connection, op_id: i64, why: &SetAside) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO set_aside (op_id, code, message, message_en) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (op_id) DO UPDATE SET code = excluded.code, message = excluded.message,
           message_en = excluded.message_en",
    )?
    .execute(params![op_id, why.code, why.message, why.message_en])?;
    Ok(())
}

/// A second copy of a stored op is fine; a different op under the same `(device, seq)` is not.
fn check_duplicate(tx: &Connection, device_no: i64, op: &Op, data: &str) -> Result<()> {
    let same: bool = tx
        .prepare_cached(
            "SELECT hlc = ?3 AND author = ?4 AND schema = ?5 AND wall_ms = ?6 AND kind = ?7 AND data = ?8
             FROM ops WHERE device_no = ?1 AND seq = ?2",
        )?
        .query_row(
            params![device_no, op.seq as i64, op.hlc.as_u64() as i64, op.author.as_str(), op.schema, op.wall_ms, op.body.kind(), data],
            |r| r.get(0),
        )?;
    if same {
        Ok(())
    } else {
        Err(Error::OpConflict {
            device: op.device.clone(),
            seq: op.seq,
        })
    }
}

/// Re-applies ops kept earlier that this build now understands (after an app upgrade).
pub(crate) fn apply_deferred(tx: &Connection, _devices: &mut DeviceNumbers) -> Result<usize> {
    let now_understood: Vec<(i64, Op)> = stored_ops(tx, DEFERRED)?
        .into_iter()
        .filter(|(_, op)| op.is_understood())
        .collect();
    if now_understood.is_empty() {
        return Ok(0);
    }
    for (op_id, _) in &now_understood {
        tx.execute(
            "UPDATE ops SET applied = ?2 WHERE id = ?1",
            [*op_id, APPLIED],
        )?;
    }
    apply_stored(tx, &now_understood)?;
    Ok(now_understood.len())
}

/// Derives the replica's state again from its op log: every applied op, in arrival order.
/// For the rare repairs that take ops back out of the state (ops the server set aside) or put
/// them back; everything else applies ops one batch at a time.
pub(crate) fn rebuild(tx: &Connection) -> Result<()> {
    clear_state(tx)?;
    apply_stored(tx, &stored_ops(tx, APPLIED)?)
}

/// The ops of the log in one `applied` state, in arrival order, with their row ids.
fn stored_ops(tx: &Connection, state: i64) -> Result<Vec<(i64, Op)>> {
    let mut stmt = tx.prepare(
        "SELECT d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data, o.id
         FROM ops o JOIN devices d USING (device_no) WHERE o.applied = ?1 ORDER BY o.id",
    )?;
    let rows = stmt.query_map([state], |r| {
        Ok(super::read_op(r)?.map(|op| (r.get::<_, i64>(8), op)))
    })?;
    let mut ops = Vec::new();
    for row in rows {
        let (id, op) = row??;
        ops.push((id?, op));
    }
    Ok(ops)
}

/// Makes the domain changes of ops already in the log.
fn apply_stored(tx: &Connection, ops: &[(i64, Op)]) -> Result<()> {
    let mut lww = LwwBatch::default();
    let mut touched = BTreeSet::new();
    for (op_id, op) in ops {
        apply_domain(tx, op, *op_id, &mut lww, &mut touched)?;
    }
    flush_premises(tx, lww)?;
    for id in &touched {
        refold_hazard(tx, id)?;
    }
    Ok(())
}

/// Empties the state derived from the op log (the log itself stays).
pub(crate) fn clear_state(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "DELETE FROM premises_fields; DELETE FROM inspections; DELETE FROM hazard_events;
         DELETE FROM hazards; DELETE FROM campaigns;",
    )?;
    Ok(())
}

fn apply_domain<'a>(
    tx: &Connection,
    op: &'a Op,
    op_id: i64,
    lww: &mut LwwBatch<'a>,
    touched: &mut BTreeSet<HazardId>,
) -> Result<()> {
    match &op.body {
        OpBody::PremisesPatch(p) => {
            for (field, value) in &p.fields {
                let write = FieldWrite {
                    hlc: op.hlc,
                    device: &op.device,
                    seq: op.seq,
                    value,
                };
                lww.offer(p.premises_id.as_str(), field, write);
            }
        }
        OpBody::Inspection(i) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO inspections (id, premises_id, root, supersedes, inspector, performed_on, hlc, op_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                i.id.as_str(),
                i.premises_id.as_str(),
                i.root.as_str(),
                i.supersedes.as_ref().map(|s| s.as_str()),
                i.inspector.as_str(),
                i.performed_on.to_string(),
                op.hlc.as_u64() as i64,
                op_id,
            ])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO hazard_events (hazard_id, hlc, device_id, seq, author, wall_ms, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for f in &i.findings {
                let origin = HazardOrigin {
                    finding: f.clone(),
                    inspection_id: i.id.clone(),
                    premises_id: i.premises_id.clone(),
                    found_on: i.performed_on,
                    found_by: i.inspector.clone(),
                };
                insert.execute(params![
                    f.hazard_id.as_str(),
                    op.hlc.as_u64() as i64,
                    op.device.as_str(),
                    op.seq as i64,
                    op.author.as_str(),
                    op.wall_ms,
                    serde_json::to_string(&origin)?,
                ])?;
                touched.insert(f.hazard_id.clone());
            }
        }
        OpBody::HazardEvent(e) => {
            tx.prepare_cached(
                "INSERT INTO hazard_events (hazard_id, hlc, device_id, seq, author, wall_ms, action, geotag, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                e.hazard_id.as_str(),
                op.hlc.as_u64() as i64,
                op.device.as_str(),
                op.seq as i64,
                op.author.as_str(),
                op.wall_ms,
                serde_json::to_string(&e.action)?,
                e.geotag.as_ref().map(serde_json::to_string).transpose()?,
                e.note.as_deref(),
            ])?;
            touched.insert(e.hazard_id.clone());
        }
        // One register per campaign and grid, ordered as premises fields are.
        OpBody::Campaign(c) => {
            tx.prepare_cached(
                "INSERT INTO campaigns (campaign_id, grid_id, data, hlc, device_id, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (campaign_id, grid_id) DO UPDATE SET
                   data = excluded.data, hlc = excluded.hlc, device_id = excluded.device_id,
                   seq = excluded.seq
                 WHERE (excluded.hlc, excluded.device_id, excluded.seq)
                     > (campaigns.hlc, campaigns.device_id, campaigns.seq)",
            )?
            .execute(params![
                c.campaign_id.as_str(),
                c.grid_id,
                serde_json::to_string(c)?,
                op.hlc.as_u64() as i64,
                op.device.as_str(),
                op.seq as i64,
            ])?;
        }
        OpBody::Unknown { .. } => {}
    }
    Ok(())
}

/// Writes each batch winner unless the stored register already holds a later write.
fn flush_premises(tx: &Connection, lww: LwwBatch<'_>) -> Result<()> {
    if lww.is_empty() {
        return Ok(());
    }
    // The WHERE clause is the LWW order of `merge::wins` against the stored register.
    let mut write = tx.prepare_cached(
        "INSERT INTO premises_fields (premises_id, field, value, hlc, device_id, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (premises_id, field) DO UPDATE SET
           value = excluded.value, hlc = excluded.hlc, device_id = excluded.device_id, seq = excluded.seq
         WHERE (excluded.hlc, excluded.device_id, excluded.seq)
             > (premises_fields.hlc, premises_fields.device_id, premises_fields.seq)",
    )?;
    let mut text = Vec::with_capacity(64);
    for ((premises, field), w) in lww.into_writes() {
        text.clear();
        serde_json::to_writer(&mut text, w.value)?;
        write.execute(params![
            premises,
            field,
            std::str::from_utf8(&text).map_err(|e| Error::Batch(e.to_string()))?,
            w.hlc.as_u64() as i64,
            w.device.as_str(),
            w.seq as i64,
        ])?;
    }
    Ok(())
}

/// The events of one hazard as stored: the latest finding (a correction re-finds it) and the rest.
pub(crate) fn load_hazard_events(
    tx: &Connection,
    id: &HazardId,
) -> Result<(Option<HazardOrigin>, Vec<HistoryEntry>)> {
    let mut stmt = tx.prepare_cached(
        "SELECT hlc, device_id, seq, author, wall_ms, origin, action, geotag, note
         FROM hazard_events WHERE hazard_id = ?1",
    )?;
    let mut origins: Vec<(OpKey, HazardOrigin)> = Vec::new();
    let mut entries = Vec::new();
    let mut rows = stmt.query([id.as_str()])?;
    while let Some(r) = rows.next()? {
        let key = OpKey {
            hlc: Hlc::from_u64(r.get::<_, i64>(0)? as u64),
            device: DeviceId(r.get(1)?),
            seq: r.get::<_, i64>(2)? as u64,
        };
        let origin_json: Option<String> = r.get(5)?;
        let action_json: Option<String> = r.get(6)?;
        let geotag_json: Option<String> = r.get(7)?;
        if let Some(o) = origin_json {
            origins.push((key.clone(), serde_json::from_str(&o)?));
        }
        entries.push(HistoryEntry {
            key,
            by: UserId(r.get(3)?),
            at_ms: r.get(4)?,
            action: action_json.map(|a| serde_json::from_str(&a)).transpose()?,
            geotag: geotag_json.map(|g| serde_json::from_str(&g)).transpose()?,
            note: r.get(8)?,
            invalid: false,
        });
    }
    Ok((latest_origin(id, origins), entries))
}

/// The finding a hazard stands on: the latest among the original inspection's and its
/// corrections'. Only findings on the original's premises count: an inspection of another
/// shop that names the original as its root (a forged lineage) cannot move the hazard or
/// close it. Until the original arrives, the latest finding stands; the choice depends only
/// on the set of findings held, so every replica makes the same one.
fn latest_origin(id: &HazardId, origins: Vec<(OpKey, HazardOrigin)>) -> Option<HazardOrigin> {
    let original = origins
        .iter()
        .find(|(_, o)| HazardId::derive(&o.inspection_id, &o.finding.code) == *id)
        .map(|(_, o)| o.premises_id.clone());
    origins
        .into_iter()
        .filter(|(_, o)| original.as_ref().is_none_or(|p| o.premises_id == *p))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, o)| o)
}

fn refold_hazard(tx: &Connection, id: &HazardId) -> Result<()> {
    let (origin, entries) = load_hazard_events(tx, id)?;
    let (state, _) = fold(id, origin.as_ref(), &entries);
    if let Some(h) = state {
        tx.prepare_cached(
            "INSERT INTO hazards (id, premises_id, status, severity, deadline, assignee, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET premises_id = excluded.premises_id, status = excluded.status,
               severity = excluded.severity, deadline = excluded.deadline, assignee = excluded.assignee, state = excluded.state",
        )?
        .execute(params![
            h.id.as_str(),
            h.origin.premises_id.as_str(),
            h.status.as_str(),
            serde_json::to_value(h.origin.finding.severity)?.as_str().unwrap_or_default(),
            h.deadline.map(|d| d.to_string()),
            h.assignee.as_str(),
            serde_json::to_string(&h)?,
        ])?;
    }
    Ok(())
}
