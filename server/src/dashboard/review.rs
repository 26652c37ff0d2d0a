//! Hazard review: everything about one hazard (finding, checklist answers, photos, history
//! with who, when and where, the proximity flag), the supervisor's actions, written as ops
//! so they reach the phones on their next sync, and the printable rectification notice.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{Value, json};
use xuncha_core::checklist::Item;
use xuncha_core::hazard::{Hazard, HazardAction};
use xuncha_core::model::{HazardId, Inspection, PhotoRef, Premises, UserId};
use xuncha_core::store::Store;

use super::map::kind_of;
use super::{escape, supervisor_scope};
use crate::AppState;
use crate::accounts::{Caller, Scope};
use crate::error::ApiError;
use crate::photo_tables::PhotoTables;

/// The hazard, its premises and the inspection that found it, if the caller may see them.
fn load(
    store: &Store,
    id: &str,
    scope: &Scope,
) -> Result<(Hazard, Premises, Option<Inspection>), ApiError> {
    let not_found = || ApiError::not_found(format!("no hazard {id}"));
    let hazard = store.hazard(&HazardId::from(id))?.ok_or_else(not_found)?;
    let premises = store
        .premises(&hazard.origin.premises_id)?
        .ok_or_else(not_found)?;
    let grid = premises.fields.grid_id.clone().unwrap_or_default();
    if !scope.covers(&grid) {
        return Err(ApiError::forbidden(
            "out_of_scope",
            "该隐患不在您负责的范围内",
            "this hazard is outside your area",
        ));
    }
    let inspection = store.inspection(&hazard.origin.inspection_id)?;
    Ok((hazard, premises, inspection))
}

/// The checklist item of a code, in the version the inspection used.
pub(super) fn item<'a>(
    store: &'a Store,
    inspection: Option<&Inspection>,
    code: &str,
) -> Option<&'a Item> {
    let kind = kind_of(code);
    let version = inspection
        .and_then(|i| i.checklists.iter().find(|c| c.kind == kind))
        .map(|c| c.version);
    let catalog = store.catalog();
    version
        .and_then(|v| catalog.get(kind, v))
        .or_else(|| catalog.latest(kind))?
        .item(code)
}

/// Whether the server holds each photo (verified upload).
pub(super) fn photo_list(
    tables: &dyn PhotoTables,
    photos: &[PhotoRef],
) -> Result<Vec<Value>, ApiError> {
    let shas: Vec<String> = photos.iter().map(|p| p.sha256.clone()).collect();
    let held = tables.photos_held(&shas)?;
    Ok(photos
        .iter()
        .map(|p| {
            json!({
                "sha256": p.sha256,
                "width": p.width,
                "height": p.height,
                "uploaded": held.contains(&p.sha256),
            })
        })
        .collect())
}

