//! `POST /v1/sync/push` and `GET /v1/sync/pull`: the server side of the sync protocol
//! (see [`xuncha_core::sync`]).
//!
//! A push is checked as a whole before anything is stored: every op must be the caller's
//! device's and user's, valid, in seq order without gaps, and touch only premises of the
//! caller's grids. Then, in one transaction, the new ops are stored and applied with the same
//! core merge rules the phones use, ops stamped too far ahead are quarantined instead, and the
//! pull index is updated. A rejected batch leaves nothing behind.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use xuncha_core::clock::Hlc;
use xuncha_core::hazard::HazardAction;
use xuncha_core::model::{DeviceId, HazardId, Inspection, InspectionId, PremisesId};
use xuncha_core::op::{Op, OpBody, OpKey};
use xuncha_core::store::{Aside, Store};
use xuncha_core::sync::{
    DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT, OwnOpsResponse, PullResponse, PushRequest, PushResponse,
    RawOp, Role, SetAside,
};

use crate::accounts::{Caller, Scope, scope_of};
use crate::error::ApiError;
use crate::quarantine_tables::{Held, QuarantineTables};
use crate::tables::{ServerTables, SqliteTables, Writer};
use crate::{AppState, body, db};

/// `POST /v1/sync/push`.
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Unpacking and parsing a large batch takes milliseconds: off the async runtime, and
    // outside the writer's lock so other pushes parse meanwhile.
    let limit = state.config.max_body_bytes;
    let head = headers.clone();
    let request: PushRequest = tokio::task::spawn_blocking(move || {
        let json = body::read(&head, raw, limit)?;
        body::parse(&json)
    })
    .await
    .map_err(ApiError::internal)??;
    let bound = state.config.max_clock_ahead_ms;
    let now = state.now_ms();
    let (outcome, request) = state
        .write_grouped(move |w| {
            let outcome = push_batch(w, &caller, &request.ops, request.pulled_to, now, bound)?;
            // Freed after the writer is released, not while others wait for it, and off the
            // async runtime (a thousand ops take a fraction of a millisecond to free).
            Ok((outcome, request))
        })
        .await?;
    tokio::task::spawn_blocking(move || drop(request));
    if outcome.moved_premises {
        state.forget_tokens();
    }
    let r = &outcome.response;
    state
        .metrics
        .pushed(r.applied, r.duplicates, r.deferred, r.quarantined);
    let mut answer = outcome.response;
    answer.server_hlc = state.observe_hlc(answer.server_hlc);
    Ok(body::json(&headers, StatusCode::OK, &answer))
}

