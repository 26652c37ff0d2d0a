//! Demo data: a living district for a newcomer (`xuncha-server --demo`).
//!
//! One sub-district (幸福街道) with three communities of four grid polygons each, 600 shops,
//! twelve grid workers (one per grid), a supervisor per community and one for the
//! sub-district, and six weeks of inspections with photos and hazards in every state: fixed
//! on the spot, notices out (some overdue), re-checks passed and failed, a suspected major
//! hazard awaiting approval, corrections that withdrew a finding. Written through the same
//! store API a phone uses, with a manual clock walked day by day through the six weeks.
//! Deterministic: the same database every time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use xuncha_core::checklist::sample::sample_answers;
use xuncha_core::checklist::{Catalog, ChecklistKind};
use xuncha_core::clock::{ManualClock, WallClock, china_date};
use xuncha_core::hazard::HazardAction;
use xuncha_core::model::{
    Answer, AnswerValue, DeviceId, GasUse, Geotag, HazardId, InspectionDraft, LatLon, PhotoRef,
    PremisesFields, PremisesKind, Severity, UserId,
};
use xuncha_core::photo::{PhotoLimits, PhotoOptions};
use xuncha_core::store::{Store, StoreOptions};
use xuncha_core::sync::Role;
use xuncha_core::workload::Rng;

use crate::account_tables::AccountTables;
use crate::accounts::{self, Areas, Grid};
use crate::error::ApiError;
use crate::photo_tables::{PhotoRecord, PhotoTables};
use crate::photos::{FileStorage, PhotoStorage, Variant};
use crate::tables::SqliteTables;

/// The demo login printed at start.
pub const DEMO_USER: &str = "demo";
/// Its password (every demo account has it).
pub const DEMO_PASSWORD: &str = "xuncha-demo";

const DAY_MS: i64 = 86_400_000;
const DAYS: u64 = 42;
const SUBDISTRICT: &str = "幸福街道";
const COMMUNITIES: [(&str, &str); 3] = [("XF", "幸福社区"), ("HP", "和平社区"), ("XH", "新华社区")];
/// South-west corner of the district and the size of one grid cell, in degrees.
const ORIGIN: (f64, f64) = (31.2200, 121.4550);
const CELL: (f64, f64) = (0.0060, 0.0070);
const KINDS: [(PremisesKind, &str); 8] = [
    (PremisesKind::Catering, "面馆"),
    (PremisesKind::Retail, "便利店"),
    (PremisesKind::Catering, "小吃店"),
    (PremisesKind::Workshop, "五金加工"),
    (PremisesKind::Lodging, "小旅馆"),
    (PremisesKind::BeautyBath, "美发店"),
    (PremisesKind::InternetCafe, "网吧"),
    (PremisesKind::Retail, "水果店"),
];
const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const STREETS: [&str; 6] = ["幸福路", "和平街", "新华路", "建设路", "人民路", "文化街"];
/// Findings the demo makes, by how often they turn up in real inspections.
const FINDINGS: [&str; 14] = [
    "FE-03", "FE-09", "FE-07", "EB-02", "EB-04", "EB-03", "EX-02", "EX-05", "EX-06", "GA-01",
    "GA-06", "GA-07", "EX-01", "EX-03",
];

/// What the demo wrote.
#[derive(Debug, Default)]
pub struct DemoSummary {
    /// Grids.
    pub grids: usize,
    /// Premises.
    pub premises: usize,
    /// Inspections.
    pub inspections: usize,
    /// Hazards found.
    pub hazards: usize,
    /// Photos stored.
    pub photos: usize,
}

/// A grid of the demo: id, name, community, south-west corner.
fn grids() -> Vec<(String, String, String, (f64, f64))> {
    let mut out = Vec::new();
    for (c, (code, community)) in COMMUNITIES.iter().enumerate() {
        for n in 0..4 {
            // Communities side by side west to east, each two grids wide and two high.
            let col = c * 2 + n % 2;
            let row = n / 2;
            let sw = (
                ORIGIN.0 + row as f64 * CELL.0,
                ORIGIN.1 + col as f64 * CELL.1,
            );
            out.push((
                format!("{code}-{:02}", n + 1),
                format!("{community}第{}网格", ["一", "二", "三", "四"][n]),
                (*community).to_owned(),
                sw,
            ));
        }
    }
    out
}

fn polygon(sw: (f64, f64)) -> serde_json::Value {
    let (s, w) = sw;
    let (n, e) = (s + CELL.0, w + CELL.1);
    serde_json::json!({
        "type": "Polygon",
        "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
    })
}

