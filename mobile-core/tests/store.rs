//! The SQLite store through its public API: premises, inspections, hazards, the outbox,
//! applying synced ops, forward compatibility and persistence.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::sync::Arc;

use chrono::NaiveDate;
use xuncha_core::Error;
use xuncha_core::checklist::sample::{photo_for, sample_answers};
use xuncha_core::checklist::{Catalog, ChecklistKind};
use xuncha_core::clock::{Hlc, ManualClock, china_date};
use xuncha_core::hazard::{HazardAction, HazardStatus};
use xuncha_core::model::{
    Answer, AnswerValue, DeviceId, Geotag, InspectionDraft, PremisesFields, PremisesKind, Severity,
    UserId,
};
use xuncha_core::op::Op;
use xuncha_core::store::{Store, StoreOptions};

const NOW: i64 = 1_795_400_000_000; // 2026-11-22

fn store_at(clock: &Arc<ManualClock>, device: &str, user: &str) -> Store {
    let mut s = Store::open_in_memory_with(StoreOptions {
        wall: clock.clone(),
        device: Some(DeviceId::from(device)),
        ..StoreOptions::default()
    })
    .unwrap();
    s.set_user(UserId::from(user)).unwrap();
    s
}

fn phone(device: &str) -> Store {
    store_at(&Arc::new(ManualClock::new(NOW)), device, "wang.wei")
}

fn shop() -> PremisesFields {
    let mut p = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    p.storeys = Some(1);
    p.floor_area_m2 = Some(60.0);
    p.max_occupants = Some(30);
    p
}

fn geotag() -> Geotag {
    Geotag {
        lat: 31.2304,
        lon: 121.4737,
        accuracy_m: 8.0,
        source: "gps".into(),
        mock: false,
        fix_time_ms: NOW,
    }
}

fn visit(
    s: &Store,
    premises: &xuncha_core::model::PremisesId,
    hazards: &[&str],
) -> InspectionDraft {
    let p = s.premises(premises).unwrap().unwrap();
    let kinds = vec![
        ChecklistKind::FireExtinguisher,
        ChecklistKind::EBike,
        ChecklistKind::Exits,
    ];
    let lists: Vec<_> = kinds
        .iter()
        .map(|k| Catalog::builtin().latest(*k).unwrap())
        .collect();
    InspectionDraft {
        premises_id: premises.clone(),
        kinds,
        answers: sample_answers(&lists, &p.fields, china_date(NOW), hazards, &[]),
        geotag: Some(geotag()),
        note: None,
        supersedes: None,
    }
}

