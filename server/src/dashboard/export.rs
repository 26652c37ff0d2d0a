//! Exports of hazards (with the map's filters) and inspections (by period and grid) as CSV,
//! GeoJSON and XLSX. Columns are headed in Chinese and English; values that people read
//! (status, severity, checklist) are in Chinese.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::Connection;
use serde_json::{Value, json};
use xuncha_core::checklist::ChecklistKind;
use xuncha_core::hazard::HazardStatus;
use xuncha_core::model::Severity;

use super::map::{self, HazardPoint};
use super::work::grid_names;
use super::{FilterQuery, supervisor_scope, today, with_index};
use crate::AppState;
use crate::account_tables::AccountTables;
use crate::accounts::Caller;
use crate::error::ApiError;

/// Rows exported at most (the rest is cut, and the answer says so in a header).
pub const MAX_ROWS: usize = 100_000;

/// Chinese name of a status.
pub fn status_zh(s: HazardStatus) -> &'static str {
    match s {
        HazardStatus::Found => "已发现",
        HazardStatus::Rectifying => "整改中",
        HazardStatus::AwaitingRecheck => "待复查",
        HazardStatus::AwaitingApproval => "待审批",
        HazardStatus::Closed => "已销号",
        HazardStatus::Withdrawn => "已撤销",
    }
}

/// Chinese name of a severity.
pub fn severity_zh(s: Severity) -> &'static str {
    match s {
        Severity::General => "一般隐患",
        Severity::SuspectedMajor => "疑似重大隐患",
    }
}

/// Chinese name of a checklist.
pub fn kind_zh(k: ChecklistKind) -> &'static str {
    match k {
        ChecklistKind::FireExtinguisher => "灭火器",
        ChecklistKind::GasAlarm => "燃气报警",
        ChecklistKind::EBike => "电动自行车",
        ChecklistKind::Exits => "安全出口",
    }
}

/// An export's language: the page's, one per file (`?lang=en`; Chinese by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub(super) fn of(q: &LangQuery) -> Self {
        if q.lang.as_deref() == Some("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    /// The text in this language.
    pub(super) fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub(super) fn headers(self, pairs: &[(&'static str, &'static str)]) -> Vec<&'static str> {
        pairs.iter().map(|(zh, en)| self.pick(zh, en)).collect()
    }

    fn status(self, s: HazardStatus) -> &'static str {
        match self {
            Lang::Zh => status_zh(s),
            Lang::En => match s {
                HazardStatus::Found => "found",
                HazardStatus::Rectifying => "rectifying",
                HazardStatus::AwaitingRecheck => "awaiting re-check",
                HazardStatus::AwaitingApproval => "awaiting approval",
                HazardStatus::Closed => "closed",
                HazardStatus::Withdrawn => "withdrawn",
            },
        }
    }

    fn severity(self, s: Severity) -> &'static str {
        match self {
            Lang::Zh => severity_zh(s),
            Lang::En => match s {
                Severity::General => "general",
                Severity::SuspectedMajor => "suspected major",
            },
        }
    }

    pub(super) fn kind(self, k: ChecklistKind) -> &'static str {
        match self {
            Lang::Zh => kind_zh(k),
            Lang::En => match k {
                ChecklistKind::FireExtinguisher => "fire extinguishers",
                ChecklistKind::GasAlarm => "gas alarm",
                ChecklistKind::EBike => "e-bikes",
                ChecklistKind::Exits => "exits",
            },
        }
    }
}

/// The export's own query parameter (the filters are the map's).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct LangQuery {
    lang: Option<String>,
}

/// Coordinates to 6 decimals (about 0.1 m), as people and GIS tools expect them.
fn coordinate(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |x| json!((x * 1e6).round() / 1e6))
}

/// A table: headers, rows of cells, and each row's position for GeoJSON.
#[derive(Debug, Default)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<&'static str>,
    /// Rows.
    pub rows: Vec<Vec<Value>>,
    /// Longitude and latitude of each row, if known.
    pub positions: Vec<Option<(f64, f64)>>,
    /// Rows were left out past [`MAX_ROWS`].
    pub truncated: bool,
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A CSV cell. Text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR
/// first: a shop name typed on a phone could be `=HYPERLINK(...)`) gets a leading `'`.
fn csv_cell(v: &Value) -> String {
    let text = cell_text(v);
    match v {
        Value::String(_) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            format!("'{text}")
        }
        _ => text,
    }
}

