//! The dashboard's JSON through the HTTP router: session login with CSRF, the hazard map by
//! bounding box and filters, review with actions that reach phones, work lists, figures,
//! exports that parse, the printable notice, and premises import.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use std::io::Cursor;
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{Datelike, Days};
use serde_json::{Value, json};
use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::china_date;
use xuncha_core::hazard::{HazardAction, HazardStatus};
use xuncha_core::model::{LatLon, PremisesFields, PremisesKind};
use xuncha_core::op::Op;
use xuncha_core::store::Store;

use common::*;

const DAY: i64 = 86_400_000;

/// The first working day at least `days` after today (extensions fall on working days).
fn working_day_after(days: u64) -> String {
    let calendar = xuncha_core::calendar::WorkCalendar::builtin();
    calendar
        .on_or_after(china_date(now_ms()) + Days::new(days))
        .to_string()
}

/// A session: the cookie header to send and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn login(s: &Server, user: &str, password: &str) -> Result<Session, (StatusCode, Value)> {
    let body = serde_json::to_vec(&json!({ "user": user, "password": password })).unwrap();
    let (code, headers, bytes) = send_raw(
        s,
        "POST",
        "/dash/login",
        None,
        body,
        &[("content-type", "application/json")],
    )
    .await;
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    if code != StatusCode::OK {
        return Err((code, answer));
    }
    let set = headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    Ok(Session {
        cookie: set.split(';').next().unwrap().to_owned(),
        csrf: answer["csrf"].as_str().unwrap().to_owned(),
    })
}

/// A request with the session's cookie (and CSRF token when `csrf`).
async fn dash(
    s: &Server,
    session: &Session,
    method: &str,
    uri: &str,
    body: Option<Value>,
    csrf: bool,
) -> (StatusCode, Value) {
    let mut headers = vec![
        ("cookie", session.cookie.as_str()),
        ("content-type", "application/json"),
    ];
    if csrf {
        headers.push(("x-csrf-token", session.csrf.as_str()));
    }
    let body = body.map_or_else(Vec::new, |b| serde_json::to_vec(&b).unwrap());
    send(s, method, uri, None, body, &headers).await
}

async fn dash_raw(s: &Server, session: &Session, uri: &str) -> (StatusCode, Vec<u8>) {
    let (code, _, body) =
        send_raw(s, "GET", uri, None, vec![], &[("cookie", &session.cookie)]).await;
    (code, body)
}

