//! The due list and reminders: cadence by kind of premises, notices, re-checks, overdue order.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use xuncha_core::calendar::{WorkCalendar, YearStatus};
use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::{ManualClock, WallClock, china_date};
use xuncha_core::due::{DueItem, DueKind};
use xuncha_core::hazard::{HazardAction, HazardStatus};
use xuncha_core::model::{DeviceId, GasUse, PremisesFields, PremisesKind, UserId};
use xuncha_core::store::{Store, StoreOptions};

/// 2026-10-15 10:00 China time.
const DAY0: i64 = 1_792_029_600_000;
const DAY: i64 = 86_400_000;

fn phone() -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(DAY0));
    let mut s = Store::open_in_memory_with(StoreOptions {
        wall: clock.clone(),
        device: Some(DeviceId::from("p")),
        ..StoreOptions::default()
    })
    .unwrap();
    s.set_user(UserId::from("w")).unwrap();
    (s, clock)
}

fn premises(name: &str, kind: PremisesKind) -> PremisesFields {
    let mut f = PremisesFields::new(name, "幸福路", kind);
    f.storeys = Some(1);
    f.floor_area_m2 = Some(80.0);
    f.max_occupants = Some(20);
    f
}

fn day(n: u64) -> NaiveDate {
    china_date(DAY0).checked_add_days(Days::new(n)).unwrap()
}

/// (kind, premises name, days overdue) in list order; ties (same kind and days) by name, as
/// the list breaks them by premises id.
fn summary(items: &[DueItem], s: &Store) -> Vec<(DueKind, String, u64)> {
    let mut out: Vec<(DueKind, String, u64)> = items
        .iter()
        .map(|i| {
            let name = s.premises(&i.premises_id).unwrap().unwrap().fields.name;
            (i.kind, name, i.overdue_days)
        })
        .collect();
    out.chunk_by_mut(|a, b| a.0 == b.0 && a.2 == b.2)
        .for_each(|tie| tie.sort_by(|a, b| a.1.cmp(&b.1)));
    out
}

#[test]
fn routine_visits_follow_the_cadence_of_each_kind_of_premises() {
    let (mut s, clock) = phone();
    let mut lpg = premises("液化气面馆", PremisesKind::Catering);
    lpg.gas_use = GasUse::BottledLpg;
    let mut hostel = premises("小旅馆", PremisesKind::Lodging);
    hostel.sleeps_on_site = true;
    let shops = [
        s.add_premises(premises("便利店", PremisesKind::Retail))
            .unwrap(),
        s.add_premises(premises("歌厅", PremisesKind::Entertainment))
            .unwrap(),
        s.add_premises(lpg).unwrap(),
        s.add_premises(hostel).unwrap(),
    ];
    // Never inspected: everything is due today.
    assert_eq!(s.due(DAY0).unwrap().len(), 4);
    for p in &shops {
        let visit = sample_visit(s.catalog(), p, day(0), &[]);
        s.record_inspection(visit).unwrap();
    }
    // Next day: the weekly ones come up within the week's horizon, nothing is overdue.
    let soon = s.due(DAY0 + DAY).unwrap();
    assert_eq!(
        summary(&soon, &s),
        vec![
            (DueKind::Routine, "小旅馆".into(), 0),
            (DueKind::Routine, "液化气面馆".into(), 0),
        ]
    );
    assert_eq!(soon[0].due_on, day(7));
    // Day 16: the weekly ones are 9 days late, the entertainment venue 1; the shop not yet due.
    clock.set(DAY0 + 16 * DAY);
    let late = s.due(clock.now_ms()).unwrap();
    assert_eq!(
        summary(&late, &s),
        vec![
            (DueKind::Routine, "小旅馆".into(), 9),
            (DueKind::Routine, "液化气面馆".into(), 9),
            (DueKind::Routine, "歌厅".into(), 1),
        ]
    );
    assert_eq!(s.due(DAY0 + 31 * DAY).unwrap().len(), 4);
}

