//! Campaigns (专项行动) on the dashboard: a supervisor sets one up for grids they cover (one
//! `campaign` op per grid, so each phone receives its grids' part and lists the shops on its
//! due list), follows its progress per grid and worker, exports it and ends it. Progress is
//! the core's ([`xuncha_core::campaign::progress`]), the same rule the phones list by.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Value, json};
use xuncha_core::campaign::{Campaign, PremisesProgress};
use xuncha_core::checklist::ChecklistKind;
use xuncha_core::model::{CampaignId, PremisesKind, UserId};
use xuncha_core::store::Store;

use super::export::{Lang, LangQuery, Table, content_type, respond};
use super::supervisor_scope;
use super::work::grid_names;
use crate::AppState;
use crate::accounts::{Caller, Scope};
use crate::error::ApiError;

/// What a supervisor asks for.
#[derive(Debug, Deserialize)]
struct NewCampaign {
    name: String,
    checklists: Vec<ChecklistKind>,
    #[serde(default)]
    premises_kinds: Vec<PremisesKind>,
    grids: Vec<String>,
    starts_on: NaiveDate,
    deadline: NaiveDate,
}

/// One campaign as the caller sees it: its records in grids they cover.
struct Seen {
    parts: Vec<(Campaign, Vec<PremisesProgress>)>,
}

impl Seen {
    fn first(&self) -> &Campaign {
        &self.parts[0].0
    }

    fn summary(&self, grid_names: &BTreeMap<String, String>) -> Value {
        let c = self.first();
        let (mut due, mut done, mut late, mut hazards) = (0u32, 0u32, 0u32, 0u32);
        for (part, shops) in &self.parts {
            for p in shops {
                due += 1;
                hazards += p.hazards_found;
                if p.is_done() {
                    done += 1;
                    late += u32::from(p.done_on.is_some_and(|d| d > part.deadline));
                }
            }
        }
        json!({
            "id": c.campaign_id,
            "name": c.name,
            "checklists": c.checklists,
            "premises_kinds": c.premises_kinds,
            "starts_on": c.starts_on.to_string(),
            "deadline": c.deadline.to_string(),
            "ended": self.parts.iter().all(|(p, _)| p.ended),
            "grids": self.parts.iter().map(|(p, _)| json!({
                "id": p.grid_id,
                "name": grid_names.get(&p.grid_id).unwrap_or(&p.grid_id),
            })).collect::<Vec<_>>(),
            "totals": { "due": due, "done": done, "late": late, "hazards": hazards },
        })
    }
}

/// The campaign's records in the caller's grids, with progress; 404 when there are none.
fn seen(store: &Store, scope: &Scope, id: &str) -> Result<Seen, ApiError> {
    let parts: Vec<(Campaign, Vec<PremisesProgress>)> =
        match store.campaign_progress(&CampaignId::from(id)) {
            Ok(parts) => parts,
            Err(xuncha_core::Error::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        }
        .into_iter()
        .filter(|(c, _)| scope.covers(&c.grid_id))
        .collect();
    if parts.is_empty() {
        return Err(ApiError::not_found(format!("campaign {id}")));
    }
    Ok(Seen { parts })
}

/// `GET /dash/api/campaigns`: the campaigns touching the caller's grids, newest first.
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let answer = state
        .read_store(move |store, tables| {
            let ids: BTreeSet<CampaignId> = store
                .campaigns()?
                .into_iter()
                .filter(|c| scope.covers(&c.grid_id))
                .map(|c| c.campaign_id)
                .collect();
            let names: BTreeMap<String, String> = grid_names(tables)?.into_iter().collect();
            let mut out: Vec<Value> = Vec::new();
            for id in ids {
                out.push(seen(store, &scope, id.as_str())?.summary(&names));
            }
            // Running first, then by start, newest first.
            out.sort_by(|a, b| {
                (a["ended"].as_bool(), b["starts_on"].as_str())
                    .cmp(&(b["ended"].as_bool(), a["starts_on"].as_str()))
            });
            Ok(json!({ "campaigns": out }))
        })
        .await?;
    Ok(Json(answer))
}

