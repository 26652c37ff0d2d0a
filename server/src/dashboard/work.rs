//! Work lists and figures: overdue hazards (from the map index, fast at any size), visits and
//! re-checks due this week (the phones' due list), and per grid and community the figures a
//! supervisor reports: inspections done vs due, open hazards by checklist, rectification
//! rate, the share closed by the deadline and how long closing took; and new, closed and
//! overdue hazards week by week.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Days;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xuncha_core::due::DueKind;
use xuncha_core::location::wgs84_to_gcj02;
use xuncha_core::model::LatLon;

use super::map::{self, BBox, MapAnswer};
use super::{FilterQuery, supervisor_scope, today, with_index};
use crate::AppState;
use crate::account_tables::AccountTables;
use crate::accounts::{Caller, Scope};
use crate::error::ApiError;

/// Grids the caller sees, with their boundaries (GeoJSON geometry, shifted to GCJ-02 when
/// the tiles are).
pub fn grids(
    tables: &dyn AccountTables,
    scope: &Scope,
    gcj02: bool,
) -> Result<Vec<Value>, ApiError> {
    let rows = tables.grids()?.into_iter().map(|g| {
        Ok::<_, ApiError>((
            g.grid.id,
            g.grid.name,
            g.grid.community,
            g.grid.subdistrict,
            g.geometry,
        ))
    });
    let mut out = Vec::new();
    for row in rows {
        let (id, name, community, subdistrict, geometry) = row?;
        if !scope.covers(&id) {
            continue;
        }
        let mut geometry: Value = geometry
            .and_then(|g| serde_json::from_str(&g).ok())
            .unwrap_or(Value::Null);
        if gcj02 {
            shift_coordinates(&mut geometry);
        }
        out.push(json!({
            "id": id, "name": name, "community": community, "subdistrict": subdistrict,
            "geometry": geometry,
        }));
    }
    Ok(out)
}

/// Community of each grid.
pub fn communities(tables: &dyn AccountTables) -> Result<HashMap<String, String>, ApiError> {
    Ok(tables
        .grids()?
        .into_iter()
        .map(|g| (g.grid.id, g.grid.community))
        .collect())
}

/// Shifts every `[lon, lat]` position in a GeoJSON geometry to GCJ-02.
fn shift_coordinates(v: &mut Value) {
    match v {
        Value::Array(items) if items.len() >= 2 && items.iter().all(Value::is_number) => {
            let (lon, lat) = (
                items[0].as_f64().unwrap_or(0.0),
                items[1].as_f64().unwrap_or(0.0),
            );
            let p = wgs84_to_gcj02(LatLon { lat, lon });
            items[0] = json!(p.lon);
            items[1] = json!(p.lat);
        }
        Value::Array(items) => items.iter_mut().for_each(shift_coordinates),
        Value::Object(map) => map.values_mut().for_each(shift_coordinates),
        _ => {}
    }
}

/// A GCJ-02 position back to WGS-84 (to within a metre or so: one correction step).
fn gcj02_to_wgs84(p: LatLon) -> LatLon {
    let shifted = wgs84_to_gcj02(p);
    LatLon {
        lat: p.lat - (shifted.lat - p.lat),
        lon: p.lon - (shifted.lon - p.lon),
    }
}

/// A box in the tiles' GCJ-02 back to WGS-84.
pub fn bbox_to_wgs84(b: BBox) -> BBox {
    let sw = gcj02_to_wgs84(LatLon {
        lat: b.south,
        lon: b.west,
    });
    let ne = gcj02_to_wgs84(LatLon {
        lat: b.north,
        lon: b.east,
    });
    BBox {
        south: sw.lat,
        west: sw.lon,
        north: ne.lat,
        east: ne.lon,
    }
}