#[test]
fn hazards_bring_notices_and_rechecks_and_overdue_comes_first() {
    let (mut s, clock) = phone();
    let shop = s
        .add_premises(premises("便利店", PremisesKind::Retail))
        .unwrap();
    let other = s
        .add_premises(premises("五金店", PremisesKind::Retail))
        .unwrap();
    let found = s
        .record_inspection(sample_visit(s.catalog(), &shop, day(0), &["EX-05"]))
        .unwrap();
    s.record_inspection(sample_visit(s.catalog(), &other, day(0), &[]))
        .unwrap();
    let hazard = found.findings[0].hazard_id.clone();

    // Found on Thursday: a notice is due within 3 working days (Tuesday), and the shop is
    // now visited weekly.
    let items = s.due(DAY0).unwrap();
    let notice = items
        .iter()
        .find(|i| i.kind == DueKind::IssueNotice)
        .unwrap();
    assert_eq!(
        (notice.due_on, notice.hazard_id.as_ref()),
        (day(5), Some(&hazard))
    );
    assert!(
        items
            .iter()
            .any(|i| i.kind == DueKind::Routine && i.premises_id == shop.id)
    );
    assert!(
        !items.iter().any(|i| i.premises_id == other.id),
        "monthly, not due"
    );

    // Notice with a deadline on day 10: the re-check shows up within the week before it.
    let h = s
        .record_hazard_event(
            &hazard,
            HazardAction::NoticeIssued {
                deadline: day(10),
                notice_no: None,
            },
            None,
            None,
        )
        .unwrap();
    assert_eq!(h.status, HazardStatus::Rectifying);
    assert!(
        !s.due(DAY0)
            .unwrap()
            .iter()
            .any(|i| i.kind == DueKind::Recheck)
    );
    let recheck = s.due(DAY0 + 4 * DAY).unwrap();
    assert!(
        recheck
            .iter()
            .any(|i| i.kind == DueKind::Recheck && i.due_on == day(10) && i.overdue_days == 0)
    );

    // Day 12: the re-check is 2 days overdue and heads the list, before the routine visit that
    // is 5 days overdue: hazard work first.
    clock.set(DAY0 + 12 * DAY);
    let late = s.due(clock.now_ms()).unwrap();
    assert_eq!(
        summary(&late, &s),
        vec![
            (DueKind::Recheck, "便利店".into(), 2),
            (DueKind::Routine, "便利店".into(), 5),
        ]
    );

    // Closed: no hazard work left.
    s.record_hazard_event(
        &hazard,
        HazardAction::OwnerReportedFixed { photos: vec![] },
        None,
        None,
    )
    .unwrap();
    s.record_hazard_event(
        &hazard,
        HazardAction::RecheckPassed { photos: vec![] },
        None,
        None,
    )
    .unwrap();
    assert!(
        s.due(clock.now_ms())
            .unwrap()
            .iter()
            .all(|i| i.hazard_id.is_none())
    );
}

#[test]
fn reminders_come_the_morning_before_and_the_morning_of_each_due_date() {
    let (mut s, _) = phone();
    let shop = s
        .add_premises(premises("便利店", PremisesKind::Retail))
        .unwrap();
    s.record_inspection(sample_visit(s.catalog(), &shop, day(0), &[]))
        .unwrap();
    let nine = |d: u64| DAY0 - 3_600_000 + (d as i64) * DAY; // DAY0 is 10:00
    // Nothing within the horizon yet: no reminder.
    assert_eq!(s.next_reminder_at(DAY0).unwrap(), None);
    // Due on day 30: reminded at 09:00 on day 29, then on day 30.
    assert_eq!(s.next_reminder_at(DAY0 + 25 * DAY).unwrap(), Some(nine(29)));
    assert_eq!(s.next_reminder_at(nine(29) + 1).unwrap(), Some(nine(30)));
    // Not done on the day, then overdue: every morning after.
    assert_eq!(s.next_reminder_at(nine(30) + 1).unwrap(), Some(nine(31)));
    assert_eq!(s.next_reminder_at(nine(33) + 1).unwrap(), Some(nine(34)));
}

#[test]
fn working_days_follow_the_official_calendar_with_swapped_weekends() {
    let cal = WorkCalendar::builtin();
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    assert!(cal.covers(2026));
    assert!(
        cal.is_working_day(d("2026-02-14")),
        "Saturday worked before the Spring Festival"
    );
    assert!(
        !cal.is_working_day(d("2026-02-16")),
        "Monday of the Spring Festival"
    );
    assert!(
        cal.is_working_day(d("2026-10-10")),
        "Saturday worked after National Day"
    );
    assert!(!cal.is_working_day(d("2026-10-11")), "an ordinary Sunday");
    // Found on Thursday 12 February: Friday 13, Saturday 14 (worked), then the holiday to the
    // 23rd, so the third working day is Tuesday 24 February.
    assert_eq!(cal.add_working_days(d("2026-02-12"), 3), d("2026-02-24"));
    assert_eq!(cal.add_working_days(d("2026-09-30"), 1), d("2026-10-08"));
    // 2027 is provisional until the State Council's notice: the statutory days (除夕 to 初三,
    // Friday 5 to Monday 8 February) and the 补假 for the weekend ones (9 and 10 February).
    assert!(!cal.covers(2027));
    assert_eq!(cal.status(2027), YearStatus::Provisional);
    assert_eq!(cal.add_working_days(d("2027-02-04"), 1), d("2027-02-11"));
    assert!(!cal.is_working_day(d("2027-10-05")) && cal.is_working_day(d("2027-10-06")));
    assert!(
        !cal.is_working_day(d("2027-05-03")),
        "补假 for 1 May on a Saturday"
    );
    // A year not in the file counts plain weeks.
    assert_eq!(cal.status(2028), YearStatus::Unknown);
    assert_eq!(cal.add_working_days(d("2028-01-25"), 1), d("2028-01-26"));
}

