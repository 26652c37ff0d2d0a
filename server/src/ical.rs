//! An iCalendar feed of a worker's due visits, for the calendar app on their phone or desk:
//! `GET /v1/feeds/{user}/{key}.ics`. Calendar apps cannot send a token, so the URL carries a
//! key: an HMAC of the user name under a secret the server keeps, shown by `GET /v1/me`.
//! It reveals nothing else and cannot be turned into a device token.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use xuncha_core::due::DueKind;
use xuncha_core::model::UserId;
use xuncha_core::sync::Role;

use crate::AppState;
use crate::account_tables::AccountTables;
use crate::accounts::{Caller, Scope};
use crate::error::ApiError;

/// The server's feed secret, made on first use (shared by every instance on one database).
fn secret(conn: &dyn AccountTables) -> Result<String, ApiError> {
    if let Some(s) = conn.meta("feed_secret")? {
        return Ok(s);
    }
    conn.meta_or_insert("feed_secret", &crate::accounts::new_token()?)
}

/// The feed key of a user: a MAC of the user name and how often their address was replaced
/// (`revoke::rotate_feed`), so a replaced address stops working.
pub fn feed_key(conn: &dyn AccountTables, user: &str) -> Result<String, ApiError> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret(conn)?.as_bytes())
        .map_err(ApiError::internal)?;
    mac.update(user.as_bytes());
    let generation = conn.meta(&format!("feed_generation/{user}"))?;
    // Addresses never replaced keep the form they had before replacing existed.
    if let Some(generation) = generation {
        mac.update(b"\0");
        mac.update(generation.as_bytes());
    }
    Ok(hex::encode(&mac.finalize().into_bytes()[..16]))
}

/// The feed's path for a user.
pub fn feed_path(conn: &dyn AccountTables, user: &str) -> Result<String, ApiError> {
    Ok(format!("/v1/feeds/{user}/{}.ics", feed_key(conn, user)?))
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets (RFC 5545 3.1), never inside a character.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out
}

/// `GET /v1/feeds/{user}/{key}.ics`.
pub async fn feed(
    State(state): State<AppState>,
    Path((user, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = file.strip_suffix(".ics").unwrap_or_default().to_owned();
    let now = state.now_ms();
    let (role, scope_user) = {
        let u = user.clone();
        state
            .tables(move |tables| {
                if feed_key(tables, &u)? != key {
                    return Err(ApiError::not_found("no such feed"));
                }
                let role = tables
                    .enabled_role(&u)?
                    .ok_or_else(|| ApiError::not_found("no such feed"))?;
                Ok((Role::parse(&role).unwrap_or(Role::Worker), u))
            })
            .await?
    };
    let caller = Caller {
        user: UserId(scope_user),
        role,
        device: xuncha_core::model::DeviceId::from("feed"),
    };
    let (scope, _) = state.scope(&caller).await?;
    let body = state
        .read_store(move |store, _| {
            let items = store.due(now)?;
            let conn = store.conn();
            let mut names = conn.prepare_cached(
                "SELECT (SELECT json_extract(value, '$') FROM premises_fields WHERE premises_id = ?1 AND field = 'name'),
                        (SELECT json_extract(value, '$') FROM premises_fields WHERE premises_id = ?1 AND field = 'grid_id')",
            )?;
            let stamp = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default().format("%Y%m%dT%H%M%SZ");
            let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Xuncha//due visits//ZH\r\nX-WR-CALNAME:巡查任务\r\n");
            for i in items {
                let (name, grid): (Option<String>, Option<String>) =
                    names.query_row([i.premises_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let visible = match (&scope, &grid) {
                    (Scope::All, _) => true,
                    (Scope::Grids(g), Some(grid)) => g.contains(grid),
                    _ => false,
                };
                if !visible {
                    continue;
                }
                let what = match i.kind {
                    DueKind::Routine => "例行巡查 Routine visit",
                    DueKind::IssueNotice => "下发整改通知 Issue notice",
                    DueKind::Recheck => "隐患复查 Re-check",
                    DueKind::AwaitingApproval => "待审批 Awaiting approval",
                    DueKind::Campaign => "专项行动 Campaign",
                };
                let what = match &i.campaign {
                    Some(c) => format!("{what} {}", c.name),
                    None => what.to_owned(),
                };
                let what_id = match (&i.hazard_id, &i.campaign) {
                    (Some(h), _) => h.to_string(),
                    (None, Some(c)) => format!("campaign-{}", c.campaign_id),
                    (None, None) => "visit".to_owned(),
                };
                let uid = format!("{}-{what_id}@xuncha", i.premises_id);
                let day = i.due_on.format("%Y%m%d");
                let next = (i.due_on + chrono::Days::new(1)).format("%Y%m%d");
                let overdue = if i.overdue_days > 0 { format!(" (逾期 {} 天)", i.overdue_days) } else { String::new() };
                out.push_str(&format!(
                    "BEGIN:VEVENT\r\n{}\r\nDTSTAMP:{stamp}\r\nDTSTART;VALUE=DATE:{day}\r\nDTEND;VALUE=DATE:{next}\r\n{}\r\nEND:VEVENT\r\n",
                    fold(&format!("UID:{}", escape(&uid))),
                    fold(&format!("SUMMARY:{}", escape(&format!("{what}: {}{overdue}", name.unwrap_or_default())))),
                ));
            }
            out.push_str("END:VCALENDAR\r\n");
            Ok(out)
        })
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response())
}