/// `GET /dash/api/hazards/{id}`.
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let today = super::today(&state);
    let gcj02 = state.config.tiles.gcj02;
    let answer = state
        .read_store(move |store, tables| {
            let (hazard, premises, inspection) = load(store, &id, &scope)?;
            let code = hazard.origin.finding.code.clone();
            let finding_item = item(store, inspection.as_ref(), &code);
            let answers: Vec<Value> = match &inspection {
                Some(i) => i
                    .answers
                    .iter()
                    .map(|a| {
                        let it = item(store, Some(i), &a.code);
                        Ok(json!({
                            "code": a.code,
                            "label": it.map(|it| &it.label),
                            "value": a.value,
                            "value_text": it.map(|it| it.answer_text(&a.value)),
                            "detail": a.detail,
                            "note": a.note,
                            "hazard": i.findings.iter().any(|f| f.code == a.code),
                            "photos": photo_list(tables, &a.photos)?,
                        }))
                    })
                    .collect::<Result<_, ApiError>>()?,
                None => Vec::new(),
            };
            let before: Vec<PhotoRef> = inspection
                .as_ref()
                .and_then(|i| i.answers.iter().find(|a| a.code == code))
                .map(|a| a.photos.clone())
                .unwrap_or_default();
            let history = store.hazard_history(&hazard.id)?;
            // People by their names: the assignee, the inspector and every step's author.
            let names = crate::accounts::display_names(tables,
                [hazard.assignee.as_str(), hazard.origin.found_by.as_str()]
                    .into_iter()
                    .chain(inspection.iter().map(|i| i.inspector.as_str()))
                    .chain(history.iter().map(|e| e.by.as_str())),
            )?;
            let deadline = hazard.deadline.map_or(i32::MAX, super::map::day_number);
            let overdue_days =
                if hazard.status.is_open() && deadline != i32::MAX && today > deadline {
                    today - deadline
                } else {
                    0
                };
            // Extensions fall on working days: offer some, counted as the core counts them
            // from today or the current deadline, whichever is later.
            let from_day = if deadline == i32::MAX { today } else { today.max(deadline) };
            let from = super::map::date_of(from_day).unwrap_or_default();
            let deadline_choices: Vec<Value> = [3u64, 5, 10, 20]
                .iter()
                .map(|n| json!({ "working_days": n, "date": store.calendar().add_working_days(from, *n).to_string() }))
                .collect();
            Ok(json!({
                "hazard": hazard,
                "overdue_days": overdue_days,
                "deadline_choices": deadline_choices,
                "item": finding_item.map(|it| json!({
                    "label": it.label, "fix": it.fix, "basis": it.basis,
                })),
                "premises": premises,
                "inspection": inspection.as_ref().map(|i| json!({
                    "id": i.id, "performed_on": i.performed_on, "inspector": i.inspector,
                    "geotag": i.geotag, "proximity": i.proximity, "note": i.note,
                })),
                "answers": answers,
                "photos": {
                    "before": photo_list(tables, &before)?,
                    "after": photo_list(tables, &hazard.after_photos)?,
                },
                "history": history,
                "names": names,
                // Where the map shows the shop (its tiles' datum), to move there.
                "map_position": premises.fields.location.map(|p| {
                    if gcj02 { xuncha_core::location::wgs84_to_gcj02(p) } else { p }
                }),
                "grid_name": premises.fields.grid_id.as_ref().and_then(|g| {
                    super::work::grid_names(tables).ok()?.remove(g)
                }),
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// A supervisor's action, in the op's own format (`{"action": "deadline_extended",
/// "deadline": "2026-12-20"}`), with an optional note.
#[derive(Debug, Deserialize)]
struct ActionRequest {
    #[serde(flatten)]
    action: HazardAction,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /dash/api/hazards/{id}/actions`: approve closure, extend the deadline, reassign or
/// escalate; written as an op authored by the supervisor, so phones get it on their next sync.
async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    crate::body::JsonBody(request): crate::body::JsonBody<ActionRequest>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    if !matches!(
        request.action,
        HazardAction::ClosureApproved
            | HazardAction::DeadlineExtended { .. }
            | HazardAction::Reassigned { .. }
            | HazardAction::Escalated { .. }
            | HazardAction::Urged
    ) {
        return Err(ApiError::invalid(
            "not_a_review_action",
            "监管平台只能审批销号、延期、改派、升级或催办；整改和复查由网格员在现场记录",
            "the dashboard approves closure, extends, reassigns, escalates or chases; fixes and re-checks are recorded on site",
        ));
    }
    // Every review action is deliberate and explained: the reason goes into the op and the
    // hazard's history, where the worker and the next supervisor read it.
    let reason = request
        .note
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    let Some(reason) = reason else {
        return Err(ApiError::invalid(
            "reason_required",
            "请填写操作理由，它会记入隐患的处理记录",
            "give a reason: it goes into the hazard's history",
        ));
    };
    let user = caller.user.clone();
    let hazard = state
        .write(move |w| {
            let (hazard, _, _) = load(w.replica(), &id, &scope)?;
            if let HazardAction::Reassigned { to } = &request.action {
                let Some((_, covers)) = crate::accounts::role_and_scope(w.tables(), to)? else {
                    return Err(ApiError::invalid(
                        "unknown_user",
                        format!("没有用户 {to}"),
                        format!("no user {to}"),
                    ));
                };
                // Only someone whose phone receives this shop can follow the hazard up.
                let grid: Option<String> = w
                    .replica()
                    .conn()
                    .prepare_cached(
                        "SELECT json_extract(value, '$') FROM premises_fields
                         WHERE premises_id = ?1 AND field = 'grid_id'",
                    )?
                    .query_row([hazard.origin.premises_id.as_str()], |r| r.get(0))
                    .optional()?
                    .flatten();
                let sees = match (&covers, grid.as_deref()) {
                    (crate::accounts::Scope::All, _) => true,
                    (scope, Some(g)) => scope.covers(g),
                    (_, None) => false,
                };
                if !sees {
                    return Err(ApiError::invalid(
                        "assignee_out_of_area",
                        format!("{to} 不负责该场所所在网格，无法跟进"),
                        format!("{to} does not cover the shop's grid and could not follow it up"),
                    ));
                }
            }
            Ok(w.store().act_as(UserId(user.0.clone()), |s| {
                s.record_hazard_event(&hazard.id, request.action, None, Some(reason))
            })?)
        })
        .await?;
    Ok(Json(json!({ "hazard": hazard })))
}

/// `GET /dash/api/hazards/{id}/assignees`: who could follow the hazard up (their phones
/// receive the shop), for the reassignment picker; the current assignee is marked.
async fn assignees(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let answer = state
        .read_store(move |store, tables| {
            let (hazard, premises, _) = load(store, &id, &scope)?;
            let grid = premises.fields.grid_id.unwrap_or_default();
            let people = crate::accounts::users_covering(tables, &grid)?;
            Ok(json!({ "current": hazard.assignee, "assignees": people }))
        })
        .await?;
    Ok(Json(answer))
}

/// `GET /dash/notice/{id}`: the rectification notice (整改通知书), ready to print.
async fn notice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let (configured, contact) = (
        state.config.notice_area.clone(),
        state.config.notice_contact.clone(),
    );
    let html = state
        .read_store(move |store, tables| {
            let (hazard, premises, inspection) = load(store, &id, &scope)?;
            // A notice is printed once it has been issued, with its number and deadline.
            let (Some(number), Some(deadline)) = (hazard.notice_no.clone(), hazard.deadline) else {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "notice_not_issued",
                    "该隐患尚未下发整改通知书，无法打印",
                    "no rectification notice has been issued for this hazard yet",
                ));
            };
            // One notice per shop and visit: every hazard issued under this number.
            let ids: Vec<String> = store
                .conn()
                .prepare_cached(
                    "SELECT id FROM hazards WHERE premises_id = ?1
                       AND json_extract(state, '$.notice_no') = ?2 ORDER BY id",
                )?
                .query_map(
                    rusqlite::params![hazard.origin.premises_id.as_str(), number],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            let mut listed: Vec<Hazard> = Vec::new();
            for id in &ids {
                if let Some(h) = store.hazard(&HazardId::from(id.as_str()))? {
                    listed.push(h);
                }
            }
            if listed.is_empty() {
                listed.push(hazard.clone());
            }
            let day = |d: chrono::NaiveDate| d.format("%Y年%m月%d日").to_string();
            let mut rows = String::new();
            let mut labels = Vec::new();
            let mut photos_held = Vec::new();
            for (n, h) in listed.iter().enumerate() {
                let code = &h.origin.finding.code;
                let it = item(store, inspection.as_ref(), code);
                let label = it.map_or(code.clone(), |i| i.label.zh.clone());
                let fix = it
                    .and_then(|i| i.fix.as_ref())
                    .map_or(String::new(), |f| f.zh.clone());
                let basis = it.map_or(String::new(), |i| i.basis.clone());
                let by = h
                    .deadline
                    .map_or(String::new(), |d| format!("{}前", day(d)));
                rows.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    n + 1,
                    escape(&label),
                    escape(&basis),
                    escape(&fix),
                    escape(&by)
                ));
                labels.push(label);
                // The photos of each hazard as found (those the server holds).
                let before: Vec<PhotoRef> = inspection
                    .as_ref()
                    .and_then(|i| i.answers.iter().find(|a| &a.code == code))
                    .map(|a| a.photos.clone())
                    .unwrap_or_default();
                photos_held.extend(photo_list(tables, &before)?);
            }
            // The earliest deadline binds the receipt; each item says its own.
            let earliest = listed
                .iter()
                .filter_map(|h| h.deadline)
                .min()
                .unwrap_or(deadline);
            let deadline = if listed.iter().all(|h| h.deadline == Some(earliest)) {
                format!("{}前", day(earliest))
            } else {
                format!("{}前（各项期限见通知书）", day(earliest))
            };
            let found = day(hazard.origin.found_on);
            // The issuing office: configured, else the shop's sub-district and community.
            let issuer = if configured.is_empty() {
                let grid = premises.fields.grid_id.clone().unwrap_or_default();
                tables
                    .grid(&grid)?
                    .map(|g| g.grid.subdistrict + &g.grid.community)
                    .unwrap_or_default()
            } else {
                configured
            };
            let inspector =
                crate::accounts::display_names(tables, [hazard.origin.found_by.as_str()])?
                    .remove(hazard.origin.found_by.as_str())
                    .unwrap_or_else(|| hazard.origin.found_by.0.clone());
            let held = photos_held;
            let images: String = held
                .iter()
                .filter(|p| p["uploaded"] == true)
                .take(4)
                .filter_map(|p| p["sha256"].as_str())
                .map(|sha| format!("<img src=\"/v1/photos/{}\" alt=\"隐患照片\">", escape(sha)))
                .collect();
            let photos = if images.is_empty() {
                String::new()
            } else {
                format!("<p class=\"photos\">现场照片：{images}</p>")
            };
            let contact = if contact.is_empty() {
                String::new()
            } else {
                format!("联系方式：{}。", escape(&contact))
            };
            Ok(format!(
                include_str!("../../assets/dashboard/notice.html"),
                issuer = escape(&issuer),
                number = escape(&number),
                name = escape(&premises.fields.name),
                address = escape(&premises.fields.address),
                found = escape(&found),
                labels = escape(&labels.join("；")),
                count = listed.len(),
                items = rows,
                deadline = escape(&deadline),
                inspector = escape(&inspector),
                photos = photos,
                contact = contact,
            ))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The review routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dash/api/hazards/{id}", get(detail))
        .route("/dash/api/hazards/{id}/actions", post(act))
        .route("/dash/api/hazards/{id}/assignees", get(assignees))
        .route("/dash/notice/{id}", get(notice))
}
