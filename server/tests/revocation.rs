//! Cutting access off takes effect at once, on every path, token caches included: a password
//! reset, a disabled user, a revoked (lost) phone, a user's own password change, and a
//! replaced calendar feed address.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::*;

async fn me(s: &Server, token: &str) -> StatusCode {
    send(s, "GET", "/v1/me", Some(token), vec![], &[]).await.0
}

async fn admin(s: &Server, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let body = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    send(
        s,
        method,
        uri,
        Some(&s.admin),
        body,
        &[("content-type", "application/json")],
    )
    .await
}

/// Signs in to the dashboard; the session cookie.
async fn dashboard(s: &Server, user: &str, password: &str) -> Option<String> {
    let body = serde_json::to_vec(&json!({ "user": user, "password": password })).unwrap();
    let (code, headers, _) = send_raw(
        s,
        "POST",
        "/dash/login",
        None,
        body,
        &[("content-type", "application/json")],
    )
    .await;
    (code == StatusCode::OK).then(|| {
        let set = headers.get("set-cookie").unwrap().to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    })
}

async fn session_alive(s: &Server, cookie: &str) -> bool {
    let (code, _, _) = send_raw(
        s,
        "GET",
        "/dash/api/session",
        None,
        vec![],
        &[("cookie", cookie)],
    )
    .await;
    code == StatusCode::OK
}

async fn feed_of(s: &Server, token: &str) -> String {
    let (_, me) = send(s, "GET", "/v1/me", Some(token), vec![], &[]).await;
    me["calendar_feed"].as_str().unwrap().to_owned()
}

async fn enroll(s: &Server, user: &str, password: &str, device: &str) -> StatusCode {
    let body = json!({ "user": user, "password": password, "device_id": device });
    send(
        s,
        "POST",
        "/v1/enroll",
        None,
        serde_json::to_vec(&body).unwrap(),
        &[("content-type", "application/json")],
    )
    .await
    .0
}

#[tokio::test]
async fn a_password_reset_signs_the_user_out_everywhere_at_once() {
    let s = server();
    assert_eq!(me(&s, &s.w1).await, StatusCode::OK); // now in the token cache
    let cookie = dashboard(&s, "sup1", "password1").await.unwrap();
    assert!(session_alive(&s, &cookie).await);
    let feed = feed_of(&s, &s.w1).await;

    for user in ["w1", "sup1"] {
        let (code, body) = admin(
            &s,
            "PUT",
            &format!("/v1/admin/users/{user}/password"),
            Some(json!({ "password": "a-new-password" })),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    assert_eq!(me(&s, &s.w1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&s, &s.w1b).await, StatusCode::UNAUTHORIZED);
    assert!(!session_alive(&s, &cookie).await);
    assert_eq!(
        send(&s, "GET", &feed, None, vec![], &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        me(&s, &s.w2).await,
        StatusCode::OK,
        "other users keep theirs"
    );
    assert_eq!(
        enroll(&s, "w1", "password1", "p-old").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        enroll(&s, "w1", "a-new-password", "p-new").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_disabled_user_is_cut_off_on_every_path() {
    let s = server();
    assert_eq!(me(&s, &s.w1).await, StatusCode::OK);
    let cookie = dashboard(&s, "sup1", "password1").await.unwrap();
    let feed = feed_of(&s, &s.w1).await;
    for user in ["w1", "sup1"] {
        let (code, _) = admin(
            &s,
            "PUT",
            &format!("/v1/admin/users/{user}/disabled"),
            Some(json!({ "disabled": true })),
        )
        .await;
        assert_eq!(code, StatusCode::OK);
    }
    assert_eq!(me(&s, &s.w1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        push(&s, &s.w1b, &[]).await.0,
        StatusCode::UNAUTHORIZED,
        "no sync"
    );
    assert!(!session_alive(&s, &cookie).await);
    assert!(dashboard(&s, "sup1", "password1").await.is_none());
    assert_eq!(
        enroll(&s, "w1", "password1", "p-3").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&s, "GET", &feed, None, vec![], &[]).await.0,
        StatusCode::NOT_FOUND
    );
    // An admin cannot lock themselves out by mistake.
    let (code, _) = admin(
        &s,
        "PUT",
        "/v1/admin/users/boss/disabled",
        Some(json!({ "disabled": true })),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    // Enabled again, the user enrolls again (the old devices stay revoked).
    let (code, _) = admin(
        &s,
        "PUT",
        "/v1/admin/users/w1/disabled",
        Some(json!({ "disabled": false })),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(me(&s, &s.w1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(enroll(&s, "w1", "password1", "p-4").await, StatusCode::OK);
}

#[tokio::test]
async fn a_lost_phone_is_revoked_alone() {
    let s = server();
    assert_eq!(me(&s, &s.w1).await, StatusCode::OK);
    let (code, list) = admin(&s, "GET", "/v1/admin/users/w1/devices", None).await;
    assert_eq!(code, StatusCode::OK);
    let devices: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert!(
        devices.contains(&"phone-w1") && devices.contains(&"phone-w1b"),
        "{list}"
    );
    let (code, _) = admin(&s, "POST", "/v1/admin/devices/phone-w1/revoke", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(me(&s, &s.w1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(&s, &s.w1b).await,
        StatusCode::OK,
        "the other phone goes on"
    );
    let (_, list) = admin(&s, "GET", "/v1/admin/users/w1/devices", None).await;
    assert!(
        list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["device_id"] == "phone-w1" && d["revoked"] == true),
        "{list}"
    );
    let (code, _) = admin(&s, "POST", "/v1/admin/devices/nope/revoke", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // Workers may not revoke.
    let (code, _) = send(
        &s,
        "POST",
        "/v1/admin/devices/phone-w1b/revoke",
        Some(&s.w1b),
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn changing_ones_own_password_signs_out_the_other_devices_only() {
    let s = server();
    let change = |token: String, current: &'static str| {
        let s = &s;
        async move {
            let body = json!({ "current": current, "new": "my-new-password" });
            send(
                s,
                "POST",
                "/v1/me/password",
                Some(&token),
                serde_json::to_vec(&body).unwrap(),
                &[("content-type", "application/json")],
            )
            .await
            .0
        }
    };
    assert_eq!(
        change(s.w1.clone(), "wrong").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&s, &s.w1b).await, StatusCode::OK);
    assert_eq!(change(s.w1.clone(), "password1").await, StatusCode::OK);
    assert_eq!(me(&s, &s.w1).await, StatusCode::OK, "this phone stays");
    assert_eq!(me(&s, &s.w1b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        enroll(&s, "w1", "my-new-password", "p-5").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_feed_address_is_replaced_on_request() {
    let s = server();
    let old = feed_of(&s, &s.w1).await;
    assert_eq!(
        send(&s, "GET", &old, None, vec![], &[]).await.0,
        StatusCode::OK
    );
    let (code, body) = admin(&s, "POST", "/v1/admin/users/w1/feed/rotate", None).await;
    assert_eq!(code, StatusCode::OK);
    let new = body["feed"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        send(&s, "GET", &old, None, vec![], &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&s, "GET", new, None, vec![], &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(feed_of(&s, &s.w1).await, new);
}