impl Table {
    /// As CSV (UTF-8 with a byte-order mark, so Excel in China opens it right).
    pub fn csv(&self) -> Result<Vec<u8>, ApiError> {
        let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
        w.write_record(&self.headers).map_err(ApiError::internal)?;
        for row in &self.rows {
            w.write_record(row.iter().map(csv_cell))
                .map_err(ApiError::internal)?;
        }
        w.into_inner().map_err(ApiError::internal)
    }

    /// As a GeoJSON FeatureCollection of points (rows without a position have no geometry).
    pub fn geojson(&self) -> Result<Vec<u8>, ApiError> {
        let features: Vec<Value> = self
            .rows
            .iter()
            .zip(&self.positions)
            .map(|(row, pos)| {
                let properties: serde_json::Map<String, Value> = self
                    .headers
                    .iter()
                    .zip(row)
                    .map(|(h, v)| ((*h).to_owned(), v.clone()))
                    .collect();
                json!({
                    "type": "Feature",
                    "geometry": pos.map(|(lon, lat)| json!({"type": "Point", "coordinates": [lon, lat]})),
                    "properties": properties,
                })
            })
            .collect();
        serde_json::to_vec(&json!({ "type": "FeatureCollection", "features": features }))
            .map_err(ApiError::internal)
    }

    /// As an Excel workbook with one sheet.
    pub fn xlsx(&self, sheet: &str) -> Result<Vec<u8>, ApiError> {
        use rust_xlsxwriter::{Format, Workbook};
        let err = |e: rust_xlsxwriter::XlsxError| ApiError::internal(e);
        let mut book = Workbook::new();
        let ws = book.add_worksheet();
        ws.set_name(sheet).map_err(err)?;
        let bold = Format::new().set_bold();
        for (c, h) in self.headers.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, *h, &bold)
                .map_err(err)?;
            ws.set_column_width(c as u16, 16).map_err(err)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, v) in row.iter().enumerate() {
                match v {
                    Value::Number(n) => ws.write_number(r, c as u16, n.as_f64().unwrap_or(0.0)),
                    Value::Null => continue,
                    other => ws.write_string(r, c as u16, cell_text(other)),
                }
                .map_err(err)?;
            }
        }
        ws.set_freeze_panes(1, 0).map_err(err)?;
        book.save_to_buffer().map_err(err)
    }
}

/// Name, address, item code, assignee, notice number and position of a hazard's shop.
type HazardCells = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<f64>,
    Option<f64>,
);

/// Hazards matching the filter (and box), with the details people need.
fn hazard_table(
    conn: &Connection,
    tables: &dyn AccountTables,
    listed: &[(String, HazardPoint, String)],
    today: i32,
    lang: Lang,
) -> Result<Table, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(json_extract(n.value, '$'), ''), COALESCE(json_extract(a.value, '$'), ''),
                COALESCE(json_extract(h.state, '$.origin.finding.code'), ''),
                h.assignee, json_extract(h.state, '$.notice_no'),
                json_extract(l.value, '$.lat'), json_extract(l.value, '$.lon')
         FROM hazards h
         LEFT JOIN premises_fields n ON n.premises_id = h.premises_id AND n.field = 'name'
         LEFT JOIN premises_fields a ON a.premises_id = h.premises_id AND a.field = 'address'
         LEFT JOIN premises_fields l ON l.premises_id = h.premises_id AND l.field = 'location'
         WHERE h.id = ?1",
    )?;
    let grids = grid_names(tables)?;
    let catalog = xuncha_core::checklist::Catalog::builtin();
    let mut table = Table {
        headers: lang.headers(&[
            ("隐患编号", "Hazard"),
            ("场所", "Premises"),
            ("地址", "Address"),
            ("网格", "Grid"),
            ("类别", "Checklist"),
            ("隐患项", "Item"),
            ("隐患描述", "Description"),
            ("严重程度", "Severity"),
            ("状态", "Status"),
            ("发现日期", "Found"),
            ("整改期限", "Deadline"),
            ("逾期天数", "Days overdue"),
            ("通知书编号", "Notice no."),
            ("责任人", "Assignee"),
            ("纬度", "Latitude"),
            ("经度", "Longitude"),
        ]),
        ..Table::default()
    };
    let mut rows = Vec::with_capacity(listed.len());
    for (id, _, _) in listed {
        let row: HazardCells = stmt.query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        rows.push(row);
    }
    let people = crate::accounts::display_names(tables, rows.iter().map(|r| r.3.as_str()))?;
    for ((id, p, grid), (name, address, code, assignee, notice, lat, lon)) in
        listed.iter().zip(rows)
    {
        let label = catalog
            .latest(p.kind)
            .and_then(|l| l.item(&code))
            .map_or(String::new(), |i| {
                lang.pick(&i.label.zh, &i.label.en).to_owned()
            });
        table.rows.push(vec![
            json!(id),
            json!(name),
            json!(address),
            json!(grids.get(grid).unwrap_or(grid)),
            json!(lang.kind(p.kind)),
            json!(code),
            json!(label),
            json!(lang.severity(p.severity)),
            json!(lang.status(p.status)),
            json!(map::date_of(p.found_on).map(|d| d.to_string())),
            json!(map::date_of(p.deadline).map(|d| d.to_string())),
            json!(p.overdue_days(today)),
            json!(notice),
            json!(people.get(&assignee).unwrap_or(&assignee)),
            coordinate(lat),
            coordinate(lon),
        ]);
        table
            .positions
            .push(p.located.then(|| (f64::from(p.lon), f64::from(p.lat))));
    }
    Ok(table)
}

