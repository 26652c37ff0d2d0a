//! `GET /v1/overdue`: the supervisors' view of the same due list the phones compute, over
//! everything in the caller's area: overdue re-checks, notices and routine visits, counted by
//! grid and by community.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use xuncha_core::due::{DueItem, DueKind};

use crate::AppState;
use crate::account_tables::AccountTables;
use crate::accounts::{Caller, Scope};
use crate::error::ApiError;

/// Counts for one grid or community.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// Hazard work past its date (re-checks, notices).
    pub hazards: usize,
    /// Routine re-inspections past their date.
    pub visits: usize,
}

/// One overdue item.
#[derive(Debug, Serialize)]
pub struct Overdue {
    kind: &'static str,
    premises_id: String,
    hazard_id: Option<String>,
    due_on: String,
    overdue_days: u64,
    major: bool,
    grid_id: Option<String>,
    community: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct OverdueReport {
    date: String,
    by_grid: BTreeMap<String, Counts>,
    by_community: BTreeMap<String, Counts>,
    /// Most urgent first (at most 1,000).
    items: Vec<Overdue>,
}

/// Where a premises is: its name, grid and the grid's community.
#[derive(Clone, Debug, Default)]
pub struct Place {
    /// Name.
    pub name: String,
    /// Grid.
    pub grid: Option<String>,
    /// Community of the grid.
    pub community: Option<String>,
}

/// Where every premises is, read in one query of the replica (for lists of due items, which
/// name many), with each grid's community from the grids' table (`tables`).
pub fn places(
    replica: &rusqlite::Connection,
    tables: &dyn AccountTables,
) -> Result<HashMap<String, Place>, ApiError> {
    let communities: HashMap<String, String> = tables
        .grids()?
        .into_iter()
        .map(|g| (g.grid.id, g.grid.community))
        .collect();
    let mut stmt = replica.prepare_cached(
        "SELECT n.premises_id, json_extract(n.value, '$'), json_extract(g.value, '$')
         FROM premises_fields n
         LEFT JOIN premises_fields g ON g.premises_id = n.premises_id AND g.field = 'grid_id'
         WHERE n.field = 'name'",
    )?;
    let rows = stmt.query_map([], |r| {
        let grid: Option<String> = r.get(2)?;
        Ok((
            r.get::<_, String>(0)?,
            Place {
                name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                community: grid.as_ref().and_then(|g| communities.get(g).cloned()),
                grid,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Wire name of a due item's kind.
pub fn kind_name(k: DueKind) -> &'static str {
    match k {
        DueKind::Routine => "routine",
        DueKind::IssueNotice => "issue_notice",
        DueKind::Recheck => "recheck",
        DueKind::AwaitingApproval => "awaiting_approval",
        DueKind::Campaign => "campaign",
    }
}

/// `GET /v1/overdue`.
pub async fn overdue(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OverdueReport>, ApiError> {
    let (scope, _) = state.scope(&caller).await?;
    let now = state.now_ms();
    let report = state
        .read_store(move |store, tables| {
            let items: Vec<DueItem> = store
                .due(now)?
                .into_iter()
                .filter(|i| i.overdue_days > 0)
                .collect();
            let places = places(store.conn(), tables)?;
            let mut report = OverdueReport {
                date: xuncha_core::clock::china_date(now).to_string(),
                by_grid: BTreeMap::new(),
                by_community: BTreeMap::new(),
                items: Vec::new(),
            };
            for i in items {
                let Place {
                    grid, community, ..
                } = places
                    .get(i.premises_id.as_str())
                    .cloned()
                    .unwrap_or_default();
                let visible = match (&scope, &grid) {
                    (Scope::All, _) => true,
                    (Scope::Grids(g), Some(grid)) => g.contains(grid),
                    (Scope::Grids(_), None) => false,
                };
                if !visible {
                    continue;
                }
                // Visits (routine or a campaign's) apart from hazard work.
                let routine = i.hazard_id.is_none();
                for (map, key) in [
                    (&mut report.by_grid, &grid),
                    (&mut report.by_community, &community),
                ] {
                    let c = map.entry(key.clone().unwrap_or_default()).or_default();
                    if routine {
                        c.visits += 1;
                    } else {
                        c.hazards += 1;
                    }
                }
                if report.items.len() < 1000 {
                    report.items.push(Overdue {
                        kind: kind_name(i.kind),
                        premises_id: i.premises_id.0,
                        hazard_id: i.hazard_id.map(|h| h.0),
                        due_on: i.due_on.to_string(),
                        overdue_days: i.overdue_days,
                        major: i.major,
                        grid_id: grid,
                        community,
                    });
                }
            }
            Ok(report)
        })
        .await?;
    Ok(Json(report))
}