/// `POST /dash/api/campaigns`: sets up a campaign in grids the caller covers.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    crate::body::JsonBody(request): crate::body::JsonBody<NewCampaign>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let today = xuncha_core::clock::china_date(state.now_ms());
    let grids: BTreeSet<String> = request
        .grids
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    if grids.is_empty() {
        return Err(ApiError::invalid(
            "grids_required",
            "请至少选择一个网格",
            "choose at least one grid",
        ));
    }
    if request.deadline < today {
        return Err(ApiError::invalid(
            "deadline_past",
            "截止日期不能早于今天",
            "the deadline must not be before today",
        ));
    }
    for grid in &grids {
        if !scope.covers(grid) {
            return Err(ApiError::forbidden(
                "out_of_scope",
                format!("网格 {grid} 不在您的负责范围内"),
                format!("grid {grid} is not one you cover"),
            ));
        }
    }
    let id = CampaignId::random();
    let parts: Vec<Campaign> = grids
        .iter()
        .map(|grid| Campaign {
            campaign_id: id.clone(),
            grid_id: grid.clone(),
            name: request.name.trim().to_owned(),
            checklists: dedup(&request.checklists),
            premises_kinds: dedup(&request.premises_kinds),
            starts_on: request.starts_on,
            deadline: request.deadline,
            ended: false,
        })
        .collect();
    let user = caller.user.clone();
    let scope2 = scope.clone();
    let answer = state
        .write(move |w| {
            let known = grid_names(w.tables())?;
            if let Some(unknown) = parts.iter().find(|p| !known.contains_key(&p.grid_id)) {
                return Err(ApiError::invalid(
                    "unknown_grid",
                    format!("网格 {} 不存在", unknown.grid_id),
                    format!("there is no grid {}", unknown.grid_id),
                ));
            }
            w.store().atomic(|store| {
                store.act_as(UserId(user.0.clone()), |s| {
                    for part in parts {
                        s.record_campaign(part)?;
                    }
                    Ok(())
                })
            })?;
            let names: BTreeMap<String, String> = known.into_iter().collect();
            Ok(seen(w.replica(), &scope2, id.as_str())?.summary(&names))
        })
        .await?;
    Ok(Json(json!({ "campaign": answer })))
}

/// `POST /dash/api/campaigns/{id}/end`: ends the campaign in the caller's grids (the shops
/// leave the phones' due lists; its figures stay).
async fn end(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let user = caller.user.clone();
    let answer = state
        .write(move |w| {
            let running: Vec<Campaign> = seen(w.replica(), &scope, &id)?
                .parts
                .into_iter()
                .map(|(c, _)| c)
                .filter(|c| !c.ended)
                .collect();
            if running.is_empty() {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "campaign_ended",
                    "该专项行动已经结束",
                    "this campaign has already ended",
                ));
            }
            w.store().atomic(|store| {
                store.act_as(UserId(user.0.clone()), |s| {
                    for part in running {
                        s.record_campaign(Campaign {
                            ended: true,
                            ..part
                        })?;
                    }
                    Ok(())
                })
            })?;
            let names: BTreeMap<String, String> = grid_names(w.tables())?.into_iter().collect();
            Ok(seen(w.replica(), &scope, &id)?.summary(&names))
        })
        .await?;
    Ok(Json(json!({ "campaign": answer })))
}

/// A premises' row of a campaign.
struct Row<'a> {
    grid: &'a str,
    progress: &'a PremisesProgress,
    late: bool,
}

/// Names of premises by id.
fn premises_names(
    conn: &Connection,
    ids: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT json_extract(value, '$') FROM premises_fields WHERE premises_id = ?1 AND field = 'name'",
    )?;
    let mut out = BTreeMap::new();
    for id in ids {
        let name: Option<String> = rusqlite::OptionalExtension::optional(
            stmt.query_row([&id], |r| r.get::<_, Option<String>>(0)),
        )?
        .flatten();
        out.insert(id.clone(), name.unwrap_or(id));
    }
    Ok(out)
}

