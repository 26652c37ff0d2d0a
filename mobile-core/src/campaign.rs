//! Campaigns (专项行动): a supervisor's sweep, such as e-bike charging checks across a
//! community before winter, or blocked exits before a holiday. A campaign names checklists,
//! the kinds of premises, a start and a deadline; each grid it covers gets its own record (an
//! op filed under that grid, so a phone receives only its grids' part). Pure: the store
//! gathers visits, [`progress`] and [`due_items`] decide.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::checklist::ChecklistKind;
use crate::due::{DueItem, DueKind, PremisesFacts};
use crate::error::{Error, Result};
use crate::model::{CampaignId, PremisesId, PremisesKind, UserId};

/// Longest campaign name, in characters.
pub const MAX_NAME_CHARS: usize = 60;

/// One grid's part of a campaign: the body of a `campaign` op. A later op for the same
/// campaign and grid replaces it whole (last writer wins), which is how it is changed or ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// The campaign (shared by its grids' records).
    pub campaign_id: CampaignId,
    /// The grid this record covers.
    pub grid_id: String,
    /// Name, as the workers see it.
    pub name: String,
    /// Checklists each premises must be inspected against.
    pub checklists: Vec<ChecklistKind>,
    /// Kinds of premises included; empty: all.
    #[serde(default)]
    pub premises_kinds: Vec<PremisesKind>,
    /// First day (China date); visits from this day count.
    pub starts_on: NaiveDate,
    /// Last day.
    pub deadline: NaiveDate,
    /// Ended by a supervisor: nothing of it is due any more (its figures stay).
    #[serde(default)]
    pub ended: bool,
}

impl Campaign {
    /// Checks what can be checked alone.
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(Error::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters (专项行动名称)"),
            ));
        }
        if self.campaign_id.0.is_empty() || self.campaign_id.0.len() > 64 {
            return Err(Error::invalid("campaign_id", "must be 1 to 64 characters"));
        }
        if self.grid_id.is_empty() {
            return Err(Error::invalid("grid_id", "is required"));
        }
        if self.checklists.is_empty() {
            return Err(Error::invalid(
                "checklists",
                "name at least one checklist (至少选择一类检查)",
            ));
        }
        if self.deadline < self.starts_on {
            return Err(Error::invalid(
                "deadline",
                "must not be before the start (截止日期早于开始日期)",
            ));
        }
        Ok(())
    }

    /// Whether a premises is part of this record's sweep.
    pub fn includes(&self, p: &PremisesFacts) -> bool {
        !p.archived
            && p.grid_id.as_deref() == Some(self.grid_id.as_str())
            && (self.premises_kinds.is_empty() || self.premises_kinds.contains(&p.kind))
    }
}

/// What a due-list entry of a campaign says: which campaign, and the checklists still to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CampaignTask {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// Its name.
    pub name: String,
    /// Checklists not yet done at this premises.
    pub checklists: Vec<ChecklistKind>,
}

/// A visit as campaigns count it (the latest correction of an inspection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visit {
    /// Where.
    pub premises_id: PremisesId,
    /// China date of the visit.
    pub performed_on: NaiveDate,
    /// Who.
    pub inspector: UserId,
    /// Checklists answered.
    pub checklists: Vec<ChecklistKind>,
    /// Item codes of the hazards found.
    pub findings: Vec<String>,
}

/// Where one premises stands in a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PremisesProgress {
    /// The premises.
    pub premises_id: PremisesId,
    /// Checklists still to do (empty: done).
    pub missing: Vec<ChecklistKind>,
    /// The day the last missing checklist was done.
    pub done_on: Option<NaiveDate>,
    /// Who did that visit.
    pub done_by: Option<UserId>,
    /// Hazards found by the campaign's checklists in visits since the start.
    pub hazards_found: u32,
}

