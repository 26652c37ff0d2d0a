//! The dashboard with a city's worth of hazards (release build): 1,000,000 hazards of 250,000
//! premises in 1,000 grids over a 40 x 45 km city. Measures, through the server's router (a
//! session cookie, the handler, the JSON), the map's bounding-box query at city, district and
//! street zoom with and without filters, and the overdue list; also how long the map index
//! takes to build and to catch up after a push.
//!
//! `cargo bench -p xuncha-e2e --bench dashboard` (env DASH_HAZARDS to change the count).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a bench binary: panics are failures

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rusqlite::params;
use tower::ServiceExt;
use xuncha_core::sync::Role;
use xuncha_core::workload::Rng;
use xuncha_server::accounts::{self, Areas, Grid};
use xuncha_server::tables::SqliteTables;
use xuncha_server::{AppState, Config, app};

const CITY: (f64, f64, f64, f64) = (31.00, 121.20, 31.36, 121.68); // south, west, north, east
const GRID_ROWS: usize = 25;
const GRID_COLS: usize = 40;

/// Writes `hazards` hazards straight into the replica's tables, shaped exactly as the store
/// writes them (the bench measures reading them, not recording them).
fn fill(state: &AppState, hazards: usize) {
    let today = chrono::Utc::now().date_naive();
    state
        .db()
        .write(move |store| {
            let tx = store.replica().conn().unchecked_transaction()?;
            for r in 0..GRID_ROWS {
                for c in 0..GRID_COLS {
                    accounts::upsert_grid(
                        SqliteTables::of(&tx),
                        &Grid {
                            id: format!("G{r:02}{c:02}"),
                            name: format!("网格{r}-{c}"),
                            community: format!("社区{}", r / 5 * 8 + c / 5),
                            subdistrict: format!("街道{}", r / 5),
                        },
                    )?;
                }
            }
            let mut field = tx.prepare(
                "INSERT INTO premises_fields (premises_id, field, value, hlc, device_id, seq) VALUES (?1, ?2, ?3, 1, 'bench', 1)",
            )?;
            let mut hazard = tx.prepare(
                "INSERT INTO hazards (id, premises_id, status, severity, deadline, assignee, state) VALUES (?1, ?2, ?3, ?4, ?5, 'w', ?6)",
            )?;
            let mut rng = Rng::new(42);
            let codes = ["FE-03", "GA-01", "EB-02", "EX-02", "EX-03"];
            for p in 0..hazards / 4 {
                let (lat, lon) = (
                    CITY.0 + (CITY.2 - CITY.0) * rng.unit(),
                    CITY.1 + (CITY.3 - CITY.1) * rng.unit(),
                );
                let row = (((lat - CITY.0) / (CITY.2 - CITY.0)) * GRID_ROWS as f64) as usize;
                let col = (((lon - CITY.1) / (CITY.3 - CITY.1)) * GRID_COLS as f64) as usize;
                let premises = format!("p{p}");
                field.execute(params![premises, "location", format!(r#"{{"lat":{lat},"lon":{lon}}}"#)])?;
                field.execute(params![premises, "grid_id", format!(r#""G{:02}{:02}""#, row.min(GRID_ROWS - 1), col.min(GRID_COLS - 1))])?;
                field.execute(params![premises, "name", format!(r#""小店{p}""#)])?;
                for h in 0..4 {
                    let n = rng.next();
                    let code = codes[(n % 5) as usize];
                    let found = today - chrono::Days::new(n % 400);
                    let status = ["closed", "closed", "closed", "rectifying", "found", "awaiting_recheck"][(n >> 8) as usize % 6];
                    let deadline = found + chrono::Days::new(7 + (n >> 16) % 30);
                    let severity = if code == "EX-03" { "suspected_major" } else { "general" };
                    let closed = if status == "closed" {
                        let ms = (found + chrono::Days::new(5)).and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp_millis();
                        format!(r#","closed_by":{{"hlc":"{:016x}","device":"bench","seq":1}}"#, (ms as u64) << 16)
                    } else {
                        String::new()
                    };
                    let state = format!(
                        r#"{{"origin":{{"finding":{{"code":"{code}"}},"found_on":"{found}"}},"escalation":0{closed}}}"#
                    );
                    hazard.execute(params![format!("h{p}-{h}"), premises, status, severity, deadline.to_string(), state])?;
                }
            }
            drop((field, hazard));
            // Some op so the index has a mark to start from.
            tx.execute("INSERT INTO devices (device_no, device_id) VALUES (1, 'bench')", [])?;
            tx.execute(
                "INSERT INTO ops (id, device_no, seq, hlc, author, schema, wall_ms, kind, data, applied) VALUES (1, 1, 1, 1, 'w', 1, 0, 'premises_patch', '{}', 1)",
                [],
            )?;
            tx.commit()?;
            accounts::create_user(store.tables(), "city", "市应急办", Role::Admin, "password1", 0)?;
            accounts::create_user(store.tables(), "street", "街道办", Role::Supervisor, "password1", 0)?;
            accounts::set_areas(store.tables(), "street", &Areas { subdistricts: vec!["街道2".into()], ..Areas::default() })?;
            Ok(())
        })
        .unwrap();
}

fn session(state: &AppState, user: &str) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let s = state
        .db()
        .tables(|tables| accounts::open_session(tables, user, "password1", now))
        .unwrap();
    format!("xuncha_session={}", s.token)
}

async fn get(state: &AppState, cookie: &str, uri: &str) -> (Duration, serde_json::Value) {
    let start = Instant::now();
    let res = app(state.clone())
        .oneshot(
            Request::get(uri)
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(res.status().is_success(), "{uri}: {}", res.status());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (start.elapsed(), serde_json::from_slice(&bytes).unwrap())
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

async fn measure(state: &AppState, cookie: &str, name: &str, uris: &[String], runs: usize) {
    let mut times = Vec::with_capacity(runs);
    let mut last = serde_json::Value::Null;
    for i in 0..runs {
        let (t, v) = get(state, cookie, &uris[i % uris.len()]).await;
        times.push(t);
        last = v;
    }
    let shape = match (
        last.get("total"),
        last.get("markers"),
        last.get("clusters"),
        last.get("items"),
    ) {
        (Some(t), Some(m), Some(c), _) => format!(
            "{t} hazards: {} markers, {} clusters",
            m.as_array().map_or(0, Vec::len),
            c.as_array().map_or(0, Vec::len)
        ),
        (Some(t), _, _, Some(items)) => format!(
            "{t} overdue, {} listed",
            items.as_array().map_or(0, Vec::len)
        ),
        _ => String::new(),
    };
    println!(
        "{name:<44} p50 {:>7.1} ms  p95 {:>7.1} ms  ({runs} runs; {shape})",
        pct(times.clone(), 0.5),
        pct(times, 0.95)
    );
}

fn main() {
    let hazards: usize = std::env::var("DASH_HAZARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Config::default()).unwrap();
    let t = Instant::now();
    fill(&state, hazards);
    println!(
        "wrote {hazards} hazards in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
            })
            .unwrap()
    };
    let city = session(&state, "city");
    let street = session(&state, "street");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let before = rss();
        let whole = format!("bbox={},{},{},{}", CITY.1, CITY.0, CITY.3, CITY.2);
        let (t, v) = get(&state, &city, &format!("/dash/api/map?{whole}")).await;
        println!(
            "map index built from the database: {:.0} ms for {} open hazards, +{} MiB resident",
            t.as_secs_f64() * 1000.0,
            v["total"],
            (rss().saturating_sub(before)) / 1024
        );
        // City zoom: the whole city in view, panned a little each time.
        let pans: Vec<String> = (0..10)
            .map(|i| {
                let d = i as f64 * 0.004;
                format!("/dash/api/map?bbox={},{},{},{}", CITY.1 + d, CITY.0 + d, CITY.3 + d, CITY.2 + d)
            })
            .collect();
        measure(&state, &city, "map, city zoom (all open hazards)", &pans, 100).await;
        let filtered: Vec<String> = pans.iter().map(|u| format!("{u}&kinds=exits,gas_alarm&overdue=1")).collect();
        measure(&state, &city, "map, city zoom, 2 checklists + overdue", &filtered, 100).await;
        let dated: Vec<String> = pans.iter().map(|u| format!("{u}&statuses=closed&from=2026-06-01&to=2026-09-30")).collect();
        measure(&state, &city, "map, city zoom, closed in a date range", &dated, 100).await;
        let district: Vec<String> = (0..10)
            .map(|i| {
                let (s, w) = (CITY.0 + 0.1 + i as f64 * 0.005, CITY.1 + 0.1);
                format!("/dash/api/map?bbox={},{},{},{}", w, s, w + 0.08, s + 0.06)
            })
            .collect();
        measure(&state, &city, "map, district zoom", &district, 100).await;
        let street_view: Vec<String> = (0..10)
            .map(|i| {
                let (s, w) = (CITY.0 + 0.2 + i as f64 * 0.002, CITY.1 + 0.2);
                format!("/dash/api/map?bbox={},{},{},{}", w, s, w + 0.01, s + 0.008)
            })
            .collect();
        measure(&state, &city, "map, street zoom (markers)", &street_view, 100).await;
        measure(&state, &street, "map, city zoom, a sub-district's supervisor", &pans, 100).await;
        measure(&state, &city, "overdue list (all)", &["/dash/api/overdue".to_owned()], 50).await;
        measure(&state, &street, "overdue list (a sub-district)", &["/dash/api/overdue".to_owned()], 50).await;

        // Catching up: one hazard changes (as a push would), the next map query refreshes it.
        state
            .db()
            .write(|store| {
                store.replica().conn().execute("UPDATE hazards SET status = 'closed' WHERE id = 'h0-0'", [])?;
                store.replica().conn().execute(
                    "INSERT INTO ops (id, device_no, seq, hlc, author, schema, wall_ms, kind, data, applied) VALUES (2, 1, 2, 2, 'w', 1, 0, 'hazard_event', '{\"hazard_id\":\"h0-0\"}', 1)",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        let (t, _) = get(&state, &city, &pans[0]).await;
        println!("map query right after a change (incremental refresh): {:.1} ms", t.as_secs_f64() * 1000.0);
    });
}
