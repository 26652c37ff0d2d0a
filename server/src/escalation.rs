//! Escalation of overdue hazards: a periodic job that writes `escalated` hazard events as ops,
//! so phones see them after their next sync. Idempotent: a hazard already at a level is not
//! escalated to it again, so two runs make one escalation.
//!
//! Default steps follow `domain.md`: overdue at T+1 (calendar day) goes to the grid leader
//! (level 1); T+3 working days to the sub-district / enforcement office (level 2).

use chrono::NaiveDate;
use serde::Serialize;
use xuncha_core::calendar::WorkCalendar;
use xuncha_core::hazard::{HazardAction, HazardStatus};
use xuncha_core::model::{HazardId, PremisesId, UserId};
use xuncha_core::store::Store;

use crate::error::ApiError;
use crate::tables::Writer;

/// When to escalate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationRules {
    /// Calendar days after the deadline for level 1 (grid leader).
    pub level1_after_days: u64,
    /// Working days after the deadline for level 2 (sub-district).
    pub level2_after_working_days: u64,
}

impl Default for EscalationRules {
    fn default() -> Self {
        EscalationRules {
            level1_after_days: 1,
            level2_after_working_days: 3,
        }
    }
}

/// The level a hazard with `deadline` should be at on `today` (0: none).
pub fn target_level(
    deadline: NaiveDate,
    today: NaiveDate,
    rules: &EscalationRules,
    calendar: &WorkCalendar,
) -> u8 {
    let level1 = deadline + chrono::Days::new(rules.level1_after_days);
    let level2 = calendar.add_working_days(deadline, rules.level2_after_working_days);
    if today >= level2 {
        2
    } else if today >= level1 {
        1
    } else {
        0
    }
}

/// One escalation made by a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Escalation {
    /// The hazard.
    pub hazard_id: HazardId,
    /// Its premises.
    pub premises_id: PremisesId,
    /// The item that found it.
    pub code: String,
    /// Its deadline.
    pub deadline: NaiveDate,
    /// The new level.
    pub level: u8,
}

/// Escalates every open hazard past its deadline to the level it should be at. Blocking; run
/// with the writer.
pub fn run(
    store: &mut Store,
    today: NaiveDate,
    rules: &EscalationRules,
    calendar: &WorkCalendar,
) -> Result<Vec<Escalation>, ApiError> {
    let mut done = Vec::new();
    for h in store.open_hazards()? {
        let (Some(deadline), true) = (
            h.deadline,
            matches!(
                h.status,
                HazardStatus::Rectifying | HazardStatus::AwaitingRecheck
            ),
        ) else {
            continue;
        };
        let level = target_level(deadline, today, rules, calendar);
        if level <= h.escalation {
            continue;
        }
        // The server's own action: authored by the system (shown as 系统), not by whoever
        // the store last acted for; what it means (overdue since the deadline) the pages say.
        store.act_as(UserId::from(crate::db::SYSTEM_USER), |s| {
            s.record_hazard_event(&h.id, HazardAction::Escalated { level }, None, None)
        })?;
        done.push(Escalation {
            hazard_id: h.id.clone(),
            premises_id: h.origin.premises_id.clone(),
            code: h.origin.finding.code.clone(),
            deadline,
            level,
        });
    }
    Ok(done)
}

/// The periodic job: escalates, and when webhooks are on, queues one `hazard.escalated` event
/// per escalation and, once a day, an `overdue.digest` of every overdue hazard.
pub fn run_job(
    w: &mut Writer<'_>,
    now_ms: i64,
    rules: &EscalationRules,
    calendar: &WorkCalendar,
    webhooks: bool,
) -> Result<Vec<Escalation>, ApiError> {
    // The escalations and their webhook events together, with one commit: no escalation is
    // written without its event, and a thousand overdue hazards are not a thousand commits.
    w.all_or_nothing(|w| job(w, now_ms, rules, calendar, webhooks))
}

fn job(
    w: &mut Writer<'_>,
    now_ms: i64,
    rules: &EscalationRules,
    calendar: &WorkCalendar,
    webhooks: bool,
) -> Result<Vec<Escalation>, ApiError> {
    let today = xuncha_core::clock::china_date(now_ms);
    let done = run(w.store(), today, rules, calendar)?;
    if !webhooks {
        return Ok(done);
    }
    for e in &done {
        crate::webhook::enqueue(w.tables(), "hazard.escalated", e, now_ms)?;
    }
    // Once a day, in this job's transaction (all or nothing): see `job_tables`.
    if w.tables().claim_period("digest", &today.to_string())? {
        let overdue: Vec<serde_json::Value> = w
            .replica()
            .open_hazards()?
            .into_iter()
            .filter(|h| h.deadline.is_some_and(|d| d < today))
            .map(|h| {
                serde_json::json!({
                    "hazard_id": h.id, "premises_id": h.origin.premises_id,
                    "code": h.origin.finding.code, "deadline": h.deadline,
                    "escalation": h.escalation,
                })
            })
            .collect();
        let digest =
            serde_json::json!({ "date": today, "overdue": overdue.len(), "hazards": overdue });
        crate::webhook::enqueue(w.tables(), "overdue.digest", &digest, now_ms)?;
    }
    Ok(done)
}