/// A synthetic shop photo (a wall, a shelf and a red extinguisher, in varying colours),
/// through the real pipeline, so it is stored exactly as a phone would store it.
fn photo(seed: u64) -> Result<xuncha_core::photo::ProcessedPhoto, crate::ServerError> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (w, h) = (960u32, 720u32);
    let wall = [
        150 + rng.below(90) as u8,
        150 + rng.below(90) as u8,
        140 + rng.below(90) as u8,
    ];
    let shelf_x = 80 + rng.below(300) as u32;
    let can_x = 500 + rng.below(300) as u32;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let shade = (y * 40 / h) as u8;
        let mut px = [
            wall[0].saturating_sub(shade),
            wall[1].saturating_sub(shade),
            wall[2].saturating_sub(shade),
        ];
        if y > 560 {
            px = [110, 100, 90]; // floor
        }
        if (shelf_x..shelf_x + 260).contains(&x) && (200..560).contains(&y) && (y / 60) % 2 == 0 {
            px = [120, 80, 50]; // shelf boards
        }
        let dx = x as i64 - (can_x as i64 + 40);
        if (can_x..can_x + 80).contains(&x) && (330..560).contains(&y)
            || (dx * dx + (y as i64 - 330).pow(2) < 1600)
        {
            px = [200, 30, 30]; // the extinguisher
        }
        image::Rgb(px)
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&img)
        .map_err(|e| ApiError::internal(format!("demo photo: {e}")))?;
    Ok(xuncha_core::photo::process(
        &jpeg,
        &PhotoOptions::default(),
        &PhotoLimits::default(),
    )?)
}

/// A hazard's planned future: actions by day.
type Plan = BTreeMap<u64, Vec<(HazardId, HazardAction, String)>>;

/// Seeds an empty server database at `path` (photos beside it) with the demo district, with
/// `now_ms` the end of the six weeks.
pub fn seed(data_dir: &Path, now_ms: i64) -> Result<DemoSummary, crate::ServerError> {
    seed_with(data_dir, &FileStorage::new(data_dir.join("photos")), now_ms)
}

