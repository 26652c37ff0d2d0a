//! `/v1/admin/...`: users, the areas they cover, grids, quarantine review and the replica
//! digest. Admins only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use xuncha_core::due::Cadence;
use xuncha_core::sync::Role;

use crate::accounts::{self, Areas, Caller, Grid, Scope};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::tables::ServerTables;
use crate::{AppState, sync};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/users", post(add_user).get(list_users))
        .route(
            "/v1/admin/users/import",
            post(crate::user_import::import_users),
        )
        .route(
            "/v1/admin/users/template.csv",
            get(crate::user_import::template),
        )
        .route(
            "/v1/admin/premises/import",
            post(crate::import::import_premises),
        )
        .route(
            "/v1/admin/premises/template.csv",
            get(crate::import::template),
        )
        .route("/v1/admin/users/{id}/areas", put(set_areas))
        .route("/v1/admin/grids/{id}", put(put_grid))
        .route("/v1/admin/grids/import", post(import_grids))
        .route("/v1/admin/digest", get(digest))
        .route("/v1/admin/calendar", put(put_calendar))
        .route("/v1/admin/cadence", put(put_cadence))
        .route("/v1/admin/quarantine", get(quarantine))
        .route("/v1/admin/quarantine/release", post(release))
        .route("/v1/admin/users/{id}/disabled", put(set_disabled))
        .route("/v1/admin/users/{id}/reminders", put(set_reminders))
        .route("/v1/admin/users/{id}/password", put(set_password))
        .route("/v1/admin/users/{id}/devices", get(devices))
        .route("/v1/admin/users/{id}/sign-out", post(sign_out))
        .route("/v1/admin/users/{id}/feed/rotate", post(rotate_feed))
        .route("/v1/admin/devices/{id}/revoke", post(revoke_device))
        .route("/v1/admin/set-aside", get(set_aside))
        .route("/v1/admin/set-aside/retry", post(retry_set_aside))
}

pub(crate) fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "admin_only",
            "仅管理员可以进行此操作",
            "only an administrator may do this",
        ))
    }
}

/// Body of `POST /v1/admin/users`.
#[derive(Debug, Deserialize)]
struct NewUser {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    role: Role,
    password: String,
    #[serde(default)]
    areas: Areas,
    #[serde(default)]
    phone: Option<String>,
}

async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(user): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&caller)?;
    let now = state.now_ms();
    state
        .tables_atomic(move |tx| {
            // The account and its areas together: an unknown grid creates no user.
            let name = user
                .display_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(&user.id);
            accounts::create_user(tx, &user.id, name, user.role, &user.password, now)?;
            accounts::set_areas(tx, &user.id, &user.areas)?;
            if let Some(phone) = user
                .phone
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                && let Some(mut profile) = tx.profile(&user.id)?
            {
                profile.phone = Some(phone.to_owned());
                tx.set_profile(&user.id, &profile)?;
            }
            Ok((
                StatusCode::CREATED,
                Json(json!({ "id": user.id, "role": user.role })),
            ))
        })
        .await
        .inspect(|_| state.forget_tokens())
}

/// `GET /v1/admin/users`: every user with role and areas.
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    state
        .read(|_, tables| {
            let users: Vec<Value> = tables
                .users()?
                .into_iter()
                .map(|u| {
                    json!({
                        "id": u.id,
                        "display_name": u.profile.display_name,
                        "role": u.profile.role,
                        "disabled": u.disabled,
                        "phone": u.profile.phone,
                        "grids": u.areas.grids,
                        "communities": u.areas.communities,
                        "subdistricts": u.areas.subdistricts,
                    })
                })
                .collect();
            Ok(Json(json!({ "users": users })))
        })
        .await
}

async fn set_areas(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(areas): JsonBody<Areas>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    state
        .tables(move |tables| {
            accounts::set_areas(tables, &id, &areas)?;
            Ok(Json(json!({ "id": id, "areas": areas })))
        })
        .await
        .inspect(|_| state.forget_tokens())
}

/// Body of `PUT /v1/admin/grids/{id}`.
#[derive(Debug, Deserialize)]
struct GridBody {
    name: String,
    #[serde(default)]
    community: String,
    #[serde(default)]
    subdistrict: String,
}

