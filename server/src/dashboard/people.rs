//! What each worker did in a period: visits (with the location flags), hazards found, hazard
//! actions and re-checks, per worker of the caller's area, and one worker's visits and
//! actions listed.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};

use super::supervisor_scope;
use crate::AppState;
use crate::account_tables::AccountTables;
use crate::accounts::{Caller, Scope};
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
struct Period {
    from: Option<String>,
    to: Option<String>,
}

/// The period asked for (China dates, both days included); by default the last seven days.
fn period(p: &Period, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let day = |what: &str, s: &Option<String>, default: NaiveDate| match s.as_deref() {
        None | Some("") => Ok(default),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid(
                "bad_query",
                format!("{what} 日期不正确：{s}"),
                format!("{what}: {s:?} is not a date like 2026-11-23"),
            )
        }),
    };
    let to = day("to", &p.to, today)?;
    let from = day("from", &p.from, to - Days::new(6))?;
    if from > to {
        return Err(ApiError::invalid(
            "bad_query",
            "开始日期晚于结束日期",
            "from is after to",
        ));
    }
    Ok((from, to))
}

/// Milliseconds since the epoch at the start of a China date.
fn china_midnight_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis() - 8 * 3_600_000)
}

/// Enabled workers whose area overlaps the caller's: id and display name, by name.
fn workers_of(
    tables: &dyn AccountTables,
    scope: &Scope,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    match scope {
        Scope::All => {
            found = tables.workers(false)?.into_iter().collect();
        }
        // Whoever covers one of the caller's grids (a supervisor's few, not every account).
        Scope::Grids(grids) => {
            for grid in grids {
                for person in crate::accounts::users_covering(tables, grid)? {
                    if person.role == "worker" {
                        found.insert(person.id, person.name);
                    }
                }
            }
        }
    }
    let mut out: Vec<(String, String)> = found.into_iter().collect();
    out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    Ok(out)
}

/// Per worker: visits, of them flagged (too far or a mocked location), hazards found,
/// hazard actions, re-checks.
#[derive(Debug, Default, serde::Serialize)]
struct Figures {
    visits: u64,
    flagged: u64,
    mock: u64,
    hazards_found: u64,
    actions: u64,
    rechecks: u64,
}

/// The visits that count: the latest correction of each, performed in the period.
const VISITS: &str = "
    SELECT i.inspector, i.id, i.premises_id, i.performed_on,
           COALESCE(json_array_length(o.data, '$.findings'), 0),
           COALESCE(json_extract(o.data, '$.proximity.flagged'), 0),
           COALESCE(json_extract(o.data, '$.geotag.mock'), 0),
           COALESCE(json_extract(o.data, '$.proximity.distance_m'), -1)
    FROM inspections i JOIN ops o ON o.id = i.op_id
    WHERE i.performed_on BETWEEN ?1 AND ?2
      AND NOT EXISTS (SELECT 1 FROM inspections later WHERE later.supersedes = i.id
                      AND later.premises_id = i.premises_id AND later.root = i.root)";

/// `GET /dash/api/workers?from&to`: figures per worker of the caller's area.
async fn workers(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<Period>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let today = xuncha_core::clock::china_date(state.now_ms());
    let (from, to) = period(&p, today)?;
    let answer = state
        .read(move |conn, tables| {
            let people = workers_of(tables, &scope)?;
            let mut figures: BTreeMap<String, Figures> = people
                .iter()
                .map(|(id, _)| (id.clone(), Figures::default()))
                .collect();
            let mut stmt = conn.prepare_cached(VISITS)?;
            let mut rows = stmt.query([from.to_string(), to.to_string()])?;
            while let Some(r) = rows.next()? {
                let Some(f) = figures.get_mut(&r.get::<_, String>(0)?) else {
                    continue;
                };
                f.visits += 1;
                f.hazards_found += r.get::<_, i64>(4)?.max(0) as u64;
                f.flagged += u64::from(r.get::<_, i64>(5)? != 0);
                f.mock += u64::from(r.get::<_, i64>(6)? != 0);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT author, json_extract(action, '$.action') FROM hazard_events
                 WHERE action IS NOT NULL AND wall_ms >= ?1 AND wall_ms < ?2",
            )?;
            let mut rows = stmt.query([
                china_midnight_ms(from),
                china_midnight_ms(to + Days::new(1)),
            ])?;
            while let Some(r) = rows.next()? {
                let Some(f) = figures.get_mut(&r.get::<_, String>(0)?) else {
                    continue;
                };
                f.actions += 1;
                let action: Option<String> = r.get(1)?;
                if matches!(action.as_deref(), Some("recheck_passed" | "recheck_failed")) {
                    f.rechecks += 1;
                }
            }
            let items: Vec<Value> = people
                .into_iter()
                .map(|(id, name)| {
                    let f = figures.remove(&id).unwrap_or_default();
                    json!({ "id": id, "name": name, "figures": f })
                })
                .collect();
            Ok(json!({ "from": from, "to": to, "items": items }))
        })
        .await?;
    Ok(Json(answer))
}

