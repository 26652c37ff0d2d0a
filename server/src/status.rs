//! A status page: what the server's replica holds. Chinese first, English with `?lang=en`.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::{Deserialize, Serialize};

use chrono::Datelike;
use xuncha_core::calendar::{WorkCalendar, YearStatus};
use xuncha_core::clock::{china_date, china_offset};

use crate::AppState;
use crate::error::ApiError;

/// Counts shown on the page.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// Premises (not archived).
    pub premises: usize,
    /// Inspections recorded.
    pub inspections: usize,
    /// Hazards still open.
    pub open_hazards: usize,
    /// Ops held.
    pub ops: usize,
    /// The working-day calendar for this year and the next.
    pub calendar: Vec<CalendarYear>,
    /// When `xuncha-server backup` last copied this database (ms since the epoch).
    #[serde(default)]
    pub last_backup_ms: Option<i64>,
    /// The last scheduled backup failed (and none succeeded since): when and why.
    #[serde(default)]
    pub backup_failure: Option<BackupFailure>,
}

/// A failed backup.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupFailure {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// Why.
    pub message: String,
}

/// Whether a year's working days are official (deadlines count them).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CalendarYear {
    /// The year.
    pub year: i32,
    /// `official`, `provisional` or `unknown`.
    pub status: YearStatus,
}

/// This year and the next, as the calendar in use has them.
pub fn calendar_years(calendar: &WorkCalendar, now_ms: i64) -> Vec<CalendarYear> {
    let year = china_date(now_ms).year();
    [year, year + 1]
        .into_iter()
        .map(|year| CalendarYear {
            year,
            status: calendar.status(year),
        })
        .collect()
}

async fn load(state: &AppState) -> Result<Status, ApiError> {
    let now = state.now_ms();
    state
        .read_store(move |s, _| {
            let counts = s.counts()?;
            Ok(Status {
                premises: counts.premises,
                inspections: counts.inspections,
                open_hazards: counts.open_hazards,
                ops: counts.ops,
                calendar: calendar_years(s.calendar(), now),
                last_backup_ms: crate::backup::last_backup_ms(s.conn())?,
                backup_failure: crate::backup::last_failure(s.conn())?
                    .map(|(at_ms, message)| BackupFailure { at_ms, message }),
            })
        })
        .await
}

/// `GET /v1/status`.
pub async fn json(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    Ok(Json(load(&state).await?))
}

/// Query of the page.
#[derive(Debug, Deserialize)]
pub struct Lang {
    lang: Option<String>,
}

/// `GET /status`.
pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<Lang>,
) -> Result<Html<String>, ApiError> {
    let s = load(&state).await?;
    let en = q.lang.as_deref() == Some("en");
    let (title, labels, switch) = if en {
        (
            "Xuncha server",
            ["Premises", "Inspections", "Open hazards", "Ops held"],
            r#"<a href="/status">中文</a>"#,
        )
    } else {
        (
            "巡查服务器",
            ["场所", "检查记录", "未闭环隐患", "操作记录"],
            r#"<a href="/status?lang=en">English</a>"#,
        )
    };
    let mut rows: String = labels
        .iter()
        .zip([s.premises, s.inspections, s.open_hazards, s.ops])
        .map(|(label, n)| format!("<tr><th>{label}</th><td>{n}</td></tr>"))
        .collect();
    for y in &s.calendar {
        let (label, status) = match (en, y.status) {
            (false, YearStatus::Official) => ("工作日历", "正式"),
            (false, YearStatus::Provisional) => ("工作日历", "暂定 (未含调休)"),
            (false, YearStatus::Unknown) => ("工作日历", "缺失 (按周一至周五计)"),
            (true, YearStatus::Official) => ("Working-day calendar", "official"),
            (true, YearStatus::Provisional) => {
                ("Working-day calendar", "provisional (no swapped weekends)")
            }
            (true, YearStatus::Unknown) => ("Working-day calendar", "missing (plain weeks)"),
        };
        rows.push_str(&format!(
            "<tr><th>{label} {}</th><td>{status}</td></tr>",
            y.year
        ));
    }
    let backup = s.last_backup_ms.map_or_else(
        || (if en { "never" } else { "从未" }).to_owned(),
        |ms| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .with_timezone(&china_offset())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    );
    let label = if en { "Last backup" } else { "最近备份" };
    rows.push_str(&format!("<tr><th>{label}</th><td>{backup}</td></tr>"));
    if let Some(f) = &s.backup_failure {
        let when = chrono::DateTime::from_timestamp_millis(f.at_ms)
            .unwrap_or_default()
            .with_timezone(&china_offset())
            .format("%Y-%m-%d %H:%M");
        let label = if en { "Backup FAILED" } else { "备份失败" };
        rows.push_str(&format!(
            "<tr class=\"failed\"><th>{label}</th><td>{when}: {}</td></tr>",
            crate::dashboard::escape_html(&f.message)
        ));
    }
    Ok(Html(format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><table>{rows}</table><p>{switch}</p></body></html>",
        if en { "en" } else { "zh-CN" }
    )))
}
