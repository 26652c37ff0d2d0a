//! Crafted ops from a worker of one grid against another grid's records: forged lineage,
//! someone else's authorship or device, hazards that are not theirs, clocks far ahead. Each
//! push either is refused whole or has the crafted ops set aside, and nothing the other grid
//! sees changes: the server's state digest and the victim's records stay as they were.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use axum::http::StatusCode;
use xuncha_core::checklist::sample::{photo_for, sample_visit};
use xuncha_core::clock::{Hlc, china_date};
use xuncha_core::hazard::{HazardAction, HazardEvent, HazardStatus};
use xuncha_core::model::{HazardId, Inspection, PremisesFields, PremisesKind};
use xuncha_core::op::{Op, OpBody};
use xuncha_core::store::Store;

use common::*;

/// The victim: w1's shop in g1 with an inspection that found FE-03, pushed. Returns w1's
/// phone and the inspection.
async fn victim(s: &Server) -> (Store, Inspection) {
    let mut w1 = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut w1, "g1");
    let (code, ack) = push(s, &s.w1, &w1.pending_ops(100).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    let shop = w1.list_premises(false).unwrap()[0].id.clone();
    let inspection = w1.inspections_of(&shop).unwrap().remove(0);
    (w1, inspection)
}

/// The attacker: w2's own shop in g2 with its own inspection finding FE-03, pushed.
async fn attacker(s: &Server) -> (Store, Op) {
    let mut w2 = phone("phone-w2", "w2", now_ms());
    let mut f = PremisesFields::new("攻击者小店", "和平路1号", PremisesKind::Retail);
    f.grid_id = Some("g2".into());
    let shop = w2.add_premises(f).unwrap();
    let visit = sample_visit(w2.catalog(), &shop, china_date(now_ms()), &["FE-03"]);
    w2.record_inspection(visit).unwrap();
    let ops = w2.pending_ops(100).unwrap();
    let (code, ack) = push(s, &s.w2, &ops).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    w2.mark_acked(ops.last().unwrap().seq).unwrap();
    let own_inspection = ops.last().unwrap().clone();
    (w2, own_inspection)
}

/// The next op of the attacker's device after `last`, with `body`.
fn next(last: &Op, n: u64, body: OpBody) -> Op {
    Op {
        seq: last.seq + n,
        hlc: Hlc::new(last.hlc.physical_ms() + n, 0),
        body,
        ..last.clone()
    }
}

fn digest(s: &Server) -> String {
    common::off_runtime(|| s.state.db().write(|store| Ok(store.replica().digest()?))).unwrap()
}

