//! The morning reminder: once a day from the set hour, one signed webhook event per worker
//! with their due and overdue work (the core's due list over their grids and hazards), none
//! for a worker who turned it off.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use xuncha_server::webhook::{self, WebhookConfig};
use xuncha_server::{AppState, Config, demo, reminders};

/// 2026-11-23 06:00 in China (22:00 UTC the day before).
const SIX_AM: i64 = 1_795_384_800_000;
const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn each_worker_gets_one_reminder_a_morning_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    demo::seed(dir.path(), SIX_AM - 24 * HOUR).unwrap();
    let state = AppState::open(dir.path(), Config::default()).unwrap();
    let queue = |now: i64| {
        state
            .db()
            .write(move |s| reminders::queue(s, now, 7))
            .unwrap()
    };
    // Before the hour: nothing. From it: every demo worker has work due (12 grids).
    assert_eq!(queue(SIX_AM), 0);
    assert_eq!(queue(SIX_AM + HOUR + 60_000), 12);
    assert_eq!(queue(SIX_AM + 3 * HOUR), 0, "once a day");

    // What w01's says is the core's due list for w01's grid and hazards.
    let sent = state
        .db()
        .read(|s, _| {
            let mut stmt = s.prepare(
                "SELECT body FROM server_webhook_deliveries WHERE event = 'worker.reminder'",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap();
    let w01: serde_json::Value = sent
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap())
        .find(|b| b["data"]["user"] == "w01")
        .unwrap();
    let data = &w01["data"];
    assert_eq!(data["date"], "2026-11-23");
    let items = data["items"].as_array().unwrap();
    assert!(!items.is_empty());
    let total = data["overdue"].as_u64().unwrap() + data["due_today"].as_u64().unwrap();
    assert!(total >= items.len() as u64);
    let premises = state
        .db()
        .read_store(|s, _| Ok(s.list_premises(false)?))
        .unwrap();
    for item in items {
        assert!(item["due_on"].as_str().unwrap() <= "2026-11-23");
        let shop = premises
            .iter()
            .find(|p| p.id.as_str() == item["premises_id"].as_str().unwrap())
            .unwrap();
        assert_eq!(item["premises_name"], shop.fields.name.as_str());
        if item["hazard_id"].is_null() {
            assert_eq!(shop.fields.grid_id.as_deref(), Some("XF-01"), "w01's grid");
        }
    }

    // w02 turns it off (through the API, as the app does); the next morning w02 gets none.
    let (_, token) = enroll(&state, "w02").await;
    let (status, _) = put(&state, "/v1/me/reminders", &token, r#"{"on":false}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue(SIX_AM + 25 * HOUR), 11);

    // Delivered to the gateway, signed.
    type Seen = Arc<Mutex<Vec<(String, String)>>>;
    let seen: Seen = Arc::default();
    let receiver = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    let event = headers["x-xuncha-event"].to_str().unwrap().to_owned();
                    let signature = headers["x-xuncha-signature"].to_str().unwrap().to_owned();
                    assert_eq!(signature, webhook::signature("s3cret", body.as_bytes()));
                    seen.lock().unwrap().push((event, body));
                    StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, receiver).into_future());
    xuncha_core::sync::client::install_tls_provider();
    let config = WebhookConfig {
        url,
        secret: "s3cret".into(),
        max_attempts: 3,
        first_retry: std::time::Duration::from_secs(30),
    };
    let http = reqwest::Client::new();
    webhook::deliver_due(&state, &http, &config, SIX_AM + 26 * HOUR)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let reminders: Vec<_> = seen
        .iter()
        .filter(|(e, _)| e == "worker.reminder")
        .collect();
    assert_eq!(reminders.len(), 12 + 11);
    assert!(
        !reminders[12..]
            .iter()
            .any(|(_, b)| b.contains(r#""user":"w02""#))
    );
}

async fn enroll(state: &AppState, user: &str) -> (StatusCode, String) {
    let body = format!(
        r#"{{"user":"{user}","password":"{}","device_id":"dev-{user}"}}"#,
        demo::DEMO_PASSWORD
    );
    let (status, value) = call(state, "POST", "/v1/enroll", None, body).await;
    (
        status,
        value["token"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn put(
    state: &AppState,
    uri: &str,
    token: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    call(state, "PUT", uri, Some(token), body.to_owned()).await
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: String,
) -> (StatusCode, serde_json::Value) {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let response = xuncha_server::app(state.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}