async fn put_grid(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GridBody>,
) -> Result<Json<Grid>, ApiError> {
    require_admin(&caller)?;
    let grid = Grid {
        id,
        name: body.name,
        community: body.community,
        subdistrict: body.subdistrict,
    };
    state
        .tables(move |tables| {
            accounts::upsert_grid(tables, &grid)?;
            Ok(Json(grid))
        })
        .await
        .inspect(|_| state.forget_tokens())
}

/// Replaces the working-day calendar (e.g. when next year's holidays are announced).
async fn put_calendar(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(calendar): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    state
        .write(move |w| {
            let cadence = w.replica().cadence().clone();
            w.store()
                .set_reference(&calendar.to_string(), &cadence)
                .map_err(|e| {
                    ApiError::invalid("invalid_calendar", "日历文件格式不正确", e.to_string())
                })?;
            let tag = crate::reference_data(w.replica(), w.tables(), &Scope::All)?.tag;
            Ok(Json(json!({ "tag": tag })))
        })
        .await
}

/// Replaces the re-inspection cadence.
async fn put_cadence(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(cadence): JsonBody<Cadence>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    if cadence.default_days == 0 || cadence.crowded_days == 0 || cadence.weekly_days == 0 {
        return Err(ApiError::invalid(
            "invalid_cadence",
            "巡查周期须至少为 1 天",
            "re-inspection intervals must be at least one day",
        ));
    }
    state
        .write(move |w| {
            let (calendar, _) = w.replica().reference()?;
            w.store().set_reference(&calendar, &cadence)?;
            let tag = crate::reference_data(w.replica(), w.tables(), &Scope::All)?.tag;
            Ok(Json(json!({ "tag": tag })))
        })
        .await
}

/// Imports grids with their boundaries from a GeoJSON FeatureCollection: each feature has
/// `properties.id` (and `name`, `community`, `subdistrict`) and a Polygon or MultiPolygon
/// (WGS-84). All or nothing.
async fn import_grids(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(collection): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let features = collection
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_geojson",
                "须为 GeoJSON FeatureCollection",
                "expected a GeoJSON FeatureCollection",
            )
        })?
        .clone();
    let mut grids = Vec::new();
    for (i, f) in features.iter().enumerate() {
        let props = f.get("properties").cloned().unwrap_or_default();
        let text = |k: &str| {
            props
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let id = text("id");
        let geometry = f.get("geometry").cloned().unwrap_or_default();
        let invalid = |why: String| {
            ApiError::invalid(
                "invalid_geojson",
                format!("第 {} 个网格有误：{why}", i + 1),
                format!("feature {i}: {why}"),
            )
        };
        if id.is_empty() {
            return Err(invalid("properties.id is missing".into()));
        }
        xuncha_core::location::polygons_from_geojson(&geometry)
            .map_err(|e| invalid(e.to_string()))?;
        let name = if text("name").is_empty() {
            id.clone()
        } else {
            text("name")
        };
        grids.push((
            Grid {
                id,
                name,
                community: text("community"),
                subdistrict: text("subdistrict"),
            },
            geometry,
        ));
    }
    let n = grids.len();
    state
        .tables_atomic(move |tx| {
            for (grid, geometry) in &grids {
                accounts::upsert_grid(tx, grid)?;
                tx.set_grid_geometry(&grid.id, &geometry.to_string())?;
            }
            Ok(())
        })
        .await?;
    state.forget_tokens();
    Ok(Json(json!({ "imported": n })))
}

async fn digest(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    state
        .write(|w| {
            Ok(Json(json!({
                "digest": w.replica().digest()?,
                "ops": w.replica().op_count()?,
            })))
        })
        .await
}

async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    state
        .read(|_, tables| {
            let rows: Vec<Value> = tables
                .oldest_held(1000)?
                .into_iter()
                .map(|h| {
                    json!({
                        "device": h.device,
                        "seq": h.seq,
                        "hlc_ms": xuncha_core::clock::Hlc::from_u64(h.hlc as u64).physical_ms(),
                        "received_ms": h.received_ms,
                        "op": serde_json::from_str::<Value>(&h.op).unwrap_or(Value::Null),
                    })
                })
                .collect();
            Ok(Json(json!({ "ops": rows })))
        })
        .await
}

