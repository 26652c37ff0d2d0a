//! Hazards (隐患) and their lifecycle: the state is a pure fold over the hazard's events.
//!
//! Events are sorted by [`OpKey`] (HLC, device id, seq) before folding, so every replica that
//! holds the same events computes the same state whatever order they arrived in. An event the
//! current state does not allow is kept in the history and flagged, never dropped: the history
//! is evidence, and a later event may make sense of it.
//!
//! ```text
//! found ─┬─ fixed on the spot ───────────────────────────────► closed
//!        └─ notice issued (deadline) ─► rectifying
//! rectifying ─ owner reports fixed ─► awaiting re-check
//! rectifying / awaiting re-check ─ re-check passed ─► closed
//!                                └ re-check failed ─► rectifying (new deadline, round + 1)
//! suspected major: "closed" above becomes awaiting approval; a supervisor approves closure
//! ```

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::{
    Finding, Geotag, HazardId, InspectionId, PhotoRef, PremisesId, Severity, UserId,
};
use crate::op::OpKey;

/// Where a hazard is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum HazardStatus {
    /// 已发现: found, no notice yet.
    Found,
    /// 整改中: a notice with a deadline is out.
    Rectifying,
    /// 待复查: the owner says it is fixed.
    AwaitingRecheck,
    /// 待审批: a suspected major hazard that passed its re-check; a supervisor must approve.
    AwaitingApproval,
    /// 已销号.
    Closed,
    /// Withdrawn by a correction of the inspection that found it.
    Withdrawn,
}

impl HazardStatus {
    /// Still needs work.
    pub fn is_open(self) -> bool {
        !matches!(self, HazardStatus::Closed | HazardStatus::Withdrawn)
    }
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HazardStatus::Found => "found",
            HazardStatus::Rectifying => "rectifying",
            HazardStatus::AwaitingRecheck => "awaiting_recheck",
            HazardStatus::AwaitingApproval => "awaiting_approval",
            HazardStatus::Closed => "closed",
            HazardStatus::Withdrawn => "withdrawn",
        }
    }
}

/// Something done to a hazard after it was found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum HazardAction {
    /// 当场整改: fixed while the worker was there.
    FixedOnSpot {
        /// After-photos.
        #[serde(default)]
        photos: Vec<PhotoRef>,
    },
    /// 下发整改通知.
    NoticeIssued {
        /// Deadline.
        deadline: NaiveDate,
        /// Notice number (整改通知书编号).
        #[serde(default)]
        notice_no: Option<String>,
    },
    /// The owner says it is fixed.
    OwnerReportedFixed {
        /// Photos the owner sent.
        #[serde(default)]
        photos: Vec<PhotoRef>,
    },
    /// 复查合格.
    RecheckPassed {
        /// After-photos.
        #[serde(default)]
        photos: Vec<PhotoRef>,
    },
    /// 复查不合格: a new deadline and another round.
    RecheckFailed {
        /// New deadline.
        deadline: NaiveDate,
        /// Photos.
        #[serde(default)]
        photos: Vec<PhotoRef>,
    },
    /// The deadline is moved.
    DeadlineExtended {
        /// New deadline.
        deadline: NaiveDate,
    },
    /// Another worker takes it over.
    Reassigned {
        /// The new assignee.
        to: UserId,
    },
    /// Escalated to a higher level (1 = grid leader, 2 = sub-district or enforcement office).
    Escalated {
        /// Level.
        level: u8,
    },
    /// A supervisor approves closing a suspected major hazard.
    ClosureApproved,
    /// 催办: a supervisor chases the assignee (the note says what is wanted); changes nothing
    /// but the history, which the assignee's phone receives. New in op schema 2.
    Urged,
    /// The finding was withdrawn by a correction of its inspection.
    Withdrawn,
}

impl HazardAction {
    /// Wire name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            HazardAction::FixedOnSpot { .. } => "fixed_on_spot",
            HazardAction::NoticeIssued { .. } => "notice_issued",
            HazardAction::OwnerReportedFixed { .. } => "owner_reported_fixed",
            HazardAction::RecheckPassed { .. } => "recheck_passed",
            HazardAction::RecheckFailed { .. } => "recheck_failed",
            HazardAction::DeadlineExtended { .. } => "deadline_extended",
            HazardAction::Reassigned { .. } => "reassigned",
            HazardAction::Escalated { .. } => "escalated",
            HazardAction::ClosureApproved => "closure_approved",
            HazardAction::Urged => "urged",
            HazardAction::Withdrawn => "withdrawn",
        }
    }

    /// Photos attached to the action.
    pub fn photos(&self) -> &[PhotoRef] {
        match self {
            HazardAction::FixedOnSpot { photos }
            | HazardAction::OwnerReportedFixed { photos }
            | HazardAction::RecheckPassed { photos }
            | HazardAction::RecheckFailed { photos, .. } => photos,
            _ => &[],
        }
    }
}

/// The payload of a hazard-event op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HazardEvent {
    /// The hazard.
    pub hazard_id: HazardId,
    /// What was done.
    #[serde(flatten)]
    pub action: HazardAction,
    /// Where the phone was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geotag: Option<Geotag>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a hazard starts from: its finding and the inspection that made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HazardOrigin {
    /// The finding.
    pub finding: Finding,
    /// Inspection that found it.
    pub inspection_id: InspectionId,
    /// The premises.
    pub premises_id: PremisesId,
    /// Found on.
    pub found_on: NaiveDate,
    /// Found by (also the first assignee).
    pub found_by: UserId,
}

