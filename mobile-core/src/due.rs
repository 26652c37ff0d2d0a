//! What a worker should do next, and when to remind them: routine re-inspections by cadence,
//! notices to issue, re-checks at hazards' deadlines, overdue hazards. Pure: the store gathers
//! the inputs, [`due`] decides.
//!
//! Cadence defaults follow `domain.md`: every premises monthly; crowded or entertainment
//! venues every half month; weekly where a hazard is open, for catering on bottled LPG, and
//! where people sleep on site. Cadence intervals are calendar days; "within 3 working days"
//! rules count working days on the [`WorkCalendar`] (holidays and 调休 as data).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{Days, NaiveDate, NaiveTime, TimeZone};
use serde::{Deserialize, Serialize};

use crate::calendar::WorkCalendar;
use crate::clock::china_offset;
use crate::hazard::{Hazard, HazardStatus};
use crate::model::{GasUse, HazardId, Premises, PremisesId, PremisesKind, Severity};

/// What the cadence of a premises depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct PremisesFacts {
    /// The premises.
    pub id: PremisesId,
    /// Kind.
    pub kind: PremisesKind,
    /// Gas used.
    pub gas_use: GasUse,
    /// People sleep on site.
    pub sleeps_on_site: bool,
    /// Most people present at once.
    pub max_occupants: Option<u32>,
    /// Archived premises are not visited.
    pub archived: bool,
    /// Its grid (campaigns are per grid).
    pub grid_id: Option<String>,
}

impl From<&Premises> for PremisesFacts {
    fn from(p: &Premises) -> Self {
        PremisesFacts {
            id: p.id.clone(),
            kind: p.fields.kind,
            gas_use: p.fields.gas_use,
            sleeps_on_site: p.fields.sleeps_on_site,
            max_occupants: p.fields.max_occupants,
            archived: p.fields.archived,
            grid_id: p.fields.grid_id.clone(),
        }
    }
}

/// What the due list needs of an open hazard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HazardFacts {
    /// The hazard.
    pub id: HazardId,
    /// Its premises.
    pub premises_id: PremisesId,
    /// Status.
    pub status: HazardStatus,
    /// Severity.
    pub severity: Severity,
    /// Current deadline.
    pub deadline: Option<NaiveDate>,
    /// When it was found.
    pub found_on: NaiveDate,
}

impl From<&Hazard> for HazardFacts {
    fn from(h: &Hazard) -> Self {
        HazardFacts {
            id: h.id.clone(),
            premises_id: h.origin.premises_id.clone(),
            status: h.status,
            severity: h.origin.finding.severity,
            deadline: h.deadline,
            found_on: h.origin.found_on,
        }
    }
}

/// Re-inspection intervals in days. Reference data: edited on the server, synced to phones.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Cadence {
    /// Every premises.
    pub default_days: u64,
    /// Crowded or entertainment venues.
    pub crowded_days: u64,
    /// Open hazards, bottled-LPG catering, people sleeping on site.
    pub weekly_days: u64,
    /// Premises holding at least this many people count as crowded.
    pub crowded_occupants: u32,
    /// Working days after finding a hazard by which its notice should be out.
    pub notice_within_working_days: u64,
    /// Working days after a deadline (or the owner's report) by which to re-check.
    pub recheck_within_working_days: u64,
    /// How far ahead routine visits are listed.
    pub horizon_days: u64,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            default_days: 30,
            crowded_days: 15,
            weekly_days: 7,
            crowded_occupants: 50,
            notice_within_working_days: 3,
            recheck_within_working_days: 3,
            horizon_days: 7,
        }
    }
}

/// What needs doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum DueKind {
    /// A routine re-inspection.
    Routine,
    /// A hazard found without a notice yet.
    IssueNotice,
    /// A re-check at (or after) a hazard's deadline.
    Recheck,
    /// A suspected major hazard waiting for a supervisor's approval (shown, not actionable).
    AwaitingApproval,
    /// A premises of a running campaign (专项行动) not yet inspected for it.
    Campaign,
}

/// One entry of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct DueItem {
    /// What.
    pub kind: DueKind,
    /// Where.
    pub premises_id: PremisesId,
    /// The hazard, for hazard work.
    pub hazard_id: Option<HazardId>,
    /// By when (China local date).
    pub due_on: NaiveDate,
    /// Days past `due_on` (0 when not yet overdue).
    pub overdue_days: u64,
    /// A suspected major hazard is involved.
    pub major: bool,
    /// For campaign work: which campaign and the checklists still to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<crate::campaign::CampaignTask>,
}

