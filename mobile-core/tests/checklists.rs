//! The checklist files: they satisfy the JSON Schema, load into the core, are all embedded,
//! and every item's hazard rule does what domain.md says.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::path::PathBuf;

use chrono::NaiveDate;
use xuncha_core::checklist::catalog_files;
use xuncha_core::checklist::sample::{photo_for, sample_answers};
use xuncha_core::checklist::{Catalog, Checklist, ChecklistKind, applicable_items, evaluate};
use xuncha_core::model::{
    Answer, AnswerValue, Finding, GasUse, InspectionId, PremisesFields, PremisesKind, Severity,
};

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn checklist_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(schemas_dir().join("checklists"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_checklist_file_satisfies_the_json_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(schemas_dir().join("checklist.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema itself is valid");
    let files = checklist_files();
    assert_eq!(files.len(), 4);
    for (name, text) in &files {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_schema_rejects_a_broken_checklist() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(schemas_dir().join("checklist.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let (_, text) = &checklist_files()
        .into_iter()
        .find(|(n, _)| n.starts_with("fire"))
        .unwrap();
    for (from, to) in [
        ("\"severity\": \"general\"", "\"severity\": \"minor\""),
        ("\"answer\": \"FE-03\"", "\"answr\": \"FE-03\""),
        ("\"code\": \"FE-01\"", "\"code\": \"FE1\""),
        ("\"photo_on_hazard\": true,", ""),
    ] {
        let broken = text.replacen(from, to, 1);
        assert!(&broken != text, "{from} is in the file");
        let doc: serde_json::Value = serde_json::from_str(&broken).unwrap();
        assert!(!validator.is_valid(&doc), "schema accepted {to}");
    }
}

#[test]
fn every_file_on_disk_is_embedded_and_loads_the_same() {
    let on_disk = checklist_files();
    let embedded = catalog_files();
    assert_eq!(
        on_disk.len(),
        embedded.len(),
        "a checklist file is not in EMBEDDED"
    );
    for (name, text) in &on_disk {
        let (_, embedded_text) = embedded.iter().find(|(n, _)| n == name).expect("embedded");
        assert!(
            embedded_text == text,
            "{name} differs from its embedded copy"
        );
    }
    let refs: Vec<(&str, &str)> = on_disk
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let from_disk = Catalog::from_files(&refs).unwrap();
    for kind in ChecklistKind::ALL {
        assert_eq!(from_disk.latest(kind), Catalog::builtin().latest(kind));
        let l = Catalog::builtin().latest(kind).unwrap();
        assert_eq!(l.version, 1);
        for item in &l.items {
            assert!(
                !item.label.zh.is_empty() && !item.label.en.is_empty() && !item.basis.is_empty(),
                "{}",
                item.code
            );
        }
    }
}

#[test]
fn a_later_version_can_sit_beside_version_one() {
    let (name, text) = checklist_files()
        .into_iter()
        .find(|(n, _)| n.starts_with("exits"))
        .unwrap();
    let v2 = text
        .replacen("\"version\": 1", "\"version\": 2", 1)
        .replacen("\"rectify_days\": 7", "\"rectify_days\": 5", 1);
    let c = Catalog::from_files(&[
        (name.as_str(), text.as_str()),
        ("exits.v2.json", v2.as_str()),
    ])
    .unwrap();
    assert_eq!(c.latest(ChecklistKind::Exits).unwrap().version, 2);
    assert_eq!(
        c.get(ChecklistKind::Exits, 1).unwrap().version,
        1,
        "old inspections still read with v1"
    );
}

// ---- item rules ----

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn shop() -> PremisesFields {
    let mut p = PremisesFields::new("好又多便利店", "幸福路8号", PremisesKind::Retail);
    p.storeys = Some(1);
    p.floor_area_m2 = Some(80.0);
    p.max_occupants = Some(20);
    p
}

fn lists(kinds: &[ChecklistKind]) -> Vec<&'static Checklist> {
    kinds
        .iter()
        .map(|k| Catalog::builtin().latest(*k).unwrap())
        .collect()
}

fn eval(p: &PremisesFields, answers: &[Answer]) -> xuncha_core::Result<Vec<Finding>> {
    evaluate(
        &lists(&ChecklistKind::ALL),
        p,
        answers,
        today(),
        &InspectionId::from("i-1"),
    )
}

fn gas_answers(p: &PremisesFields, gas: &str, hazards: &[&str], fixed: &[Answer]) -> Vec<Answer> {
    let mut fixed = fixed.to_vec();
    fixed.push(Answer::new("GA-00", AnswerValue::Choice(gas.into())));
    sample_answers(&lists(&ChecklistKind::ALL), p, today(), hazards, &fixed)
}

#[test]
fn a_clean_visit_finds_nothing() {
    let answers = gas_answers(&shop(), "lpg", &[], &[]);
    assert!(
        answers.len() >= 30,
        "a full visit has {} answers",
        answers.len()
    );
    assert_eq!(eval(&shop(), &answers).unwrap(), vec![]);
}

#[test]
fn every_item_with_a_rule_can_raise_exactly_its_hazard() {
    let all = lists(&ChecklistKind::ALL);
    // Large enough that one exit is not enough (EX-03).
    let mut p = shop();
    p.floor_area_m2 = Some(300.0);
    for item in all
        .iter()
        .flat_map(|l| l.items.iter())
        .filter(|i| i.hazard.is_some())
    {
        // An old extinguisher that was never serviced is also overdue for service (FE-08).
        let serviced = [date("FE-08", 2026, 6, 1)];
        let fixed: &[Answer] = if item.code == "FE-07" { &serviced } else { &[] };
        let answers = gas_answers(&p, "lpg", &[&item.code], fixed);
        let findings = eval(&p, &answers).unwrap_or_else(|e| panic!("{}: {e}", item.code));
        let codes: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, vec![item.code.as_str()]);
        let rule = item.hazard.as_ref().unwrap();
        assert_eq!(
            findings[0].deadline,
            today() + chrono::Days::new(findings[0].rectify_days.into())
        );
        assert!(
            rule.overrides
                .iter()
                .any(|o| o.rectify_days == findings[0].rectify_days)
                || findings[0].rectify_days == rule.rectify_days
        );
    }
}

fn finding_for(p: &PremisesFields, fixed: &[Answer]) -> Vec<(String, Severity, u32)> {
    let answers = gas_answers(p, "lpg", &[], fixed);
    eval(p, &answers)
        .unwrap()
        .into_iter()
        .map(|f| (f.code, f.severity, f.rectify_days))
        .collect()
}

fn yes(code: &str, v: bool) -> Answer {
    let mut a = Answer::new(code, AnswerValue::YesNo(v));
    a.photos.push(photo_for(code));
    a
}

fn date(code: &str, y: i32, m: u32, d: u32) -> Answer {
    Answer::new(
        code,
        AnswerValue::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap()),
    )
}

fn choice(code: &str, v: &str) -> Answer {
    let mut a = Answer::new(code, AnswerValue::Choice(v.into()));
    a.photos.push(photo_for(code));
    a
}

#[test]
fn fe01_counts_two_per_floor_and_one_per_50_m2_in_catering() {
    let count = |n| Answer::new("FE-01", AnswerValue::Count(n));
    let mut two_floors = shop();
    two_floors.storeys = Some(2);
    assert_eq!(finding_for(&two_floors, &[count(3)])[0].0, "FE-01");
    assert!(finding_for(&two_floors, &[count(4)]).is_empty());
    let mut restaurant = shop();
    restaurant.kind = PremisesKind::Catering;
    restaurant.floor_area_m2 = Some(260.0);
    assert_eq!(
        finding_for(&restaurant, &[count(5)])[0].0,
        "FE-01",
        "260 m² needs 6"
    );
    assert!(finding_for(&restaurant, &[count(6)]).is_empty());
}

#[test]
fn fe07_scrap_age_depends_on_type_and_is_calendar_exact() {
    let ty = |t| Answer::new("FE-02", AnswerValue::Choice(String::from(t)));
    let service = date("FE-08", 2026, 6, 1);
    // Water-based: 6 years. Made 2020-11-22: older than 6 years on 2026-11-23.
    let f = finding_for(
        &shop(),
        &[
            ty("water_based"),
            date("FE-07", 2020, 11, 22),
            service.clone(),
        ],
    );
    assert_eq!(f, vec![("FE-07".into(), Severity::General, 7)]);
    assert!(
        finding_for(
            &shop(),
            &[
                ty("water_based"),
                date("FE-07", 2020, 11, 23),
                service.clone()
            ]
        )
        .is_empty()
    );
    // The same date on a powder extinguisher (10 years) is fine.
    assert!(
        finding_for(
            &shop(),
            &[
                ty("abc_powder"),
                date("FE-07", 2016, 11, 23),
                service.clone()
            ]
        )
        .is_empty()
    );
    assert_eq!(
        finding_for(
            &shop(),
            &[ty("abc_powder"), date("FE-07", 2016, 11, 22), service]
        )[0]
        .0,
        "FE-07"
    );
}

#[test]
fn fe08_service_is_due_5_years_after_manufacture_then_every_2() {
    let ty = Answer::new("FE-02", AnswerValue::Choice("abc_powder".into()));
    // Never serviced: due 5 years after manufacture.
    assert!(finding_for(&shop(), &[ty.clone(), date("FE-07", 2022, 1, 1)]).is_empty());
    assert_eq!(
        finding_for(&shop(), &[ty.clone(), date("FE-07", 2021, 1, 1)])[0].0,
        "FE-08"
    );
    // Serviced: every 2 years from the last service.
    let made = date("FE-07", 2019, 1, 1);
    assert!(
        finding_for(
            &shop(),
            &[ty.clone(), made.clone(), date("FE-08", 2025, 1, 1)]
        )
        .is_empty()
    );
    assert_eq!(
        finding_for(&shop(), &[ty, made, date("FE-08", 2024, 11, 1)])[0].0,
        "FE-08"
    );
    // Water-based: every year.
    let water = Answer::new("FE-02", AnswerValue::Choice("water_based".into()));
    assert_eq!(
        finding_for(
            &shop(),
            &[water, date("FE-07", 2022, 1, 1), date("FE-08", 2025, 11, 1)]
        )[0]
        .0,
        "FE-08"
    );
}

#[test]
fn overrides_raise_severity_where_domain_says() {
    // GA-07: LPG in a basement is a suspected major hazard, fixed on the spot.
    assert_eq!(
        finding_for(&shop(), &[choice("GA-07", "in_basement")]),
        vec![("GA-07".into(), Severity::SuspectedMajor, 0)]
    );
    assert_eq!(
        finding_for(&shop(), &[choice("GA-07", "too_close_to_stove")]),
        vec![("GA-07".into(), Severity::General, 7)]
    );
    // EB-02: charging inside is major where people sleep.
    let mut sleeps = shop();
    sleeps.sleeps_on_site = true;
    assert_eq!(
        finding_for(&sleeps, &[yes("EB-02", true)]),
        vec![("EB-02".into(), Severity::SuspectedMajor, 0)]
    );
    assert_eq!(
        finding_for(&shop(), &[yes("EB-02", true)]),
        vec![("EB-02".into(), Severity::General, 0)]
    );
    // EX-01: a locked exit is major when it is the only one.
    let one_exit = Answer::new("EX-03", AnswerValue::Count(1));
    assert_eq!(
        finding_for(&shop(), &[yes("EX-01", true), one_exit]),
        vec![("EX-01".into(), Severity::SuspectedMajor, 0)]
    );
    // EX-07: people sleeping without separation: 15 days, 0 where gas is used.
    let mut with_gas = shop();
    with_gas.gas_use = GasUse::BottledLpg;
    let sleeping = || {
        let mut a = choice("EX-07", "yes_not_separated");
        a.detail = Some(3);
        a
    };
    assert_eq!(
        finding_for(&shop(), &[sleeping()]),
        vec![("EX-07".into(), Severity::General, 15)]
    );
    assert_eq!(
        finding_for(&with_gas, &[sleeping()]),
        vec![("EX-07".into(), Severity::General, 0)]
    );
}

#[test]
fn ex03_one_exit_is_allowed_only_for_small_single_storey_premises() {
    let one = Answer::new("EX-03", AnswerValue::Count(1));
    assert!(finding_for(&shop(), std::slice::from_ref(&one)).is_empty());
    let mut big = shop();
    big.floor_area_m2 = Some(250.0);
    assert_eq!(
        finding_for(&big, std::slice::from_ref(&one)),
        vec![("EX-03".into(), Severity::SuspectedMajor, 30)]
    );
    let mut unknown = shop();
    unknown.max_occupants = None;
    assert_eq!(
        finding_for(&unknown, &[one])[0].0,
        "EX-03",
        "without an occupancy figure the exception cannot be granted"
    );
}

#[test]
fn gas_items_apply_only_where_gas_is_used() {
    let none = gas_answers(&shop(), "none", &[], &[]);
    assert!(
        !none
            .iter()
            .any(|a| a.code.starts_with("GA-") && a.code != "GA-00")
    );
    assert!(eval(&shop(), &none).unwrap().is_empty());
    let natural = gas_answers(&shop(), "natural", &[], &[]);
    assert!(
        natural.iter().any(|a| a.code == "GA-01") && !natural.iter().any(|a| a.code == "GA-07")
    );
    // Answering a gas item on a shop without gas is refused, naming the item.
    let mut bad = none.clone();
    bad.push(yes("GA-03", true));
    let e = eval(&shop(), &bad).unwrap_err().to_string();
    assert!(e.contains("GA-03") && e.contains("does not apply"), "{e}");
    // ... but "not applicable" is always a legitimate answer, and never a hazard.
    let mut na = none;
    na.push(Answer::new("GA-03", AnswerValue::NotApplicable));
    assert!(eval(&shop(), &na).unwrap().is_empty());
}

#[test]
fn answers_that_do_not_fit_are_refused_with_the_item_named() {
    let base = gas_answers(&shop(), "natural", &[], &[]);
    let with = |f: &dyn Fn(&mut Vec<Answer>)| {
        let mut a = base.clone();
        f(&mut a);
        eval(&shop(), &a).unwrap_err().to_string()
    };
    let set = |code: &'static str, v: AnswerValue| {
        move |a: &mut Vec<Answer>| a.iter_mut().find(|x| x.code == code).unwrap().value = v.clone()
    };
    let e = with(&|a| a.push(Answer::new("FE-99", AnswerValue::YesNo(true))));
    assert!(e.contains("FE-99") && e.contains("not an item"), "{e}");
    let e = with(&set("FE-03", AnswerValue::Count(3)));
    assert!(e.contains("FE-03") && e.contains("expects yes/no"), "{e}");
    let e = with(&|a| a.retain(|x| x.code != "EX-05"));
    assert!(e.contains("EX-05") && e.contains("required"), "{e}");
    let e = with(&set(
        "FE-07",
        AnswerValue::Date(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()),
    ));
    assert!(
        e.contains("FE-07") && e.contains("after the inspection date"),
        "{e}"
    );
    let e = with(&set("FE-02", AnswerValue::Choice("foam".into())));
    assert!(e.contains("FE-02") && e.contains("foam"), "{e}");
    let e = with(&set("FE-01", AnswerValue::Count(100_000)));
    assert!(e.contains("FE-01") && e.contains("more than"), "{e}");
    let e = with(&|a| a.push(a[0].clone()));
    assert!(e.contains("twice"), "{e}");
    // A hazard on an item that needs a photo must have one.
    let e = with(&|a| {
        a.iter_mut().find(|x| x.code == "FE-09").unwrap().value = AnswerValue::YesNo(false)
    });
    assert!(e.contains("FE-09") && e.contains("photo"), "{e}");
    // EB-01 "parked inside" needs the count.
    let e = with(&|a| {
        let x = a.iter_mut().find(|x| x.code == "EB-01").unwrap();
        x.value = AnswerValue::YesNo(true);
        x.photos.push(photo_for("EB-01"));
    });
    assert!(e.contains("EB-01") && e.contains("detail"), "{e}");
}

#[test]
fn the_items_that_apply_follow_the_answers_so_far() {
    let extinguishers = lists(&[ChecklistKind::FireExtinguisher]);
    let shown = |answers: &[Answer]| applicable_items(&extinguishers, &shop(), answers, today());
    let everything = shown(&[Answer::new("FE-01", AnswerValue::Count(2))]);
    assert!(everything.contains(&"FE-02".to_owned()));
    // No extinguisher: nothing to ask about its type or gauge.
    let none = shown(&[Answer::new("FE-01", AnswerValue::Count(0))]);
    assert!(none.contains(&"FE-01".to_owned()));
    assert!(!none.contains(&"FE-02".to_owned()));
    assert!(none.len() < everything.len());
    // What evaluate accepts as a complete visit is exactly what was shown.
    let answers = sample_answers(&extinguishers, &shop(), today(), &[], &[]);
    let shown_now = shown(&answers);
    for a in &answers {
        assert!(
            shown_now.contains(&a.code),
            "{} answered but not shown",
            a.code
        );
    }
}

#[test]
fn answers_read_as_people_say_them() {
    let extinguishers = lists(&[ChecklistKind::FireExtinguisher]);
    let item = |code: &str| {
        extinguishers
            .iter()
            .find_map(|c| c.item(code))
            .unwrap_or_else(|| panic!("no {code}"))
    };
    let choice = item("FE-02").answer_text(&AnswerValue::Choice("abc_powder".into()));
    assert_eq!(
        (choice.zh.as_str(), choice.en.as_str()),
        ("ABC干粉", "ABC dry powder")
    );
    // A value the checklist does not know stays as it was, rather than vanish.
    assert_eq!(
        item("FE-02")
            .answer_text(&AnswerValue::Choice("foam".into()))
            .zh,
        "foam"
    );
    let yes = item("FE-02").answer_text(&AnswerValue::YesNo(true));
    assert_eq!((yes.zh.as_str(), yes.en.as_str()), ("是", "Yes"));
    assert_eq!(
        item("FE-01").answer_text(&AnswerValue::NotApplicable).zh,
        "不适用"
    );
    assert_eq!(item("FE-01").answer_text(&AnswerValue::Count(3)).en, "3");
}
