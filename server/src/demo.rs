//! Demo data: a small district so a newcomer sees something at once (`xuncha-server --demo`).
//!
//! Written through the same store API a phone uses, with a manual clock walked through the
//! past six weeks, so the data has real ops, inspections and hazards in several states.

use std::path::Path;
use std::sync::Arc;

use chrono::Days;
use xuncha_core::checklist::sample::{photo_for, sample_answers};
use xuncha_core::checklist::{Catalog, ChecklistKind};
use xuncha_core::clock::{ManualClock, WallClock, china_date};
use xuncha_core::hazard::HazardAction;
use xuncha_core::model::{
    Answer, AnswerValue, DeviceId, GasUse, Geotag, InspectionDraft, LatLon, PremisesFields,
    PremisesKind, UserId,
};
use xuncha_core::store::{Store, StoreOptions};

const DAY_MS: i64 = 86_400_000;
const KINDS: [PremisesKind; 6] = [
    PremisesKind::Catering,
    PremisesKind::Retail,
    PremisesKind::Workshop,
    PremisesKind::Lodging,
    PremisesKind::BeautyBath,
    PremisesKind::InternetCafe,
];
const NAMES: [&str; 6] = ["面馆", "便利店", "五金加工", "小旅馆", "美发店", "网吧"];
const STREETS: [&str; 3] = ["幸福路", "和平街", "新华路"];
const HAZARDS: [&str; 6] = ["FE-03", "FE-09", "EB-02", "EB-04", "EX-02", "GA-01"];

/// Seeds `premises` shops with six weeks of inspections into the database at `path`, as the
/// device `demo-phone`. `now_ms` is the end of the period. Returns how many inspections.
pub fn seed(path: &Path, premises: usize, now_ms: i64) -> Result<usize, xuncha_core::Error> {
    let clock = Arc::new(ManualClock::new(now_ms - 42 * DAY_MS));
    let mut store = Store::open_with(
        path,
        StoreOptions {
            wall: clock.clone(),
            device: Some(DeviceId::from("demo-phone")),
        },
    )?;
    store.set_user(UserId::from("demo.worker"))?;
    let mut shops = Vec::with_capacity(premises);
    for i in 0..premises {
        let mut f = PremisesFields::new(
            format!("{}{}号{}", STREETS[i % 3], i + 1, NAMES[i % NAMES.len()]),
            format!("{}{}号", STREETS[i % 3], i + 1),
            KINDS[i % KINDS.len()],
        );
        f.storeys = Some(1 + (i % 3) as u32);
        f.floor_area_m2 = Some(40.0 + (i * 37 % 260) as f64);
        f.max_occupants = Some(10 + (i * 7 % 60) as u32);
        f.gas_use = if f.kind == PremisesKind::Catering {
            GasUse::BottledLpg
        } else {
            GasUse::None
        };
        f.sleeps_on_site = f.kind == PremisesKind::Lodging;
        f.location = Some(LatLon {
            lat: 31.22 + (i % 10) as f64 * 0.002,
            lon: 121.46 + (i / 10) as f64 * 0.002,
        });
        f.grid_id = Some(format!("grid-{}", i % 4 + 1));
        shops.push(store.add_premises(f)?);
    }
    let lists: Vec<_> = ChecklistKind::ALL
        .iter()
        .filter_map(|k| Catalog::builtin().latest(*k))
        .collect();
    let mut count = 0;
    for week in 0..6 {
        for (i, shop) in shops.iter().enumerate() {
            clock.advance(DAY_MS * 6 / premises.max(1) as i64);
            let today = china_date(clock.now_ms());
            let hazard = ((i * 7 + week * 3) % 5 == 0).then(|| HAZARDS[(i + week) % HAZARDS.len()]);
            let gas = if shop.fields.gas_use == GasUse::None {
                "none"
            } else {
                "lpg"
            };
            let fixed = [Answer::new("GA-00", AnswerValue::Choice(gas.into()))];
            let answers = sample_answers(&lists, &shop.fields, today, hazard.as_slice(), &fixed);
            let loc = shop.fields.location.unwrap_or(LatLon {
                lat: 31.22,
                lon: 121.46,
            });
            let geotag = Geotag {
                lat: loc.lat,
                lon: loc.lon,
                accuracy_m: 10.0,
                source: "gps".into(),
                mock: false,
                fix_time_ms: clock.now_ms(),
            };
            let kinds = ChecklistKind::ALL.to_vec();
            let draft = InspectionDraft {
                premises_id: shop.id.clone(),
                kinds,
                answers,
                geotag: Some(geotag),
                note: None,
                supersedes: None,
            };
            let inspection = store.record_inspection(draft)?;
            count += 1;
            // Move the hazards along so every state appears.
            for (n, f) in inspection.findings.iter().enumerate() {
                let deadline = today.checked_add_days(Days::new(7)).unwrap_or(today);
                let steps: Vec<HazardAction> = match (i + n + week) % 4 {
                    0 => vec![],
                    1 => vec![HazardAction::NoticeIssued {
                        deadline,
                        notice_no: None,
                    }],
                    2 => vec![
                        HazardAction::NoticeIssued {
                            deadline,
                            notice_no: None,
                        },
                        HazardAction::OwnerReportedFixed {
                            photos: vec![photo_for("owner")],
                        },
                    ],
                    _ if f.rectify_days == 0 => vec![HazardAction::FixedOnSpot {
                        photos: vec![photo_for("after")],
                    }],
                    _ => vec![
                        HazardAction::NoticeIssued {
                            deadline,
                            notice_no: None,
                        },
                        HazardAction::RecheckPassed {
                            photos: vec![photo_for("after")],
                        },
                    ],
                };
                for action in steps {
                    store.record_hazard_event(&f.hazard_id, action, None, None)?;
                }
            }
        }
    }
    Ok(count)
}