/// `GET /dash/api/campaigns/{id}`: progress per grid and worker, and every shop.
async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = supervisor_scope(&state, &caller).await?;
    let answer = state
        .read_store(move |store, tables| {
            let seen = seen(store, &scope, &id)?;
            let grids: BTreeMap<String, String> = grid_names(tables)?.into_iter().collect();
            let rows: Vec<Row<'_>> = rows(&seen);
            let shops = premises_names(
                store.conn(),
                rows.iter().map(|r| r.progress.premises_id.0.clone()),
            )?;
            let people = crate::accounts::display_names(
                tables,
                rows.iter()
                    .filter_map(|r| r.progress.done_by.as_ref().map(UserId::as_str)),
            )?;
            let mut by_grid: BTreeMap<&str, [u32; 4]> = BTreeMap::new();
            let mut by_worker: BTreeMap<&str, [u32; 2]> = BTreeMap::new();
            for r in &rows {
                let g = by_grid.entry(r.grid).or_default();
                g[0] += 1;
                g[3] += r.progress.hazards_found;
                if r.progress.is_done() {
                    g[1] += 1;
                    g[2] += u32::from(r.late);
                    if let Some(who) = &r.progress.done_by {
                        let w = by_worker.entry(who.as_str()).or_default();
                        w[0] += 1;
                        w[1] += r.progress.hazards_found;
                    }
                }
            }
            let name_of = |g: &str| grids.get(g).cloned().unwrap_or_else(|| g.to_owned());
            Ok(json!({
                "campaign": seen.summary(&grids),
                "by_grid": by_grid.iter().map(|(g, [due, done, late, hazards])| json!({
                    "grid": g, "grid_name": name_of(g),
                    "due": due, "done": done, "late": late, "hazards": hazards,
                })).collect::<Vec<_>>(),
                "by_worker": by_worker.iter().map(|(w, [done, hazards])| json!({
                    "user": w, "name": people.get(*w).map_or(*w, String::as_str),
                    "done": done, "hazards": hazards,
                })).collect::<Vec<_>>(),
                "premises": rows.iter().map(|r| {
                    let p = r.progress;
                    let who = p.done_by.as_ref().map(UserId::as_str);
                    json!({
                        "premises_id": p.premises_id,
                        "name": shops.get(p.premises_id.as_str()),
                        "grid": r.grid, "grid_name": name_of(r.grid),
                        "done_on": p.done_on.map(|d| d.to_string()),
                        "done_by": who,
                        "done_by_name": who.map(|w| people.get(w).map_or(w, String::as_str)),
                        "late": r.late,
                        "missing": p.missing,
                        "hazards": p.hazards_found,
                    })
                }).collect::<Vec<_>>(),
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// Each shop of the campaign, not done first, by grid.
fn rows(seen: &Seen) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = seen
        .parts
        .iter()
        .flat_map(|(part, shops)| {
            shops.iter().map(move |p| Row {
                grid: part.grid_id.as_str(),
                progress: p,
                late: p.done_on.is_some_and(|d| d > part.deadline),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.progress.is_done(), a.grid, &a.progress.premises_id).cmp(&(
            b.progress.is_done(),
            b.grid,
            &b.progress.premises_id,
        ))
    });
    rows
}

/// `GET /dash/api/campaigns/{id}/export.{csv|xlsx}`: every shop of the campaign, in the
/// page's language.
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(String, String)>,
    Query(lang): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&lang);
    let format = file
        .strip_prefix("export.")
        .filter(|f| matches!(*f, "csv" | "xlsx") && content_type(f).is_some())
        .ok_or_else(|| ApiError::not_found("export.csv or export.xlsx"))?
        .to_owned();
    let scope = supervisor_scope(&state, &caller).await?;
    let today = xuncha_core::clock::china_date(state.now_ms());
    let (table, file_name) = state
        .read_store(move |store, tables| {
            let seen = seen(store, &scope, &id)?;
            let grids = grid_names(tables)?;
            let rows = rows(&seen);
            let shops = premises_names(
                store.conn(),
                rows.iter().map(|r| r.progress.premises_id.0.clone()),
            )?;
            let people = crate::accounts::display_names(
                tables,
                rows.iter()
                    .filter_map(|r| r.progress.done_by.as_ref().map(UserId::as_str)),
            )?;
            let headers = lang.headers(&[
                ("专项行动", "Campaign"),
                ("网格", "Grid"),
                ("场所", "Premises"),
                ("状态", "Status"),
                ("完成日期", "Done on"),
                ("检查人员", "Inspector"),
                ("未完成检查", "Checklists to do"),
                ("发现隐患", "Hazards found"),
            ]);
            let name = seen.first().name.clone();
            let table_rows = rows
                .iter()
                .map(|r| {
                    let p = r.progress;
                    let status = match (p.is_done(), r.late) {
                        (false, _) => lang.pick("未完成", "to do"),
                        (true, false) => lang.pick("已完成", "done"),
                        (true, true) => lang.pick("逾期完成", "done late"),
                    };
                    let who = p.done_by.as_ref().map(|w| {
                        people
                            .get(w.as_str())
                            .cloned()
                            .unwrap_or_else(|| w.0.clone())
                    });
                    let missing: Vec<&str> = p.missing.iter().map(|k| lang.kind(*k)).collect();
                    vec![
                        json!(name),
                        json!(grids.get(r.grid).map_or(r.grid, String::as_str)),
                        json!(shops.get(p.premises_id.as_str())),
                        json!(status),
                        json!(p.done_on.map(|d| d.to_string())),
                        json!(who),
                        json!(missing.join(lang.pick("、", ", "))),
                        json!(p.hazards_found),
                    ]
                })
                .collect::<Vec<_>>();
            let positions = vec![None; table_rows.len()];
            let file_name = format!(
                "campaign-{}-{today}",
                id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
            );
            Ok((
                Table {
                    headers,
                    rows: table_rows,
                    positions,
                    truncated: false,
                },
                file_name,
            ))
        })
        .await?;
    respond(&table, "campaign", &file_name, &format)
}

/// Each item once, in the order first given.
fn dedup<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// The campaign routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dash/api/campaigns", get(list).post(create))
        .route("/dash/api/campaigns/{id}", get(detail))
        .route("/dash/api/campaigns/{id}/end", post(end))
        .route("/dash/api/campaigns/{id}/{file}", get(export))
}