/// Worker w1 (grid g1) records, 20 days ago, three shops with hazards, issues a notice on one
/// (deadline passed: overdue now); w2 records one shop in g2. Returns w1's phone.
async fn district(s: &Server) -> Store {
    let then = now_ms() - 20 * DAY;
    let mut p = phone("phone-w1", "w1", then);
    p.set_notice_numbering("幸福", "A1").unwrap();
    for (n, codes) in [&["FE-03", "EX-05"][..], &["EB-02"], &["GA-01"]]
        .iter()
        .enumerate()
    {
        let mut f = PremisesFields::new(
            format!("幸福{n}号店"),
            format!("幸福路{n}号"),
            PremisesKind::Catering,
        );
        f.grid_id = Some("g1".into());
        f.gas_use = xuncha_core::model::GasUse::BottledLpg;
        f.location = Some(LatLon {
            lat: 31.23 + n as f64 * 0.001,
            lon: 121.47,
        });
        let premises = p.add_premises(f).unwrap();
        let visit = sample_visit(p.catalog(), &premises, china_date(then), codes);
        let inspection = p.record_inspection(visit).unwrap();
        if n == 0 {
            let deadline = china_date(then).checked_add_days(Days::new(5)).unwrap();
            let h = &inspection.findings[0].hazard_id;
            p.record_hazard_event(
                h,
                HazardAction::NoticeIssued {
                    deadline,
                    notice_no: None,
                },
                None,
                None,
            )
            .unwrap();
        }
    }
    let (code, ack) = push(s, &s.w1, &p.pending_ops(1000).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    let mut other = phone("phone-w2", "w2", then);
    let mut f = PremisesFields::new("别处的店", "和平街1号", PremisesKind::Retail);
    f.grid_id = Some("g2".into());
    f.location = Some(LatLon {
        lat: 31.25,
        lon: 121.49,
    });
    let premises = other.add_premises(f).unwrap();
    other
        .record_inspection(sample_visit(
            other.catalog(),
            &premises,
            china_date(then),
            &["EX-02"],
        ))
        .unwrap();
    assert_eq!(
        push(s, &s.w2, &other.pending_ops(1000).unwrap()).await.0,
        StatusCode::OK
    );
    p
}

#[tokio::test]
async fn sessions_are_for_supervisors_and_changes_need_the_csrf_token() {
    let s = server();
    let p = district(&s).await;
    let Err((code, err)) = login(&s, "w1", "password1").await else {
        panic!("a worker signed in to the dashboard");
    };
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("dashboard_forbidden"))
    );
    let Err((code, _)) = login(&s, "sup1", "wrong").await else {
        panic!("a wrong password worked");
    };
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&s, "GET", "/dash/api/session", None, vec![], &[])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let sup = login(&s, "sup1", "password1").await.unwrap();
    let (code, me) = dash(&s, &sup, "GET", "/dash/api/session", None, false).await;
    assert_eq!(code, StatusCode::OK, "{me}");
    assert_eq!(
        (me["user"].as_str(), me["csrf"].as_str()),
        (Some("sup1"), Some(sup.csrf.as_str()))
    );
    let grids: Vec<&str> = me["grids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(grids, ["g1"]);

    let hazard = p.open_hazards().unwrap()[0].id.clone();
    let action = json!({ "action": "escalated", "level": 1, "note": "逾期未改" });
    let uri = format!("/dash/api/hazards/{hazard}/actions");
    // Without the CSRF token (a forged cross-site form would have the cookie but not it).
    let (code, err) = dash(&s, &sup, "POST", &uri, Some(action.clone()), false).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf"))
    );
    let (code, done) = dash(&s, &sup, "POST", &uri, Some(action), true).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert_eq!(done["hazard"]["escalation"], 1);

    // Signed out: the cookie is dead.
    assert_eq!(
        dash(&s, &sup, "POST", "/dash/logout", None, true).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        dash(&s, &sup, "GET", "/dash/api/session", None, false)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_map_review_and_work_lists_cover_the_supervisors_area_only() {
    let s = server();
    let mut p = district(&s).await;
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let admin = login(&s, "boss", "password1").await.unwrap();
    let bbox = "bbox=121.0,31.0,122.0,32.0";

    // Map: g1's four hazards as markers; the admin also sees g2's.
    let (code, map) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/map?{bbox}"),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{map}");
    assert_eq!(map["total"], 4);
    assert_eq!(map["markers"].as_array().unwrap().len(), 4);
    assert_eq!(
        dash(
            &s,
            &admin,
            "GET",
            &format!("/dash/api/map?{bbox}"),
            None,
            false
        )
        .await
        .1["total"],
        5
    );
    // Filters narrow it; a box elsewhere is empty; bad filters are refused.
    let count = |q: &str| {
        let q = q.to_owned();
        let (s, sup) = (&s, &sup);
        async move {
            dash(
                s,
                sup,
                "GET",
                &format!("/dash/api/map?{bbox}&{q}"),
                None,
                false,
            )
            .await
            .1["total"]
                .clone()
        }
    };
    assert_eq!(count("kinds=exits").await, 1);
    assert_eq!(count("kinds=fire_extinguisher,e_bike").await, 2);
    assert_eq!(count("overdue=1").await, 1);
    assert_eq!(count("statuses=closed").await, 0);
    assert_eq!(count("statuses=rectifying").await, 1);
    assert_eq!(count("grids=g2").await, 0, "not the supervisor's grid");
    let (code, err) = dash(&s, &sup, "GET", "/dash/api/map?kinds=cats", None, false).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_query"))
    );
    let (_, far) = dash(
        &s,
        &sup,
        "GET",
        "/dash/api/map?bbox=100,20,101,21",
        None,
        false,
    )
    .await;
    assert_eq!(far["total"], 0);

    // Review: the overdue one, with its answers, photo slots and history.
    let (_, overdue) = dash(&s, &sup, "GET", "/dash/api/overdue", None, false).await;
    assert_eq!(overdue["total"], 1, "{overdue}");
    let item = &overdue["items"][0];
    assert!(item["overdue_days"].as_i64().unwrap() >= 14, "{item}");
    assert_eq!(item["premises"], "幸福0号店");
    let id = item["id"].as_str().unwrap().to_owned();
    let (code, d) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/hazards/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{d}");
    assert_eq!(d["hazard"]["status"], "rectifying");
    assert_eq!(d["item"]["label"]["zh"], "压力表指针在绿区");
    assert_eq!(
        d["photos"]["before"][0]["uploaded"], false,
        "a photo slot, not yet uploaded"
    );
    assert_eq!(d["history"].as_array().unwrap().len(), 2, "found, notice");
    assert!(
        d["answers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "FE-03" && a["hazard"] == true)
    );
    // Outside the area: refused.
    let (_, admin_map) = dash(
        &s,
        &admin,
        "GET",
        &format!("/dash/api/map?{bbox}&grids=g2"),
        None,
        false,
    )
    .await;
    let g2_hazard = admin_map["markers"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        dash(
            &s,
            &sup,
            "GET",
            &format!("/dash/api/hazards/{g2_hazard}"),
            None,
            false
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Actions are ops: the phone sees the new deadline after it pulls.
    let new_deadline: chrono::NaiveDate = working_day_after(10).parse().unwrap();
    let uri = format!("/dash/api/hazards/{id}/actions");
    let (code, done) = dash(&s, &sup, "POST", &uri, Some(json!({ "action": "deadline_extended", "deadline": new_deadline, "note": "业主申请延期" })), true).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    let (code, err) = dash(
        &s,
        &sup,
        "POST",
        &uri,
        Some(json!({ "action": "recheck_passed" })),
        true,
    )
    .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("not_a_review_action")
        )
    );
    let (code, err) = dash(
        &s,
        &sup,
        "POST",
        &uri,
        Some(json!({ "action": "reassigned", "to": "nobody", "note": "换人跟进" })),
        true,
    )
    .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_user"))
    );
    let (_, page) = pull(&s, &s.w1, 0).await;
    let ops: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    let from_sup: Vec<&Op> = ops.iter().filter(|o| o.author.as_str() == "sup1").collect();
    assert_eq!(from_sup.len(), 1);
    p.apply_ops(&ops).unwrap();
    let h = p
        .hazard(&xuncha_core::model::HazardId::from(id.as_str()))
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.status, h.deadline),
        (HazardStatus::Rectifying, Some(new_deadline))
    );
    // No longer overdue on the map either.
    assert_eq!(count("overdue=1").await, 0);

    // Work lists and figures.
    let (code, due) = dash(&s, &sup, "GET", "/dash/api/due-week", None, false).await;
    assert_eq!(code, StatusCode::OK, "{due}");
    assert!(
        due["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["grid"] == "g1"),
        "{due}"
    );
    let (code, fig) = dash(&s, &sup, "GET", "/dash/api/figures", None, false).await;
    assert_eq!(code, StatusCode::OK, "{fig}");
    let g1 = fig["by_grid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "g1")
        .unwrap();
    assert_eq!(
        (g1["inspections_done"].as_u64(), g1["found"].as_u64()),
        (Some(3), Some(4)),
        "{g1}"
    );
    assert_eq!(g1["open_by_kind"]["fire_extinguisher"], 1);
    assert_eq!(
        fig["by_grid"].as_array().unwrap().len(),
        1,
        "only the supervisor's grid"
    );
    assert_eq!(fig["by_community"][0]["name"], "c1");
    // Week by week, in the supervisor's area: the four found three weeks ago; the one whose
    // notice's deadline passed was extended above, so it counts by its new deadline: never
    // overdue.
    let weekly = fig["weekly"].as_array().unwrap();
    assert_eq!(weekly.len(), 12);
    let found: u64 = weekly.iter().map(|w| w["found"].as_u64().unwrap()).sum();
    assert_eq!(found, 4, "{weekly:?}");
    assert!(weekly.iter().all(|w| w["overdue"] == 0), "{weekly:?}");
    assert_eq!(g1["closed_in_period"], 0);
    assert!(g1["on_time_rate"].is_null());

    // The printable notice.
    let (code, html) = dash_raw(&s, &sup, &format!("/dash/notice/{id}")).await;
    let html = String::from_utf8(html).unwrap();
    assert_eq!(code, StatusCode::OK);
    assert!(
        html.contains("隐患整改通知书")
            && html.contains("幸福0号店")
            && html.contains("压力表指针在绿区"),
        "{html}"
    );
    assert!(html.contains(&h.notice_no.clone().unwrap()));
}

#[tokio::test]
async fn exports_parse_and_follow_the_filters() {
    let s = server();
    district(&s).await;
    let sup = login(&s, "sup1", "password1").await.unwrap();

    rename(&s, "w1", "王小明");
    let (code, headers, csv) = send_raw(
        &s,
        "GET",
        "/dash/api/export/hazards.csv",
        None,
        vec![],
        &[("cookie", &sup.cookie)],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    // The file names its area and day.
    let today = china_date(now_ms()).to_string();
    assert_eq!(
        headers["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"hazards-sup1-{today}.csv\"")
    );
    let text = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    // One language per file, the page's: Chinese here.
    assert_eq!(&reader.headers().unwrap()[1], "场所");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().any(|r| &r[8] == "整改中" && &r[5] == "FE-03"));
    // Names, not ids; positions to 6 decimals.
    assert!(
        rows.iter().all(|r| &r[3] == "网格g1" && &r[13] == "王小明"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| &r[14] == "31.231"), "{rows:?}");
    let (_, english) = dash_raw(&s, &sup, "/dash/api/export/hazards.csv?lang=en").await;
    let english = String::from_utf8(english).unwrap();
    let mut reader = csv::Reader::from_reader(english.trim_start_matches('\u{feff}').as_bytes());
    assert_eq!(&reader.headers().unwrap()[1], "Premises");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.iter().any(|r| &r[8] == "rectifying"), "{rows:?}");
    assert!(!english.contains("整改中"));

    let (_, geo) = dash_raw(&s, &sup, "/dash/api/export/hazards.geojson?kinds=exits").await;
    let geo: Value = serde_json::from_slice(&geo).unwrap();
    assert_eq!(geo["type"], "FeatureCollection");
    assert_eq!(geo["features"].as_array().unwrap().len(), 1);
    assert_eq!(geo["features"][0]["geometry"]["type"], "Point");

    let (code, xlsx) = dash_raw(&s, &sup, "/dash/api/export/hazards.xlsx?overdue=1").await;
    assert_eq!(code, StatusCode::OK);
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(Cursor::new(xlsx)).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(sheet.rows().count(), 2, "header and the one overdue hazard");
    assert_eq!(sheet.get((0, 0)).unwrap().to_string(), "隐患编号");

    let (_, inspections) = dash_raw(&s, &sup, "/dash/api/export/inspections.csv").await;
    let text = String::from_utf8(inspections).unwrap();
    assert_eq!(text.lines().count(), 1 + 3, "three inspections in g1");
    let (code, _) = dash_raw(&s, &sup, "/dash/api/export/hazards.pdf").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn premises_import_from_csv_and_xlsx_checks_every_row_first() {
    let s = server();
    let admin = login(&s, "boss", "password1").await.unwrap();
    let import = |body: Vec<u8>, content_type: &'static str| {
        let (s, admin) = (&s, &admin);
        async move {
            send(
                s,
                "POST",
                "/v1/admin/premises/import",
                None,
                body,
                &[
                    ("cookie", &admin.cookie),
                    ("x-csrf-token", &admin.csrf),
                    ("content-type", content_type),
                ],
            )
            .await
        }
    };
    let csv = "名称,地址,类型,网格,纬度,经度,燃气,住人\n老王面馆,幸福路1号,餐饮,g1,31.23,121.47,瓶装,否\n新华旅馆,新华路8号,lodging,g2,,,无,是\n";
    let (code, answer) = import(csv.as_bytes().to_vec(), "text/csv").await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["imported"], 2);
    let bad = "名称,地址,类型\n好店,幸福路2号,餐饮\n坏店,幸福路3号,宇宙飞船\n";
    let (code, err) = import(bad.as_bytes().to_vec(), "text/csv").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["error"]["message_en"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{err}"
    );
    let (code, _) = import(b"no,header,here\n1,2,3\n".to_vec(), "text/csv").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);

    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    for (c, h) in ["name", "address", "kind", "grid"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
        ws.write_string(1, c as u16, ["XLSX 小店", "人民路5号", "retail", "g1"][c])
            .unwrap();
    }
    let (code, answer) = import(
        book.save_to_buffer().unwrap(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["imported"], 1);
    let names: Vec<String> = s
        .state
        .read(|c, _| {
            let mut stmt = c.prepare("SELECT json_extract(value, '$') FROM premises_fields WHERE field = 'name' ORDER BY 1")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
        .unwrap();
    assert_eq!(
        names,
        ["XLSX 小店", "新华旅馆", "老王面馆"],
        "nothing of the bad file"
    );
}

#[tokio::test]
async fn a_gbk_file_from_excel_imports_and_importing_it_again_updates_instead_of_doubling() {
    let s = server();
    let admin = login(&s, "boss", "password1").await.unwrap();
    let import = |body: Vec<u8>| {
        let (s, admin) = (&s, &admin);
        async move {
            send(
                s,
                "POST",
                "/v1/admin/premises/import",
                None,
                body,
                &[
                    ("cookie", &admin.cookie),
                    ("x-csrf-token", &admin.csrf),
                    ("content-type", "text/csv"),
                ],
            )
            .await
        }
    };
    let gbk = |text: &str| encoding_rs::GBK.encode(text).0.into_owned();
    let first = "名称,地址,类型,网格,燃气,统一社会信用代码\n老王面馆,幸福路1号,餐饮,g1,瓶装液化气,91310000MA1FL0001R\n李记小卖部,幸福路2号,零售,g1,无,\n";
    let bytes = gbk(first);
    assert!(std::str::from_utf8(&bytes).is_err(), "really GBK");
    let (code, answer) = import(bytes).await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert_eq!(
        (answer["added"].as_u64(), answer["updated"].as_u64()),
        (Some(2), Some(0))
    );

    // The same shops again, one renamed (matched by its credit code), one as it was: updated
    // and unchanged, nothing doubled.
    let again = "名称,地址,类型,网格,燃气,统一社会信用代码\n老王面馆（新店名）,幸福路1号,餐饮,g1,管道天然气,91310000MA1FL0001R\n李记小卖部,幸福路2号,零售,g1,无,\n";
    let (code, answer) = import(gbk(again)).await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert_eq!(
        (
            answer["added"].as_u64(),
            answer["updated"].as_u64(),
            answer["unchanged"].as_u64()
        ),
        (Some(0), Some(1), Some(1)),
        "{answer}"
    );
    let names: Vec<String> = s
        .state
        .read(|c, _| {
            let mut stmt = c.prepare("SELECT json_extract(value, '$') FROM premises_fields WHERE field = 'name' ORDER BY 1")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
        .unwrap();
    assert_eq!(names, ["李记小卖部", "老王面馆（新店名）"]);

    // Mistakes: wholly in each language, with the values accepted; a grid that does not exist.
    let (code, err) = import(gbk("名称,地址,类型,燃气\n好店,幸福路3号,餐饮,是\n")).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (zh, en) = (
        err["error"]["message"].as_str().unwrap(),
        err["error"]["message_en"].as_str().unwrap(),
    );
    assert!(
        zh.contains("第 2 行") && zh.contains("燃气") && zh.contains("瓶装液化气"),
        "{zh}"
    );
    assert!(
        !zh.contains("line") && !zh.contains("not understood"),
        "{zh}"
    );
    assert!(en.contains("line 2") && en.contains("accepted"), "{en}");
    let (code, err) = import(
        "名称,地址,类型,网格\n好店,幸福路3号,餐饮,g9\n"
            .as_bytes()
            .to_vec(),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("网格“g9”不存在"),
        "{err}"
    );

    // The template lists every column and the values accepted.
    let (code, _, body) = send_raw(
        &s,
        "GET",
        "/v1/admin/premises/template.csv",
        None,
        vec![],
        &[("cookie", &admin.cookie)],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("统一社会信用代码") && text.contains("瓶装液化气"),
        "{text}"
    );
}

#[tokio::test]
async fn dashboard_pages_answer_while_the_writer_is_busy() {
    let s = Arc::new(server());
    district(&s).await;
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let (_, overdue) = dash(&s, &sup, "GET", "/dash/api/overdue", None, false).await;
    let id = overdue["items"][0]["id"].as_str().unwrap().to_owned();
    // A long write (a group of large pushes) holds the writer until the pages have been
    // answered, or gives up after 10 s.
    let hold = hold_writer(&s);
    for uri in [
        format!("/dash/api/hazards/{id}"),
        format!("/dash/notice/{id}"),
        "/dash/api/due-week".to_owned(),
        "/dash/api/figures".to_owned(),
        "/dash/api/map?south=31&west=121&north=32&east=122&zoom=14".to_owned(),
    ] {
        let (code, body) = dash_raw(&s, &sup, &uri).await;
        assert_eq!(
            code,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert!(
        hold.release(),
        "the pages were answered while the writer was held"
    );
}

#[tokio::test]
async fn premises_qr_codes_read_back_and_print_a_grids_sheet() {
    let s = server();
    let p = district(&s).await;
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let shop = p.list_premises(false).unwrap().remove(0);
    let (code, png) = dash_raw(&s, &sup, &format!("/dash/premises/{}/qr.png", shop.id)).await;
    assert_eq!(code, StatusCode::OK);
    // Read it back with a QR decoder, as the app's scanner would.
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        img.width() as usize,
        img.height() as usize,
        |x, y| img.get_pixel(x as u32, y as u32).0[0],
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, text) = grids[0].decode().unwrap();
    assert_eq!(
        xuncha_core::model::PremisesId::from_qr_text(&text),
        Some(shop.id.clone())
    );

    // The sheet of grid g1 has its three shops; g2's shop and sheet are not sup1's.
    let (code, sheet) = dash_raw(&s, &sup, "/dash/qr?grid=g1").await;
    assert_eq!(code, StatusCode::OK);
    let sheet = String::from_utf8(sheet).unwrap();
    for n in 0..3 {
        assert!(sheet.contains(&format!("幸福{n}号店")), "{sheet}");
    }
    assert_eq!(sheet.matches("/qr.png").count(), 3);
    assert!(!sheet.contains("别处的店"));
    assert_eq!(
        dash_raw(&s, &sup, "/dash/qr?grid=g2").await.0,
        StatusCode::FORBIDDEN
    );
    let elsewhere = s
        .state
        .read_store(|st, _| Ok(st.list_premises(false)?))
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.fields.name == "别处的店")
        .unwrap();
    let uri = format!("/dash/premises/{}/qr.png", elsewhere.id);
    assert_eq!(dash_raw(&s, &sup, &uri).await.0, StatusCode::FORBIDDEN);
    let (code, _, _) = send_raw(&s, "GET", &uri, None, vec![], &[]).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a session is needed");
}

#[tokio::test]
async fn every_html_page_carries_the_policy_and_sign_in_takes_json_from_this_site_only() {
    let s = server();
    let w1 = district(&s).await;
    let hazard = w1
        .open_hazards()
        .unwrap()
        .into_iter()
        .find(|h| h.notice_no.is_some())
        .unwrap()
        .id;
    let sup = login(&s, "sup1", "password1").await.unwrap();
    for uri in [
        "/".to_owned(),
        "/status".to_owned(),
        "/dash/qr?grid=g1".to_owned(),
        format!("/dash/notice/{hazard}"),
    ] {
        // The status page is an admin's on the public address.
        let token = (uri == "/status").then_some(s.admin.as_str());
        let (code, headers, body) =
            send_raw(&s, "GET", &uri, token, vec![], &[("cookie", &sup.cookie)]).await;
        assert_eq!(code, StatusCode::OK, "{uri}");
        let csp = headers
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(csp.contains("default-src 'self'"), "{uri}: {csp:?}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{uri}");
        // No inline script, which the policy would block.
        let html = String::from_utf8(body).unwrap();
        assert!(!html.contains("onclick="), "{uri}");
    }

    // Login CSRF: a foreign page can send text/plain or a form without asking; refused.
    let body = serde_json::to_vec(&json!({ "user": "sup1", "password": "password1" })).unwrap();
    let attempt = |content_type: &'static str, origin: Option<&'static str>| {
        let (s, body) = (&s, body.clone());
        async move {
            let mut headers = vec![("content-type", content_type), ("host", "xuncha.example")];
            if let Some(o) = origin {
                headers.push(("origin", o));
            }
            send_raw(s, "POST", "/dash/login", None, body, &headers)
                .await
                .0
        }
    };
    assert_eq!(
        attempt("text/plain", None).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        attempt("application/json", Some("https://evil.example")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        attempt("application/json", Some("https://xuncha.example")).await,
        StatusCode::OK
    );
    assert_eq!(attempt("application/json", None).await, StatusCode::OK);
}

#[tokio::test]
async fn review_actions_that_are_wrong_or_change_nothing_are_refused() {
    let s = server();
    let w1 = district(&s).await;
    let hazard = w1
        .open_hazards()
        .unwrap()
        .into_iter()
        .find(|h| h.deadline.is_some())
        .unwrap();
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let uri = format!("/dash/api/hazards/{}/actions", hazard.id);
    // Each with its reason (a reason alone is checked below).
    let act = |mut body: Value| {
        body["note"] = json!("检查后决定");
        let (s, sup, uri) = (&s, &sup, uri.clone());
        async move { dash(s, sup, "POST", &uri, Some(body), true).await }
    };
    let refused = |(code, body): (StatusCode, Value)| {
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        body["error"]["message"].as_str().unwrap().to_owned()
    };
    // A deadline in the past (it would print on the notice and be overdue at once).
    let msg =
        refused(act(json!({ "action": "deadline_extended", "deadline": "2020-01-01" })).await);
    assert!(msg.contains("晚于今天"), "{msg}");
    // The deadline it already has.
    let same = hazard.deadline.unwrap().to_string();
    refused(act(json!({ "action": "deadline_extended", "deadline": same })).await);
    // A worker of another grid, whose phone never receives the shop.
    let msg = refused(act(json!({ "action": "reassigned", "to": "w2" })).await);
    assert!(msg.contains("不负责"), "{msg}");
    // The assignee it already has.
    refused(act(json!({ "action": "reassigned", "to": hazard.assignee.as_str() })).await);
    // Escalating twice to the same level.
    let (code, body) = act(json!({ "action": "escalated", "level": 2 })).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    refused(act(json!({ "action": "escalated", "level": 2 })).await);
    refused(act(json!({ "action": "escalated", "level": 1 })).await);
    // A Sunday or a holiday: refused, naming the next working day.
    let calendar = xuncha_core::calendar::WorkCalendar::builtin();
    let mut sunday = china_date(now_ms()) + chrono::Days::new(10);
    while sunday.weekday() != chrono::Weekday::Sun {
        sunday = sunday.succ_opt().unwrap();
    }
    let msg = refused(act(json!({ "action": "deadline_extended", "deadline": sunday })).await);
    assert!(
        msg.contains("不是工作日") && msg.contains(&calendar.on_or_after(sunday).to_string()),
        "{msg}"
    );
    // The detail offers working days; one of them goes through.
    let (_, detail) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/hazards/{}", hazard.id),
        None,
        false,
    )
    .await;
    let choices = detail["deadline_choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4, "{detail}");
    for c in choices {
        let day: chrono::NaiveDate = c["date"].as_str().unwrap().parse().unwrap();
        assert!(
            calendar.is_working_day(day) && day > china_date(now_ms()),
            "{c}"
        );
    }
    let later = choices[3]["date"].clone();
    let (code, body) = act(json!({ "action": "deadline_extended", "deadline": later })).await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn review_actions_take_a_reason_name_people_and_offer_who_can_follow_up() {
    let s = server();
    let w1 = district(&s).await;
    rename(&s, "w1", "王小明");
    let hazards = w1.open_hazards().unwrap();
    let issued = hazards.iter().find(|h| h.notice_no.is_some()).unwrap();
    let unissued = hazards.iter().find(|h| h.notice_no.is_none()).unwrap();
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let uri = format!("/dash/api/hazards/{}/actions", issued.id);
    let later = working_day_after(30);

    // No reason, or only spaces: refused, nothing written.
    for note in [json!(null), json!("   ")] {
        let body = json!({ "action": "deadline_extended", "deadline": later, "note": note });
        let (code, err) = dash(&s, &sup, "POST", &uri, Some(body), true).await;
        assert_eq!(
            (code, err["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("reason_required")),
            "{err}"
        );
    }
    let body =
        json!({ "action": "deadline_extended", "deadline": later, "note": " 业主申请，材料在途 " });
    let (code, done) = dash(&s, &sup, "POST", &uri, Some(body), true).await;
    assert_eq!(code, StatusCode::OK, "{done}");

    // The detail names people and reads answers as words; the reason is in the history.
    let (code, detail) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/hazards/{}", issued.id),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{detail}");
    assert_eq!(detail["names"]["w1"], "王小明", "{}", detail["names"]);
    assert_eq!(detail["grid_name"], "网格g1");
    assert_eq!(detail["names"]["sup1"], "sup1");
    let last = detail["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["by"].as_str(), last["note"].as_str()),
        (Some("sup1"), Some("业主申请，材料在途"))
    );
    let texts: Vec<&str> = detail["answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["value_text"]["zh"].as_str())
        .collect();
    assert!(
        !texts.is_empty() && texts.iter().any(|t| *t == "是" || *t == "否"),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains('_')),
        "no raw option values: {texts:?}"
    );

    // Who could take it over: the grid's worker and its supervisor, workers first; not w2.
    let (code, people) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/hazards/{}/assignees", issued.id),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{people}");
    let ids: Vec<(&str, &str)> = people["assignees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    assert_eq!(ids, [("w1", "王小明"), ("sup1", "sup1")]);
    assert_eq!(people["current"], "w1");

    // The notice prints once issued, with the inspector's name; not before.
    let (code, html) = dash_raw(&s, &sup, &format!("/dash/notice/{}", issued.id)).await;
    assert_eq!(code, StatusCode::OK);
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("王小明") && !html.contains("检查人员：w1"),
        "{html}"
    );
    // An official document: issued by the shop's sub-district and community (no product
    // name, no "我"), with a counterfoil to keep and a receipt for the shop to sign.
    assert!(html.contains("s1c1（盖章）"), "{html}");
    for part in ["存　根", "回　执", "隐患整改通知书"] {
        assert!(html.contains(part), "{part}");
    }
    assert!(!html.contains("巡查") && !html.contains('我'), "{html}");
    let (code, _) = dash_raw(&s, &sup, &format!("/dash/notice/{}", unissued.id)).await;
    assert_eq!(code, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_chase_from_the_dashboard_reaches_the_assignees_phone_and_workers_cannot_chase() {
    let s = server();
    let mut w1 = district(&s).await;
    let hazard = w1
        .open_hazards()
        .unwrap()
        .into_iter()
        .find(|h| h.notice_no.is_some())
        .unwrap();
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let uri = format!("/dash/api/hazards/{}/actions", hazard.id);
    let body = json!({ "action": "urged", "note": "已逾期，请本周内复查" });
    let (code, done) = dash(&s, &sup, "POST", &uri, Some(body), true).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert_eq!(
        done["hazard"]["status"],
        json!(hazard.status),
        "a chase changes nothing"
    );

    // The worker's phone pulls it and shows it in the hazard's history.
    let (_, page) = pull(&s, &s.w1, 0).await;
    let ops: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    w1.apply_ops(&ops).unwrap();
    let last = w1.hazard_history(&hazard.id).unwrap().pop().unwrap();
    assert_eq!(
        (
            last.action.as_ref().map(HazardAction::name),
            last.by.as_str(),
            last.note.as_deref()
        ),
        (Some("urged"), "sup1", Some("已逾期，请本周内复查"))
    );

    // A worker's phone cannot chase (the server refuses the op).
    w1.record_hazard_event(
        &hazard.id,
        HazardAction::Urged,
        None,
        Some("自己催自己".into()),
    )
    .unwrap();
    let pending = w1.pending_ops(1000).unwrap();
    let (code, answer) = push(&s, &s.w1, &pending).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["applied"], 0, "{answer}");
    assert_eq!(
        answer["set_aside"][0]["code"], "supervisor_only",
        "{answer}"
    );
}

#[tokio::test]
async fn a_shops_file_holds_its_visits_hazards_and_code_and_search_finds_it_in_the_area() {
    let s = server();
    district(&s).await;
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let search = |q: &str| {
        let uri = format!("/dash/api/premises?q={}", urlencode(q));
        let (s, sup) = (&s, &sup);
        async move {
            let (code, found) = dash(s, sup, "GET", &uri, None, false).await;
            assert_eq!(code, StatusCode::OK, "{found}");
            found["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("幸福").await,
        ["幸福0号店", "幸福1号店", "幸福2号店"]
    );
    assert_eq!(search("幸福路1号").await, ["幸福1号店"], "by address too");
    assert!(
        search("别处").await.is_empty(),
        "another grid's shop is not listed"
    );
    assert!(search("%").await.is_empty(), "the text is taken literally");

    let (_, found) = dash(
        &s,
        &sup,
        "GET",
        "/dash/api/premises?q=%E5%B9%B8%E7%A6%8F0",
        None,
        false,
    )
    .await;
    let id = found["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(found["items"][0]["open_hazards"], 2);
    let (code, file) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/premises/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{file}");
    assert_eq!(file["premises"]["name"], "幸福0号店");
    assert_eq!(file["grid_name"], "网格g1");
    assert_eq!(file["visits"].as_array().unwrap().len(), 1);
    let answers = file["visits"][0]["answers"].as_array().unwrap();
    assert!(
        answers.iter().all(|a| a["value_text"]["zh"].is_string()),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| a["hazard"] == true).count(),
        2,
        "FE-03 and EX-05"
    );
    let hazards = file["hazards"].as_array().unwrap();
    assert_eq!(hazards.len(), 2);
    assert!(
        hazards
            .iter()
            .all(|h| h["history"].as_array().is_some_and(|e| !e.is_empty()))
    );
    assert_eq!(file["names"]["w1"], "w1");
    let qr = file["qr"].as_str().unwrap();
    let (code, png) = dash_raw(&s, &sup, qr).await;
    assert_eq!(code, StatusCode::OK);
    assert!(png.starts_with(b"\x89PNG"));

    // Another area's shop: refused.
    let admin = login(&s, "boss", "password1").await.unwrap();
    let (_, theirs) = dash(
        &s,
        &admin,
        "GET",
        "/dash/api/premises?q=%E5%88%AB%E5%A4%84",
        None,
        false,
    )
    .await;
    let other = theirs["items"][0]["id"].as_str().unwrap().to_owned();
    let (code, _) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/premises/{other}"),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn what_each_worker_did_in_a_period_for_the_supervisors_area() {
    let s = server();
    district(&s).await;
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let today = china_date(now_ms());
    let month = format!("from={}&to={today}", today - Days::new(30));
    let (code, list) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/workers?{month}"),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{list}");
    // Only the workers of the supervisor's grid.
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], "w1");
    let f = &items[0]["figures"];
    assert_eq!(
        (f["visits"].as_u64(), f["hazards_found"].as_u64()),
        (Some(3), Some(4)),
        "{f}"
    );
    assert_eq!(
        (f["actions"].as_u64(), f["rechecks"].as_u64()),
        (Some(1), Some(0)),
        "{f}"
    );
    // The default period is the last seven days: the visits of 20 days ago are not in it.
    let (_, week) = dash(&s, &sup, "GET", "/dash/api/workers", None, false).await;
    assert_eq!(week["items"][0]["figures"]["visits"], 0, "{week}");

    let (code, w1) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/workers/w1?{month}"),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{w1}");
    let shops: Vec<&str> = w1["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["premises"].as_str().unwrap())
        .collect();
    assert_eq!(shops.len(), 3);
    assert!(shops.contains(&"幸福0号店"), "{shops:?}");
    let actions = w1["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["action"]["action"], "notice_issued");
    // Another grid's worker, or a bad period: refused.
    let (code, _) = dash(&s, &sup, "GET", "/dash/api/workers/w2", None, false).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = dash(
        &s,
        &sup,
        "GET",
        "/dash/api/workers?from=2026-12-01&to=2026-11-01",
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Gives a user a display name other than their id.
fn rename(s: &Server, user: &str, name: &str) {
    let (user, name) = (user.to_owned(), name.to_owned());
    common::off_runtime(|| {
        s.state.db().tables(move |t| {
            let mut profile = t.profile(&user)?.unwrap();
            profile.display_name = name;
            t.set_profile(&user, &profile)
        })
    })
    .unwrap();
}

#[tokio::test]
async fn a_campaign_reaches_its_grids_phones_and_its_progress_follows_their_visits() {
    let s = server();
    district(&s).await;
    // w1's phone of today (the district was recorded 20 days ago).
    let mut w1 = phone("phone-w1b", "w1", now_ms());
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let today = china_date(now_ms());
    let deadline = today.checked_add_days(Days::new(14)).unwrap();
    let ask = |grids: Value, deadline: chrono::NaiveDate| {
        json!({
            "name": "冬季电动车充电专项检查", "checklists": ["e_bike"],
            "premises_kinds": ["catering"], "grids": grids,
            "starts_on": today.to_string(), "deadline": deadline.to_string(),
        })
    };
    // Wrong requests create nothing.
    for (body, code, what) in [
        (
            ask(json!(["g2"]), deadline),
            StatusCode::FORBIDDEN,
            "out_of_scope",
        ),
        (
            ask(json!([]), deadline),
            StatusCode::UNPROCESSABLE_ENTITY,
            "grids_required",
        ),
        (
            ask(json!(["g1"]), today.checked_sub_days(Days::new(1)).unwrap()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "deadline_past",
        ),
        (
            json!({ "name": " ", "checklists": ["e_bike"], "grids": ["g1"],
                    "starts_on": today.to_string(), "deadline": deadline.to_string() }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_op",
        ),
    ] {
        let (got, answer) = dash(&s, &sup, "POST", "/dash/api/campaigns", Some(body), true).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (code, Some(what)),
            "{answer}"
        );
    }
    let (_, listed) = dash(&s, &sup, "GET", "/dash/api/campaigns", None, false).await;
    assert_eq!(listed["campaigns"], json!([]));

    let (code, made) = dash(
        &s,
        &sup,
        "POST",
        "/dash/api/campaigns",
        Some(ask(json!(["g1"]), deadline)),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{made}");
    let id = made["campaign"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made["campaign"]["totals"]["due"], 3, "{made}");

    // w1's phone receives it and lists its three shops; w2's phone (grid g2) does not.
    let (_, page) = pull(&s, &s.w1b, 0).await;
    let ops: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    w1.apply_ops(&ops).unwrap();
    let on_phone: Vec<_> = w1
        .due(now_ms())
        .unwrap()
        .into_iter()
        .filter(|i| i.campaign.is_some())
        .collect();
    assert_eq!(on_phone.len(), 3, "{on_phone:?}");
    let (_, page) = pull(&s, &s.w2, 0).await;
    assert!(
        page["ops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["type"] != "campaign"),
        "{page}"
    );

    // w1 visits one shop with the e-bike checklist and finds a hazard.
    let shop = w1.premises(&on_phone[0].premises_id).unwrap().unwrap();
    w1.record_inspection(sample_visit(w1.catalog(), &shop, today, &["EB-04"]))
        .unwrap();
    let (code, ack) = push(&s, &s.w1b, &w1.pending_ops(1000).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    let (code, detail) = dash(
        &s,
        &sup,
        "GET",
        &format!("/dash/api/campaigns/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{detail}");
    assert_eq!(
        detail["by_grid"],
        json!([{ "grid": "g1", "grid_name": detail["by_grid"][0]["grid_name"],
                 "due": 3, "done": 1, "late": 0, "hazards": 1 }])
    );
    assert_eq!(detail["by_worker"][0]["user"], "w1");
    assert_eq!(detail["by_worker"][0]["done"], 1);
    let done: Vec<&Value> = detail["premises"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["done_on"].is_null())
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["name"], json!(shop.fields.name));

    // The export lists every shop, in the page's language.
    let (code, csv) = dash_raw(&s, &sup, &format!("/dash/api/campaigns/{id}/export.csv")).await;
    assert_eq!(code, StatusCode::OK);
    let text = String::from_utf8(csv).unwrap();
    assert!(text.contains("已完成") && text.contains("未完成"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    let (_, csv) = dash_raw(
        &s,
        &sup,
        &format!("/dash/api/campaigns/{id}/export.csv?lang=en"),
    )
    .await;
    assert!(
        String::from_utf8(csv)
            .unwrap()
            .starts_with("\u{feff}Campaign,Grid")
    );

    // A worker cannot set one up, through the dashboard or from a phone.
    w1.record_campaign(xuncha_core::campaign::Campaign {
        campaign_id: xuncha_core::model::CampaignId::from("forged"),
        grid_id: "g1".into(),
        name: "假行动".into(),
        checklists: vec![xuncha_core::checklist::ChecklistKind::Exits],
        premises_kinds: vec![],
        starts_on: today,
        deadline,
        ended: false,
    })
    .unwrap();
    let (code, answer) = push(&s, &s.w1b, &w1.pending_ops(10).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["set_aside"][0]["code"], "supervisor_only",
        "{answer}"
    );

    // Ended: it leaves the phone's list at the next sync; ending twice is refused.
    let end = format!("/dash/api/campaigns/{id}/end");
    let (code, ended) = dash(&s, &sup, "POST", &end, None, true).await;
    assert_eq!(code, StatusCode::OK, "{ended}");
    assert_eq!(ended["campaign"]["ended"], true);
    let (code, again) = dash(&s, &sup, "POST", &end, None, true).await;
    assert_eq!(
        (code, again["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("campaign_ended"))
    );
    let (_, page) = pull(&s, &s.w1b, 0).await;
    let ops: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    w1.apply_ops(&ops).unwrap();
    // (The forged campaign stays on that phone until its sync client takes the refusal in.)
    assert!(w1.due(now_ms()).unwrap().iter().all(|i| {
        i.campaign
            .as_ref()
            .is_none_or(|c| c.campaign_id.as_str() != id)
    }));
}

#[tokio::test]
async fn the_overdue_list_pages_and_sorts_and_refuses_unknown_keys() {
    let s = server();
    district(&s).await;
    let sup = login(&s, "sup1", "password1").await.unwrap();
    let (code, first) = dash(&s, &sup, "GET", "/dash/api/overdue", None, false).await;
    assert_eq!(code, StatusCode::OK, "{first}");
    assert_eq!(
        (
            first["total"].as_u64(),
            first["page"].as_u64(),
            first["page_size"].as_u64()
        ),
        (Some(1), Some(0), Some(50))
    );
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let (code, sorted) = dash(
        &s,
        &sup,
        "GET",
        "/dash/api/overdue?sort=deadline&order=asc",
        None,
        false,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{sorted}");
    assert_eq!(sorted["items"], first["items"]);
    let (_, beyond) = dash(&s, &sup, "GET", "/dash/api/overdue?page=1", None, false).await;
    assert_eq!(
        (
            beyond["total"].as_u64(),
            beyond["items"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
    for bad in ["sort=name", "order=up", "page=-1"] {
        let (code, answer) = dash(
            &s,
            &sup,
            "GET",
            &format!("/dash/api/overdue?{bad}"),
            None,
            false,
        )
        .await;
        assert_eq!(
            (code, answer["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("bad_query")),
            "{bad}: {answer}"
        );
    }
}

#[tokio::test]
async fn one_notice_per_shop_and_visit_lists_its_hazards_under_one_number() {
    let s = server();
    let mut w1 = district(&s).await;
    let hazards = w1.open_hazards().unwrap();
    let issued = hazards.iter().find(|h| h.notice_no.is_some()).unwrap();
    // The other hazard of the same visit (幸福0号店: FE-03 and EX-05).
    let sibling = hazards
        .iter()
        .find(|h| h.origin.inspection_id == issued.origin.inspection_id && h.id != issued.id)
        .unwrap();
    let deadline = china_date(now_ms()) + Days::new(20);
    let second = w1
        .record_hazard_event(
            &sibling.id,
            HazardAction::NoticeIssued {
                deadline,
                notice_no: None,
            },
            None,
            None,
        )
        .unwrap();
    assert_eq!(
        second.notice_no, issued.notice_no,
        "one number for the visit"
    );
    let (code, ack) = push(&s, &s.w1, &w1.pending_ops(100).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");

    let sup = login(&s, "sup1", "password1").await.unwrap();
    let number = issued.notice_no.clone().unwrap();
    for from in [&issued.id, &sibling.id] {
        let (code, html) = dash_raw(&s, &sup, &format!("/dash/notice/{from}")).await;
        assert_eq!(code, StatusCode::OK);
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("共 2 项"), "{html}");
        assert_eq!(html.matches("<td>1</td>").count(), 1, "{html}");
        assert_eq!(html.matches("<td>2</td>").count(), 1, "{html}");
        assert!(html.contains(&number));
        // Each item with its own deadline; the receipt binds the earliest.
        assert!(html.contains("各项期限见通知书"), "{html}");
        assert!(
            html.contains(&deadline.format("%Y年%m月%d日前").to_string()),
            "{html}"
        );
    }
}