/// Runs an access change with the writer and forgets cached tokens at once.
async fn cut_off(
    state: &AppState,
    caller: &Caller,
    change: impl FnOnce(&dyn ServerTables) -> Result<Value, ApiError> + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    require_admin(caller)?;
    let out = state.tables(change).await?;
    state.forget_tokens();
    Ok(Json(out))
}

/// Body of `PUT /v1/admin/users/{id}/disabled`.
#[derive(Debug, Deserialize)]
struct Disabled {
    disabled: bool,
}

/// Disables a user (signed out everywhere at once, sign-in refused) or enables them again.
async fn set_disabled(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Disabled>,
) -> Result<Json<Value>, ApiError> {
    if body.disabled && id == caller.user.as_str() {
        return Err(ApiError::invalid(
            "own_account",
            "不能停用自己的账号",
            "you cannot disable your own account",
        ));
    }
    cut_off(&state, &caller, move |c| {
        crate::revoke::set_disabled(c, &id, body.disabled)?;
        Ok(json!({ "user": id, "disabled": body.disabled }))
    })
    .await
}

/// `PUT /v1/admin/users/{id}/reminders`: turns a user's morning reminder on or off.
async fn set_reminders(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<crate::RemindersSwitch>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let user = id.clone();
    let found = state
        .tables(move |tables| crate::reminders::set(tables, &user, body.on))
        .await?;
    if !found {
        return Err(ApiError::not_found(format!("no user {id}")));
    }
    Ok(Json(json!({ "user": id, "reminders": body.on })))
}

/// Body of `PUT /v1/admin/users/{id}/password`.
#[derive(Debug, Deserialize)]
struct Password {
    password: String,
}

/// Resets a user's password: every device and session of theirs is signed out.
async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Password>,
) -> Result<Json<Value>, ApiError> {
    cut_off(&state, &caller, move |c| {
        crate::revoke::change_password(c, &id, &body.password, None)?;
        Ok(json!({ "user": id, "signed_out": true }))
    })
    .await
}

/// A user's devices (phones and dashboard sessions), to pick a lost phone from.
async fn devices(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    state
        .read(move |_, tables| {
            Ok(Json(
                json!({ "devices": crate::revoke::devices_of(tables, &id)? }),
            ))
        })
        .await
}

/// Signs a user out on every device and dashboard.
async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    cut_off(&state, &caller, move |c| {
        let n = crate::revoke::sign_out_everywhere(c, &id, None)?;
        Ok(json!({ "user": id, "revoked": n }))
    })
    .await
}

/// Gives a user a new calendar feed address (the old one stops working).
async fn rotate_feed(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    cut_off(&state, &caller, move |c| {
        crate::revoke::rotate_feed(c, &id)?;
        Ok(json!({ "user": id, "feed": crate::ical::feed_path(c, &id)? }))
    })
    .await
}

/// Revokes one device (a lost phone).
async fn revoke_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    cut_off(&state, &caller, move |c| {
        crate::revoke::revoke_device(c, &id)?;
        Ok(json!({ "device": id, "revoked": true }))
    })
    .await
}

/// Ops set aside: refused for their author (the shop had left the author's grids, say),
/// kept but applied nowhere, with the reason.
async fn set_aside(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    state
        .read_store(|store, _| {
            let rows: Vec<Value> = store
                .set_aside_ops()?
                .into_iter()
                .take(1000)
                .map(|(op, why)| {
                    json!({
                        "device": op.device,
                        "seq": op.seq,
                        "author": op.author,
                        "type": op.body.kind(),
                        "wall_ms": op.wall_ms,
                        "code": why.code,
                        "message": why.message,
                        "message_en": why.message_en,
                        "op": op,
                    })
                })
                .collect();
            Ok(Json(json!({ "ops": rows })))
        })
        .await
}

/// Checks the ops set aside again with their authors' rights as they are now and lets through
/// the ones now allowed.
async fn retry_set_aside(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let now = state.now_ms();
    let (through, still) = state.write(move |w| sync::retry_set_aside(w, now)).await?;
    Ok(Json(
        json!({ "let_through": through, "still_set_aside": still }),
    ))
}

/// Applies every quarantined op now (after an admin has reviewed them).
async fn release(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let now = state.now_ms();
    let bound = state.config.max_clock_ahead_ms;
    let n = state
        .write(move |w| sync::release_quarantine(w, now, bound, true))
        .await?;
    Ok(Json(json!({ "released": n })))
}