/// Checks and stores one pushed batch (see the module docs). Blocking.
/// `pulled_to`: the phone's pull cursor, as [`PushRequest::pulled_to`].
pub fn push_batch(
    w: &mut Writer<'_>,
    caller: &Caller,
    ops: &[Op],
    pulled_to: Option<u64>,
    now_ms: i64,
    max_ahead_ms: i64,
) -> Result<PushOutcome, ApiError> {
    for (i, op) in ops.iter().enumerate() {
        let at = serde_json::json!({ "index": i, "device": op.device, "seq": op.seq });
        if op.device != caller.device {
            return Err(ApiError::forbidden(
                "wrong_device",
                "只能上传本设备产生的记录",
                format!(
                    "op {i} is from device {}, but the token is for {}",
                    op.device, caller.device
                ),
            )
            .with_detail(at));
        }
        if op.author != caller.user {
            return Err(ApiError::forbidden(
                "wrong_author",
                "记录的作者与登录用户不一致",
                format!(
                    "op {i} is authored by {}, but the token is for {}",
                    op.author, caller.user
                ),
            )
            .with_detail(at));
        }
        op.validate()
            .map_err(|e| ApiError::from(e).with_detail(at.clone()))?;
        if i > 0 && op.seq != ops[i - 1].seq + 1 {
            return Err(ApiError::invalid(
                "not_in_order",
                "记录须按序号连续排列",
                format!(
                    "op {i} has seq {} after seq {}; send ops in seq order without gaps",
                    op.seq,
                    ops[i - 1].seq
                ),
            )
            .with_detail(at));
        }
    }

    let shared = w.shared();
    let tables = w.tables();
    let quarantined_max = quarantined_max_seq(tables, caller)?;
    let held_before = tables.held_count(caller.device.as_str())?;
    let stored_max = w.replica().max_seq(&caller.device)?.max(quarantined_max);
    let conn = w.replica().conn();
    let first_new = ops.iter().position(|op| op.seq > stored_max);
    if let Some(i) = first_new
        && ops[i].seq != stored_max + 1
    {
        return Err(ApiError::invalid(
            "seq_gap",
            "记录序号不连续，请从服务器确认的序号之后重新上传",
            format!(
                "op seq {} leaves a gap: the server holds this device's ops up to {stored_max}",
                ops[i].seq
            ),
        )
        .with_detail(serde_json::json!({ "acked_seq": stored_max })));
    }
    let (old, new) = ops.split_at(first_new.unwrap_or(ops.len()));

    // Copies of ops already held: those in quarantine are compared here, the rest by the store.
    let mut old_to_apply: Vec<&Op> = Vec::with_capacity(old.len());
    let mut quarantined_copies = 0;
    for op in old {
        match quarantined_op(tables, caller, op.seq)? {
            Some(stored) if stored == op_json(op)? => quarantined_copies += 1,
            Some(_) => {
                return Err(ApiError::from(xuncha_core::Error::OpConflict {
                    device: op.device.clone(),
                    seq: op.seq,
                }));
            }
            None => old_to_apply.push(op),
        }
    }

    let (scope, _) = scope_of(tables, caller)?;
    let mut rights = Rights::new(conn, tables, &scope, caller.role);
    rights.known_to = Some((caller.device.clone(), pulled_to.unwrap_or(0)));
    rights.prefetch(new)?;
    // What becomes of each new op: applied (with the scope it is filed under), held in
    // quarantine, or set aside because its author may not make it. A refusal sets the op
    // aside instead of refusing the push, so one op never blocks the device's later work.
    let mut fates: Vec<Fate> = Vec::with_capacity(new.len());
    // Once one op of a device waits in quarantine, its later ops wait too (seq order).
    let mut waiting = quarantined_max > 0;
    for op in new {
        fates.push(match rights.check(op) {
            Ok(scope) => {
                waiting =
                    waiting || op.hlc.physical_ms() as i64 > now_ms.saturating_add(max_ahead_ms);
                if waiting {
                    Fate::Hold
                } else {
                    Fate::Apply(scope)
                }
            }
            Err(e) if e.status.is_client_error() => Fate::Aside(SetAside {
                seq: op.seq,
                code: e.code.to_owned(),
                message: e.zh,
                message_en: e.en,
            }),
            Err(e) => return Err(e),
        });
    }
    let moved_into = std::mem::take(&mut rights.moved_into);

    // What the store takes: the old copies not in quarantine, then the new ops not held back,
    // applied or set aside. Usually that is the whole batch, taken without a copy.
    let mut quarantine: Vec<&Op> = Vec::new();
    let mut row_scopes: Vec<Option<&OpScope>> = vec![None; old_to_apply.len()];
    let mut aside = Aside::new();
    let mut taken: Vec<&Op> = old_to_apply;
    // Photos the applied ops refer to, by premises: who may upload and see them.
    let mut photo_refs: Vec<(String, PremisesId)> = Vec::new();
    for (op, fate) in new.iter().zip(&fates) {
        match fate {
            Fate::Apply(scope) => {
                if let Some(premises) = &scope.0 {
                    photo_refs.extend(
                        op.body
                            .photos()
                            .into_iter()
                            .map(|p| (p.sha256.clone(), premises.clone())),
                    );
                }
                row_scopes.push(Some(scope));
                taken.push(op);
            }
            Fate::Aside(why) => {
                aside.insert(taken.len(), why);
                row_scopes.push(None);
                taken.push(op);
            }
            Fate::Hold => quarantine.push(op),
        }
    }
    let to_apply: std::borrow::Cow<'_, [Op]> = if taken.len() == ops.len() {
        std::borrow::Cow::Borrowed(ops)
    } else {
        std::borrow::Cow::Owned(taken.into_iter().cloned().collect())
    };
    let quarantine_rows: Vec<(u64, Hlc, String)> = quarantine
        .iter()
        .map(|op| Ok((op.seq, op.hlc, op_json(op)?)))
        .collect::<Result<_, ApiError>>()?;
    let (first, last) = (
        ops.first().map_or(0, |op| op.seq),
        ops.last().map_or(0, |op| op.seq),
    );
    drop(rights);
    let (report, set_aside) =
        w.store()
            .apply_ops_setting_aside(&to_apply, &aside, |tx, new_rows| {
                // The shared tables, or on one machine the replica's transaction.
                let tables: &dyn ServerTables = match shared {
                    Some(shared) => shared,
                    None => SqliteTables::of(tx),
                };
                for (seq, hlc, json) in &quarantine_rows {
                    tables
                        .hold(&Held {
                            device: caller.device.as_str().to_owned(),
                            seq: *seq as i64,
                            hlc: hlc.as_u64() as i64,
                            received_ms: now_ms,
                            op: json.clone(),
                        })
                        .map_err(|e| xuncha_core::Error::Batch(e.en))?;
                }
                // The pull index for the new ops, with the scope the rights check found for each,
                // chained to the ops before them (see `db::cursor_check`).
                let mut index = tx.prepare_cached(
                    "INSERT INTO server_op_scope (op_id, premises_id, grid_id, received_ms, chain)
             VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut chain = db::last_chain(tx)?;
                for &(at, id) in new_rows {
                    if let Some((premises, grid)) = row_scopes[at] {
                        let op = &to_apply[at];
                        chain = db::chain_next(
                            &chain,
                            op.device.as_str(),
                            op.seq as i64,
                            op.hlc.as_u64() as i64,
                        );
                        index.execute(params![
                            id,
                            premises.as_ref().map(PremisesId::as_str),
                            grid,
                            now_ms,
                            chain
                        ])?;
                    }
                }
                let mut refs = tx.prepare_cached(
                    "INSERT OR IGNORE INTO server_photo_refs (sha256, premises_id) VALUES (?1, ?2)",
                )?;
                for (sha, premises) in &photo_refs {
                    refs.execute(params![sha, premises.as_str()])?;
                }
                // Premises that moved are filed under their new grid, history included, and that
                // grid's epoch (part of its phones' scope tag) changes so they pull it again.
                for (premises, grid) in &moved_into {
                    tx.prepare_cached(
                        "UPDATE server_op_scope SET grid_id = ?2 WHERE premises_id = ?1",
                    )?
                    .execute(params![premises.as_str(), grid])?;
                    tables
                        .bump_grid_epoch(grid)
                        .map_err(|e| xuncha_core::Error::Batch(e.en))?;
                    // On PostgreSQL the append marks the move so every replica re-files alike.
                    if shared.is_some() {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO temp.server_refiled (premises_id) VALUES (?1)",
                        )?
                        .execute([premises.as_str()])?;
                    }
                }
                // Set aside now or before: a replay must say so as well as the first answer.
                set_aside_of(tx, &caller.device, first, last)
            })?;
    Ok(PushOutcome {
        moved_premises: !moved_into.is_empty(),
        response: PushResponse {
            acked_seq: stored_max.max(last),
            applied: report.applied,
            duplicates: report.duplicates + quarantined_copies,
            deferred: report.deferred,
            quarantined: quarantine_rows.len(),
            held: held_before as usize + quarantine_rows.len(),
            set_aside,
            server_hlc: w.replica().hlc(),
            server_time_ms: now_ms,
        },
    })
}