/// Inspections performed in the period, in the caller's area.
fn inspection_table(
    conn: &Connection,
    tables: &dyn AccountTables,
    scope: &crate::accounts::Scope,
    from: &str,
    to: &str,
    grids: &[String],
    lang: Lang,
) -> Result<Table, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, COALESCE(json_extract(n.value, '$'), ''), COALESCE(json_extract(a.value, '$'), ''),
                COALESCE(json_extract(g.value, '$'), ''), i.performed_on, i.inspector,
                json_array_length(o.data, '$.findings'),
                (SELECT group_concat(json_extract(f.value, '$.code'), ' ') FROM json_each(o.data, '$.findings') f),
                json_extract(o.data, '$.geotag.lat'), json_extract(o.data, '$.geotag.lon'),
                json_extract(o.data, '$.proximity.distance_m'), json_extract(o.data, '$.proximity.flagged')
         FROM inspections i JOIN ops o ON o.id = i.op_id
         LEFT JOIN premises_fields n ON n.premises_id = i.premises_id AND n.field = 'name'
         LEFT JOIN premises_fields a ON a.premises_id = i.premises_id AND a.field = 'address'
         LEFT JOIN premises_fields g ON g.premises_id = i.premises_id AND g.field = 'grid_id'
         WHERE i.performed_on BETWEEN ?1 AND ?2
           AND NOT EXISTS (SELECT 1 FROM inspections later WHERE later.supersedes = i.id
             AND later.premises_id = i.premises_id AND later.root = i.root)
         ORDER BY i.performed_on, i.id",
    )?;
    let mut table = Table {
        headers: lang.headers(&[
            ("检查编号", "Inspection"),
            ("场所", "Premises"),
            ("地址", "Address"),
            ("网格", "Grid"),
            ("检查日期", "Date"),
            ("检查人", "Inspector"),
            ("隐患数", "Hazards"),
            ("隐患项", "Items"),
            ("纬度", "Latitude"),
            ("经度", "Longitude"),
            ("距场所(米)", "Distance (m)"),
            ("位置存疑", "Location flagged"),
        ]),
        ..Table::default()
    };
    let grid_name = grid_names(tables)?;
    let mut rows = stmt.query([from, to])?;
    while let Some(r) = rows.next()? {
        let grid: String = r.get(3)?;
        if !scope.covers(&grid) || (!grids.is_empty() && !grids.contains(&grid)) {
            continue;
        }
        if table.rows.len() >= MAX_ROWS {
            table.truncated = true;
            break;
        }
        let lat: Option<f64> = r.get(8)?;
        let lon: Option<f64> = r.get(9)?;
        let flagged: Option<bool> = r.get(11)?;
        table.rows.push(vec![
            json!(r.get::<_, String>(0)?),
            json!(r.get::<_, String>(1)?),
            json!(r.get::<_, String>(2)?),
            json!(grid_name.get(&grid).unwrap_or(&grid)),
            json!(r.get::<_, String>(4)?),
            json!(r.get::<_, String>(5)?),
            json!(r.get::<_, Option<i64>>(6)?.unwrap_or(0)),
            json!(r.get::<_, Option<String>>(7)?.unwrap_or_default()),
            coordinate(lat),
            coordinate(lon),
            json!(r.get::<_, Option<f64>>(10)?.map(|d| d.round())),
            json!(if flagged == Some(true) {
                lang.pick("是", "yes")
            } else {
                lang.pick("否", "no")
            }),
        ]);
        table
            .positions
            .push(lat.zip(lon).map(|(lat, lon)| (lon, lat)));
    }
    // Inspectors by name, looked up once each.
    let names = crate::accounts::display_names(
        tables,
        table.rows.iter().filter_map(|row| row[INSPECTOR].as_str()),
    )?;
    for row in &mut table.rows {
        if let Some(name) = row[INSPECTOR].as_str().and_then(|id| names.get(id)) {
            row[INSPECTOR] = json!(name);
        }
    }
    Ok(table)
}

