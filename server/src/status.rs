//! A status page: what the server's replica holds. Chinese first, English with `?lang=en`.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::{Deserialize, Serialize};

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
}

async fn load(state: &AppState) -> Result<Status, ApiError> {
    state
        .write(|s| {
            let premises = s.list_premises(false)?;
            let inspections = premises
                .iter()
                .map(|p| s.inspections_of(&p.id).map(|v| v.len()))
                .sum::<Result<usize, _>>()?;
            Ok(Status {
                premises: premises.len(),
                inspections,
                open_hazards: s.open_hazards()?.len(),
                ops: s.op_count()?,
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

/// `GET /`.
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
            r#"<a href="/">中文</a>"#,
        )
    } else {
        (
            "巡查服务器",
            ["场所", "检查记录", "未闭环隐患", "操作记录"],
            r#"<a href="/?lang=en">English</a>"#,
        )
    };
    let rows: String = labels
        .iter()
        .zip([s.premises, s.inspections, s.open_hazards, s.ops])
        .map(|(label, n)| format!("<tr><th>{label}</th><td>{n}</td></tr>"))
        .collect();
    Ok(Html(format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><table>{rows}</table><p>{switch}</p></body></html>",
        if en { "en" } else { "zh-CN" }
    )))
}