#[test]
fn premises_are_added_edited_field_by_field_and_archived() {
    let mut s = phone("A");
    let p = s.add_premises(shop()).unwrap();
    let mut edited = p.fields.clone();
    edited.phone = Some("13800138000".into());
    s.edit_premises(&p.id, edited.clone()).unwrap();
    let ops = s.pending_ops(10).unwrap();
    assert_eq!(ops.len(), 2);
    match &ops[1].body {
        xuncha_core::op::OpBody::PremisesPatch(patch) => {
            assert_eq!(patch.fields.keys().collect::<Vec<_>>(), vec!["phone"])
        }
        other => panic!("{other:?}"),
    }
    // Saving without a change writes nothing.
    s.edit_premises(&p.id, edited).unwrap();
    assert_eq!(s.pending_ops(10).unwrap().len(), 2);
    s.archive_premises(&p.id, true).unwrap();
    assert!(s.list_premises(false).unwrap().is_empty());
    assert!(s.list_premises(true).unwrap()[0].fields.archived);
    assert!(matches!(
        s.archive_premises(&"nope".into(), true),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn a_patch_writes_only_what_the_user_changed() {
    let mut s = phone("A");
    let mut full = shop();
    full.licence_no = Some("JY13101010012345".into());
    full.gas_supplier = Some("上海燃气".into());
    full.phone = Some("13800138000".into());
    let p = s.add_premises(full).unwrap();
    s.archive_premises(&p.id, true).unwrap();
    // An app that knows fewer fields shows the record without them (they take defaults)...
    let mut shown = shop();
    shown.phone = Some("13800138000".into());
    // ...meanwhile a sync changes the phone number...
    let mut synced = s.premises(&p.id).unwrap().unwrap().fields;
    synced.phone = Some("13900139000".into());
    s.edit_premises(&p.id, synced).unwrap();
    // ...and the user renames the shop.
    let mut after = shown.clone();
    after.name = "老王面馆（新店）".into();
    let saved = s.patch_premises(&p.id, &shown, after).unwrap().fields;
    assert_eq!(saved.name, "老王面馆（新店）");
    assert!(
        saved.archived,
        "editing an archived shop does not restore it"
    );
    assert_eq!(saved.licence_no.as_deref(), Some("JY13101010012345"));
    assert_eq!(saved.gas_supplier.as_deref(), Some("上海燃气"));
    assert_eq!(
        saved.phone.as_deref(),
        Some("13900139000"),
        "the synced change survives"
    );
    match &s.pending_ops(10).unwrap().last().unwrap().body {
        xuncha_core::op::OpBody::PremisesPatch(patch) => {
            assert_eq!(patch.fields.keys().collect::<Vec<_>>(), vec!["name"])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_clock_far_ahead_elsewhere_does_not_move_this_one_past_the_bound() {
    const HOUR: i64 = 3_600_000;
    let bound = xuncha_core::clock::DEFAULT_MAX_CLOCK_AHEAD_MS;
    let limit = Hlc::new((NOW + bound) as u64, 0);
    // A phone three days ahead writes a shop; ours applies it (released from quarantine).
    let mut fast = store_at(&Arc::new(ManualClock::new(NOW + 72 * HOUR)), "F", "li.na");
    fast.add_premises(shop()).unwrap();
    let mut s = phone("A");
    s.apply_ops(&fast.all_ops().unwrap()).unwrap();
    assert!(s.hlc() <= limit, "applying moved the clock to {}", s.hlc());
    // A server carrying such a stamp, while its own wall clock is right, does not move it either.
    s.observe_server_hlc(Hlc::new((NOW + 72 * HOUR) as u64, 5), NOW)
        .unwrap();
    s.observe_hlc(Hlc::new((NOW + 72 * HOUR) as u64, 5))
        .unwrap();
    assert!(s.hlc() <= limit, "observing moved the clock to {}", s.hlc());
    // Our next op is stamped within the bound.
    s.add_premises(shop()).unwrap();
    let last = s.pending_ops(10).unwrap().pop().unwrap();
    assert!(last.hlc.physical_ms() as i64 <= NOW + bound);

    // A phone whose clock is a day behind does adopt the server's (right) clock.
    let mut slow = store_at(&Arc::new(ManualClock::new(NOW - 24 * HOUR)), "S", "li.na");
    slow.observe_server_hlc(Hlc::new(NOW as u64, 0), NOW)
        .unwrap();
    assert_eq!(slow.hlc(), Hlc::new(NOW as u64, 0));
    slow.add_premises(shop()).unwrap();
    assert!(slow.pending_ops(1).unwrap()[0].hlc > Hlc::new(NOW as u64, 0));
}

#[test]
fn two_stores_on_one_file_take_turns_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite3");
    drop(Store::open(&path).unwrap());
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&path).unwrap();
                s.set_user(UserId::from("wang.wei")).unwrap();
                (0..60)
                    .map(|n| {
                        let mut f = shop();
                        f.name = format!("店{w}-{n}");
                        s.add_premises(f).map(|_| ()).map_err(|e| e.to_string())
                    })
                    .filter(Result::is_err)
                    .count()
            })
        })
        .collect();
    let failures: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(failures, 0, "no \"database is locked\"");
    assert_eq!(
        Store::open(&path)
            .unwrap()
            .list_premises(false)
            .unwrap()
            .len(),
        120
    );
}