/// `GET /dash/api/workers/{id}?from&to`: one worker's visits and hazard actions in the period.
async fn worker(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<Period>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let today = xuncha_core::clock::china_date(state.now_ms());
    let (from, to) = period(&p, today)?;
    let answer = state
        .read(move |conn, tables| {
            let Some((_, name)) = workers_of(tables, &scope)?
                .into_iter()
                .find(|(w, _)| *w == id)
            else {
                return Err(ApiError::forbidden(
                    "out_of_scope",
                    "该人员不在您负责的范围内",
                    "this worker is outside your area",
                ));
            };
            let shop = |premises: &str| -> Result<String, ApiError> {
                Ok(conn
                    .prepare_cached(
                        "SELECT json_extract(value, '$') FROM premises_fields
                         WHERE premises_id = ?1 AND field = 'name'",
                    )?
                    .query_row([premises], |r| r.get::<_, String>(0))
                    .unwrap_or_default())
            };
            let mut visits = Vec::new();
            let mut stmt = conn.prepare_cached(&format!(
                "{VISITS} AND i.inspector = ?3 ORDER BY i.performed_on DESC, i.hlc DESC"
            ))?;
            let mut rows = stmt.query([from.to_string(), to.to_string(), id.clone()])?;
            while let Some(r) = rows.next()? {
                let premises: String = r.get(2)?;
                let distance: f64 = r.get(7)?;
                visits.push(json!({
                    "id": r.get::<_, String>(1)?,
                    "premises_id": premises,
                    "premises": shop(&premises)?,
                    "performed_on": r.get::<_, String>(3)?,
                    "findings": r.get::<_, i64>(4)?,
                    "flagged": r.get::<_, i64>(5)? != 0,
                    "mock": r.get::<_, i64>(6)? != 0,
                    "distance_m": (distance >= 0.0).then(|| distance.round()),
                }));
            }
            let mut actions = Vec::new();
            let mut stmt = conn.prepare_cached(
                "SELECT e.hazard_id, e.wall_ms, e.action, e.note, h.premises_id
                 FROM hazard_events e JOIN hazards h ON h.id = e.hazard_id
                 WHERE e.action IS NOT NULL AND e.author = ?1 AND e.wall_ms >= ?2 AND e.wall_ms < ?3
                 ORDER BY e.wall_ms DESC",
            )?;
            let mut rows = stmt.query(rusqlite::params![
                id,
                china_midnight_ms(from),
                china_midnight_ms(to + Days::new(1))
            ])?;
            while let Some(r) = rows.next()? {
                let action: String = r.get(2)?;
                let premises: String = r.get(4)?;
                actions.push(json!({
                    "hazard_id": r.get::<_, String>(0)?,
                    "at_ms": r.get::<_, i64>(1)?,
                    "action": serde_json::from_str::<Value>(&action).unwrap_or(Value::Null),
                    "note": r.get::<_, Option<String>>(3)?,
                    "premises_id": premises,
                    "premises": shop(&premises)?,
                }));
            }
            Ok(json!({
                "id": id, "name": name, "from": from, "to": to,
                "visits": visits, "actions": actions,
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// The per-worker routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dash/api/workers", get(workers))
        .route("/dash/api/workers/{id}", get(worker))
}
