//! The server's HTTP surface: handler tests with `oneshot`, and a real listener on loopback.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use xuncha_server::{AppState, Config, app, demo};

const NOW: i64 = 1_795_400_000_000;

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    let res = app(state.clone())
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
    let (code, body) = get(&state, "/v1/status").await;
    assert_eq!(code, StatusCode::OK);
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["premises"], 0);
    assert_eq!(get(&state, "/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn demo_data_shows_on_the_status_page_in_chinese_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let inspections = demo::seed(&dir.path().join("xuncha.sqlite3"), 20, NOW).unwrap();
    assert_eq!(inspections, 120, "20 premises, 6 weeks");
    let state = AppState::open(dir.path(), Config::default()).unwrap();
    let (_, body) = get(&state, "/v1/status").await;
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["premises"], 20);
    assert_eq!(s["inspections"], 120);
    let open = s["open_hazards"].as_u64().unwrap();
    assert!(open > 0 && s["ops"].as_u64().unwrap() > 140, "{s}");
    let (_, zh) = get(&state, "/").await;
    assert!(
        zh.contains("未闭环隐患") && zh.contains(&format!("<td>{open}</td>")),
        "{zh}"
    );
    let (_, en) = get(&state, "/?lang=en").await;
    assert!(en.contains("Open hazards"));
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