/// Codes of the ops an answer set aside.
fn set_aside(ack: &serde_json::Value) -> Vec<String> {
    ack["set_aside"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| w["code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_forged_root_cannot_take_over_or_close_another_grids_hazard() {
    let s = server();
    let (_w1, original) = victim(&s).await;
    let (_w2, own) = attacker(&s).await;
    let before = digest(&s);
    let hazard = original.findings[0].hazard_id.clone();

    // An inspection of the attacker's own shop claiming the victim's inspection as its root,
    // so that its finding derives the victim's hazard id; then a re-check that closes it.
    let OpBody::Inspection(mut forged) = own.body.clone() else {
        panic!("an inspection")
    };
    forged.id = xuncha_core::model::InspectionId::random();
    forged.root = original.id.clone();
    for f in &mut forged.findings {
        f.hazard_id = HazardId::derive(&forged.root, &f.code);
    }
    assert_eq!(forged.findings[0].hazard_id, hazard);
    let takeover = next(&own, 1, OpBody::Inspection(forged));
    let close = next(
        &own,
        2,
        OpBody::HazardEvent(HazardEvent {
            hazard_id: hazard.clone(),
            action: HazardAction::RecheckPassed {
                photos: vec![photo_for("after")],
            },
            geotag: None,
            note: None,
        }),
    );
    let (code, ack) = push(&s, &s.w2, &[takeover.clone(), close.clone()]).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(set_aside(&ack), ["bad_lineage", "out_of_scope"], "{ack}");
    assert_eq!(digest(&s), before, "nothing changed on the server");
    let state = common::off_runtime(|| {
        s.state
            .db()
            .write(move |store| Ok(store.replica().hazard(&hazard)?))
    })
    .unwrap()
    .unwrap();
    assert_eq!(state.origin.premises_id, original.premises_id);
    assert_ne!(state.status, HazardStatus::Closed);

    // A replica that got the forged ops anyway (not through this server) keeps the hazard on
    // the victim's shop too: only findings on the original's premises count.
    let mut replica = phone("replica", "sup1", now_ms());
    let (_, everything) = pull(&s, &s.admin, 0).await;
    let held: Vec<Op> = serde_json::from_value(everything["ops"].clone()).unwrap();
    replica.apply_ops(&held).unwrap();
    replica.apply_ops(&[takeover]).unwrap();
    let h = replica
        .hazard(&original.findings[0].hazard_id)
        .unwrap()
        .unwrap();
    assert_eq!(h.origin.premises_id, original.premises_id);
    assert_eq!(h.status, HazardStatus::Found);
}

#[tokio::test]
async fn a_forged_correction_cannot_hide_another_grids_inspection() {
    let s = server();
    let (_w1, original) = victim(&s).await;
    let (_w2, own) = attacker(&s).await;
    let before = digest(&s);

    let OpBody::Inspection(mut forged) = own.body.clone() else {
        panic!("an inspection")
    };
    forged.id = xuncha_core::model::InspectionId::random();
    forged.root = forged.id.clone();
    forged.supersedes = Some(original.id.clone());
    for f in &mut forged.findings {
        f.hazard_id = HazardId::derive(&forged.root, &f.code);
    }
    let hide = next(&own, 1, OpBody::Inspection(forged));
    let (code, ack) = push(&s, &s.w2, std::slice::from_ref(&hide)).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(set_aside(&ack), ["bad_lineage"], "{ack}");
    assert_eq!(digest(&s), before);

    // Nor on a replica that got it anyway: a correction of another shop hides nothing.
    let mut replica = phone("replica", "sup1", now_ms());
    let (_, everything) = pull(&s, &s.admin, 0).await;
    let held: Vec<Op> = serde_json::from_value(everything["ops"].clone()).unwrap();
    replica.apply_ops(&held).unwrap();
    replica.apply_ops(&[hide]).unwrap();
    let listed = replica.inspections_of(&original.premises_id).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, original.id);
    assert_eq!(
        replica.counts().unwrap().inspections,
        3,
        "two real ones and the forged one"
    );
}

#[tokio::test]
async fn someone_elses_authorship_device_or_hazard_is_refused_and_changes_nothing() {
    let s = server();
    let (w1, original) = victim(&s).await;
    let (_w2, own) = attacker(&s).await;
    let before = digest(&s);
    let hazard = original.findings[0].hazard_id.clone();
    let event = |action| {
        OpBody::HazardEvent(HazardEvent {
            hazard_id: hazard.clone(),
            action,
            geotag: None,
            note: None,
        })
    };

    // Ops claiming w1 as author, or w1's phone as device: the whole push is refused.
    let mut as_w1 = next(&own, 1, event(HazardAction::Withdrawn));
    as_w1.author = "w1".into();
    let (code, err) = push(&s, &s.w2, &[as_w1]).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_author"))
    );
    let w1_op = w1.all_ops().unwrap().remove(0);
    let mut from_w1s_phone = next(&w1_op, 10, event(HazardAction::Withdrawn));
    from_w1s_phone.author = "w2".into();
    let (code, err) = push(&s, &s.w2, &[from_w1s_phone]).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_device"))
    );

    // Acting on a hazard of another grid, every way: set aside, nothing changes.
    let actions = [
        HazardAction::Withdrawn,
        HazardAction::NoticeIssued {
            deadline: china_date(now_ms()) + chrono::Days::new(3),
            notice_no: Some("伪造〔2026〕0001号".into()),
        },
        HazardAction::Reassigned { to: "w2".into() },
        HazardAction::FixedOnSpot {
            photos: vec![photo_for("fake")],
        },
    ];
    let ops: Vec<Op> = actions
        .into_iter()
        .enumerate()
        .map(|(i, a)| next(&own, 1 + i as u64, event(a)))
        .collect();
    let (code, ack) = push(&s, &s.w2, &ops).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(set_aside(&ack), ["out_of_scope"; 4], "{ack}");
    assert_eq!(digest(&s), before);

    // A clock far ahead changes none of that.
    let mut ahead = next(&own, 5, event(HazardAction::Withdrawn));
    ahead.hlc = Hlc::new((now_ms() + 30 * 86_400_000) as u64, 0);
    let (_, ack) = push(&s, &s.w2, &[ahead]).await;
    assert_eq!(
        (set_aside(&ack), ack["held"].as_u64()),
        (vec!["out_of_scope".to_owned()], Some(0)),
        "{ack}"
    );
    assert_eq!(digest(&s), before);
}