/// Moves an answer's positions to GCJ-02 for drawing on Chinese tiles.
pub fn shift_answer(a: &mut MapAnswer) {
    for m in &mut a.markers {
        let p = wgs84_to_gcj02(LatLon {
            lat: f64::from(m.lat),
            lon: f64::from(m.lon),
        });
        (m.lat, m.lon) = (p.lat as f32, p.lon as f32);
    }
    for c in &mut a.clusters {
        let p = wgs84_to_gcj02(LatLon {
            lat: c.lat,
            lon: c.lon,
        });
        (c.lat, c.lon) = (p.lat, p.lon);
    }
}

/// One hazard in a list.
#[derive(Debug, Serialize)]
pub struct HazardRow {
    /// Hazard id.
    pub id: String,
    /// Premises.
    pub premises_id: String,
    /// Premises name.
    pub premises: String,
    /// Grid.
    pub grid: String,
    /// Its name.
    pub grid_name: String,
    /// Item code.
    pub code: String,
    /// The item's label.
    pub item: Option<xuncha_core::model::Text>,
    /// Status.
    pub status: xuncha_core::hazard::HazardStatus,
    /// Severity.
    pub severity: xuncha_core::model::Severity,
    /// Deadline.
    pub deadline: Option<String>,
    /// Days overdue.
    pub overdue_days: i32,
    /// Who must act.
    pub assignee: String,
    /// Their display name.
    pub assignee_name: String,
    /// Escalation level.
    pub escalation: u8,
}

/// Grid names by id.
pub fn grid_names(tables: &dyn AccountTables) -> Result<HashMap<String, String>, ApiError> {
    Ok(tables
        .grids()?
        .into_iter()
        .map(|g| (g.grid.id, g.grid.name))
        .collect())
}

/// Fills in names for listed hazards.
pub fn hazard_rows(
    conn: &Connection,
    tables: &dyn AccountTables,
    listed: &[(String, map::HazardPoint, String)],
    today: i32,
) -> Result<Vec<HazardRow>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.premises_id, COALESCE(json_extract(n.value, '$'), ''), h.assignee,
                COALESCE(json_extract(h.state, '$.origin.finding.code'), '')
         FROM hazards h
         LEFT JOIN premises_fields n ON n.premises_id = h.premises_id AND n.field = 'name'
         WHERE h.id = ?1",
    )?;
    let grid_names = grid_names(tables)?;
    let catalog = xuncha_core::checklist::Catalog::builtin();
    let rows = listed
        .iter()
        .map(|(id, _, _)| {
            stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        })
        .collect::<Result<Vec<(String, String, String, String)>, _>>()?;
    let names = crate::accounts::display_names(tables, rows.iter().map(|r| r.2.as_str()))?;
    let mut out = Vec::with_capacity(listed.len());
    for ((id, p, grid), (premises_id, premises, assignee, code)) in listed.iter().zip(rows) {
        out.push(HazardRow {
            id: id.clone(),
            premises_id,
            premises,
            grid: grid.clone(),
            grid_name: grid_names
                .get(grid)
                .cloned()
                .unwrap_or_else(|| grid.clone()),
            item: catalog
                .latest(p.kind)
                .and_then(|l| l.item(&code))
                .map(|i| i.label.clone()),
            code,
            status: p.status,
            severity: p.severity,
            deadline: map::date_of(p.deadline).map(|d| d.to_string()),
            overdue_days: p.overdue_days(today),
            assignee_name: names.get(&assignee).unwrap_or(&assignee).clone(),
            assignee,
            escalation: p.escalation,
        });
    }
    Ok(out)
}

/// Overdue hazards listed per page.
pub const OVERDUE_PAGE: usize = 50;

/// The overdue list's order and page.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    /// `days_overdue` (default), `deadline`, `grid`, `severity`, `escalation`.
    sort: Option<map::OverdueSort>,
    /// `asc` or `desc` (default: each key's natural order).
    order: Option<String>,
    /// From 0.
    page: Option<usize>,
}

