//! Convergence: replicas making concurrent offline edits (same fields, same hazards, clocks
//! hours apart) and exchanging ops in any order, with duplicates and replays, end with the
//! same state digest; applying everything again changes nothing.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::sync::Arc;

use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;
use xuncha_core::checklist::sample::{photo_for, sample_answers};
use xuncha_core::checklist::{Catalog, ChecklistKind};
use xuncha_core::clock::{ManualClock, WallClock, china_date};
use xuncha_core::hazard::{HazardAction, HistoryEntry, fold};
use xuncha_core::model::{DeviceId, GasUse, InspectionDraft, PremisesFields, PremisesKind, UserId};
use xuncha_core::op::Op;
use xuncha_core::store::{Store, StoreOptions};

const REPLICAS: usize = 5;
const HOUR: i64 = 3_600_000;
const BASE: i64 = 1_795_400_000_000;
const HAZARD_CODES: [&str; 4] = ["FE-03", "FE-09", "EB-04", "EX-02"];

#[derive(Clone, Debug)]
enum Step {
    /// Replica edits one field of one premises.
    Edit {
        r: usize,
        premises: usize,
        field: usize,
        value: u8,
    },
    /// Replica inspects a premises, finding the hazards whose bits are set.
    Inspect {
        r: usize,
        premises: usize,
        hazards: u8,
    },
    /// Replica acts on one of the hazards it knows.
    Act { r: usize, pick: usize, action: u8 },
    /// `to` receives everything `from` holds (a partial sync).
    Sync { from: usize, to: usize },
    /// Replica's wall clock jumps (phones have wrong clocks).
    Jump { r: usize, delta_min: i32 },
}

fn step() -> impl Strategy<Value = Step> {
    let r = 0..REPLICAS;
    prop_oneof![
        4 => (r.clone(), 0..3usize, 0..5usize, any::<u8>()).prop_map(|(r, premises, field, value)| Step::Edit { r, premises, field, value }),
        2 => (r.clone(), 0..3usize, any::<u8>()).prop_map(|(r, premises, hazards)| Step::Inspect { r, premises, hazards }),
        4 => (r.clone(), any::<usize>(), any::<u8>()).prop_map(|(r, pick, action)| Step::Act { r, pick, action }),
        2 => (r.clone(), 0..REPLICAS).prop_map(|(from, to)| Step::Sync { from, to }),
        1 => (r, -600i32..600).prop_map(|(r, delta_min)| Step::Jump { r, delta_min }),
    ]
}

struct Replica {
    store: Store,
    clock: Arc<ManualClock>,
}

fn replicas(skews_h: &[i64]) -> Vec<Replica> {
    skews_h
        .iter()
        .enumerate()
        .map(|(i, skew)| {
            let clock = Arc::new(ManualClock::new(BASE + skew * HOUR));
            let mut store = Store::open_in_memory_with(StoreOptions {
                wall: clock.clone(),
                device: Some(DeviceId(format!("phone-{i}"))),
                ..StoreOptions::default()
            })
            .unwrap();
            store.set_user(UserId(format!("worker-{i}"))).unwrap();
            Replica { store, clock }
        })
        .collect()
}

fn edit_value(field: usize, v: u8) -> (&'static str, Value) {
    match field {
        0 => ("name", Value::from(format!("店铺{}", v % 7))),
        1 => (
            "phone",
            if v.is_multiple_of(3) {
                Value::Null
            } else {
                Value::from(format!("1380013{:04}", v))
            },
        ),
        2 => ("storeys", Value::from(1 + v % 4)),
        3 => (
            "gas_use",
            serde_json::to_value(
                [GasUse::None, GasUse::PipedNatural, GasUse::BottledLpg][v as usize % 3],
            )
            .unwrap(),
        ),
        _ => ("archived", Value::from(v.is_multiple_of(5))),
    }
}

fn action(kind: u8, r: usize, today: NaiveDate) -> HazardAction {
    let later = |d: u64| today + chrono::Days::new(d);
    match kind % 9 {
        0 => HazardAction::FixedOnSpot {
            photos: vec![photo_for("fixed")],
        },
        1 | 2 => HazardAction::NoticeIssued {
            deadline: later(7),
            notice_no: Some(format!("N-{r}-{kind}")),
        },
        3 => HazardAction::OwnerReportedFixed { photos: vec![] },
        4 => HazardAction::RecheckPassed {
            photos: vec![photo_for("pass")],
        },
        5 => HazardAction::RecheckFailed {
            deadline: later(14),
            photos: vec![],
        },
        6 => HazardAction::DeadlineExtended {
            deadline: later(21),
        },
        7 => HazardAction::Reassigned {
            to: UserId(format!("worker-{}", kind % 5)),
        },
        _ => HazardAction::Escalated {
            level: 1 + kind % 2,
        },
    }
}

