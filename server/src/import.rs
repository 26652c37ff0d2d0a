//! `POST /v1/admin/premises/import`: premises from a spreadsheet (CSV or XLSX), as a district
//! office keeps them. Columns are found by their header, in Chinese or English; CSV saved by
//! Chinese Excel (GBK/GB18030) is read as well as UTF-8. Every row is checked before anything
//! is stored; a bad row is named with its line number, in Chinese and English, with the
//! values accepted. Importing the same file again updates the shops it already added (matched
//! on 统一社会信用代码, else name and address within the grid) instead of adding them twice.

use std::io::Cursor;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use xuncha_core::model::{GasUse, LatLon, PremisesFields, PremisesKind, UserId};

use crate::AppState;
use crate::accounts::Caller;
use crate::error::ApiError;

/// Premises imported at most per file.
pub const MAX_ROWS: usize = 50_000;

/// The columns understood, each with the headers that name it.
const COLUMNS: &[(&str, &[&str])] = &[
    ("name", &["名称", "场所名称", "name"]),
    ("address", &["地址", "address"]),
    ("kind", &["类型", "场所类型", "kind", "type"]),
    ("grid", &["网格", "grid", "grid_id"]),
    ("lat", &["纬度", "lat", "latitude"]),
    ("lon", &["经度", "lon", "lng", "longitude"]),
    (
        "contact",
        &["联系人", "负责人", "contact", "contact_person"],
    ),
    ("phone", &["电话", "联系电话", "phone"]),
    ("gas", &["燃气", "用气", "gas", "gas_use"]),
    ("sleeps", &["住人", "有人住宿", "sleeps", "sleeps_on_site"]),
    ("credit_code", &["统一社会信用代码", "credit_code"]),
];

/// Where the column `name` (one of `columns`, each with the headers that name it) is in
/// `header`.
pub(crate) fn column(header: &[String], columns: &[(&str, &[&str])], name: &str) -> Option<usize> {
    let names = columns
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |c| c.1);
    header
        .iter()
        .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
}

/// A file's header and its data rows (at most `max` of them).
pub(crate) fn header_and_data(
    rows: &[Vec<String>],
    max: usize,
) -> Result<(&[String], &[Vec<String>]), Refusal> {
    let Some((header, data)) = rows.split_first() else {
        return Err(Refusal::new("文件是空的", "the file is empty"));
    };
    if data.len() > max {
        return Err(Refusal::new(
            format!("超过 {max} 行，请拆分文件"),
            format!("more than {max} rows; split the file"),
        ));
    }
    Ok((header, data))
}

/// Whether a data row is to be skipped: blank, or a note such as the templates' (a first cell
/// starting with #).
pub(crate) fn skipped(row: &[String]) -> bool {
    row.iter().all(String::is_empty) || row.first().is_some_and(|c| c.starts_with('#'))
}

/// Whether the request's `Content-Type` says the body is an XLSX workbook.
pub(crate) fn is_xlsx(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("spreadsheetml") || t.contains("excel"))
}

/// A CSV template as a download.
pub(crate) fn csv_download(name: &str, body: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The rows of a CSV or XLSX file, header first.
pub fn rows(bytes: &[u8], xlsx: bool) -> Result<Vec<Vec<String>>, String> {
    if xlsx {
        use calamine::Reader;
        let mut book = calamine::Xlsx::new(Cursor::new(bytes))
            .map_err(|e| format!("not a readable XLSX file: {e}"))?;
        let range = book
            .worksheet_range_at(0)
            .ok_or("the workbook has no sheet")?
            .map_err(|e| format!("cannot read the first sheet: {e}"))?;
        return Ok(range
            .rows()
            .take(MAX_ROWS + 1)
            .map(|r| r.iter().map(|c| c.to_string().trim().to_owned()).collect())
            .collect());
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Excel in China saves CSV in GB18030 (GBK) unless told otherwise: not UTF-8, read it so.
    let decoded;
    let text = if std::str::from_utf8(text).is_ok() {
        text
    } else {
        let (chars, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(text);
        if had_errors {
            return Err("the file is neither UTF-8 nor GBK/GB18030 text".to_owned());
        }
        decoded = chars.into_owned();
        decoded.as_bytes()
    };
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text)
        .records()
        .take(MAX_ROWS + 1)
        .map(|r| {
            r.map(|r| r.iter().map(|c| c.trim().to_owned()).collect())
                .map_err(|e| format!("not a readable CSV file: {e}"))
        })
        .collect()
}

fn kind(s: &str) -> Option<PremisesKind> {
    let table = [
        (PremisesKind::Catering, "餐饮"),
        (PremisesKind::Retail, "零售"),
        (PremisesKind::Workshop, "加工"),
        (PremisesKind::Lodging, "住宿"),
        (PremisesKind::Entertainment, "娱乐"),
        (PremisesKind::InternetCafe, "网吧"),
        (PremisesKind::BeautyBath, "美容"),
        (PremisesKind::School, "培训"),
        (PremisesKind::Clinic, "诊所"),
        (PremisesKind::Other, "其他"),
    ];
    table
        .iter()
        .find(|(k, zh)| s.eq_ignore_ascii_case(k.as_str()) || s.contains(zh))
        .map(|(k, _)| *k)
}

fn gas(s: &str) -> Option<GasUse> {
    match s {
        "" | "无" | "none" | "否" | "no" => Some(GasUse::None),
        "管道" | "管道天然气" | "天然气" | "piped_natural" => Some(GasUse::PipedNatural),
        "瓶装" | "液化气" | "瓶装液化气" | "bottled_lpg" | "lpg" => {
            Some(GasUse::BottledLpg)
        }
        _ => None,
    }
}

fn yes(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "" | "否" | "无" | "no" | "false" | "0" | "n" => Some(false),
        "是" | "有" | "yes" | "true" | "1" | "y" => Some(true),
        _ => None,
    }
}

/// A refused import: what is wrong, in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 中文.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Refusal {
    pub(crate) fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Refusal {
            zh: zh.into(),
            en: en.into(),
        }
    }
}

