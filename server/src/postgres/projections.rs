//! The state the core derives from the log, kept in PostgreSQL tables for the city's own
//! queries and reports: premises, inspections, hazards and campaigns exactly as the core's
//! merge rules and hazard fold make them. Nothing here computes state: the rows are read from
//! an instance's replica after it applied the ops (see [`super::follow`]), so the rules live
//! in the core alone.
//!
//! Each row carries the log position its replica had reached when it was written, and an
//! older position never overwrites a newer one: two instances may write the same rows (each
//! after its own catch-up) and the tables still move only forward. Two replicas at the same
//! position hold the same state, so which of them writes a row does not matter.

use std::collections::BTreeSet;

use postgres::GenericClient;
use xuncha_core::model::HazardId;
use xuncha_core::model::{InspectionId, PremisesId};
use xuncha_core::op::{Op, OpBody};
use xuncha_core::store::Store;

use super::PgError;

/// What a run of ops changed, by id.
#[derive(Debug, Default)]
pub struct Touched {
    premises: BTreeSet<PremisesId>,
    inspections: BTreeSet<InspectionId>,
    hazards: BTreeSet<HazardId>,
    campaigns: BTreeSet<(String, String)>,
}

impl Touched {
    /// The records `ops` may have changed.
    pub fn by(ops: &[Op]) -> Touched {
        let mut t = Touched::default();
        for op in ops {
            match &op.body {
                OpBody::PremisesPatch(p) => {
                    t.premises.insert(p.premises_id.clone());
                }
                OpBody::Inspection(i) => {
                    t.inspections.insert(i.id.clone());
                    t.hazards
                        .extend(i.findings.iter().map(|f| f.hazard_id.clone()));
                }
                OpBody::HazardEvent(e) => {
                    t.hazards.insert(e.hazard_id.clone());
                }
                OpBody::Campaign(c) => {
                    t.campaigns
                        .insert((c.campaign_id.as_str().to_owned(), c.grid_id.clone()));
                }
                OpBody::Unknown { .. } => {}
            }
        }
        t
    }

    /// Whether nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.premises.is_empty()
            && self.inspections.is_empty()
            && self.hazards.is_empty()
            && self.campaigns.is_empty()
    }
}

