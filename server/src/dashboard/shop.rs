//! 一店一档: everything about one shop on one page (its fields, every visit with the answers
//! and photos, its hazards with their history, its QR code), and the search that finds it.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use xuncha_core::model::PremisesId;

use super::review::{item, photo_list};
use super::supervisor_scope;
use super::work::grid_names;
use crate::AppState;
use crate::accounts::Caller;
use crate::error::ApiError;

/// Shops listed at most for one search.
const SEARCH_LIMIT: usize = 50;

#[derive(Debug, Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

/// `GET /dash/api/premises?q=`: shops of the caller's area whose name or address contains
/// `q`, by name, at most 50.
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(search): Query<Search>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let q = search.q.trim().to_owned();
    if q.is_empty() {
        return Ok(Json(json!({ "items": [] })));
    }
    let answer = state
        .read(move |conn, tables| {
            // LIKE with the user's text taken literally.
            let pattern = format!(
                "%{}%",
                q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
            );
            let mut stmt = conn.prepare_cached(
                "SELECT n.premises_id, json_extract(n.value, '$'),
                        COALESCE(json_extract(a.value, '$'), ''),
                        COALESCE(json_extract(g.value, '$'), ''),
                        (SELECT COUNT(*) FROM hazards h WHERE h.premises_id = n.premises_id
                           AND json_extract(h.state, '$.status') IN
                               ('found', 'rectifying', 'awaiting_recheck', 'awaiting_approval'))
                 FROM premises_fields n
                 LEFT JOIN premises_fields a ON a.premises_id = n.premises_id AND a.field = 'address'
                 LEFT JOIN premises_fields g ON g.premises_id = n.premises_id AND g.field = 'grid_id'
                 WHERE n.field = 'name' AND (json_extract(n.value, '$') LIKE ?1 ESCAPE '\\'
                    OR json_extract(a.value, '$') LIKE ?1 ESCAPE '\\')
                 ORDER BY 2, 1",
            )?;
            let names = grid_names(tables)?;
            let mut rows = stmt.query([pattern])?;
            let mut items = Vec::new();
            let mut more = false;
            while let Some(r) = rows.next()? {
                let grid: String = r.get(3)?;
                if !scope.covers(&grid) {
                    continue;
                }
                if items.len() == SEARCH_LIMIT {
                    more = true;
                    break;
                }
                items.push(json!({
                    "id": r.get::<_, String>(0)?,
                    "name": r.get::<_, String>(1)?,
                    "address": r.get::<_, String>(2)?,
                    "grid": grid,
                    "grid_name": names.get(&grid).unwrap_or(&grid),
                    "open_hazards": r.get::<_, i64>(4)?,
                }));
            }
            Ok(json!({ "items": items, "more": more }))
        })
        .await?;
    Ok(Json(answer))
}

/// `GET /dash/api/premises/{id}`: the shop's file (一店一档).
async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let answer = state
        .read_store(move |store, tables| {
            let id = PremisesId(id);
            let not_found = || ApiError::not_found(format!("no premises {id}"));
            let premises = store.premises(&id)?.ok_or_else(not_found)?;
            let grid = premises.fields.grid_id.clone().unwrap_or_default();
            if !scope.covers(&grid) {
                return Err(ApiError::forbidden(
                    "out_of_scope",
                    "该场所不在您负责的范围内",
                    "these premises are outside your area",
                ));
            }
            let mut visits = store.inspections_of(&id)?;
            visits.reverse(); // newest first
            let hazards = store.hazards_of(&id)?;
            let mut people: Vec<String> = Vec::new();
            let mut visit_list = Vec::with_capacity(visits.len());
            for v in &visits {
                people.push(v.inspector.0.clone());
                let answers = v
                    .answers
                    .iter()
                    .map(|a| {
                        let it = item(store, Some(v), &a.code);
                        Ok(json!({
                            "code": a.code,
                            "label": it.map(|it| &it.label),
                            "value_text": it.map(|it| it.answer_text(&a.value)),
                            "note": a.note,
                            "hazard": v.findings.iter().any(|f| f.code == a.code),
                            "photos": photo_list(tables, &a.photos)?,
                        }))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                visit_list.push(json!({
                    "id": v.id,
                    "performed_on": v.performed_on,
                    "inspector": v.inspector,
                    "kinds": v.checklists.iter().map(|c| c.kind).collect::<Vec<_>>(),
                    "findings": v.findings.len(),
                    "proximity": v.proximity,
                    "mock": v.geotag.as_ref().is_some_and(|g| g.mock),
                    "answers": answers,
                }));
            }
            let mut hazard_list = Vec::with_capacity(hazards.len());
            for h in &hazards {
                let history = store.hazard_history(&h.id)?;
                people.push(h.assignee.0.clone());
                people.extend(history.iter().map(|e| e.by.0.clone()));
                let label = item(store, None, &h.origin.finding.code).map(|it| it.label.clone());
                hazard_list.push(json!({ "hazard": h, "label": label, "history": history }));
            }
            let names = crate::accounts::display_names(tables, people.iter().map(String::as_str))?;
            let grid_name = grid_names(tables)?.remove(&grid).unwrap_or(grid);
            Ok(json!({
                "premises": premises,
                "grid_name": grid_name,
                "qr": format!("/dash/premises/{}/qr.png", premises.id),
                "visits": visit_list,
                "hazards": hazard_list,
                "names": names,
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// The shop routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dash/api/premises", get(search))
        .route("/dash/api/premises/{id}", get(file))
}
