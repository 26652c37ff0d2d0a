//! `POST /v1/admin/premises/import`: premises from a spreadsheet (CSV or XLSX), as a district
//! office keeps them. Columns are found by their header, in Chinese or English; every row is
//! checked before anything is stored, and a bad row is named with its line number.

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

/// The premises described by the rows (header first), or the first problem with its line.
pub fn premises_from_rows(rows: &[Vec<String>]) -> Result<Vec<PremisesFields>, String> {
    let Some((header, data)) = rows.split_first() else {
        return Err("the file is empty".to_owned());
    };
    if data.len() > MAX_ROWS {
        return Err(format!("more than {MAX_ROWS} rows; split the file"));
    }
    let col = |name: &str| {
        let names = COLUMNS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[][..], |c| c.1);
        header
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    let (Some(name_col), Some(address_col), Some(kind_col)) =
        (col("name"), col("address"), col("kind"))
    else {
        return Err(
            "the header must name the columns 名称/name, 地址/address and 类型/kind".to_owned(),
        );
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
        if row.iter().all(String::is_empty) {
            continue;
        }
        let bad = |what: &str, v: &str| format!("line {line}: {what} {v:?} is not understood");
        let kind_text = cell(Some(kind_col));
        let mut f = PremisesFields::new(
            cell(Some(name_col)),
            cell(Some(address_col)),
            kind(kind_text).ok_or_else(|| bad("kind", kind_text))?,
        );
        f.grid_id = Some(cell(cols[0]).to_owned()).filter(|g| !g.is_empty());
        let (lat, lon) = (cell(cols[1]), cell(cols[2]));
        if !lat.is_empty() || !lon.is_empty() {
            let lat: f64 = lat.parse().map_err(|_| bad("latitude", lat))?;
            let lon: f64 = lon.parse().map_err(|_| bad("longitude", lon))?;
            f.location = Some(LatLon { lat, lon });
        }
        f.contact_person = Some(cell(cols[3]).to_owned()).filter(|s| !s.is_empty());
        f.phone = Some(cell(cols[4]).to_owned()).filter(|s| !s.is_empty());
        f.gas_use = gas(cell(cols[5])).ok_or_else(|| bad("gas use", cell(cols[5])))?;
        f.sleeps_on_site =
            yes(cell(cols[6])).ok_or_else(|| bad("sleeps on site", cell(cols[6])))?;
        f.credit_code = Some(cell(cols[7]).to_owned()).filter(|s| !s.is_empty());
        f.validate().map_err(|e| format!("line {line}: {e}"))?;
        out.push(f);
    }
    Ok(out)
}

/// `POST /v1/admin/premises/import` (body: the file; `Content-Type` says CSV or XLSX).
pub async fn import_premises(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::admin::require_admin(&caller)?;
    let xlsx = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("spreadsheetml") || t.contains("excel"));
    let refused =
        |why: String| ApiError::invalid("bad_import", format!("导入文件有误：{why}"), why);
    let premises =
        tokio::task::spawn_blocking(move || rows(&body, xlsx).and_then(|r| premises_from_rows(&r)))
            .await
            .map_err(ApiError::internal)?
            .map_err(refused)?;
    let author = UserId(caller.user.0.clone());
    let imported = state
        .write(move |store| {
            // All rows or none, with one commit (not one per row).
            store
                .all_or_nothing(|store| {
                    store.act_as(author, |s| {
                        for f in premises.iter().cloned() {
                            s.add_premises(f)?;
                        }
                        Ok(premises.len())
                    })
                })
                .map_err(ApiError::from)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "imported": imported }))))
}