#[test]
fn premises_of_a_grid_are_listed_without_the_others() {
    let mut s = phone("A");
    let in_grid = |name: &str, grid: Option<&str>| {
        let mut f = shop();
        f.name = name.into();
        f.grid_id = grid.map(Into::into);
        f
    };
    s.add_premises(in_grid("乙店", Some("网格-1"))).unwrap();
    s.add_premises(in_grid("甲店", Some("网格-1"))).unwrap();
    s.add_premises(in_grid("丙店", Some("网格-2"))).unwrap();
    s.add_premises(in_grid("丁店", None)).unwrap();
    let moved = s.add_premises(in_grid("戊店", Some("网格-2"))).unwrap();
    let mut f = moved.fields.clone();
    f.grid_id = Some("网格-1".into());
    s.edit_premises(&moved.id, f).unwrap(); // moved in: filed under its new grid
    let archived = s.add_premises(in_grid("己店", Some("网格-1"))).unwrap();
    s.archive_premises(&archived.id, true).unwrap();

    let names = |list: Vec<xuncha_core::model::Premises>| {
        list.into_iter().map(|p| p.fields.name).collect::<Vec<_>>()
    };
    let expected: Vec<String> = s
        .list_premises(false)
        .unwrap()
        .into_iter()
        .filter(|p| p.fields.grid_id.as_deref() == Some("网格-1"))
        .map(|p| p.fields.name)
        .collect();
    assert_eq!(
        names(s.premises_of_grid("网格-1", false).unwrap()),
        expected
    );
    assert_eq!(expected.len(), 3, "{expected:?}");
    assert_eq!(s.premises_of_grid("网格-1", true).unwrap().len(), 4);
    assert_eq!(
        names(s.premises_of_grid("网格-2", false).unwrap()),
        ["丙店"]
    );
    assert!(s.premises_of_grid("网格-9", true).unwrap().is_empty());
}

#[test]
fn invalid_premises_are_refused_and_nothing_is_stored() {
    let mut s = phone("A");
    let mut bad = shop();
    bad.credit_code = Some("91350100M000100Y44".into());
    let e = s.add_premises(bad).unwrap_err().to_string();
    assert!(
        e.contains("credit_code") && e.contains("check character"),
        "{e}"
    );
    assert!(s.pending_ops(10).unwrap().is_empty());
}

#[test]
fn nothing_is_recorded_without_a_signed_in_user() {
    let mut s = Store::open_in_memory().unwrap();
    assert!(matches!(s.add_premises(shop()), Err(Error::NoUser)));
}

#[test]
fn an_inspection_opens_hazards_with_derived_ids() {
    let mut s = phone("A");
    let p = s.add_premises(shop()).unwrap();
    let insp = s
        .record_inspection(visit(&s, &p.id, &["FE-03", "EB-04"]))
        .unwrap();
    assert_eq!(
        insp.findings
            .iter()
            .map(|f| f.code.as_str())
            .collect::<Vec<_>>(),
        vec!["FE-03", "EB-04"]
    );
    let open = s.open_hazards().unwrap();
    assert_eq!(open.len(), 2);
    assert!(
        open.iter()
            .all(|h| h.status == HazardStatus::Found && h.origin.premises_id == p.id)
    );
    assert_eq!(s.inspections_of(&p.id).unwrap(), vec![insp.clone()]);
    // EB-04 is fixed on the spot; FE-03 gets a notice.
    let eb = insp.findings.iter().find(|f| f.code == "EB-04").unwrap();
    assert_eq!(eb.rectify_days, 0);
    let h = s
        .record_hazard_event(
            &eb.hazard_id,
            HazardAction::FixedOnSpot {
                photos: vec![photo_for("after")],
            },
            Some(geotag()),
            None,
        )
        .unwrap();
    assert_eq!(h.status, HazardStatus::Closed);
    assert_eq!(h.after_photos.len(), 1);
    assert_eq!(s.open_hazards().unwrap().len(), 1);
}