/// A refused import is answered 400 `bad_import`, in both languages.
impl From<Refusal> for ApiError {
    fn from(why: Refusal) -> Self {
        ApiError::invalid("bad_import", format!("导入文件有误：{}", why.zh), why.en)
    }
}

/// The records of an uploaded CSV or XLSX file, read and checked by `parse` off the async
/// runtime.
pub(crate) async fn parse_upload<T: Send + 'static>(
    body: axum::body::Bytes,
    xlsx: bool,
    parse: fn(&[Vec<String>]) -> Result<T, Refusal>,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        rows(&body, xlsx)
            .map_err(|e| Refusal::new(format!("无法读取文件（{e}）"), e))
            .and_then(|r| parse(&r))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)
}

/// The values each coded column accepts, as said in messages and the template.
const KINDS_ACCEPTED: &str = "餐饮、零售、加工、住宿、娱乐、网吧、美容、培训、诊所、其他";
const GAS_ACCEPTED: &str = "无、管道天然气、瓶装液化气";
const YES_ACCEPTED: &str = "是、否";

/// The premises described by the rows (header first), or the first problem with its line.
pub fn premises_from_rows(rows: &[Vec<String>]) -> Result<Vec<PremisesFields>, Refusal> {
    let (header, data) = header_and_data(rows, MAX_ROWS)?;
    let col = |name: &str| column(header, COLUMNS, name);
    let (Some(name_col), Some(address_col), Some(kind_col)) =
        (col("name"), col("address"), col("kind"))
    else {
        return Err(Refusal::new(
            "表头须有“名称”“地址”“类型”三列（可下载模板）",
            "the header must name the columns 名称/name, 地址/address and 类型/kind (see the template)",
        ));
    };
    let cols: Vec<Option<usize>> = [
        "grid",
        "lat",
        "lon",
        "contact",
        "phone",
        "gas",
        "sleeps",
        "credit_code",
    ]
    .iter()
    .map(|c| col(c))
    .collect();
    let mut out = Vec::with_capacity(data.len());
    for (i, row) in data.iter().enumerate() {
        let line = i + 2;
        let cell = |c: Option<usize>| c.and_then(|c| row.get(c)).map_or("", |s| s.as_str());
        if skipped(row) {
            continue;
        }
        let bad = |zh: &str, en: &str, v: &str, accepted: &str| {
            Refusal::new(
                format!("第 {line} 行：{zh}“{v}”无法识别，可填：{accepted}"),
                format!("line {line}: {en} {v:?} is not understood; accepted: {accepted}"),
            )
        };
        let kind_text = cell(Some(kind_col));
        let mut f = PremisesFields::new(
            cell(Some(name_col)),
            cell(Some(address_col)),
            kind(kind_text).ok_or_else(|| bad("类型", "kind", kind_text, KINDS_ACCEPTED))?,
        );
        f.grid_id = Some(cell(cols[0]).to_owned()).filter(|g| !g.is_empty());
        let (lat, lon) = (cell(cols[1]), cell(cols[2]));
        if !lat.is_empty() || !lon.is_empty() {
            let number = "-90 至 90 / -180 至 180 的数字";
            let lat: f64 = lat
                .parse()
                .map_err(|_| bad("纬度", "latitude", lat, number))?;
            let lon: f64 = lon
                .parse()
                .map_err(|_| bad("经度", "longitude", lon, number))?;
            f.location = Some(LatLon { lat, lon });
        }
        f.contact_person = Some(cell(cols[3]).to_owned()).filter(|s| !s.is_empty());
        f.phone = Some(cell(cols[4]).to_owned()).filter(|s| !s.is_empty());
        f.gas_use = gas(cell(cols[5]))
            .ok_or_else(|| bad("燃气", "gas use", cell(cols[5]), GAS_ACCEPTED))?;
        f.sleeps_on_site = yes(cell(cols[6]))
            .ok_or_else(|| bad("住人", "sleeps on site", cell(cols[6]), YES_ACCEPTED))?;
        f.credit_code = Some(cell(cols[7]).to_owned()).filter(|s| !s.is_empty());
        f.validate()
            .map_err(|e| Refusal::new(format!("第 {line} 行：{e}"), format!("line {line}: {e}")))?;
        out.push(f);
    }
    Ok(out)
}

