//! The supervisors' web dashboard: a page (HTML, JS and Leaflet compiled into the binary), a
//! session login, and the JSON it reads: the hazard map by bounding box, hazard review with
//! actions written as ops, work lists, figures and exports.
//!
//! Sessions are cookies (`HttpOnly`, `SameSite=Strict`) naming a `web-…` device of the user;
//! the [`Caller`] extractor accepts them besides device tokens, and asks for the session's
//! CSRF token on every change.

pub(crate) mod assets;
mod campaign;
pub mod export;
pub mod map;
mod people;
mod qr;
mod review;
mod shop;
mod work;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use xuncha_core::checklist::ChecklistKind;
use xuncha_core::hazard::HazardStatus;

use crate::AppState;
use crate::accounts::{self, Caller, Scope};
use crate::error::ApiError;
use crate::tables::ServerTables;
use map::{BBox, Filter, MapIndex};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "xuncha_session";

/// Markers sent at most; more matches are answered as clusters.
pub const MAX_MARKERS: usize = 2_000;
/// Cluster cells per side of the visible box.
pub const CLUSTER_CELLS: u32 = 48;

/// The base map the page draws under the hazards.
#[derive(Clone, Debug, Default)]
pub struct Tiles {
    /// Tile URL template (`{z}`, `{x}`, `{y}`, `{s}`); none: no base map.
    pub url: Option<String>,
    /// A layer drawn over the base map (street names served apart, as 天地图 does).
    pub labels_url: Option<String>,
    /// Attribution shown on the map.
    pub attribution: String,
    /// Subdomains for `{s}`.
    pub subdomains: String,
    /// The tiles are in GCJ-02 (every Chinese provider): positions are shifted to match.
    pub gcj02: bool,
}

/// The map index shared by the handlers.
pub type SharedIndex = Arc<Mutex<MapIndex>>;

/// The session cookie of a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// Sign-in comes from the dashboard's own page: JSON (which a foreign page cannot send
/// without the browser asking first, and this server never allows it) and, when the browser
/// says where the page is from, from this server. Else a foreign page could sign a browser in
/// as someone else (login CSRF).
fn same_origin_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let json = text(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    if !json {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "json_only",
            "登录请求须为 JSON",
            "sign in with a JSON body (Content-Type: application/json)",
        ));
    }
    let host = text(axum::http::header::HOST);
    let from = text(axum::http::header::ORIGIN)
        .filter(|o| *o != "null")
        .map(|o| o.split_once("://").map_or(o, |(_, rest)| rest));
    match (from, host) {
        (Some(origin), Some(host)) if origin != host => Err(ApiError::forbidden(
            "cross_origin",
            "登录请求来自其他网站",
            "sign-in from another site's page is refused",
        )),
        (Some(_), None) => Err(ApiError::forbidden(
            "cross_origin",
            "登录请求来自其他网站",
            "sign-in from another site's page is refused",
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
struct Login {
    user: String,
    password: String,
}

/// `POST /dash/login`.
async fn login(
    State(state): State<AppState>,
    client: crate::login::ClientAddr,
    https: crate::login::ForwardedHttps,
    headers: axum::http::HeaderMap,
    crate::body::JsonBody(form): crate::body::JsonBody<Login>,
) -> Result<Response, ApiError> {
    same_origin_json(&headers)?;
    let now = state.now_ms();
    let role = crate::login::check_password(&state, &form.user, &form.password, client.0).await?;
    let session = state
        .tables(move |tables| accounts::open_session_as(tables, &form.user, role, now))
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        session.token,
        accounts::SESSION_MS / 1000,
        // Secure when served over HTTPS here or by the trusted proxy in front.
        if state.config.secure_cookies || https.0 {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = Json(json!({
        "user": session.caller.user,
        "role": session.caller.role,
        "csrf": session.csrf,
    }))
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// `POST /dash/logout`.
async fn logout(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        state
            .tables(move |tables| accounts::close_session(tables, &token))
            .await?;
        state.forget_tokens();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("xuncha_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(response)
}

/// Only supervisors and admins use the dashboard's data.
fn require_supervisor(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == xuncha_core::sync::Role::Worker {
        return Err(ApiError::forbidden(
            "dashboard_forbidden",
            "监管平台仅供网格长、社区和街道人员使用",
            "the dashboard is for supervisors and admins",
        ));
    }
    Ok(())
}

/// `GET /dash/api/session`: who is signed in, the grids they see, the base map.
async fn session(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_supervisor(&caller)?;
    let (scope, _) = state.scope(&caller).await?;
    let token = session_cookie(&headers);
    let now = state.now_ms();
    let gcj02 = state.config.tiles.gcj02;
    let (csrf, grids) = state
        .read(move |_, tables| {
            let csrf = match token {
                Some(t) => Some(accounts::session_caller(tables, &t, now)?.1),
                None => None,
            };
            Ok((csrf, work::grids(tables, &scope, gcj02)?))
        })
        .await?;
    let tiles = &state.config.tiles;
    Ok(Json(json!({
        "user": caller.user,
        "role": caller.role,
        "csrf": csrf,
        "grids": grids,
        "tiles": {
            "url": tiles.url,
            "labels_url": tiles.labels_url,
            "attribution": tiles.attribution,
            "subdomains": tiles.subdomains,
            "gcj02": tiles.gcj02,
        },
        "today": xuncha_core::clock::china_date(now).to_string(),
    })))
}

/// The filters as they come in a query string (lists comma-separated).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FilterQuery {
    /// Checklists.
    pub kinds: Option<String>,
    /// Statuses.
    pub statuses: Option<String>,
    /// Grid ids.
    pub grids: Option<String>,
    /// `1`/`true`: only overdue.
    pub overdue: Option<String>,
    /// Found on or after (YYYY-MM-DD).
    pub from: Option<String>,
    /// Found on or before.
    pub to: Option<String>,
    /// `west,south,east,north`.
    pub bbox: Option<String>,
}

fn list<T: serde::de::DeserializeOwned>(
    what: &str,
    s: &Option<String>,
) -> Result<Vec<T>, ApiError> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            serde_json::from_value(serde_json::Value::String(v.to_owned())).map_err(|_| {
                ApiError::invalid(
                    "bad_query",
                    format!("筛选条件 {what} 不正确：{v}"),
                    format!("unknown {what}: {v}"),
                )
            })
        })
        .collect()
}

fn date(what: &str, s: &Option<String>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    s.as_deref()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::invalid(
                    "bad_query",
                    format!("{what} 日期格式应为 YYYY-MM-DD"),
                    format!("{what} must be a date YYYY-MM-DD"),
                )
            })
        })
        .transpose()
}