/// [`seed`], with the demo's photos put into `storage` (an object store, say).
pub fn seed_with(
    data_dir: &Path,
    storage: &dyn PhotoStorage,
    now_ms: i64,
) -> Result<DemoSummary, crate::ServerError> {
    let path = crate::db_path(data_dir);
    // The server's own tables first (accounts, grids, photos).
    drop(crate::db::Db::open(&path)?);
    let start = now_ms - DAYS as i64 * DAY_MS;
    let clock = Arc::new(ManualClock::new(start));
    let mut store = Store::open_with(
        &path,
        StoreOptions {
            wall: clock.clone(),
            device: Some(DeviceId::from("demo-phone")),
            ..StoreOptions::default()
        },
    )?;
    store.set_user(UserId::from("demo.worker"))?;
    store.set_notice_numbering("幸福", "D1")?;
    let mut rng = Rng::new(0x5EED_2026);
    let mut summary = DemoSummary::default();

    // Accounts and grids.
    let grids = grids();
    {
        let conn = SqliteTables::of(store.conn());
        for (id, name, community, sw) in &grids {
            accounts::upsert_grid(
                conn,
                &Grid {
                    id: id.clone(),
                    name: name.clone(),
                    community: community.clone(),
                    subdistrict: SUBDISTRICT.to_owned(),
                },
            )?;
            conn.set_grid_geometry(id, &polygon(*sw).to_string())?;
        }
        let user = |id: &str, name: &str, role: Role, areas: Areas| -> Result<(), ApiError> {
            accounts::create_user(conn, id, name, role, DEMO_PASSWORD, start)?;
            accounts::set_areas(conn, id, &areas)
        };
        user(
            DEMO_USER,
            "街道安全办（演示）",
            Role::Supervisor,
            Areas {
                subdistricts: vec![SUBDISTRICT.to_owned()],
                ..Areas::default()
            },
        )?;
        for (code, community) in COMMUNITIES {
            user(
                &format!("leader-{}", code.to_lowercase()),
                &format!("{community}网格长"),
                Role::Supervisor,
                Areas {
                    communities: vec![community.to_owned()],
                    ..Areas::default()
                },
            )?;
        }
        for (n, (id, _, _, _)) in grids.iter().enumerate() {
            user(
                &format!("w{:02}", n + 1),
                &format!("{}网格员", SURNAMES[n]),
                Role::Worker,
                Areas {
                    grids: vec![id.clone()],
                    ..Areas::default()
                },
            )?;
        }
    }
    summary.grids = grids.len();

    // Photos: a small set of distinct pictures, stored verified as if uploaded.
    let mut photos: Vec<PhotoRef> = Vec::new();
    for n in 0..12 {
        let p = photo(n)?;
        let verified =
            xuncha_core::photo::verify(&p.jpeg, &PhotoOptions::default(), &PhotoLimits::default())?;
        let sha = &p.reference.sha256;
        let io = |e: std::io::Error| ApiError::internal(format!("demo photo: {e}"));
        storage.put(sha, Variant::Full, &p.jpeg).map_err(io)?;
        storage
            .put(sha, Variant::Thumbnail, &verified.thumbnail)
            .map_err(io)?;
        SqliteTables::of(store.conn()).record_photo(&PhotoRecord {
            sha256: sha.clone(),
            bytes: p.reference.bytes as i64,
            width: p.reference.width,
            height: p.reference.height,
            uploaded_by: "w01".into(),
            uploaded_ms: start,
        })?;
        photos.push(p.reference);
    }
    summary.photos = photos.len();
    let pick_photo = |rng: &mut Rng| photos[rng.below(photos.len())].clone();

    // Premises: 50 per grid, scattered inside it.
    let mut shops = Vec::new();
    for (g, (grid_id, _, _, sw)) in grids.iter().enumerate() {
        for n in 0..50 {
            let i = g * 50 + n;
            let (kind, label) = KINDS[rng.below(KINDS.len())];
            let street = STREETS[(g + n) % STREETS.len()];
            let mut f = PremisesFields::new(
                format!("{}记{}", SURNAMES[(i * 7) % SURNAMES.len()], label),
                format!("{street}{}号", 1 + i * 3 % 400),
                kind,
            );
            f.location = Some(LatLon {
                lat: sw.0 + CELL.0 * (0.06 + 0.88 * rng.unit()),
                lon: sw.1 + CELL.1 * (0.06 + 0.88 * rng.unit()),
            });
            f.grid_id = Some(grid_id.clone());
            f.storeys = Some(1 + rng.below(3) as u32);
            f.floor_area_m2 = Some(30.0 + rng.below(300) as f64);
            f.max_occupants = Some(5 + rng.below(60) as u32);
            f.gas_use = match kind {
                PremisesKind::Catering if rng.below(3) == 0 => GasUse::PipedNatural,
                PremisesKind::Catering => GasUse::BottledLpg,
                _ => GasUse::None,
            };
            f.sleeps_on_site = kind == PremisesKind::Lodging || rng.below(12) == 0;
            f.contact_person = Some(format!("{}先生", SURNAMES[(i * 5) % SURNAMES.len()]));
            f.phone = Some(format!("1380000{:04}", i));
            let worker = UserId(format!("w{:02}", g + 1));
            let shop = store.act_as(worker.clone(), |s| s.add_premises(f))?;
            shops.push((shop, worker, rng.below(14)));
        }
    }
    summary.premises = shops.len();

    // Six weeks, day by day: visits every two weeks, and each hazard's later steps.
    let lists: Vec<_> = ChecklistKind::ALL
        .iter()
        .filter_map(|k| Catalog::builtin().latest(*k))
        .collect();
    let mut plan: Plan = BTreeMap::new();
    // Extensions fall on working days, as the core requires.
    let calendar = store.calendar().clone();
    let mut corrections = 0;
    for day in 0..DAYS {
        for (minute, (shop, worker, offset)) in shops.iter().enumerate() {
            if day % 14 != *offset as u64 {
                continue;
            }
            clock.set(start + day as i64 * DAY_MS + 3_600_000 + minute as i64 * 40_000);
            let today = china_date(clock.now_ms());
            // Up to three findings, each with a chance of 9%.
            let mut findings: Vec<&str> = Vec::new();
            for _ in 0..3 {
                if rng.below(100) < 9 {
                    findings.push(FINDINGS[rng.below(FINDINGS.len())]);
                }
            }
            let gas = if shop.fields.gas_use == GasUse::None {
                "none"
            } else {
                "lpg"
            };
            let fixed = [Answer::new("GA-00", AnswerValue::Choice(gas.into()))];
            let mut answers = sample_answers(&lists, &shop.fields, today, &findings, &fixed);
            for a in answers.iter_mut().filter(|a| !a.photos.is_empty()) {
                a.photos = vec![pick_photo(&mut rng)];
            }
            let loc = shop.fields.location.unwrap_or(LatLon {
                lat: ORIGIN.0,
                lon: ORIGIN.1,
            });
            // Most fixes are taken at the door; a few far away (flagged), one mocked.
            let far = rng.below(40) == 0;
            let jitter = if far { 0.004 } else { 0.00008 };
            let geotag = Geotag {
                lat: loc.lat + jitter * (rng.unit() - 0.5),
                lon: loc.lon + jitter * (rng.unit() - 0.5),
                accuracy_m: 5.0 + rng.below(20) as f64,
                source: "fused".into(),
                mock: far && rng.below(3) == 0,
                fix_time_ms: clock.now_ms(),
            };
            let draft = InspectionDraft {
                premises_id: shop.id.clone(),
                kinds: ChecklistKind::ALL.to_vec(),
                answers: answers.clone(),
                geotag: Some(geotag.clone()),
                note: None,
                supersedes: None,
            };
            let inspection = store.act_as(worker.clone(), |s| s.record_inspection(draft))?;
            summary.inspections += 1;
            summary.hazards += inspection.findings.len();
            // Now and then a worker corrects a visit the same day: the finding is withdrawn.
            if !inspection.findings.is_empty() && corrections < 6 && rng.below(25) == 0 {
                corrections += 1;
                let wrong = inspection.findings[0].code.clone();
                let clean: Vec<&str> = findings.iter().copied().filter(|c| *c != wrong).collect();
                let mut corrected = sample_answers(&lists, &shop.fields, today, &clean, &fixed);
                for a in corrected.iter_mut().filter(|a| !a.photos.is_empty()) {
                    a.photos = vec![pick_photo(&mut rng)];
                }
                let fix = InspectionDraft {
                    premises_id: shop.id.clone(),
                    kinds: ChecklistKind::ALL.to_vec(),
                    answers: corrected,
                    geotag: Some(geotag),
                    note: Some("更正：误报".into()),
                    supersedes: Some(inspection.id.clone()),
                };
                store.act_as(worker.clone(), |s| s.record_inspection(fix))?;
                continue;
            }
            for f in &inspection.findings {
                let id = f.hazard_id.clone();
                let w = worker.0.clone();
                let deadline = |days: u64| today.checked_add_days(Days::new(days)).unwrap_or(today);
                let notice = |d: NaiveDate| HazardAction::NoticeIssued {
                    deadline: d,
                    notice_no: None,
                };
                let mut at = |d: u64, action: HazardAction, by: &str| {
                    plan.entry(day + d)
                        .or_default()
                        .push((id.clone(), action, by.to_owned()));
                };
                let roll = rng.below(100);
                if f.rectify_days == 0 && roll < 55 {
                    let after = vec![pick_photo(&mut rng)];
                    at(0, HazardAction::FixedOnSpot { photos: after }, &w);
                    continue;
                }
                let due = deadline(u64::from(f.rectify_days.max(3)));
                match roll % 10 {
                    // Found, no notice yet (recent visits keep it so).
                    0 => {}
                    // Notice only: overdue once the deadline passes.
                    1 | 2 => at(0, notice(due), &w),
                    // Owner says fixed, re-check fails, a second round.
                    3 => {
                        at(0, notice(due), &w);
                        at(
                            4,
                            HazardAction::OwnerReportedFixed {
                                photos: vec![pick_photo(&mut rng)],
                            },
                            &w,
                        );
                        at(
                            6,
                            HazardAction::RecheckFailed {
                                deadline: deadline(13),
                                photos: vec![pick_photo(&mut rng)],
                            },
                            &w,
                        );
                    }
                    // Owner says fixed; the re-check is still to come.
                    4 => {
                        at(0, notice(due), &w);
                        at(
                            3,
                            HazardAction::OwnerReportedFixed {
                                photos: vec![pick_photo(&mut rng)],
                            },
                            &w,
                        );
                    }
                    // The deadline was extended by the supervisor.
                    5 => {
                        at(0, notice(due), &w);
                        at(
                            2,
                            HazardAction::DeadlineExtended {
                                deadline: calendar
                                    .on_or_after(deadline(u64::from(f.rectify_days) + 14)),
                            },
                            DEMO_USER,
                        );
                    }
                    // Rectified and re-checked: closed (a suspected major one awaits approval,
                    // approved after a day for half of them).
                    _ => {
                        at(0, notice(due), &w);
                        at(
                            3,
                            HazardAction::OwnerReportedFixed {
                                photos: vec![pick_photo(&mut rng)],
                            },
                            &w,
                        );
                        at(
                            5,
                            HazardAction::RecheckPassed {
                                photos: vec![pick_photo(&mut rng)],
                            },
                            &w,
                        );
                        if f.severity == Severity::SuspectedMajor && roll.is_multiple_of(2) {
                            at(6, HazardAction::ClosureApproved, DEMO_USER);
                        }
                    }
                }
            }
        }
        // The day's later steps of earlier findings.
        for (n, (id, action, by)) in plan
            .remove(&day)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            clock.set(start + day as i64 * DAY_MS + 9 * 3_600_000 + n as i64 * 60_000);
            // A step the hazard's state no longer allows (e.g. after a correction) is skipped.
            match store.act_as(UserId(by), |s| {
                s.record_hazard_event(&id, action, None, None)
            }) {
                Ok(_)
                | Err(xuncha_core::Error::Transition { .. } | xuncha_core::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(summary)
}