/// Writes the current rows of what was `touched`, as `replica` holds them at log `position`.
pub fn write(
    client: &mut impl GenericClient,
    replica: &Store,
    touched: &Touched,
    position: i64,
) -> Result<(), PgError> {
    let replica_err = PgError::Replica;

    let mut ids = Vec::new();
    let mut grids = Vec::new();
    let mut names = Vec::new();
    let mut records = Vec::new();
    for id in &touched.premises {
        if let Some(p) = replica.premises(id).map_err(replica_err)? {
            ids.push(p.id.as_str().to_owned());
            grids.push(p.fields.grid_id.clone());
            names.push(p.fields.name.clone());
            records.push(json(&p)?);
        }
    }
    if !ids.is_empty() {
        client.execute(
            "INSERT INTO premises (id, grid_id, name, record, position)
             SELECT i, g, n, r::jsonb, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                 AS t (i, g, n, r)
             ON CONFLICT (id) DO UPDATE SET grid_id = excluded.grid_id, name = excluded.name,
                 record = excluded.record, position = excluded.position
             WHERE excluded.position >= premises.position",
            &[&ids, &grids, &names, &records, &position],
        )?;
    }

    let (mut ids, mut premises, mut inspectors, mut days, mut records) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for id in &touched.inspections {
        if let Some(i) = replica.inspection(id).map_err(replica_err)? {
            ids.push(i.id.as_str().to_owned());
            premises.push(i.premises_id.as_str().to_owned());
            inspectors.push(i.inspector.as_str().to_owned());
            days.push(i.performed_on.to_string());
            records.push(json(&i)?);
        }
    }
    if !ids.is_empty() {
        client.execute(
            "INSERT INTO inspections (id, premises_id, inspector, performed_on, record, position)
             SELECT i, p, w, d::date, r::jsonb, $6
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t (i, p, w, d, r)
             ON CONFLICT (id) DO UPDATE SET premises_id = excluded.premises_id,
                 inspector = excluded.inspector, performed_on = excluded.performed_on,
                 record = excluded.record, position = excluded.position
             WHERE excluded.position >= inspections.position",
            &[&ids, &premises, &inspectors, &days, &records, &position],
        )?;
    }

    let mut rows = HazardRows::default();
    for id in &touched.hazards {
        if let Some(h) = replica.hazard(id).map_err(replica_err)? {
            rows.id.push(h.id.as_str().to_owned());
            rows.premises.push(h.origin.premises_id.as_str().to_owned());
            rows.status.push(h.status.as_str());
            let severity = serde_json::to_value(h.origin.finding.severity).map_err(decode)?;
            rows.severity
                .push(severity.as_str().unwrap_or_default().to_owned());
            rows.deadline.push(h.deadline.map(|d| d.to_string()));
            rows.assignee.push(h.assignee.as_str().to_owned());
            rows.state.push(json(&h)?);
        }
    }
    if !rows.id.is_empty() {
        client.execute(
            "INSERT INTO hazards (id, premises_id, status, severity, deadline, assignee, state, position)
             SELECT i, p, s, v, d::date, a, j::jsonb, $8
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[]) AS t (i, p, s, v, d, a, j)
             ON CONFLICT (id) DO UPDATE SET premises_id = excluded.premises_id,
                 status = excluded.status, severity = excluded.severity,
                 deadline = excluded.deadline, assignee = excluded.assignee,
                 state = excluded.state, position = excluded.position
             WHERE excluded.position >= hazards.position",
            &[
                &rows.id,
                &rows.premises,
                &rows.status,
                &rows.severity,
                &rows.deadline,
                &rows.assignee,
                &rows.state,
                &position,
            ],
        )?;
    }

    if !touched.campaigns.is_empty() {
        let (mut ids, mut grids, mut records) = (Vec::new(), Vec::new(), Vec::new());
        for c in replica.campaigns().map_err(replica_err)? {
            let key = (c.campaign_id.as_str().to_owned(), c.grid_id.clone());
            if touched.campaigns.contains(&key) {
                records.push(json(&c)?);
                ids.push(key.0);
                grids.push(key.1);
            }
        }
        client.execute(
            "INSERT INTO campaigns (campaign_id, grid_id, record, position)
             SELECT c, g, r::jsonb, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS t (c, g, r)
             ON CONFLICT (campaign_id, grid_id) DO UPDATE SET record = excluded.record,
                 position = excluded.position
             WHERE excluded.position >= campaigns.position",
            &[&ids, &grids, &records, &position],
        )?;
    }
    client.execute(
        "INSERT INTO server_meta (key, value) VALUES ('projections_at', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value
         WHERE excluded.value::bigint > server_meta.value::bigint",
        &[&position.to_string()],
    )?;
    Ok(())
}

/// The log position the projection tables have been written up to (0: none yet).
pub fn written_to(client: &mut impl GenericClient) -> Result<i64, PgError> {
    Ok(client
        .query_opt(
            "SELECT value::bigint FROM server_meta WHERE key = 'projections_at'",
            &[],
        )?
        .map_or(0, |r| r.get(0)))
}

fn decode(e: serde_json::Error) -> PgError {
    PgError::Decode(e.to_string())
}

/// Hazard columns as arrays (one statement for the page).
#[derive(Default)]
struct HazardRows {
    id: Vec<String>,
    premises: Vec<String>,
    status: Vec<&'static str>,
    severity: Vec<String>,
    deadline: Vec<Option<String>>,
    assignee: Vec<String>,
    state: Vec<String>,
}

/// A record as the core serialises it.
fn json(record: &impl serde::Serialize) -> Result<String, PgError> {
    serde_json::to_string(record).map_err(decode)
}