impl FilterQuery {
    /// The filter it describes.
    pub fn filter(&self) -> Result<Filter, ApiError> {
        Ok(Filter {
            kinds: list::<ChecklistKind>("kinds", &self.kinds)?,
            statuses: list::<HazardStatus>("statuses", &self.statuses)?,
            grids: list::<String>("grids", &self.grids)?,
            overdue: matches!(self.overdue.as_deref(), Some("1" | "true" | "yes")),
            from: date("from", &self.from)?,
            to: date("to", &self.to)?,
        })
    }

    /// The bounding box, if one was given.
    pub fn bbox(&self) -> Result<Option<BBox>, ApiError> {
        self.bbox
            .as_deref()
            .map(|b| {
                BBox::parse(b).ok_or_else(|| {
                    ApiError::invalid(
                        "bad_query",
                        "地图范围参数不正确",
                        "bbox must be west,south,east,north",
                    )
                })
            })
            .transpose()
    }
}

/// Runs `f` on the map index brought up to date, with the read connection it was refreshed
/// from (for the names and details of what the index finds).
pub async fn with_index<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&MapIndex, &rusqlite::Connection, &dyn ServerTables) -> Result<T, ApiError>
    + Send
    + 'static,
) -> Result<T, ApiError> {
    let index = state.map_index.clone();
    state
        .read(move |conn, tables| {
            let mut index = index.lock().unwrap_or_else(|p| p.into_inner());
            index.refresh(conn)?;
            f(&index, conn, tables)
        })
        .await
}

/// Text made safe inside HTML (the printable pages).
pub fn escape_html(s: &str) -> String {
    escape(s)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Today as a day number (China time).
pub fn today(state: &AppState) -> i32 {
    map::day_number(xuncha_core::clock::china_date(state.now_ms()))
}

/// `GET /dash/api/map`: hazards in the box, as markers or clusters.
async fn hazard_map(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<FilterQuery>,
) -> Result<Json<map::MapAnswer>, ApiError> {
    require_supervisor(&caller)?;
    let filter = q.filter()?;
    let gcj02 = state.config.tiles.gcj02;
    let bbox = q.bbox()?.unwrap_or(BBox {
        south: -90.0,
        west: -180.0,
        north: 90.0,
        east: 180.0,
    });
    // The page works in the tiles' coordinates; the index in WGS-84.
    let query_box = if gcj02 {
        work::bbox_to_wgs84(bbox)
    } else {
        bbox
    };
    let (scope, _) = state.scope(&caller).await?;
    let today = today(&state);
    let mut answer = with_index(&state, move |index, _, _| {
        Ok(index.query(
            &scope,
            &filter,
            query_box,
            today,
            MAX_MARKERS,
            CLUSTER_CELLS,
        ))
    })
    .await?;
    if gcj02 {
        work::shift_answer(&mut answer);
    }
    Ok(Json(answer))
}

/// Scope of a caller, refusing workers.
pub async fn supervisor_scope(state: &AppState, caller: &Caller) -> Result<Scope, ApiError> {
    require_supervisor(caller)?;
    Ok(state.scope(caller).await?.0)
}

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::file))
        .route("/dash/login", post(login))
        .route("/dash/logout", post(logout))
        .route("/dash/api/session", get(session))
        .route("/dash/api/map", get(hazard_map))
        .merge(review::router())
        .merge(campaign::router())
        .merge(shop::router())
        .merge(people::router())
        .merge(qr::router())
        .merge(work::router())
        .merge(export::router())
}