#[test]
fn the_due_list_counts_working_days_across_holidays() {
    // Found on 2026-09-30, the day before National Day: 8 and 9 October are working days,
    // and so is Saturday 10 October (调休): the notice is due then.
    let clock = Arc::new(ManualClock::new(1_790_733_600_000)); // 2026-09-30 10:00 China time
    let mut s = Store::open_in_memory_with(StoreOptions {
        wall: clock.clone(),
        device: Some(DeviceId::from("p")),
        ..StoreOptions::default()
    })
    .unwrap();
    s.set_user(UserId::from("w")).unwrap();
    let shop = s
        .add_premises(premises("便利店", PremisesKind::Retail))
        .unwrap();
    let today = china_date(clock.now_ms());
    assert_eq!(today.to_string(), "2026-09-30");
    s.record_inspection(sample_visit(s.catalog(), &shop, today, &["EX-05"]))
        .unwrap();
    let items = s.due(clock.now_ms()).unwrap();
    let notice = items
        .iter()
        .find(|i| i.kind == DueKind::IssueNotice)
        .unwrap();
    assert_eq!(notice.due_on.to_string(), "2026-10-10");
}

#[test]
fn a_calendar_file_is_checked() {
    let ok = r#"{"format": "xuncha-calendar/1", "years": {"2030": {"holidays": [{"name": "x", "from": "2030-01-01", "to": "2030-01-02"}], "workdays": [{"name": "y", "date": "2030-01-05"}]}}}"#;
    let cal = WorkCalendar::from_json(ok).unwrap();
    assert!(cal.covers(2030) && !cal.is_working_day("2030-01-02".parse().unwrap()));
    let estimate = ok.replace(r#""2030": {"#, r#""2030": {"provisional": true, "#);
    let cal = WorkCalendar::from_json(&estimate).unwrap();
    assert!(!cal.covers(2030) && !cal.is_working_day("2030-01-02".parse().unwrap()));
    assert_eq!(cal.status(2030), YearStatus::Provisional);
    for bad in [
        r#"{"format": "other", "years": {}}"#,
        r#"{"format": "xuncha-calendar/1", "years": {"2030": {"holidays": [{"name": "x", "from": "2030-01-03", "to": "2030-01-01"}]}}}"#,
        r#"{"format": "xuncha-calendar/1", "years": {"2030": {"holidays": [{"name": "x", "from": "2030-01-01", "to": "2030-01-01"}], "workdays": [{"name": "y", "date": "2030-01-01"}]}}}"#,
    ] {
        assert!(WorkCalendar::from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn fixing_on_the_spot_needs_an_after_photo() {
    let (mut s, _) = phone();
    let shop = s
        .add_premises(premises("便利店", PremisesKind::Retail))
        .unwrap();
    let found = s
        .record_inspection(sample_visit(s.catalog(), &shop, day(0), &["EX-05"]))
        .unwrap();
    let hazard = &found.findings[0].hazard_id;
    let err = s
        .record_hazard_event(
            hazard,
            HazardAction::FixedOnSpot { photos: vec![] },
            None,
            None,
        )
        .unwrap_err();
    assert!(err.to_string().contains("after-photo"), "{err}");
    assert_eq!(
        s.hazard(hazard).unwrap().unwrap().status,
        HazardStatus::Found
    );
    let photo = xuncha_core::checklist::sample::photo_for("after");
    let h = s
        .record_hazard_event(
            hazard,
            HazardAction::FixedOnSpot {
                photos: vec![photo],
            },
            None,
            None,
        )
        .unwrap();
    assert_eq!(h.status, HazardStatus::Closed);
}

fn sweep(grid: &str, ended: bool) -> xuncha_core::campaign::Campaign {
    xuncha_core::campaign::Campaign {
        campaign_id: xuncha_core::model::CampaignId::from("winter-ebike"),
        grid_id: grid.into(),
        name: "冬季电动车充电专项检查".into(),
        checklists: vec![xuncha_core::checklist::ChecklistKind::EBike],
        premises_kinds: vec![PremisesKind::Retail],
        starts_on: day(1),
        deadline: day(10),
        ended,
    }
}

#[test]
fn a_campaign_lists_its_grids_premises_until_inspected_for_it() {
    let (mut s, clock) = phone();
    let mut in_grid = premises("便利店", PremisesKind::Retail);
    in_grid.grid_id = Some("G1".into());
    let shop = s.add_premises(in_grid).unwrap();
    let mut elsewhere = premises("五金店", PremisesKind::Retail);
    elsewhere.grid_id = Some("G2".into());
    s.add_premises(elsewhere).unwrap();
    let mut restaurant = premises("面馆", PremisesKind::Catering);
    restaurant.grid_id = Some("G1".into());
    s.add_premises(restaurant).unwrap();
    // A visit before the campaign starts does not count for it.
    s.record_inspection(sample_visit(s.catalog(), &shop, day(0), &[]))
        .unwrap();
    s.record_campaign(sweep("G1", false)).unwrap();

    assert!(
        s.due(DAY0).unwrap().iter().all(|i| i.campaign.is_none()),
        "not started yet"
    );
    let campaign_items = |s: &Store, at: i64| -> Vec<DueItem> {
        s.due(at)
            .unwrap()
            .into_iter()
            .filter(|i| i.kind == DueKind::Campaign)
            .collect()
    };
    let items = campaign_items(&s, DAY0 + DAY);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].premises_id, shop.id);
    assert_eq!(items[0].due_on, day(10));
    assert_eq!(
        items[0].campaign.as_ref().unwrap().name,
        "冬季电动车充电专项检查"
    );
    // Past the deadline it is overdue.
    assert_eq!(campaign_items(&s, DAY0 + 12 * DAY)[0].overdue_days, 2);

    // Inspected with its checklist during the campaign: done, with the hazard counted.
    clock.set(DAY0 + 2 * DAY);
    s.record_inspection(sample_visit(s.catalog(), &shop, day(2), &["EB-04"]))
        .unwrap();
    assert!(campaign_items(&s, DAY0 + 2 * DAY).is_empty());
    let progress = s
        .campaign_progress(&sweep("G1", false).campaign_id)
        .unwrap();
    let (_, shops) = &progress[0];
    assert_eq!(shops.len(), 1);
    assert_eq!(shops[0].done_on, Some(day(2)));
    assert_eq!(shops[0].hazards_found, 1);
}

#[test]
fn a_campaign_ended_elsewhere_leaves_the_list_in_either_order_of_arrival() {
    let (mut supervisor, _clock) = phone();
    let mut shop = premises("便利店", PremisesKind::Retail);
    shop.grid_id = Some("G1".into());
    supervisor.add_premises(shop).unwrap();
    supervisor.record_campaign(sweep("G1", false)).unwrap();
    supervisor.record_campaign(sweep("G1", true)).unwrap();
    let ops = supervisor.all_ops().unwrap();
    for order in [ops.clone(), ops.iter().rev().cloned().collect()] {
        let (mut phone, _) = phone();
        for op in &order {
            phone.apply_ops(std::slice::from_ref(op)).unwrap();
        }
        assert!(phone.campaigns().unwrap()[0].ended);
        assert!(
            phone
                .due(DAY0 + DAY)
                .unwrap()
                .iter()
                .all(|i| i.kind != DueKind::Campaign)
        );
        assert_eq!(phone.digest().unwrap(), supervisor.digest().unwrap());
    }
}

#[test]
fn the_hazards_of_one_visit_share_one_notice_number_and_the_next_visit_gets_the_next() {
    let (mut s, _clock) = phone();
    s.set_notice_numbering("幸福", "A1").unwrap();
    let shop = s
        .add_premises(premises("便利店", PremisesKind::Retail))
        .unwrap();
    let visit = s
        .record_inspection(sample_visit(
            s.catalog(),
            &shop,
            day(0),
            &["EX-05", "FE-03"],
        ))
        .unwrap();
    let other = s
        .record_inspection(sample_visit(s.catalog(), &shop, day(0), &["EB-02"]))
        .unwrap();
    let issue = |s: &mut Store, h: &xuncha_core::model::HazardId| {
        s.record_hazard_event(
            h,
            HazardAction::NoticeIssued {
                deadline: day(10),
                notice_no: None,
            },
            None,
            None,
        )
        .unwrap()
        .notice_no
        .unwrap()
    };
    let first = issue(&mut s, &visit.findings[0].hazard_id);
    let second = issue(&mut s, &visit.findings[1].hazard_id);
    let third = issue(&mut s, &other.findings[0].hazard_id);
    assert_eq!(first, second, "one notice for the visit");
    assert_ne!(first, third, "another visit, another notice");
    assert!(
        first.ends_with("001号") && third.ends_with("002号"),
        "{first} {third}"
    );
}