fn run(reps: &mut [Replica], steps: &[Step]) {
    // Replica 0 creates three shops and everyone has them before going offline.
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut p = PremisesFields::new(
            format!("店铺{i}"),
            format!("幸福路{i}号"),
            PremisesKind::Retail,
        );
        p.storeys = Some(1);
        ids.push(reps[0].store.add_premises(p).unwrap().id);
    }
    let seed = reps[0].store.all_ops().unwrap();
    for r in reps.iter_mut().skip(1) {
        r.store.apply_ops(&seed).unwrap();
    }
    for s in steps {
        match s {
            Step::Edit {
                r,
                premises,
                field,
                value,
            } => {
                let store = &mut reps[*r].store;
                let Some(mut p) = store.premises(&ids[*premises]).unwrap() else {
                    continue;
                };
                let (name, v) = edit_value(*field, *value);
                let mut regs = p.fields.to_registers();
                regs.insert(name.into(), v);
                p.fields = PremisesFields::from_registers(regs).unwrap();
                store.edit_premises(&p.id, p.fields).unwrap();
            }
            Step::Inspect {
                r,
                premises,
                hazards,
            } => {
                let rep = &mut reps[*r];
                let Some(p) = rep.store.premises(&ids[*premises]).unwrap() else {
                    continue;
                };
                if p.fields.archived {
                    continue;
                }
                let kinds = vec![
                    ChecklistKind::FireExtinguisher,
                    ChecklistKind::EBike,
                    ChecklistKind::Exits,
                ];
                let lists: Vec<_> = kinds
                    .iter()
                    .map(|k| Catalog::builtin().latest(*k).unwrap())
                    .collect();
                let wanted: Vec<&str> = HAZARD_CODES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| hazards & (1 << i) != 0)
                    .map(|(_, c)| *c)
                    .collect();
                let today = china_date(rep.clock.now_ms());
                let answers = sample_answers(&lists, &p.fields, today, &wanted, &[]);
                let draft = InspectionDraft {
                    premises_id: p.id,
                    kinds,
                    answers,
                    geotag: None,
                    note: None,
                    supersedes: None,
                };
                rep.store.record_inspection(draft).unwrap();
            }
            Step::Act {
                r,
                pick,
                action: kind,
            } => {
                let rep = &mut reps[*r];
                let open = rep.store.open_hazards().unwrap();
                if open.is_empty() {
                    continue;
                }
                let h = &open[pick % open.len()];
                let today = china_date(rep.clock.now_ms());
                // Refused when this replica's view of the state does not allow it: fine.
                let _ = rep
                    .store
                    .record_hazard_event(&h.id, action(*kind, *r, today), None, None);
            }
            Step::Sync { from, to } => {
                let ops = reps[*from].store.all_ops().unwrap();
                reps[*to].store.apply_ops(&ops).unwrap();
            }
            Step::Jump { r, delta_min } => reps[*r].clock.advance(i64::from(*delta_min) * 60_000),
        }
        // Time passes for everyone between steps.
        for rep in reps.iter() {
            rep.clock.advance(37_000);
        }
    }
}

fn union(reps: &[Replica]) -> Vec<Op> {
    let mut all: Vec<Op> = reps
        .iter()
        .flat_map(|r| r.store.all_ops().unwrap())
        .collect();
    all.sort_by_key(|o| (o.device.clone(), o.seq));
    all.dedup_by_key(|o| (o.device.clone(), o.seq));
    all
}

proptest! {
    #![proptest_config(Config { cases: 48, ..Config::default() })]

    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        skews in proptest::collection::vec(-8i64..=8, REPLICAS),
        steps in proptest::collection::vec(step(), 10..60),
        deliveries in proptest::collection::vec((any::<u64>(), 1usize..40), REPLICAS + 1),
    ) {
        let mut reps = replicas(&skews);
        run(&mut reps, &steps);
        let all = union(&reps);
        // Every replica, and a brand-new one, receives everything: shuffled, with duplicates,
        // in batches of random size.
        let mut fresh = replicas(&[0]);
        reps.append(&mut fresh);
        for (rep, (seed, batch)) in reps.iter_mut().zip(&deliveries) {
            let mut delivery: Vec<Op> = all.clone();
            delivery.extend(all.iter().step_by(3).cloned()); // duplicates
            shuffle(&mut delivery, *seed);
            for chunk in delivery.chunks(*batch) {
                rep.store.apply_ops(chunk).unwrap();
            }
        }
        let digests: Vec<String> = reps.iter().map(|r| r.store.digest().unwrap()).collect();
        for d in &digests {
            prop_assert_eq!(d, &digests[0]);
        }
        // Replaying everything is a no-op.
        for rep in reps.iter_mut() {
            let report = rep.store.apply_ops(&all).unwrap();
            prop_assert_eq!(report.applied, 0);
            prop_assert_eq!(report.duplicates, all.len());
            prop_assert_eq!(rep.store.digest().unwrap(), digests[0].clone());
        }
    }

    #[test]
    fn the_hazard_fold_ignores_event_order(seed in any::<u64>(), steps in proptest::collection::vec(step(), 20..60)) {
        let mut reps = replicas(&[0, 3, -3, 7, -7]);
        run(&mut reps, &steps);
        let all = union(&reps);
        let mut by_hazard: std::collections::BTreeMap<String, Vec<HistoryEntry>> = Default::default();
        let mut collector = replicas(&[0]).pop().unwrap();
        collector.store.apply_ops(&all).unwrap();
        for h in collector.store.open_hazards().unwrap() {
            let history = collector.store.hazard_history(&h.id).unwrap();
            by_hazard.insert(h.id.0.clone(), history);
        }
        for (id, history) in by_hazard {
            let origin = collector.store.hazard(&id.as_str().into()).unwrap().unwrap().origin;
            let mut shuffled = history.clone();
            shuffle(&mut shuffled, seed);
            let id = id.as_str().into();
            prop_assert_eq!(fold(&id, Some(&origin), &shuffled), fold(&id, Some(&origin), &history));
        }
    }
}

/// Fisher-Yates with a small deterministic generator (the seed comes from proptest).
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}