/// The due list for `today`, most urgent first: overdue before due; among overdue, hazard work
/// before routine visits, then more days overdue first; major hazards first; then by date.
pub fn due(
    premises: &[PremisesFacts],
    last_inspected: &HashMap<PremisesId, NaiveDate>,
    open_hazards: &[HazardFacts],
    today: NaiveDate,
    cadence: &Cadence,
    calendar: &WorkCalendar,
) -> Vec<DueItem> {
    let with_open_hazard: HashSet<&PremisesId> =
        open_hazards.iter().map(|h| &h.premises_id).collect();
    let add = |d: NaiveDate, days: u64| d.checked_add_days(Days::new(days)).unwrap_or(d);
    let item =
        |kind, premises_id: &PremisesId, hazard: Option<&HazardFacts>, due_on: NaiveDate| DueItem {
            kind,
            premises_id: premises_id.clone(),
            hazard_id: hazard.map(|h| h.id.clone()),
            due_on,
            overdue_days: (today - due_on).num_days().max(0) as u64,
            major: hazard.is_some_and(|h| h.severity == Severity::SuspectedMajor),
            campaign: None,
        };
    let mut out = Vec::new();
    for f in premises.iter().filter(|p| !p.archived) {
        let weekly = with_open_hazard.contains(&f.id)
            || (f.kind == PremisesKind::Catering && f.gas_use == GasUse::BottledLpg)
            || f.sleeps_on_site;
        let crowded = matches!(
            f.kind,
            PremisesKind::Entertainment | PremisesKind::InternetCafe
        ) || f
            .max_occupants
            .is_some_and(|n| n >= cadence.crowded_occupants);
        let interval = if weekly {
            cadence.weekly_days
        } else if crowded {
            cadence.crowded_days
        } else {
            cadence.default_days
        };
        let due_on = last_inspected
            .get(&f.id)
            .map_or(today, |last| add(*last, interval));
        if due_on <= add(today, cadence.horizon_days) {
            out.push(item(DueKind::Routine, &f.id, None, due_on));
        }
    }
    for h in open_hazards {
        let premises = &h.premises_id;
        match (h.status, h.deadline) {
            (HazardStatus::Found, _) => out.push(item(
                DueKind::IssueNotice,
                premises,
                Some(h),
                calendar.add_working_days(h.found_on, cadence.notice_within_working_days),
            )),
            (HazardStatus::AwaitingRecheck, deadline) => {
                // The owner says it is fixed: re-check soon, and no later than after the deadline.
                let within = |d| calendar.add_working_days(d, cadence.recheck_within_working_days);
                let by = deadline.map_or(today, within);
                out.push(item(
                    DueKind::Recheck,
                    premises,
                    Some(h),
                    by.min(within(today)),
                ));
            }
            (HazardStatus::Rectifying, Some(deadline))
                if deadline <= add(today, cadence.horizon_days) =>
            {
                out.push(item(DueKind::Recheck, premises, Some(h), deadline));
            }
            (HazardStatus::AwaitingApproval, _) => {
                out.push(item(
                    DueKind::AwaitingApproval,
                    premises,
                    Some(h),
                    h.deadline.unwrap_or(today),
                ));
            }
            _ => {}
        }
    }
    sort_by_urgency(&mut out);
    out
}

/// Most urgent first (see [`due`]); for lists merged from several sources (campaigns).
pub fn sort_by_urgency(items: &mut [DueItem]) {
    items.sort_by(|a, b| {
        let overdue = |i: &DueItem| i.overdue_days > 0;
        let hazard_work = |i: &DueItem| overdue(i) && i.hazard_id.is_some();
        overdue(b)
            .cmp(&overdue(a))
            .then(hazard_work(b).cmp(&hazard_work(a)))
            .then(b.overdue_days.cmp(&a.overdue_days))
            .then(b.major.cmp(&a.major))
            .then(a.due_on.cmp(&b.due_on))
            .then(urgency(a.kind).cmp(&urgency(b.kind)))
            .then(a.premises_id.cmp(&b.premises_id))
            .then(a.hazard_id.cmp(&b.hazard_id))
            .then_with(|| {
                let campaign = |i: &DueItem| i.campaign.as_ref().map(|c| c.campaign_id.clone());
                campaign(a).cmp(&campaign(b))
            })
    });
}

fn urgency(kind: DueKind) -> u8 {
    match kind {
        DueKind::Recheck => 0,
        DueKind::IssueNotice => 1,
        DueKind::Campaign => 2,
        DueKind::Routine => 3,
        DueKind::AwaitingApproval => 4,
    }
}

/// Reminders go out at this local time.
pub const REMINDER_TIME: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// When the app should next notify: 09:00 China time the day before something falls due and on
/// the day itself, the first such moment after `now_ms`. `None` when nothing is pending.
pub fn next_reminder_at(items: &[DueItem], now_ms: i64) -> Option<i64> {
    let at = |d: NaiveDate| {
        china_offset()
            .from_local_datetime(&d.and_time(REMINDER_TIME))
            .single()
            .map(|t| t.timestamp_millis())
    };
    let today = crate::clock::china_date(now_ms);
    // Something due today or overdue: remind again tomorrow morning.
    let again = items
        .iter()
        .any(|i| i.due_on <= today)
        .then(|| today.succ_opt())
        .flatten();
    // Many items share a date: look at each date once, earliest first, and stop at the first
    // reminder still ahead.
    let dates: BTreeSet<NaiveDate> = items.iter().map(|i| i.due_on).collect();
    let ahead = dates
        .iter()
        .filter(|d| **d >= today)
        .flat_map(|d| [d.pred_opt(), Some(*d)])
        .flatten()
        .filter_map(at)
        .find(|t| *t > now_ms);
    ahead.into_iter().chain(again.and_then(at)).min()
}