#[test]
fn bad_answers_store_nothing() {
    let mut s = phone("A");
    let p = s.add_premises(shop()).unwrap();
    let before = (s.pending_ops(100).unwrap().len(), s.digest().unwrap());
    let mut draft = visit(&s, &p.id, &[]);
    draft
        .answers
        .push(Answer::new("XX-01", AnswerValue::YesNo(true)));
    assert!(
        s.record_inspection(draft)
            .unwrap_err()
            .to_string()
            .contains("XX-01")
    );
    let mut draft = visit(&s, &p.id, &[]);
    draft.answers.retain(|a| a.code != "FE-03");
    assert!(
        s.record_inspection(draft)
            .unwrap_err()
            .to_string()
            .contains("FE-03")
    );
    let mut draft = visit(&s, &p.id, &[]);
    draft.geotag.as_mut().unwrap().lat = f64::NAN;
    assert!(
        s.record_inspection(draft)
            .unwrap_err()
            .to_string()
            .contains("geotag.lat")
    );
    assert_eq!(
        (s.pending_ops(100).unwrap().len(), s.digest().unwrap()),
        before
    );
}

#[test]
fn the_rectification_lifecycle_runs_through_rounds() {
    let mut s = phone("A");
    let p = s.add_premises(shop()).unwrap();
    let insp = s.record_inspection(visit(&s, &p.id, &["FE-03"])).unwrap();
    let id = insp.findings[0].hazard_id.clone();
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let h = s
        .record_hazard_event(
            &id,
            HazardAction::NoticeIssued {
                deadline: d(25),
                notice_no: Some("幸福社区-2026-0001".into()),
            },
            None,
            None,
        )
        .unwrap();
    assert_eq!(
        (h.status, h.round, h.deadline),
        (HazardStatus::Rectifying, 1, Some(d(25)))
    );
    s.record_hazard_event(
        &id,
        HazardAction::OwnerReportedFixed { photos: vec![] },
        None,
        None,
    )
    .unwrap();
    let h = s
        .record_hazard_event(
            &id,
            HazardAction::RecheckFailed {
                deadline: d(30),
                photos: vec![],
            },
            Some(geotag()),
            None,
        )
        .unwrap();
    assert_eq!(
        (h.status, h.round, h.deadline),
        (HazardStatus::Rectifying, 2, Some(d(30)))
    );
    let h = s
        .record_hazard_event(
            &id,
            HazardAction::RecheckPassed {
                photos: vec![photo_for("ok")],
            },
            Some(geotag()),
            None,
        )
        .unwrap();
    assert_eq!(h.status, HazardStatus::Closed);
    // A closed hazard cannot be re-checked again: a clear error, nothing stored.
    let ops = s.pending_ops(100).unwrap().len();
    let e = s
        .record_hazard_event(
            &id,
            HazardAction::RecheckPassed { photos: vec![] },
            None,
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("closed"), "{e}");
    assert_eq!(s.pending_ops(100).unwrap().len(), ops);
    let history = s.hazard_history(&id).unwrap();
    let names: Vec<_> = history
        .iter()
        .map(|e| e.action.as_ref().map_or("found", |a| a.name()))
        .collect();
    assert_eq!(
        names,
        [
            "found",
            "notice_issued",
            "owner_reported_fixed",
            "recheck_failed",
            "recheck_passed"
        ]
    );
    assert!(
        history
            .iter()
            .all(|e| e.by.as_str() == "wang.wei" && !e.invalid)
    );
}

#[test]
fn a_suspected_major_hazard_waits_for_a_supervisor() {
    let mut s = phone("A");
    let p = s.add_premises(shop()).unwrap();
    let one_exit = Answer::new("EX-03", AnswerValue::Count(1));
    let mut draft = visit(&s, &p.id, &[]);
    draft
        .answers
        .retain(|a| a.code != "EX-01" && a.code != "EX-03");
    let mut locked = Answer::new("EX-01", AnswerValue::YesNo(true));
    locked.photos.push(photo_for("locked"));
    draft.answers.extend([locked, one_exit]);
    let insp = s.record_inspection(draft).unwrap();
    let f = &insp.findings[0];
    assert_eq!(
        (f.code.as_str(), f.severity),
        ("EX-01", Severity::SuspectedMajor)
    );
    let h = s
        .record_hazard_event(
            &f.hazard_id,
            HazardAction::FixedOnSpot {
                photos: vec![photo_for("open")],
            },
            None,
            None,
        )
        .unwrap();
    assert_eq!(h.status, HazardStatus::AwaitingApproval);
    let h = s
        .record_hazard_event(&f.hazard_id, HazardAction::ClosureApproved, None, None)
        .unwrap();
    assert_eq!(h.status, HazardStatus::Closed);
}