/// `GET /dash/api/overdue?sort&order&page`: one page of the overdue hazards, most overdue
/// first unless sorted otherwise, with counts by grid.
async fn overdue(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<FilterQuery>,
    list: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(list) = list.map_err(|e| {
        ApiError::invalid(
            "bad_query",
            "排序或页码不正确",
            format!("{e}; sort is days_overdue, deadline, grid, severity or escalation"),
        )
    })?;
    let scope = supervisor_scope(&state, &caller).await?;
    let filter = q.filter()?;
    let today = today(&state);
    let by = list.sort.unwrap_or_default();
    let descending = match list.order.as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        None | Some("") => matches!(
            by,
            map::OverdueSort::DaysOverdue
                | map::OverdueSort::Severity
                | map::OverdueSort::Escalation
        ),
        Some(other) => {
            return Err(ApiError::invalid(
                "bad_query",
                format!("排序方向不正确：{other}"),
                format!("order must be asc or desc, not {other:?}"),
            ));
        }
    };
    let order = map::OverdueOrder { by, descending };
    let page = list.page.unwrap_or(0).min(1_000_000);
    let answer = with_index(&state, move |index, conn, tables| {
        let (total, top) = index.overdue_page(
            &scope,
            &filter,
            today,
            order,
            page * OVERDUE_PAGE,
            OVERDUE_PAGE,
        );
        let listed: Vec<(String, map::HazardPoint, String)> = top
            .iter()
            .map(|(id, p)| ((*id).to_owned(), **p, index.grid_name(p).to_owned()))
            .collect();
        let mut by_grid: BTreeMap<String, u32> = BTreeMap::new();
        let mut all_filter = filter.clone();
        all_filter.overdue = true;
        for (_, p) in index.matching(&scope, &all_filter, today) {
            *by_grid.entry(index.grid_name(p).to_owned()).or_default() += 1;
        }
        let items = hazard_rows(conn, tables, &listed, today)?;
        // The chart names grids as people do.
        let names = grid_names(tables)?;
        let by_grid: BTreeMap<&str, u32> = by_grid
            .iter()
            .map(|(id, n)| (names.get(id).map_or(id.as_str(), String::as_str), *n))
            .collect();
        Ok(json!({
            "total": total,
            "page": page,
            "page_size": OVERDUE_PAGE,
            "by_grid": by_grid,
            "items": items,
        }))
    })
    .await?;
    Ok(Json(answer))
}

/// `GET /dash/api/due-week`: routine visits and hazard work due within seven days (overdue
/// included), as the phones compute them.
async fn due_week(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let now = state.now_ms();
    let answer = state
        .read_store(move |store, tables| {
            let today = xuncha_core::clock::china_date(now);
            let horizon = today.checked_add_days(Days::new(7)).unwrap_or(today);
            let items = store.due(now)?;
            let places = crate::overdue::places(store.conn(), tables)?;
            let mut out = Vec::new();
            for i in items.into_iter().filter(|i| i.due_on <= horizon) {
                let place = places
                    .get(i.premises_id.as_str())
                    .cloned()
                    .unwrap_or_default();
                let grid = place.grid.unwrap_or_default();
                if !scope.covers(&grid) {
                    continue;
                }
                out.push(json!({
                    "kind": crate::overdue::kind_name(i.kind),
                    "premises_id": i.premises_id, "premises": place.name, "grid": grid,
                    "hazard_id": i.hazard_id, "due_on": i.due_on.to_string(),
                    "overdue_days": i.overdue_days, "major": i.major,
                }));
                if out.len() >= 1000 {
                    break;
                }
            }
            Ok(json!({ "until": horizon.to_string(), "items": out }))
        })
        .await?;
    Ok(Json(answer))
}

/// Weeks of the trend chart.
const TREND_WEEKS: u32 = 12;