/// The inspections table's inspector column.
const INSPECTOR: usize = 5;

/// An export format: its content type.
pub(super) fn content_type(format: &str) -> Option<&'static str> {
    match format {
        "csv" => Some("text/csv; charset=utf-8"),
        "geojson" => Some("application/geo+json"),
        "xlsx" => Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        _ => None,
    }
}

pub(super) fn respond(
    table: &Table,
    name: &str,
    file_name: &str,
    format: &str,
) -> Result<Response, ApiError> {
    let bytes = match format {
        "csv" => table.csv()?,
        "geojson" => table.geojson()?,
        _ => table.xlsx(name)?,
    };
    let content_type = content_type(format).unwrap_or("application/octet-stream");
    let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
    let disposition = format!("attachment; filename=\"{file_name}.{format}\"");
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    if table.truncated {
        response
            .headers_mut()
            .insert("x-xuncha-truncated", HeaderValue::from(MAX_ROWS));
    }
    Ok(response)
}

/// The export routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/dash/api/export/{file}", get(export))
}

/// `GET /dash/api/export/{hazards|inspections}.{csv|geojson|xlsx}`: hazards with the map's
/// filters (and box, if given); inspections by `from`, `to` and `grids`.
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(file): Path<String>,
    Query(q): Query<FilterQuery>,
    Query(lang): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&lang);
    let (name, format) = file
        .split_once('.')
        .filter(|(name, format)| {
            matches!(*name, "hazards" | "inspections") && content_type(format).is_some()
        })
        .map(|(n, f)| (n.to_owned(), f.to_owned()))
        .ok_or_else(|| {
            ApiError::not_found(
                "export hazards.{csv,geojson,xlsx} or inspections.{csv,geojson,xlsx}",
            )
        })?;
    let scope = supervisor_scope(&state, &caller).await?;
    let filter = q.filter()?;
    // The file says what it holds: which area (the grids chosen, else the caller's own) and
    // when it was taken.
    let area = if filter.grids.is_empty() {
        caller.user.0.clone()
    } else {
        filter.grids.join("+")
    };
    let file_name = format!(
        "{name}-{}-{}",
        area.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '+',
            "_"
        ),
        xuncha_core::clock::china_date(state.now_ms())
    );
    let table = if name == "hazards" {
        let bbox = q.bbox()?;
        let today = today(&state);
        // The index lock is held only to pick the hazards, not while their details are read.
        let (listed, truncated) = with_index(&state, move |index, _, _| {
            let mut truncated = false;
            let mut listed = Vec::new();
            for (id, p) in index.matching(&scope, &filter, today) {
                if bbox.is_some_and(|b| !(p.located && b.contains(p))) {
                    continue;
                }
                if listed.len() >= MAX_ROWS {
                    truncated = true;
                    break;
                }
                listed.push((id.to_owned(), *p, index.grid_name(p).to_owned()));
            }
            Ok((listed, truncated))
        })
        .await?;
        let mut table = state
            .read(move |conn, tables| hazard_table(conn, tables, &listed, today, lang))
            .await?;
        table.truncated = truncated;
        table
    } else {
        let today = xuncha_core::clock::china_date(state.now_ms());
        let to = filter.to.unwrap_or(today).to_string();
        let from = filter
            .from
            .map_or_else(|| "0000-01-01".to_owned(), |d| d.to_string());
        state
            .read(move |conn, tables| {
                inspection_table(conn, tables, &scope, &from, &to, &filter.grids, lang)
            })
            .await?
    };
    respond(&table, &name, &file_name, &format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_never_become_formulas() {
        let table = Table {
            headers: vec!["名称", "数"],
            rows: vec![
                vec![json!("=HYPERLINK(\"http://x\")"), json!(-3)],
                vec![json!("老王面馆"), json!(2)],
            ],
            ..Table::default()
        };
        let text = String::from_utf8(table.csv().unwrap()).unwrap();
        let mut lines = text.trim_start_matches('\u{feff}').lines().skip(1);
        assert_eq!(lines.next(), Some("\"'=HYPERLINK(\"\"http://x\"\")\",-3"));
        assert_eq!(lines.next(), Some("老王面馆,2"));
    }
}
