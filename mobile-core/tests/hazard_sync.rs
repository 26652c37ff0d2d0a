//! A hazard found offline on one phone and re-checked offline on another ends in the same
//! state everywhere, whichever order the ops arrive in.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::sync::Arc;

use chrono::Days;
use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::{ManualClock, WallClock, china_date};
use xuncha_core::hazard::{HazardAction, HazardStatus};
use xuncha_core::model::{DeviceId, PremisesFields, PremisesKind, UserId};
use xuncha_core::op::Op;
use xuncha_core::store::{Store, StoreOptions};

const NOW: i64 = 1_795_400_000_000;
const HOUR: i64 = 3_600_000;

fn phone(device: &str, user: &str, skew: i64) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW + skew));
    let mut s = Store::open_in_memory_with(StoreOptions {
        wall: clock.clone(),
        device: Some(DeviceId::from(device)),
        ..StoreOptions::default()
    })
    .unwrap();
    s.set_user(UserId::from(user)).unwrap();
    (s, clock)
}

fn new_ops(s: &Store, after: usize) -> Vec<Op> {
    s.all_ops().unwrap().into_iter().skip(after).collect()
}

#[test]
fn found_on_one_phone_rechecked_on_another_converges_in_either_order() {
    // Phone B's clock is three hours behind phone A's.
    let (mut a, clock_a) = phone("phone-a", "wang.wei", 0);
    let (mut b, clock_b) = phone("phone-b", "li.na", -3 * HOUR);

    let mut f = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    f.storeys = Some(1);
    let shop = a.add_premises(f).unwrap();
    let today = china_date(clock_a.now_ms());
    let inspection = a
        .record_inspection(sample_visit(a.catalog(), &shop, today, &["EX-05"]))
        .unwrap();
    let hazard = inspection.findings[0].hazard_id.clone();
    a.record_hazard_event(
        &hazard,
        HazardAction::NoticeIssued {
            deadline: today + Days::new(7),
            notice_no: Some("XF〔2026〕A1-0001号".into()),
        },
        None,
        None,
    )
    .unwrap();
    let found = new_ops(&a, 0);
    b.apply_ops(&found).unwrap();
    let a_mark = a.all_ops().unwrap().len();
    let b_mark = b.all_ops().unwrap().len();

    // Offline: A extends the deadline; B (behind in time) takes the owner's word and re-checks.
    clock_a.advance(HOUR);
    a.record_hazard_event(
        &hazard,
        HazardAction::DeadlineExtended {
            deadline: today + Days::new(14),
        },
        None,
        None,
    )
    .unwrap();
    clock_b.advance(2 * HOUR);
    b.record_hazard_event(
        &hazard,
        HazardAction::OwnerReportedFixed { photos: vec![] },
        None,
        None,
    )
    .unwrap();
    b.record_hazard_event(
        &hazard,
        HazardAction::RecheckPassed { photos: vec![] },
        None,
        Some("应急灯已修复".into()),
    )
    .unwrap();
    let from_a = new_ops(&a, a_mark);
    let from_b = new_ops(&b, b_mark);

    // Two servers receive everything in opposite orders; the phones exchange too.
    let (mut s1, _) = phone("server-1", "system", 0);
    s1.apply_ops(&found).unwrap();
    s1.apply_ops(&from_a).unwrap();
    s1.apply_ops(&from_b).unwrap();
    let (mut s2, _) = phone("server-2", "system", 0);
    s2.apply_ops(&from_b).unwrap(); // the re-check arrives before the hazard is even known
    s2.apply_ops(&from_a).unwrap();
    s2.apply_ops(&found).unwrap();
    a.apply_ops(&from_b).unwrap();
    b.apply_ops(&from_a).unwrap();

    let digest = a.digest().unwrap();
    for (name, s) in [("B", &b), ("server 1", &s1), ("server 2", &s2)] {
        assert_eq!(s.digest().unwrap(), digest, "{name} differs");
    }
    let h = s2.hazard(&hazard).unwrap().unwrap();
    assert_eq!(h.status, HazardStatus::Closed, "{h:?}");
    let history = s2.hazard_history(&hazard).unwrap();
    assert_eq!(
        history.len(),
        5,
        "finding, notice, extension, report, re-check: {history:?}"
    );
    assert!(
        history
            .iter()
            .all(|e| e.at_ms > 0 && !e.by.as_str().is_empty()),
        "who and when kept"
    );
}