/// The import template: every column with an example row and the values accepted.
pub const TEMPLATE_CSV: &str = "\u{feff}名称,地址,类型,网格,纬度,经度,联系人,电话,燃气,住人,统一社会信用代码\n\
老王面馆,幸福路1号,餐饮,XF-01,31.230412,121.473701,王建国,13800000000,瓶装液化气,否,91310000MA1FL0000N\n\
# 类型可填：餐饮、零售、加工、住宿、娱乐、网吧、美容、培训、诊所、其他；燃气：无、管道天然气、瓶装液化气；住人：是、否（以 # 开头的行不导入）,,,,,,,,,,\n";

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// New shops.
    pub added: usize,
    /// Shops already there whose imported fields changed.
    pub updated: usize,
    /// Shops already there, as imported.
    pub unchanged: usize,
}

/// The existing shop a row means: the same credit code, else the same name and address in
/// the same grid.
fn same_shop<'a>(
    existing: &'a [xuncha_core::model::Premises],
    row: &PremisesFields,
) -> Option<&'a xuncha_core::model::Premises> {
    if let Some(code) = &row.credit_code
        && let Some(p) = existing
            .iter()
            .find(|p| p.fields.credit_code.as_ref() == Some(code))
    {
        return Some(p);
    }
    existing.iter().find(|p| {
        p.fields.name == row.name
            && p.fields.address == row.address
            && p.fields.grid_id == row.grid_id
    })
}

/// The existing shop's fields with the imported columns written over them (fields the file
/// does not carry keep what they hold).
fn merged(existing: &PremisesFields, row: &PremisesFields) -> PremisesFields {
    let mut f = existing.clone();
    f.name = row.name.clone();
    f.address = row.address.clone();
    f.kind = row.kind;
    f.grid_id = row.grid_id.clone();
    if row.location.is_some() {
        f.location = row.location;
    }
    if row.contact_person.is_some() {
        f.contact_person = row.contact_person.clone();
    }
    if row.phone.is_some() {
        f.phone = row.phone.clone();
    }
    f.gas_use = row.gas_use;
    f.sleeps_on_site = row.sleeps_on_site;
    if row.credit_code.is_some() {
        f.credit_code = row.credit_code.clone();
    }
    f
}

/// `GET /v1/admin/premises/template.csv`: the import template.
pub async fn template(caller: Caller) -> Result<axum::response::Response, ApiError> {
    crate::admin::require_admin(&caller)?;
    Ok(csv_download("premises-template.csv", TEMPLATE_CSV))
}

/// `POST /v1/admin/premises/import` (body: the file; `Content-Type` says CSV or XLSX).
pub async fn import_premises(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::admin::require_admin(&caller)?;
    let xlsx = is_xlsx(&headers);
    let premises = parse_upload(body, xlsx, premises_from_rows).await?;
    let author = UserId(caller.user.0.clone());
    let (outcome, outside) = state
        .write(move |w| {
            // Every grid named must exist (a typo would file shops where no phone sees them).
            let known = w.tables().known_areas()?.grids;
            let store = w.store();
            if let Some((line, g)) = premises.iter().enumerate().find_map(|(i, f)| {
                f.grid_id
                    .as_ref()
                    .filter(|g| !known.contains(*g))
                    .map(|g| (i + 2, g))
            }) {
                return Err(Refusal::new(
                    format!("第 {line} 行：网格“{g}”不存在，请先导入网格"),
                    format!("line {line}: there is no grid {g:?}; import the grids first"),
                )
                .into());
            }
            // Shops whose position lies outside their grid's boundary: imported, and said.
            let bounded: std::collections::HashSet<String> =
                store.grid_names()?.into_iter().map(|(id, _)| id).collect();
            let outside: Vec<String> = premises
                .iter()
                .filter(|f| match (&f.grid_id, f.location) {
                    (Some(g), Some(at)) if bounded.contains(g) => {
                        store.grid_at(at).as_ref() != Some(g)
                    }
                    _ => false,
                })
                .map(|f| f.name.clone())
                .collect();
            let existing = store.list_premises(true)?;
            // All rows or none, with one commit (not one per row).
            let outcome = store
                .atomic(|store| {
                    store.act_as(author, |s| {
                        let mut outcome = Outcome::default();
                        for row in &premises {
                            match same_shop(&existing, row) {
                                Some(p) => {
                                    let f = merged(&p.fields, row);
                                    if f == p.fields {
                                        outcome.unchanged += 1;
                                    } else {
                                        s.edit_premises(&p.id, f)?;
                                        outcome.updated += 1;
                                    }
                                }
                                None => {
                                    s.add_premises(row.clone())?;
                                    outcome.added += 1;
                                }
                            }
                        }
                        Ok(outcome)
                    })
                })
                .map_err(ApiError::from)?;
            Ok((outcome, outside))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "imported": outcome.added + outcome.updated,
            "added": outcome.added,
            "updated": outcome.updated,
            "unchanged": outcome.unchanged,
            "outside_grid": outside,
        })),
    ))
}