impl PremisesProgress {
    /// Every checklist done.
    pub fn is_done(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Visits by premises, earliest first (what [`progress`] looks up).
pub fn visits_by_premises(visits: &[Visit]) -> HashMap<&PremisesId, Vec<&Visit>> {
    let mut by: HashMap<&PremisesId, Vec<&Visit>> = HashMap::new();
    for v in visits {
        by.entry(&v.premises_id).or_default().push(v);
    }
    for list in by.values_mut() {
        list.sort_by_key(|v| v.performed_on);
    }
    by
}

/// Each included premises' progress in one grid's record of a campaign. A checklist counts
/// as done by the first visit on or after the start that answered it (late visits count:
/// they are done late, not undone).
pub fn progress(
    campaign: &Campaign,
    premises: &[PremisesFacts],
    visits: &HashMap<&PremisesId, Vec<&Visit>>,
) -> Vec<PremisesProgress> {
    let prefixes: Vec<&str> = campaign
        .checklists
        .iter()
        .map(|k| k.code_prefix())
        .collect();
    premises
        .iter()
        .filter(|p| campaign.includes(p))
        .map(|p| {
            let mut missing = campaign.checklists.clone();
            let (mut done_on, mut done_by, mut hazards_found) = (None, None, 0u32);
            let counted = visits
                .get(&p.id)
                .into_iter()
                .flatten()
                .filter(|v| v.performed_on >= campaign.starts_on);
            for v in counted {
                hazards_found += v
                    .findings
                    .iter()
                    .filter(|code| prefixes.iter().any(|pre| code.starts_with(pre)))
                    .count() as u32;
                let before = missing.len();
                missing.retain(|k| !v.checklists.contains(k));
                if before > 0 && missing.is_empty() {
                    done_on = Some(v.performed_on);
                    done_by = Some(v.inspector.clone());
                }
            }
            PremisesProgress {
                premises_id: p.id.clone(),
                missing,
                done_on,
                done_by,
                hazards_found,
            }
        })
        .collect()
}

/// Due-list entries of the campaigns running on `today`: one per included premises not yet
/// done, due on the deadline.
pub fn due_items(
    campaigns: &[Campaign],
    premises: &[PremisesFacts],
    visits: &[Visit],
    today: NaiveDate,
) -> Vec<DueItem> {
    let running: Vec<&Campaign> = campaigns
        .iter()
        .filter(|c| !c.ended && c.starts_on <= today)
        .collect();
    if running.is_empty() {
        return Vec::new();
    }
    let visits = visits_by_premises(visits);
    let mut out = Vec::new();
    for c in running {
        for p in progress(c, premises, &visits) {
            if p.is_done() {
                continue;
            }
            out.push(DueItem {
                kind: DueKind::Campaign,
                premises_id: p.premises_id,
                hazard_id: None,
                due_on: c.deadline,
                overdue_days: (today - c.deadline).num_days().max(0) as u64,
                major: false,
                campaign: Some(CampaignTask {
                    campaign_id: c.campaign_id.clone(),
                    name: c.name.clone(),
                    checklists: p.missing,
                }),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GasUse;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    fn shop(id: &str, grid: &str, kind: PremisesKind) -> PremisesFacts {
        PremisesFacts {
            id: PremisesId::from(id),
            kind,
            gas_use: GasUse::None,
            sleeps_on_site: false,
            max_occupants: None,
            archived: false,
            grid_id: Some(grid.to_owned()),
        }
    }

    fn sweep() -> Campaign {
        Campaign {
            campaign_id: CampaignId::from("c1"),
            grid_id: "G1".into(),
            name: "冬季电动车充电专项检查".into(),
            checklists: vec![ChecklistKind::EBike, ChecklistKind::Exits],
            premises_kinds: vec![PremisesKind::Retail],
            starts_on: day(5),
            deadline: day(20),
            ended: false,
        }
    }

    fn visit(premises: &str, on: NaiveDate, kinds: &[ChecklistKind], findings: &[&str]) -> Visit {
        Visit {
            premises_id: PremisesId::from(premises),
            performed_on: on,
            inspector: UserId::from("w01"),
            checklists: kinds.to_vec(),
            findings: findings.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn only_premises_of_its_grid_and_kinds_are_included() {
        let premises = [
            shop("a", "G1", PremisesKind::Retail),
            shop("b", "G2", PremisesKind::Retail),
            shop("c", "G1", PremisesKind::Catering),
            PremisesFacts {
                archived: true,
                ..shop("d", "G1", PremisesKind::Retail)
            },
        ];
        let items = due_items(&[sweep()], &premises, &[], day(6));
        let ids: Vec<&str> = items.iter().map(|i| i.premises_id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(items[0].kind, DueKind::Campaign);
        assert_eq!(items[0].due_on, day(20));
    }

    #[test]
    fn nothing_is_due_before_the_start_or_once_ended() {
        let premises = [shop("a", "G1", PremisesKind::Retail)];
        assert!(due_items(&[sweep()], &premises, &[], day(4)).is_empty());
        let ended = Campaign {
            ended: true,
            ..sweep()
        };
        assert!(due_items(&[ended], &premises, &[], day(6)).is_empty());
    }

    #[test]
    fn every_checklist_must_be_done_on_or_after_the_start() {
        let premises = [shop("a", "G1", PremisesKind::Retail)];
        let visits = [
            // Before the start: does not count.
            visit(
                "a",
                day(4),
                &[ChecklistKind::EBike, ChecklistKind::Exits],
                &[],
            ),
            visit("a", day(6), &[ChecklistKind::EBike], &["EB-04", "FE-01"]),
        ];
        let items = due_items(&[sweep()], &premises, &visits, day(7));
        let task = items[0].campaign.as_ref().unwrap();
        assert_eq!(task.checklists, [ChecklistKind::Exits]);

        let mut visits = visits.to_vec();
        visits.push(visit("a", day(22), &[ChecklistKind::Exits], &["EX-02"]));
        assert!(due_items(&[sweep()], &premises, &visits, day(23)).is_empty());
        let by = visits_by_premises(&visits);
        let p = &progress(&sweep(), &premises, &by)[0];
        assert!(p.is_done());
        assert_eq!(p.done_on, Some(day(22)));
        // Only the campaign's checklists' findings count.
        assert_eq!(p.hazards_found, 2);
    }

    #[test]
    fn past_the_deadline_it_is_overdue() {
        let premises = [shop("a", "G1", PremisesKind::Retail)];
        let items = due_items(&[sweep()], &premises, &[], day(23));
        assert_eq!(items[0].overdue_days, 3);
    }

    #[test]
    fn bad_campaigns_are_refused() {
        assert!(sweep().validate().is_ok());
        let bad = [
            Campaign {
                name: " ".into(),
                ..sweep()
            },
            Campaign {
                checklists: vec![],
                ..sweep()
            },
            Campaign {
                deadline: day(1),
                ..sweep()
            },
            Campaign {
                grid_id: String::new(),
                ..sweep()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