/// One event as the fold sees it: its order key, author, wall time and action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Order key.
    pub key: OpKey,
    /// Who did it.
    pub by: UserId,
    /// Device wall time (evidence; the HLC orders).
    pub at_ms: i64,
    /// What was done; `None` for the finding itself.
    pub action: Option<HazardAction>,
    /// Where.
    #[serde(default)]
    pub geotag: Option<Geotag>,
    /// Note.
    #[serde(default)]
    pub note: Option<String>,
    /// Set when the state at that point did not allow the action (kept, not applied).
    #[serde(default)]
    pub invalid: bool,
}

/// The current state of a hazard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hazard {
    /// Id.
    pub id: HazardId,
    /// Where it came from.
    pub origin: HazardOrigin,
    /// Status.
    pub status: HazardStatus,
    /// Current deadline (none until a notice is issued, unless fixed on the spot).
    pub deadline: Option<NaiveDate>,
    /// Notice number.
    pub notice_no: Option<String>,
    /// Rectification round, from 1 when a notice is issued.
    pub round: u32,
    /// Who must act now.
    pub assignee: UserId,
    /// Highest escalation level reached (0 = none).
    pub escalation: u8,
    /// After-photos from fixes and re-checks.
    pub after_photos: Vec<PhotoRef>,
    /// When it was closed or withdrawn (the key of that event).
    pub closed_by: Option<OpKey>,
    /// How many events were flagged as invalid.
    pub invalid_events: u32,
}

/// Folds a hazard's events (any order) into its state; also returns the history in fold
/// order with invalid events flagged. `None` while the finding itself has not arrived.
pub fn fold(
    id: &HazardId,
    origin: Option<&HazardOrigin>,
    events: &[HistoryEntry],
) -> (Option<Hazard>, Vec<HistoryEntry>) {
    let mut history: Vec<HistoryEntry> = events.to_vec();
    history.sort_by(|a, b| a.key.cmp(&b.key));
    let Some(origin) = origin else {
        return (None, history);
    };
    let mut h = Hazard {
        id: id.clone(),
        origin: origin.clone(),
        status: HazardStatus::Found,
        deadline: None,
        notice_no: None,
        round: 0,
        assignee: origin.found_by.clone(),
        escalation: 0,
        after_photos: Vec::new(),
        closed_by: None,
        invalid_events: 0,
    };
    for e in history.iter_mut() {
        let Some(action) = &e.action else { continue };
        e.invalid = !step(&mut h, action, &e.key);
        if e.invalid {
            h.invalid_events += 1;
        } else {
            h.after_photos.extend(action.photos().iter().cloned());
        }
    }
    (Some(h), history)
}

/// The status after `action`, or `None` when a hazard in `status` does not allow it. The one
/// rule used by the fold and by the phone before it records an action.
pub fn transition(
    status: HazardStatus,
    severity: Severity,
    action: &HazardAction,
) -> Option<HazardStatus> {
    use HazardStatus::*;
    // A fix on a suspected major hazard waits for a supervisor instead of closing.
    let resolved = if severity == Severity::SuspectedMajor {
        AwaitingApproval
    } else {
        Closed
    };
    Some(match (status, action) {
        (Found, HazardAction::FixedOnSpot { .. }) => resolved,
        (Found, HazardAction::NoticeIssued { .. }) => Rectifying,
        (Rectifying, HazardAction::OwnerReportedFixed { .. }) => AwaitingRecheck,
        (Rectifying | AwaitingRecheck, HazardAction::RecheckPassed { .. }) => resolved,
        (Rectifying | AwaitingRecheck, HazardAction::RecheckFailed { .. }) => Rectifying,
        (Found | Rectifying | AwaitingRecheck, HazardAction::DeadlineExtended { .. }) => status,
        (s, HazardAction::Reassigned { .. }) if s.is_open() => s,
        (s, HazardAction::Escalated { level }) if s.is_open() && *level > 0 => s,
        (AwaitingApproval, HazardAction::ClosureApproved) => Closed,
        (s, HazardAction::Urged) if s.is_open() => s,
        (s, HazardAction::Withdrawn) if s.is_open() => Withdrawn,
        _ => return None,
    })
}

/// Applies one action; false (and no change) when the state does not allow it.
fn step(h: &mut Hazard, action: &HazardAction, key: &OpKey) -> bool {
    let Some(next) = transition(h.status, h.origin.finding.severity, action) else {
        return false;
    };
    match action {
        HazardAction::NoticeIssued {
            deadline,
            notice_no,
        } => {
            h.deadline = Some(*deadline);
            h.notice_no = notice_no.clone();
            h.round = 1;
        }
        HazardAction::RecheckFailed { deadline, .. } => {
            h.deadline = Some(*deadline);
            h.round += 1;
        }
        HazardAction::DeadlineExtended { deadline } => h.deadline = Some(*deadline),
        HazardAction::Reassigned { to } => h.assignee = to.clone(),
        HazardAction::Escalated { level } => h.escalation = h.escalation.max(*level),
        _ => {}
    }
    if !next.is_open() && h.status.is_open() {
        h.closed_by = Some(key.clone());
    }
    h.status = next;
    true
}