#[test]
fn a_correction_supersedes_and_withdraws_what_it_no_longer_finds() {
    let mut s = phone("A");
    let p = s.add_premises(shop()).unwrap();
    let first = s
        .record_inspection(visit(&s, &p.id, &["FE-03", "FE-05"]))
        .unwrap();
    let mut fix = visit(&s, &p.id, &["FE-05"]);
    fix.supersedes = Some(first.id.clone());
    let second = s.record_inspection(fix).unwrap();
    assert_eq!(second.root, first.id);
    // FE-05 keeps its hazard id (derived from the root); FE-03 is withdrawn.
    assert_eq!(second.findings[0].hazard_id, first.findings[1].hazard_id);
    let open: Vec<_> = s
        .open_hazards()
        .unwrap()
        .into_iter()
        .map(|h| h.origin.finding.code)
        .collect();
    assert_eq!(open, vec!["FE-05"]);
    assert_eq!(
        s.hazard(&first.findings[0].hazard_id)
            .unwrap()
            .unwrap()
            .status,
        HazardStatus::Withdrawn
    );
    assert_eq!(s.inspections_of(&p.id).unwrap(), vec![second]);
    // The counts agree: one inspection (the correction), one open hazard; an archived
    // premises drops out of the premises count.
    let other = s.add_premises(shop()).unwrap();
    s.archive_premises(&other.id, true).unwrap();
    let counts = s.counts().unwrap();
    assert_eq!(
        (counts.premises, counts.inspections, counts.open_hazards),
        (1, 1, 1)
    );
    assert_eq!(counts.ops, s.op_count().unwrap());
    assert_eq!(counts.premises, s.list_premises(false).unwrap().len());
}

#[test]
fn two_phones_exchanging_ops_converge_and_duplicates_are_harmless() {
    let mut a = phone("A");
    let mut b = phone("B");
    let p = a.add_premises(shop()).unwrap();
    a.record_inspection(visit(&a, &p.id, &["FE-03"])).unwrap();
    let from_a = a.pending_ops(100).unwrap();
    let r = b.apply_ops(&from_a).unwrap();
    assert_eq!((r.applied, r.duplicates), (2, 0));
    let r = b.apply_ops(&from_a).unwrap();
    assert_eq!((r.applied, r.duplicates), (0, 2));
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
    // B acts on the hazard; A learns of it.
    let hz = b.open_hazards().unwrap()[0].id.clone();
    b.record_hazard_event(
        &hz,
        HazardAction::FixedOnSpot {
            photos: vec![photo_for("x")],
        },
        None,
        None,
    )
    .unwrap();
    a.apply_ops(&b.pending_ops(100).unwrap()).unwrap();
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
    assert!(a.open_hazards().unwrap().is_empty());
    assert!(b.hlc() > Hlc::default() && a.hlc() >= b.pending_ops(1).unwrap()[0].hlc);
}

#[test]
fn a_reused_seq_is_a_conflict_and_the_whole_batch_is_refused() {
    let mut a = phone("A");
    let mut b = phone("B");
    a.add_premises(shop()).unwrap();
    let mut ops = a.pending_ops(10).unwrap();
    b.apply_ops(&ops).unwrap();
    let before = b.digest().unwrap();
    let other = a
        .add_premises(PremisesFields::new(
            "新店",
            "幸福路2号",
            PremisesKind::Retail,
        ))
        .unwrap();
    let new_op = a.pending_ops(10).unwrap().pop().unwrap();
    ops[0].wall_ms += 1; // same (device, seq), different content
    let e = b.apply_ops(&[new_op.clone(), ops[0].clone()]).unwrap_err();
    assert!(
        matches!(e, Error::OpConflict { ref device, seq: 1 } if device.as_str() == "A"),
        "{e}"
    );
    assert_eq!(
        b.digest().unwrap(),
        before,
        "nothing of the refused batch was applied"
    );
    // An invalid op refuses its batch too.
    let mut invalid = new_op.clone();
    invalid.seq = 0;
    assert!(matches!(
        b.apply_ops(&[new_op.clone(), invalid]),
        Err(Error::Batch(_))
    ));
    assert_eq!(b.digest().unwrap(), before);
    // The good op alone still goes in.
    b.apply_ops(&[new_op]).unwrap();
    assert!(b.premises(&other.id).unwrap().is_some());
}