/// The premises an op is about and their grid (`None`s: not about premises), under which the
/// pull index files it.
type OpScope = (Option<PremisesId>, Option<String>);

/// What becomes of a pushed op.
enum Fate {
    /// Applied and filed under this scope.
    Apply(OpScope),
    /// Held in quarantine (its clock, or an earlier op's, is too far ahead).
    Hold,
    /// Kept but set aside: its author may not make it.
    Aside(SetAside),
}

/// The device's ops held set aside with seqs from `first` to `last` (all: `0..=u64::MAX`).
pub(crate) fn set_aside_of(
    conn: &Connection,
    device: &DeviceId,
    first: u64,
    last: u64,
) -> Result<Vec<SetAside>, xuncha_core::Error> {
    let mut stmt = conn.prepare_cached(
        // From the (small) set-aside table outwards, not through the batch's ops.
        "SELECT o.seq, a.code, a.message, a.message_en
         FROM set_aside a CROSS JOIN ops o ON o.id = a.op_id CROSS JOIN devices d
           ON d.device_no = o.device_no
         WHERE d.device_id = ?1 AND o.seq BETWEEN ?2 AND ?3 ORDER BY o.seq LIMIT 10000",
    )?;
    let rows = stmt.query_map(
        params![
            device.as_str(),
            first as i64,
            last.min(i64::MAX as u64) as i64
        ],
        |r| {
            Ok(SetAside {
                seq: r.get::<_, i64>(0)? as u64,
                code: r.get(1)?,
                message: r.get(2)?,
                message_en: r.get(3)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What a push did.
#[derive(Debug)]
pub struct PushOutcome {
    /// The answer to the phone.
    pub response: PushResponse,
    /// Whether premises moved to another grid (scopes changed).
    pub moved_premises: bool,
}

fn op_json(op: &Op) -> Result<String, ApiError> {
    serde_json::to_string(op).map_err(ApiError::internal)
}

fn quarantined_max_seq(conn: &dyn QuarantineTables, caller: &Caller) -> Result<u64, ApiError> {
    conn.held_max_seq(caller.device.as_str())
}

fn quarantined_op(
    conn: &dyn QuarantineTables,
    caller: &Caller,
    seq: u64,
) -> Result<Option<String>, ApiError> {
    conn.held_op(caller.device.as_str(), seq)
}

/// Whether the caller may write what an op touches: premises of their grids only.
struct Rights<'a> {
    /// The replica: premises, hazards, inspections and the pull index.
    conn: &'a Connection,
    /// The server's tables: who uploaded a photo.
    tables: &'a dyn ServerTables,
    scope: &'a Scope,
    role: Role,
    /// Grids set by earlier ops of the same batch (`None`: premises without a grid).
    premises_grid: HashMap<PremisesId, Option<String>>,
    /// Hazards found by earlier inspections of the same batch, and hazards looked up.
    hazard_premises: HashMap<HazardId, PremisesId>,
    /// Premises looked up in the database (`None`: unknown to the server).
    stored_grid: HashMap<PremisesId, Option<Option<String>>>,
    /// Existing premises moved into another grid, with that grid, in the batch's order (the
    /// last move of a premises is where it ends up).
    moved_into: Vec<(PremisesId, String)>,
    /// The pushing device and how far it had pulled: the grid moves it could know of.
    known_to: Option<(DeviceId, u64)>,
    /// Inspections of earlier ops of the same batch: premises and root.
    inspections: HashMap<InspectionId, (PremisesId, InspectionId)>,
}

impl<'a> Rights<'a> {
    fn new(
        conn: &'a Connection,
        tables: &'a dyn ServerTables,
        scope: &'a Scope,
        role: Role,
    ) -> Self {
        Rights {
            conn,
            tables,
            scope,
            role,
            premises_grid: HashMap::new(),
            hazard_premises: HashMap::new(),
            stored_grid: HashMap::new(),
            moved_into: Vec::new(),
            known_to: None,
            inspections: HashMap::new(),
        }
    }

    /// Looks up, in two statements, the hazards and premises a batch touches.
    fn prefetch(&mut self, ops: &[Op]) -> Result<(), ApiError> {
        let hazards: Vec<&str> = ops
            .iter()
            .filter_map(|op| match &op.body {
                OpBody::HazardEvent(e) => Some(e.hazard_id.as_str()),
                _ => None,
            })
            .collect();
        if !hazards.is_empty() {
            let list = serde_json::to_string(&hazards).map_err(ApiError::internal)?;
            let mut stmt = self.conn.prepare_cached(
                "SELECT h.id, h.premises_id FROM json_each(?1) j JOIN hazards h ON h.id = j.value",
            )?;
            let mut rows = stmt.query([list])?;
            while let Some(r) = rows.next()? {
                self.hazard_premises
                    .insert(HazardId(r.get(0)?), PremisesId(r.get(1)?));
            }
        }
        let mut premises: Vec<&str> = ops
            .iter()
            .filter_map(|op| match &op.body {
                OpBody::PremisesPatch(p) => Some(p.premises_id.as_str()),
                OpBody::Inspection(i) => Some(i.premises_id.as_str()),
                _ => None,
            })
            .chain(self.hazard_premises.values().map(PremisesId::as_str))
            .collect();
        premises.sort_unstable();
        premises.dedup();
        let list = serde_json::to_string(&premises).map_err(ApiError::internal)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT j.value,
                    EXISTS (SELECT 1 FROM premises_fields WHERE premises_id = j.value),
                    (SELECT json_extract(value, '$') FROM premises_fields
                     WHERE premises_id = j.value AND field = 'grid_id')
             FROM json_each(?1) j",
        )?;
        let mut rows = stmt.query([list])?;
        while let Some(r) = rows.next()? {
            let id = PremisesId(r.get(0)?);
            let known: bool = r.get(1)?;
            let grid: Option<String> = r.get(2)?;
            self.stored_grid.insert(id, known.then_some(grid));
        }
        Ok(())
    }

    /// `None` when the server does not know the premises; `Some(None)` when it has no grid.
    fn grid_of(&self, premises: &PremisesId) -> Result<Option<Option<String>>, ApiError> {
        if let Some(g) = self.premises_grid.get(premises) {
            return Ok(Some(g.clone()));
        }
        if let Some(g) = self.stored_grid.get(premises) {
            return Ok(g.clone());
        }
        let row: Option<Option<String>> = self
            .conn
            .prepare_cached(
                "SELECT (SELECT json_extract(value, '$') FROM premises_fields
                         WHERE premises_id = ?1 AND field = 'grid_id')
                 WHERE EXISTS (SELECT 1 FROM premises_fields WHERE premises_id = ?1)",
            )?
            .query_row([premises.as_str()], |r| r.get(0))
            .optional()?;
        Ok(row)
    }

    fn require(&self, premises: &PremisesId, grid: Option<&str>) -> Result<(), ApiError> {
        let covered = match grid {
            Some(g) => self.scope.covers(g),
            None => matches!(self.scope, Scope::All),
        };
        if covered {
            return Ok(());
        }
        let grid = grid.unwrap_or("(none)");
        Err(ApiError::forbidden(
            "out_of_scope",
            format!("场所 {premises} 所在网格（{grid}）不在您的负责范围内"),
            format!("premises {premises} is in grid {grid}, which you do not cover"),
        )
        .with_detail(serde_json::json!({ "premises_id": premises, "grid_id": grid })))
    }

    /// [`Rights::require`], or else whether the premises were in a grid the caller covers as
    /// far as the pushing phone knew: by the grid moves in the log up to where it had pulled
    /// (and its own). So work done offline on a shop a supervisor moved away meanwhile stays
    /// accepted; once the phone has pulled past the move, new work there is refused. Refused
    /// with the first refusal otherwise.
    fn require_known(&self, premises: &PremisesId, grid: Option<&str>) -> Result<(), ApiError> {
        let refusal = match self.require(premises, grid) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match self.grid_known(premises)? {
            Some(then) if then.as_deref() != grid => {
                self.require(premises, then.as_deref()).map_err(|_| refusal)
            }
            _ => Err(refusal),
        }
    }

    /// The grid the pushing phone knew the premises in: the last-writer-wins winner among the
    /// grid writes it had pulled or made itself (`None`: it knew of none).
    fn grid_known(&self, premises: &PremisesId) -> Result<Option<Option<String>>, ApiError> {
        let Some((device, pulled_to)) = &self.known_to else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.hlc, d.device_id, o.seq, json_extract(o.data, '$.fields.grid_id')
             FROM server_op_scope s JOIN ops o ON o.id = s.op_id JOIN devices d USING (device_no)
             WHERE s.premises_id = ?1 AND o.kind = 'premises_patch' AND o.applied = 1
               AND json_type(o.data, '$.fields.grid_id') IS NOT NULL
               AND (s.op_id <= ?2 OR d.device_id = ?3)",
        )?;
        let mut rows = stmt.query(params![
            premises.as_str(),
            (*pulled_to).min(i64::MAX as u64) as i64,
            device.as_str()
        ])?;
        let mut latest: Option<(OpKey, Option<String>)> = None;
        while let Some(r) = rows.next()? {
            let write = OpKey {
                hlc: Hlc::from_u64(r.get::<_, i64>(0)? as u64),
                device: DeviceId(r.get(1)?),
                seq: r.get::<_, i64>(2)? as u64,
            };
            if latest.as_ref().is_none_or(|(k, _)| write > *k) {
                latest = Some((write, r.get(3)?));
            }
        }
        Ok(latest.map(|(_, grid)| grid))
    }

    /// An op may refer to a photo the server does not hold yet (the phone uploads it after the
    /// push), one its author uploaded, or one the author may already see: a reference must not
    /// be a way to read another grid's photo whose hash one has learnt.
    fn check_photos(&self, op: &Op) -> Result<(), ApiError> {
        for photo in op.body.photos() {
            let uploaded_by = self.tables.uploaded_by(&photo.sha256)?;
            if uploaded_by.as_deref() == Some(op.author.as_str()) {
                continue;
            }
            let allowed = match crate::photos::access(self.conn, &photo.sha256, self.scope)? {
                Some(visible) => visible,
                None => uploaded_by.is_none(),
            };
            if !allowed {
                return Err(ApiError::forbidden(
                    "photo_forbidden",
                    "记录引用了您无权查看的照片",
                    format!(
                        "photo {} belongs to records outside your area",
                        photo.sha256
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A correction names, as its root and the inspection it supersedes, inspections of the
    /// same premises and lineage that the server holds: else it could take over another
    /// shop's hazards (they derive from the root) or hide another grid's inspection.
    fn check_lineage(&self, i: &Inspection) -> Result<(), ApiError> {
        let refuse = |what: &str, zh: &str| {
            Err(ApiError::forbidden(
                "bad_lineage",
                format!("更正记录的{zh}不是本场所的检查记录"),
                format!(
                    "inspection {}: its {what} is not an inspection of premises {} held here",
                    i.id, i.premises_id
                ),
            ))
        };
        if i.root != i.id {
            match self.inspection_facts(&i.root)? {
                Some((premises, root)) if premises == i.premises_id && root == i.root => {}
                _ => return refuse("root", "原始记录"),
            }
        }
        if let Some(old) = &i.supersedes {
            match self.inspection_facts(old)? {
                Some((premises, root)) if premises == i.premises_id && root == i.root => {}
                _ => return refuse("superseded inspection", "被更正记录"),
            }
        }
        Ok(())
    }

    /// An inspection's premises and root, from this batch or the database.
    fn inspection_facts(
        &self,
        id: &InspectionId,
    ) -> Result<Option<(PremisesId, InspectionId)>, ApiError> {
        if let Some(facts) = self.inspections.get(id) {
            return Ok(Some(facts.clone()));
        }
        Ok(self
            .conn
            .prepare_cached("SELECT premises_id, root FROM inspections WHERE id = ?1")?
            .query_row([id.as_str()], |r| {
                Ok((PremisesId(r.get(0)?), InspectionId(r.get(1)?)))
            })
            .optional()?)
    }

    fn premises_of_hazard(&self, hazard: &HazardId) -> Result<Option<PremisesId>, ApiError> {
        if let Some(p) = self.hazard_premises.get(hazard) {
            return Ok(Some(p.clone()));
        }
        Ok(self
            .conn
            .prepare_cached("SELECT premises_id FROM hazards WHERE id = ?1")?
            .query_row([hazard.as_str()], |r| r.get::<_, String>(0))
            .optional()?
            .map(PremisesId))
    }

    /// Checks one op; returns the premises it is about and their grid (for the pull index).
    fn check(&mut self, op: &Op) -> Result<(Option<PremisesId>, Option<String>), ApiError> {
        self.check_photos(op)?;
        Ok(match &op.body {
            OpBody::PremisesPatch(p) => {
                let current = self.grid_of(&p.premises_id)?;
                if let Some(current) = &current {
                    // An edit made before the shop moved away stays; a move does not.
                    if p.fields.contains_key("grid_id") {
                        self.require(&p.premises_id, current.as_deref())?;
                    } else {
                        self.require_known(&p.premises_id, current.as_deref())?;
                    }
                }
                let effective = match p.fields.get("grid_id") {
                    Some(Value::String(g)) => Some(g.clone()),
                    Some(_) => None,
                    None => current.clone().flatten(),
                };
                // A new premises, or a move: the caller must cover where it goes.
                if current.is_none() || p.fields.contains_key("grid_id") {
                    self.require(&p.premises_id, effective.as_deref())?;
                }
                if let (Some(Some(from)), Some(to)) = (&current, &effective)
                    && from != to
                {
                    self.moved_into.push((p.premises_id.clone(), to.clone()));
                }
                self.premises_grid
                    .insert(p.premises_id.clone(), effective.clone());
                (Some(p.premises_id.clone()), effective)
            }
            OpBody::Inspection(i) => {
                let grid = self.known_grid(&i.premises_id)?;
                self.require_known(&i.premises_id, grid.as_deref())?;
                self.check_lineage(i)?;
                self.inspections
                    .insert(i.id.clone(), (i.premises_id.clone(), i.root.clone()));
                for f in &i.findings {
                    self.hazard_premises
                        .insert(f.hazard_id.clone(), i.premises_id.clone());
                }
                (Some(i.premises_id.clone()), grid)
            }
            OpBody::HazardEvent(e) => {
                // Closing a suspected major hazard, escalating and chasing (催办) are
                // supervisors' doing; the phone only shows "awaiting approval".
                if matches!(
                    e.action,
                    HazardAction::ClosureApproved
                        | HazardAction::Escalated { .. }
                        | HazardAction::Urged
                ) && self.role == Role::Worker
                {
                    return Err(ApiError::forbidden(
                        "supervisor_only",
                        "批准销号、升级和催办须由督导人员操作",
                        format!(
                            "{} on hazard {} needs a supervisor",
                            e.action.name(),
                            e.hazard_id
                        ),
                    ));
                }
                let premises = self.premises_of_hazard(&e.hazard_id)?.ok_or_else(|| {
                    ApiError::invalid(
                        "unknown_hazard",
                        "服务器上没有该隐患，请先同步发现它的检查记录",
                        format!("hazard {} is not known to the server; push the inspection that found it first", e.hazard_id),
                    )
                })?;
                let grid = self.known_grid(&premises)?;
                self.require_known(&premises, grid.as_deref())?;
                (Some(premises), grid)
            }
            // Campaigns are set by supervisors, for grids they cover.
            OpBody::Campaign(c) => {
                if self.role == Role::Worker {
                    return Err(ApiError::forbidden(
                        "supervisor_only",
                        "专项行动须由督导人员设置",
                        format!("campaign {} needs a supervisor", c.campaign_id),
                    ));
                }
                if !self.scope.covers(&c.grid_id) {
                    return Err(ApiError::forbidden(
                        "out_of_scope",
                        format!("网格 {} 不在您的负责范围内", c.grid_id),
                        format!("grid {} is not one you cover", c.grid_id),
                    )
                    .with_detail(serde_json::json!({ "grid_id": c.grid_id })));
                }
                (None, Some(c.grid_id.clone()))
            }
            // Newer op types: checked where they name premises; applied only by newer servers.
            OpBody::Unknown { data, .. } => {
                let premises = data
                    .get("premises_id")
                    .and_then(Value::as_str)
                    .map(|p| PremisesId(p.to_owned()));
                match premises {
                    Some(premises) => match self.grid_of(&premises)? {
                        Some(grid) => {
                            self.require(&premises, grid.as_deref())?;
                            (Some(premises), grid)
                        }
                        None => (Some(premises), None),
                    },
                    None => (None, None),
                }
            }
        })
    }

    fn known_grid(&self, premises: &PremisesId) -> Result<Option<String>, ApiError> {
        self.grid_of(premises)?.ok_or_else(|| {
            ApiError::invalid(
                "unknown_premises",
                "服务器上没有该场所，请先同步场所信息",
                format!("premises {premises} is not known to the server; push the op that added it first"),
            )
        })
    }
}

/// Query of `GET /v1/sync/own`.
#[derive(Debug, Deserialize)]
pub struct OwnParams {
    /// Seq after which to answer (0 at first).
    #[serde(default)]
    pub after: u64,
    /// Page size.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /v1/sync/own`: the caller's device's own ops as the server holds them, for a phone
/// whose database was restored from an older copy (it takes them back and continues after
/// them instead of reusing their seqs).
pub async fn own(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<OwnParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::invalid(
            "bad_query",
            "查询参数不正确",
            format!("{e}; use ?after=SEQ&limit=N"),
        )
    })?;
    let limit = params
        .limit
        .unwrap_or(DEFAULT_PULL_LIMIT)
        .clamp(1, MAX_PULL_LIMIT);
    let page = state
        .read_store(move |store, tables| own_ops(store, tables, &caller, params.after, limit))
        .await?;
    Ok(body::json(&headers, StatusCode::OK, &page))
}

/// The caller's device's ops after seq `after`: those in the log and those in quarantine.
fn own_ops(
    store: &Store,
    tables: &dyn ServerTables,
    caller: &Caller,
    after: u64,
    limit: usize,
) -> Result<OwnOpsResponse, ApiError> {
    let conn = store.conn();
    let _snapshot = conn.unchecked_transaction()?;
    let after = after.min(i64::MAX as u64) as i64;
    let mut ops: Vec<Op> = store.own_ops_after(&caller.device, after as u64, limit + 1)?;
    for json in tables.held_after(caller.device.as_str(), after, limit + 1)? {
        ops.push(serde_json::from_str(&json).map_err(ApiError::internal)?);
    }
    ops.sort_by_key(|op| op.seq);
    let more = ops.len() > limit;
    ops.truncate(limit);
    let held_to = store
        .max_seq(&caller.device)?
        .max(quarantined_max_seq(tables, caller)?);
    Ok(OwnOpsResponse { ops, more, held_to })
}

/// Query of `GET /v1/sync/pull`.
#[derive(Debug, Deserialize)]
pub struct PullParams {
    /// Cursor from the previous pull (0 at first).
    #[serde(default)]
    pub after: u64,
    /// The cursor check from the previous pull.
    #[serde(default)]
    pub check: Option<String>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /v1/sync/pull`.
pub async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<PullParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::invalid(
            "bad_query",
            "查询参数不正确",
            format!("{e}; use ?after=CURSOR&limit=N"),
        )
    })?;
    let limit = params
        .limit
        .unwrap_or(DEFAULT_PULL_LIMIT)
        .clamp(1, MAX_PULL_LIMIT);
    let hlc = state.observe_hlc(Hlc::default());
    let now = state.now_ms();
    let (scope, tag) = state.scope(&caller).await?;
    // On PostgreSQL a phone may have pulled further from another instance than this one's
    // replica has followed yet: it catches up first (else the cursor would look like one
    // from another log, and the phone would pull everything again).
    if state.db().is_shared() && params.after > state.db().end().0 {
        state.catch_up().await?;
    }
    // The common case, a phone checking in with nothing new: answered without the database.
    let (end, end_check) = state.db().end();
    if params.after == end && (params.check.is_none() || params.check == end_check) {
        let page = PullResponse {
            ops: Vec::new(),
            cursor: params.after,
            cursor_check: end_check,
            more: false,
            scope: tag,
            server_hlc: hlc,
            server_time_ms: now,
            acked_seq: None,
            missing_photos: Vec::new(),
            set_aside: None,
        };
        return Ok(body::json(&headers, StatusCode::OK, &page));
    }
    let (bytes, sent) = state
        .read(move |conn, tables| {
            let after = checked_cursor(conn, params.after, params.check.as_deref())?;
            let page = Page {
                caller: &caller,
                scope: &scope,
                tag: &tag,
                after,
                limit,
            };
            pull_page(conn, tables, page, hlc, now)
        })
        .await?;
    state.metrics.pulled(sent);
    Ok(body::raw_json_large(&headers, StatusCode::OK, bytes).await)
}

/// The cursor to pull after: the phone's, unless its check says it points into another log
/// (then 0: from the start; what the phone holds already is skipped as duplicates).
fn checked_cursor(conn: &Connection, after: u64, check: Option<&str>) -> Result<u64, ApiError> {
    match check {
        Some(check) if db::cursor_check(conn, after)?.as_deref() != Some(check) => Ok(0),
        _ => Ok(after),
    }
}

/// Which page of the log a pull asks for, and for whom.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    pub caller: &'a Caller,
    pub scope: &'a Scope,
    pub tag: &'a str,
    /// The cursor, checked ([`checked_cursor`]).
    pub after: u64,
    pub limit: usize,
}

/// One page of ops after `after` that the caller may see, as response JSON, and how many ops
/// it holds. Reads one snapshot; the stored op JSON is passed through without decoding it.
pub fn pull_page(
    conn: &Connection,
    tables: &dyn ServerTables,
    page: Page<'_>,
    server_hlc: Hlc,
    now_ms: i64,
) -> Result<(Vec<u8>, usize), ApiError> {
    let Page {
        caller,
        scope,
        tag,
        after,
        limit,
    } = page;
    let tx = conn.unchecked_transaction()?;
    let end: i64 = tx.query_row(
        "SELECT COALESCE(MAX(op_id), 0) FROM server_op_scope",
        [],
        |r| r.get(0),
    )?;
    // A cursor beyond the end means this database is not the one the phone pulled from
    // (restored from a backup): start again from the beginning; duplicates are harmless.
    let after = if after > end as u64 { 0 } else { after };
    let grids = match scope {
        Scope::All => None,
        Scope::Grids(g) => Some(serde_json::to_string(g).map_err(ApiError::internal)?),
    };
    struct Row {
        id: i64,
        device: String,
        seq: i64,
        hlc: i64,
        author: String,
        schema: u32,
        wall_ms: i64,
        kind: String,
        data: String,
    }
    let mut stmt = tx.prepare_cached(
        "SELECT s.op_id, d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data
         FROM server_op_scope s
         JOIN ops o ON o.id = s.op_id
         JOIN devices d ON d.device_no = o.device_no
         WHERE s.op_id > ?1
           AND (?2 IS NULL OR s.grid_id IN (SELECT value FROM json_each(?2)))
           AND d.device_id <> ?3
         ORDER BY s.op_id LIMIT ?4",
    )?;
    let rows: Vec<Row> = stmt
        .query_map(
            params![after as i64, grids, caller.device.as_str(), limit as i64],
            |r| {
                Ok(Row {
                    id: r.get(0)?,
                    device: r.get(1)?,
                    seq: r.get(2)?,
                    hlc: r.get(3)?,
                    author: r.get(4)?,
                    schema: r.get(5)?,
                    wall_ms: r.get(6)?,
                    kind: r.get(7)?,
                    data: r.get(8)?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    let more = rows.len() == limit;
    let cursor = if more {
        rows.last().map_or(after, |r| r.id as u64)
    } else {
        // Nothing more the caller may see up to the end of the log: skip past all of it.
        (end as u64).max(after)
    };
    let mut raw: Vec<&RawValue> = Vec::with_capacity(rows.len());
    for r in &rows {
        raw.push(serde_json::from_str(&r.data).map_err(ApiError::internal)?);
    }
    let ops: Vec<RawOp<'_>> = rows
        .iter()
        .zip(raw)
        .map(|(r, data)| RawOp {
            device: &r.device,
            seq: r.seq as u64,
            hlc: Hlc::from_u64(r.hlc as u64),
            author: &r.author,
            schema: r.schema,
            wall_ms: r.wall_ms,
            kind: &r.kind,
            data,
        })
        .collect();
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        ops: Vec<RawOp<'a>>,
        cursor: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor_check: Option<String>,
        more: bool,
        scope: String,
        server_hlc: Hlc,
        server_time_ms: i64,
        acked_seq: u64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        missing_photos: Vec<String>,
        set_aside: Vec<SetAside>,
    }
    // What the server holds of the caller's own ops, as a push would acknowledge it.
    let held: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(o.seq), 0) FROM ops o JOIN devices d USING (device_no)
             WHERE d.device_id = ?1",
        )?
        .query_row([caller.device.as_str()], |r| r.get(0))?;
    // With the first page of a pull from the start: photos of the caller's own records the
    // server has not got (lost with a restore, say), so the phone sends them again.
    let missing_photos = if after == 0 {
        // The photos the device's records name (the replica's log), less those held.
        let named: Vec<String> = tx
            .prepare_cached(
                "SELECT DISTINCT j.value
                 FROM ops o JOIN devices d USING (device_no), json_tree(o.data) j
                 WHERE d.device_id = ?1 AND o.kind IN ('inspection', 'hazard_event')
                   AND j.key = 'sha256' AND j.type = 'text'",
            )?
            .query_map([caller.device.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let held = tables.photos_held(&named)?;
        named
            .into_iter()
            .filter(|sha| !held.contains(sha))
            .take(10_000)
            .collect()
    } else {
        Vec::new()
    };
    let sent = ops.len();
    let page = Answer {
        ops,
        cursor,
        cursor_check: db::cursor_check(&tx, cursor)?,
        more,
        scope: tag.to_owned(),
        server_hlc,
        server_time_ms: now_ms,
        acked_seq: (held as u64).max(quarantined_max_seq(tables, caller)?),
        missing_photos,
        set_aside: set_aside_of(&tx, &caller.device, 0, u64::MAX)?,
    };
    let out = serde_json::to_vec(&page).map_err(ApiError::internal)?;
    // Keeps the page's type in step with the protocol's.
    debug_assert!(serde_json::from_slice::<PullResponse>(&out).is_ok());
    Ok((out, sent))
}

/// Checks every op held set aside again with its author's rights as they are now, and lets
/// through those now allowed (after an admin gave the author the grid back, say): they are
/// applied at the end of the log, so every phone that may see them pulls them, and the
/// author's phone puts them back into its state at its next pull. On PostgreSQL the shared
/// log holds them there a second time, marked, and every instance's replica moves them so.
/// Returns how many went through and how many stay set aside.
pub fn retry_set_aside(w: &mut Writer<'_>, now_ms: i64) -> Result<(usize, usize), ApiError> {
    let held = w.replica().set_aside_ops()?;
    let mut through: Vec<Op> = Vec::new();
    {
        let (conn, tables) = (w.replica().conn(), w.tables());
        for (op, _) in &held {
            let Some((role, scope)) = crate::accounts::role_and_scope(tables, &op.author)? else {
                continue;
            };
            let mut rights = Rights::new(conn, tables, &scope, role);
            rights.prefetch(std::slice::from_ref(op))?;
            match rights.check(op) {
                Ok(_) => through.push(op.clone()),
                Err(e) if e.status.is_client_error() => {}
                Err(e) => return Err(e),
            }
        }
    }
    if !through.is_empty() {
        let shared = w.shared().is_some();
        w.store().let_through(&through, |tx, _| {
            if shared {
                let mut note = tx.prepare_cached(
                    "INSERT OR IGNORE INTO temp.server_let_through (device_id, seq) VALUES (?1, ?2)",
                )?;
                for op in &through {
                    note.execute(rusqlite::params![op.device.as_str(), op.seq as i64])?;
                }
            }
            Ok(db::index_new_ops(tx, now_ms)?)
        })?;
    }
    Ok((through.len(), held.len() - through.len()))
}

/// Applies quarantined ops whose clock the server has caught up with, in seq order per device.
/// Returns how many were released. Run periodically; `force` releases everything (an admin's
/// decision after review).
pub fn release_quarantine(
    w: &mut Writer<'_>,
    now_ms: i64,
    max_ahead_ms: i64,
    force: bool,
) -> Result<usize, ApiError> {
    let shared = w.shared();
    let rows: Vec<(String, i64, i64, String)> = w
        .tables()
        .all_held()?
        .into_iter()
        .map(|h| (h.device, h.seq, h.hlc, h.op))
        .collect();
    let mut release: Vec<Op> = Vec::new();
    let mut keys: Vec<(String, i64)> = Vec::new();
    let mut blocked_device: Option<String> = None;
    for (device, seq, hlc, json) in rows {
        if blocked_device.as_deref() == Some(device.as_str()) {
            continue;
        }
        let due = force
            || Hlc::from_u64(hlc as u64).physical_ms() as i64
                <= now_ms.saturating_add(max_ahead_ms);
        if !due {
            blocked_device = Some(device);
            continue;
        }
        release.push(serde_json::from_str(&json).map_err(ApiError::internal)?);
        keys.push((device, seq));
    }
    if release.is_empty() {
        return Ok(0);
    }
    w.store().apply_ops_with(&release, |tx, _| {
        let tables: &dyn ServerTables = match shared {
            Some(shared) => shared,
            None => SqliteTables::of(tx),
        };
        tables
            .release_held(&keys)
            .map_err(|e| xuncha_core::Error::Batch(e.en))?;
        db::index_new_ops(tx, now_ms)?;
        Ok(())
    })?;
    Ok(release.len())
}