#[derive(Debug, Deserialize)]
struct Period {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /dash/api/figures?from&to`: figures per grid and per community (default: the last
/// 30 days).
async fn figures(
    State(state): State<AppState>,
    caller: Caller,
    Query(period): Query<Period>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let now = state.now_ms();
    let today_date = xuncha_core::clock::china_date(now);
    let q = FilterQuery {
        from: period.from,
        to: period.to,
        ..FilterQuery::default()
    };
    let filter = q.filter()?;
    let to = filter.to.unwrap_or(today_date);
    let from = filter
        .from
        .unwrap_or_else(|| to.checked_sub_days(Days::new(29)).unwrap_or(to));
    let day = today(&state);
    let scope2 = scope.clone();
    // Inspections done, and routine visits overdue now, by grid.
    let (done, overdue_visits, community_map) = state
        .read_store(move |store, tables| {
            let conn = store.conn();
            let mut done: BTreeMap<String, u64> = BTreeMap::new();
            let mut stmt = conn.prepare_cached(
                "SELECT COALESCE(json_extract(g.value, '$'), ''), COUNT(DISTINCT i.root)
                 FROM inspections i
                 LEFT JOIN premises_fields g ON g.premises_id = i.premises_id AND g.field = 'grid_id'
                 WHERE i.performed_on BETWEEN ?1 AND ?2 GROUP BY 1",
            )?;
            let rows = stmt.query_map([from.to_string(), to.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (grid, n) = row?;
                if scope2.covers(&grid) {
                    done.insert(grid, n as u64);
                }
            }
            let places = crate::overdue::places(conn, tables)?;
            let mut overdue: BTreeMap<String, u64> = BTreeMap::new();
            for i in store.due(now)? {
                if i.kind != DueKind::Routine || i.overdue_days == 0 {
                    continue;
                }
                let grid = places
                    .get(i.premises_id.as_str())
                    .and_then(|p| p.grid.clone())
                    .unwrap_or_default();
                if scope2.covers(&grid) {
                    *overdue.entry(grid).or_default() += 1;
                }
            }
            Ok((done, overdue, communities(tables)?))
        })
        .await?;
    let grid_communities = community_map.clone();
    let (by_grid, by_community, weekly) = with_index(&state, move |index, _, _| {
        let community_of = |g: &str| grid_communities.get(g).cloned().unwrap_or_default();
        Ok((
            index.figures(&scope, from, to, day, &|g| g.to_owned()),
            index.figures(&scope, from, to, day, &community_of),
            index.weekly(&scope, to, TREND_WEEKS),
        ))
    })
    .await?;
    let rows = |figures: BTreeMap<String, map::HazardFigures>, key: &dyn Fn(&str) -> String| {
        let mut visits: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (grid, n) in &done {
            visits.entry(key(grid)).or_default().0 += n;
        }
        for (grid, n) in &overdue_visits {
            visits.entry(key(grid)).or_default().1 += n;
        }
        let mut names: Vec<String> = figures.keys().cloned().collect();
        names.extend(visits.keys().cloned());
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let f = figures.get(&name).cloned().unwrap_or_default();
                let (done, late) = visits.get(&name).copied().unwrap_or_default();
                json!({
                    "name": name,
                    "inspections_done": done,
                    // Due in the period: those done plus routine visits still outstanding.
                    "inspections_due": done + late,
                    "open_by_kind": f.open_by_kind,
                    "overdue_hazards": f.overdue,
                    "found": f.found,
                    "closed": f.closed,
                    "rectification_rate": (f.found > 0).then(|| f64::from(f.closed) / f64::from(f.found)),
                    "median_days_to_close": f.median_days_to_close,
                    // What a median of 0 days hides: how many were closed by their deadline,
                    // and how long closing took.
                    "closed_in_period": f.closed_in_period,
                    "closed_on_time": f.closed_on_time,
                    "on_time_rate": (f.closed_in_period > 0)
                        .then(|| f64::from(f.closed_on_time) / f64::from(f.closed_in_period)),
                    "days_to_close": f.days_to_close,
                })
            })
            .collect::<Vec<_>>()
    };
    let community_of = |g: &str| community_map.get(g).cloned().unwrap_or_default();
    Ok(Json(json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "by_grid": rows(by_grid, &|g| g.to_owned()),
        "by_community": rows(by_community, &community_of),
        "weekly": weekly,
        "close_day_buckets": map::CLOSE_DAY_BUCKETS,
    })))
}

/// The work-list and figure routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dash/api/overdue", get(overdue))
        .route("/dash/api/due-week", get(due_week))
        .route("/dash/api/figures", get(figures))
}