#[test]
fn a_correction_that_re_finds_a_hazard_wins_whether_it_arrives_with_the_original_or_not() {
    let (mut a, clock) = phone("phone-a", "wang.wei", 0);
    let mut f = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    f.storeys = Some(1);
    let shop = a.add_premises(f).unwrap();
    let today = china_date(clock.now_ms());
    let first = a
        .record_inspection(sample_visit(a.catalog(), &shop, today, &["EX-05"]))
        .unwrap();
    clock.advance(HOUR);
    let mut draft = sample_visit(a.catalog(), &shop, today, &["EX-05", "EX-02"]);
    draft.supersedes = Some(first.id.clone());
    let correction = a.record_inspection(draft).unwrap();
    let hazard = first.findings[0].hazard_id.clone();
    assert!(
        correction.findings.iter().any(|f| f.hazard_id == hazard),
        "re-found"
    );
    let ops = a.all_ops().unwrap();
    let mut reversed = ops.clone();
    reversed.reverse();

    // One batch in order, one batch in reverse, one op per batch in reverse.
    let (mut together, _) = phone("s-1", "system", 0);
    together.apply_ops(&ops).unwrap();
    let (mut backwards, _) = phone("s-2", "system", 0);
    backwards.apply_ops(&reversed).unwrap();
    let (mut one_by_one, _) = phone("s-3", "system", 0);
    for op in &reversed {
        one_by_one.apply_ops(std::slice::from_ref(op)).unwrap();
    }
    let digest = a.digest().unwrap();
    for (name, s) in [
        ("together", &together),
        ("backwards", &backwards),
        ("one by one", &one_by_one),
    ] {
        let h = s.hazard(&hazard).unwrap().unwrap();
        assert_eq!(h.origin.inspection_id, correction.id, "{name}: {h:?}");
        assert_eq!(
            s.hazard(&hazard).unwrap(),
            a.hazard(&hazard).unwrap(),
            "{name}"
        );
        assert_eq!(s.digest().unwrap(), digest, "{name} differs");
    }
}

#[test]
fn a_chase_reaches_the_other_phone_in_the_history_and_older_builds_keep_it_unapplied() {
    let (mut sup, clock) = phone("dash", "leader", 0);
    let (mut worker, _) = phone("phone-w", "wang.wei", 0);
    let shop = sup
        .add_premises(PremisesFields::new(
            "老王面馆",
            "幸福路1号",
            PremisesKind::Catering,
        ))
        .unwrap();
    let today = china_date(clock.now_ms());
    let inspection = sup
        .record_inspection(sample_visit(sup.catalog(), &shop, today, &["EX-05"]))
        .unwrap();
    let hazard = inspection.findings[0].hazard_id.clone();
    let before = sup.hazard(&hazard).unwrap().unwrap();
    let mark = sup.all_ops().unwrap().len();
    let after = sup
        .record_hazard_event(
            &hazard,
            HazardAction::Urged,
            None,
            Some("明天前整改".into()),
        )
        .unwrap();
    // Nothing changes but the history.
    assert_eq!(
        (after.status, after.deadline),
        (before.status, before.deadline)
    );
    let ops = new_ops(&sup, mark);
    assert_eq!(ops.len(), 1);
    assert_eq!(
        ops[0].schema, 2,
        "stamped with the oldest schema that knows a chase"
    );
    assert_eq!(new_ops(&sup, 0)[0].schema, 1, "other ops stay at schema 1");

    worker.apply_ops(&new_ops(&sup, 0)).unwrap();
    let history = worker.hazard_history(&hazard).unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (
            last.action.as_ref().map(HazardAction::name),
            last.note.as_deref()
        ),
        (Some("urged"), Some("明天前整改"))
    );
    assert_eq!(worker.digest().unwrap(), sup.digest().unwrap());

    // A build that knows schema 1 only keeps the op raw instead of failing the whole pull.
    let mut raw = Vec::new();
    ops[0].body.encode_data(&mut raw).unwrap();
    let data = String::from_utf8(raw).unwrap();
    let as_old = xuncha_core::op::OpBody::decode("hazard_event", 99, &data).unwrap();
    assert!(matches!(as_old, xuncha_core::op::OpBody::Unknown { .. }));

    // Only open hazards are chased.
    use xuncha_core::hazard::transition;
    use xuncha_core::model::Severity;
    for closed in [HazardStatus::Closed, HazardStatus::Withdrawn] {
        assert_eq!(
            transition(closed, Severity::General, &HazardAction::Urged),
            None
        );
    }
    assert_eq!(
        transition(
            HazardStatus::Rectifying,
            Severity::General,
            &HazardAction::Urged
        ),
        Some(HazardStatus::Rectifying)
    );
}