#[test]
fn unknown_op_types_and_newer_schemas_are_kept_and_resent_verbatim() {
    let mut b = phone("B");
    let future = r#"{"device":"C","seq":1,"hlc":"0001a2b3c4d50000","author":"li","schema":1,"wall_ms":1,
        "type":"shop_self_check","data":{"premises_id":"p9","ok":true}}"#;
    // A schema newer than this build's.
    let newer = r#"{"device":"C","seq":2,"hlc":"0001a2b3c4d50001","author":"li","schema":NEXT,"wall_ms":1,
        "type":"premises_patch","data":{"premises_id":"p9","fields":{"name":"新名字"},"reason":"v2 field"}}"#
        .replace("NEXT", &(xuncha_core::op::SCHEMA_VERSION + 1).to_string());
    let ops: Vec<Op> = vec![
        serde_json::from_str(future).unwrap(),
        serde_json::from_str(&newer).unwrap(),
    ];
    let r = b.apply_ops(&ops).unwrap();
    assert_eq!((r.applied, r.deferred), (0, 2));
    assert!(
        b.premises(&"p9".into()).unwrap().is_none(),
        "a newer schema is not applied by an older app"
    );
    let kept = b.all_ops().unwrap();
    assert_eq!(kept, ops);
    for (stored, original) in kept.iter().zip([future, newer.as_str()]) {
        let again: serde_json::Value = serde_json::to_value(stored).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(original).unwrap()
        );
    }
    // Kept ops count in the digest: a replica without them differs.
    assert_ne!(b.digest().unwrap(), phone("D").digest().unwrap());
}

#[test]
fn unknown_fields_inside_known_ops_survive_a_round_trip() {
    let mut a = phone("A");
    let p = a.add_premises(shop()).unwrap();
    a.record_inspection(visit(&a, &p.id, &[])).unwrap();
    let mut json = serde_json::to_value(&a.pending_ops(10).unwrap()[1]).unwrap();
    json["data"]["weather"] = "小雨".into();
    json["seq"] = 7.into();
    json["device"] = "Z".into();
    let op: Op = serde_json::from_str(&json.to_string()).unwrap();
    let mut b = phone("B");
    b.apply_ops(&[op]).unwrap();
    let back = serde_json::to_value(b.all_ops().unwrap().pop().unwrap()).unwrap();
    assert_eq!(back, json);
}

#[test]
fn a_file_store_keeps_everything_across_reopen_and_its_clock_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite3");
    let clock = Arc::new(ManualClock::new(NOW));
    let opts = || StoreOptions {
        wall: clock.clone(),
        device: Some(DeviceId::from("A")),
        ..StoreOptions::default()
    };
    let (digest, last) = {
        let mut s = Store::open_with(&path, opts()).unwrap();
        s.set_user("wang.wei".into()).unwrap();
        let p = s.add_premises(shop()).unwrap();
        s.record_inspection(visit(&s, &p.id, &["FE-03"])).unwrap();
        (
            s.digest().unwrap(),
            s.pending_ops(10).unwrap().pop().unwrap(),
        )
    };
    clock.advance(-3_600_000 * 24); // the phone's clock jumps back a day
    let mut s = Store::open_with(&path, opts()).unwrap();
    assert_eq!(s.digest().unwrap(), digest);
    assert_eq!(s.user().unwrap().as_str(), "wang.wei");
    s.add_premises(PremisesFields::new(
        "二号店",
        "幸福路3号",
        PremisesKind::Retail,
    ))
    .unwrap();
    let next = s.pending_ops(10).unwrap().pop().unwrap();
    assert_eq!(next.seq, last.seq + 1, "seqs stay contiguous");
    assert!(
        next.hlc > last.hlc,
        "the HLC does not go back with the wall clock"
    );
    s.mark_acked(next.seq).unwrap();
    assert!(s.pending_ops(10).unwrap().is_empty());
}

