//! The server's HTTP surface: handler tests with `oneshot`, and a real listener on loopback.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use xuncha_server::{AppState, Config, app, demo, ops_app};

const NOW: i64 = 1_795_400_000_000;

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    call(app(state.clone()), uri).await
}

/// A request to the operations listener's app.
async fn get_ops(state: &AppState, uri: &str) -> (StatusCode, String) {
    call(ops_app(state.clone()), uri).await
}

async fn call(router: axum::Router, uri: &str) -> (StatusCode, String) {
    let res = router
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn health_and_status_of_an_empty_server() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Config::default()).unwrap();
    assert_eq!(get(&state, "/healthz").await, (StatusCode::OK, "ok".into()));
    // Status and metrics: on the operations listener for anyone; on the public one, to
    // anyone not an admin, they do not exist.
    let (code, body) = get_ops(&state, "/v1/status").await;
    assert_eq!(code, StatusCode::OK);
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["premises"], 0);
    for path in ["/status", "/v1/status", "/metrics"] {
        assert_eq!(get(&state, path).await.0, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(get_ops(&state, path).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(get(&state, "/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get_ops(&state, "/v1/sync/pull").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn demo_data_is_a_living_district_on_the_status_page_in_chinese_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo::seed(dir.path(), NOW).unwrap();
    assert_eq!((demo.grids, demo.premises), (12, 600));
    // Every shop visited every two weeks over six weeks.
    assert_eq!(demo.inspections, 600 * 3, "{demo:?}");
    assert!(demo.hazards > 150, "{demo:?}");
    let state = AppState::open(dir.path(), Config::default()).unwrap();
    let (_, body) = get_ops(&state, "/v1/status").await;
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["premises"], 600);
    let open = s["open_hazards"].as_u64().unwrap();
    assert!(open > 0, "{s}");
    // Hazards in every state.
    let states: Vec<String> = state
        .db()
        .read(|c, _| {
            let mut stmt = c.prepare("SELECT DISTINCT status FROM hazards ORDER BY 1")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .unwrap();
    assert_eq!(
        states,
        [
            "awaiting_approval",
            "awaiting_recheck",
            "closed",
            "found",
            "rectifying",
            "withdrawn"
        ],
    );
    let (_, zh) = get_ops(&state, "/status").await;
    assert!(
        zh.contains("未闭环隐患") && zh.contains(&format!("<td>{open}</td>")),
        "{zh}"
    );
    let (_, en) = get_ops(&state, "/status?lang=en").await;
    assert!(en.contains("Open hazards"));
    assert!(zh.contains(r#"href="/status?lang=en""#) && en.contains(r#"href="/status""#));
    // The working-day calendar of this year and the next, and whether it is official.
    let years: Vec<(i64, String)> = s["calendar"]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| {
            (
                y["year"].as_i64().unwrap(),
                y["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let this_year = i64::from(chrono::Datelike::year(&xuncha_core::clock::china_date(
        state.now_ms(),
    )));
    assert_eq!(years.len(), 2);
    assert_eq!(years[0].0, this_year);
    if this_year == 2026 {
        assert_eq!(years[0].1, "official");
        assert_eq!(years[1].1, "provisional");
        assert!(zh.contains("工作日历 2027</th><td>暂定"), "{zh}");
    }
}

#[tokio::test]
async fn serves_on_a_real_loopback_socket() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Config::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app(state)).into_future());
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await.unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok"),
        "{reply}"
    );
    server.abort();
}
