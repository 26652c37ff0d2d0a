//! The morning reminder. A web app cannot wake itself to remind a worker, so once a day, at
//! or after `--reminder-hour` (China time), the server queues for each worker with anything due
//! today or overdue one `worker.reminder` webhook event (the gateway turns it into an SMS or a
//! WeChat message): the core's due list ([`Store::due`], the same rules as on the phone) over
//! the shops of the worker's grids and the hazards assigned to them. A worker
//! (`PUT /v1/me/reminders`) or an admin (`PUT /v1/admin/users/{id}/reminders`) turns it off.

use std::collections::HashMap;

use chrono::Timelike as _;
use serde::Serialize;
use xuncha_core::clock::china_date;
use xuncha_core::due::DueKind;
use xuncha_core::model::{HazardId, UserId};
use xuncha_core::store::Store;

use crate::account_tables::AccountTables;
use crate::accounts::role_and_scope;
use crate::error::ApiError;
use crate::tables::Writer;

/// Most entries listed in one reminder (the count says how many there are in all).
const MOST_ITEMS: usize = 50;

/// One worker's reminder.
#[derive(Debug, Serialize)]
pub struct Reminder {
    /// The worker.
    pub user: String,
    /// Their display name.
    pub name: String,
    /// China local date.
    pub date: String,
    /// Entries past their date.
    pub overdue: usize,
    /// Entries due today.
    pub due_today: usize,
    /// The most urgent entries, most urgent first.
    pub items: Vec<ReminderItem>,
}

/// One entry of a reminder.
#[derive(Debug, Serialize)]
pub struct ReminderItem {
    /// `routine`, `issue_notice`, `recheck`.
    pub kind: DueKind,
    /// The shop.
    pub premises_id: String,
    /// Its name.
    pub premises_name: String,
    /// Its address.
    pub address: String,
    /// The hazard, for hazard work.
    pub hazard_id: Option<String>,
    /// By when.
    pub due_on: String,
    /// Days past it.
    pub overdue_days: u64,
}

/// Queues today's reminders unless already done today or it is before `hour` (China time);
/// returns how many were queued. Call inside the write that runs the daily jobs.
pub fn queue(w: &mut Writer<'_>, now_ms: i64, hour: u32) -> Result<usize, ApiError> {
    let today = china_date(now_ms);
    let china_hour = chrono::DateTime::from_timestamp_millis(now_ms).map_or(0, |t| {
        t.with_timezone(&xuncha_core::clock::china_offset()).hour()
    });
    // Once a day, in the caller's transaction (all or nothing): see `job_tables`.
    if china_hour < hour || !w.tables().claim_period("reminder", &today.to_string())? {
        return Ok(0);
    }
    let reminders = compose(w.replica(), w.tables(), now_ms)?;
    for r in &reminders {
        crate::webhook::enqueue(w.tables(), "worker.reminder", r, now_ms)?;
    }
    Ok(reminders.len())
}

/// Each worker's reminder for `now_ms`: those with reminders on and anything due.
pub fn compose(
    store: &Store,
    tables: &dyn AccountTables,
    now_ms: i64,
) -> Result<Vec<Reminder>, ApiError> {
    let today = china_date(now_ms);
    let due: Vec<_> = store
        .due(now_ms)?
        .into_iter()
        .filter(|d| d.due_on <= today && d.kind != DueKind::AwaitingApproval)
        .collect();
    let premises: HashMap<String, _> = store
        .list_premises(false)?
        .into_iter()
        .map(|p| (p.id.0.clone(), p.fields))
        .collect();
    // Every hazard on the due list is open: one read of them all, not one per entry.
    let assignees: HashMap<HazardId, UserId> = store
        .open_hazards()?
        .into_iter()
        .map(|h| (h.id, h.assignee))
        .collect();
    let mut reminders = Vec::new();
    for (user, name) in workers(tables)? {
        let Some((_, scope)) = role_and_scope(tables, &UserId(user.clone()))? else {
            continue;
        };
        let mine: Vec<_> = due
            .iter()
            .filter(|d| match &d.hazard_id {
                // Hazard work goes to whoever it is assigned to; routine visits to the grid's.
                Some(h) => assignees.get(h).is_some_and(|a| a.as_str() == user),
                None => premises
                    .get(d.premises_id.as_str())
                    .and_then(|p| p.grid_id.as_deref())
                    .is_some_and(|g| scope.covers(g)),
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let overdue = mine.iter().filter(|d| d.overdue_days > 0).count();
        reminders.push(Reminder {
            user,
            name,
            date: today.to_string(),
            overdue,
            due_today: mine.len() - overdue,
            items: mine
                .iter()
                .take(MOST_ITEMS)
                .map(|d| {
                    let p = premises.get(d.premises_id.as_str());
                    ReminderItem {
                        kind: d.kind,
                        premises_id: d.premises_id.0.clone(),
                        premises_name: p.map(|p| p.name.clone()).unwrap_or_default(),
                        address: p.map(|p| p.address.clone()).unwrap_or_default(),
                        hazard_id: d.hazard_id.as_ref().map(|h| h.0.clone()),
                        due_on: d.due_on.to_string(),
                        overdue_days: d.overdue_days,
                    }
                })
                .collect(),
        });
    }
    Ok(reminders)
}

/// Enabled workers with reminders on: (id, display name).
fn workers(conn: &dyn AccountTables) -> Result<Vec<(String, String)>, ApiError> {
    conn.workers(true)
}

/// Turns a user's reminder on or off; `false` when there is no such user.
pub fn set(conn: &dyn AccountTables, user: &str, on: bool) -> Result<bool, ApiError> {
    conn.set_reminders(user, on)
}