#[test]
fn a_routine_visit_covers_gas_only_where_gas_is_used() {
    let mut p = shop();
    assert!(!Store::default_kinds(&p).contains(&ChecklistKind::GasAlarm));
    p.gas_use = xuncha_core::model::GasUse::PipedNatural;
    assert_eq!(Store::default_kinds(&p), ChecklistKind::ALL.to_vec());
}

#[test]
fn a_group_commits_its_members_together_and_undoes_a_failing_one_alone() {
    let ops_of = |device: &str, name: &str| {
        let mut p = phone(device);
        p.add_premises(PremisesFields::new(name, "幸福路", PremisesKind::Retail))
            .unwrap();
        p.pending_ops(10).unwrap()
    };
    let (from_a, from_c, from_d) = (
        ops_of("A", "甲店"),
        ops_of("C", "丙店"),
        ops_of("D", "丁店"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.sqlite3");
    let mut s = Store::open(&path).unwrap();
    let outcome = s
        .group(|s| {
            let first = s.atomic(|s| s.apply_ops(&from_a));
            // Stores C's op (and a new local number for device C), then fails: undone alone.
            let failed = s.atomic(|s| -> Result<(), Error> {
                s.apply_ops(&from_c)?;
                Err(Error::Batch("refused after writing".into()))
            });
            let third = s.atomic(|s| s.apply_ops(&from_d));
            (first.is_ok(), failed.is_err(), third.is_ok())
        })
        .unwrap();
    assert_eq!(outcome, (true, true, true));
    drop(s);
    let mut s = Store::open(&path).unwrap();
    let names = |s: &Store| {
        let mut n: Vec<String> = s
            .list_premises(false)
            .unwrap()
            .into_iter()
            .map(|p| p.fields.name)
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&s),
        ["丁店", "甲店"],
        "committed together, without C's"
    );
    // C's op goes in later under its own device (the number handed out in the undone
    // savepoint was forgotten, so it cannot be confused with D's).
    assert_eq!(s.apply_ops(&from_c).unwrap().applied, 1);
    let mut plain = phone("Z");
    for ops in [&from_a, &from_d, &from_c] {
        plain.apply_ops(ops).unwrap();
    }
    assert_eq!(s.digest().unwrap(), plain.digest().unwrap());
    assert_eq!(s.max_seq(&DeviceId::from("C")).unwrap(), 1);

    // A panic inside a group rolls all of it back and leaves the store usable.
    let from_e = ops_of("E", "戊店");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.group(|s| {
            s.atomic(|s| s.apply_ops(&from_e)).unwrap();
            panic!("the server's handler failed half-way");
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(names(&s).len(), 3);
    assert_eq!(s.apply_ops(&from_e).unwrap().applied, 1);
    assert_eq!(names(&s).len(), 4);

    // So does a panic inside `atomic` on its own: what it wrote is undone and later changes
    // are committed as usual (the connection is not left inside a transaction).
    let from_f = ops_of("F", "己店");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.atomic(|s| -> Result<(), Error> {
            s.apply_ops(&from_f)?;
            panic!("failed half-way");
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(names(&s).len(), 4);
    assert_eq!(s.apply_ops(&from_f).unwrap().applied, 1);
    drop(s);
    assert_eq!(names(&Store::open(&path).unwrap()).len(), 5);
}

#[test]
fn a_read_only_store_sees_what_the_writer_committed_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite3");
    let clock = Arc::new(ManualClock::new(NOW));
    let mut writer = Store::open_with(
        &path,
        StoreOptions {
            wall: clock.clone(),
            device: Some(DeviceId::from("server")),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    writer.set_user(UserId::from("system")).unwrap();
    let mut reader = Store::read_only(&path).unwrap();
    assert!(reader.list_premises(false).unwrap().is_empty());

    let p = writer.add_premises(shop()).unwrap();
    writer
        .record_inspection(visit(&writer, &p.id, &["FE-03"]))
        .unwrap();
    assert_eq!(reader.open_hazards().unwrap().len(), 1);
    assert_eq!(reader.due(NOW).unwrap(), writer.due(NOW).unwrap());
    assert_eq!(reader.digest().unwrap(), writer.digest().unwrap());

    // It cannot write.
    assert!(reader.add_premises(shop()).is_err());
    assert_eq!(writer.list_premises(false).unwrap().len(), 1);

    // The writer changes the cadence: the reader takes it when refreshed.
    let mut cadence = writer.cadence().clone();
    cadence.default_days = 7;
    let (calendar, _) = writer.reference().unwrap();
    writer.set_reference(&calendar, &cadence).unwrap();
    assert_eq!(reader.cadence().default_days, 30);
    reader.refresh_reference().unwrap();
    assert_eq!(reader.cadence().default_days, 7);
    assert_eq!(reader.due(NOW).unwrap(), writer.due(NOW).unwrap());

    // A file a writer has not migrated yet is refused, not half-read.
    let blank = dir.path().join("blank.sqlite3");
    rusqlite::Connection::open(&blank)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    assert!(Store::read_only(&blank).is_err());
}

#[test]
fn ops_pushed_again_queue_their_photos_again() {
    let mut s = phone("A");
    let p = s.add_premises(shop()).unwrap();
    let mut draft = visit(&s, &p.id, &[]);
    draft.answers[0].photos.push(photo_for("FE-01"));
    s.record_inspection(draft).unwrap();
    let sha = photo_for("FE-01").sha256;
    assert_eq!(s.pending_photos().unwrap(), std::slice::from_ref(&sha));
    s.photo_uploaded(&sha).unwrap();
    s.mark_acked(2).unwrap();
    assert!(s.pending_photos().unwrap().is_empty());

    // The server holds only the premises: the inspection goes again, and its photo with it.
    s.rewind_acked(1).unwrap();
    assert_eq!(s.pending_count().unwrap(), 1);
    assert_eq!(s.pending_photos().unwrap(), [sha]);
    // Asking for more than is acknowledged changes nothing.
    s.rewind_acked(5).unwrap();
    assert_eq!(s.acked_seq().unwrap(), 1);
}

#[test]
fn an_op_let_through_comes_after_everything_the_log_held_even_when_it_was_last() {
    let mut phone = phone("A");
    let p = phone.add_premises(shop()).unwrap();
    let mut edited = p.fields.clone();
    edited.phone = Some("13800138000".into());
    phone.edit_premises(&p.id, edited).unwrap();
    let ops = phone.pending_ops(10).unwrap();

    // A server takes the first and sets the second aside: the second is the log's last row.
    let mut server = store_at(&Arc::new(ManualClock::new(NOW)), "server", "system");
    let why = xuncha_core::sync::SetAside {
        seq: ops[1].seq,
        code: "out_of_scope".into(),
        message: "不在您的网格内".into(),
        message_en: "outside your grids".into(),
    };
    let aside: xuncha_core::store::Aside<'_> = [(1, &why)].into_iter().collect();
    let (_, rows) = server
        .apply_ops_setting_aside(&ops, &aside, |_, rows| Ok(rows.clone()))
        .unwrap();
    assert_eq!(rows.len(), 1, "the set-aside op is not among the new rows");
    let last_id = server.op_count().unwrap() as i64;
    assert_eq!(server.set_aside_ops().unwrap().len(), 1);
    assert_eq!(server.premises(&p.id).unwrap().unwrap().fields.phone, None);

    let (_, rows) = server
        .let_through(&ops[1..], |_, rows| Ok(rows.clone()))
        .unwrap();
    assert_eq!(
        rows,
        vec![(0, last_id + 1)],
        "a cursor that reached the old place still finds it"
    );
    assert!(server.set_aside_ops().unwrap().is_empty());
    assert_eq!(server.op_count().unwrap(), 2, "held once");
    assert_eq!(
        server
            .premises(&p.id)
            .unwrap()
            .unwrap()
            .fields
            .phone
            .as_deref(),
        Some("13800138000")
    );
    // Letting it through again finds nothing set aside, and changes nothing.
    assert!(matches!(
        server.let_through(&ops[1..], |_, _| Ok(())),
        Err(Error::NotFound(_))
    ));
    assert_eq!(server.op_count().unwrap(), 2);
}
