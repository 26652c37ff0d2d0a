//! Bulk user import through the HTTP API: a GBK CSV from Excel and an XLSX workbook, every row
//! checked first (nothing created by a file with one bad row), passwords made for the rows that
//! leave them blank and usable at once, importing again updating instead of failing, admins
//! only.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::*;

async fn import(s: &Server, token: &str, body: Vec<u8>, content_type: &str) -> (StatusCode, Value) {
    send(
        s,
        "POST",
        "/v1/admin/users/import",
        Some(token),
        body,
        &[("content-type", content_type)],
    )
    .await
}

async fn users(s: &Server) -> Vec<Value> {
    let (code, body) = send(s, "GET", "/v1/admin/users", Some(&s.admin), vec![], &[]).await;
    assert_eq!(code, StatusCode::OK);
    body["users"].as_array().unwrap().clone()
}

fn user<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|u| u["id"] == id)
}

async fn enroll(s: &Server, user: &str, password: &str) -> StatusCode {
    let body = json!({ "user": user, "password": password, "device_id": format!("phone-{user}") });
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

fn gbk(text: &str) -> Vec<u8> {
    let bytes = encoding_rs::GBK.encode(text).0.into_owned();
    assert!(std::str::from_utf8(&bytes).is_err(), "really GBK");
    bytes
}

#[tokio::test]
async fn a_gbk_file_creates_users_with_their_areas_and_importing_it_again_updates_them() {
    let s = server();
    let file = "用户名,姓名,角色,网格,社区,街道,电话,初始密码\n\
                zhang,张伟,网格员,g1、g2,,,13800000001,\n\
                li,李娜,网格长,,c1,,13800000002,li-password-1\n\
                wang,王强,督查,,,s1,,\n";
    let (code, answer) = import(&s, &s.admin, gbk(file), "text/csv").await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert_eq!(
        (
            answer["added"].as_u64(),
            answer["updated"].as_u64(),
            answer["unchanged"].as_u64()
        ),
        (Some(3), Some(0), Some(0)),
        "{answer}"
    );
    // Passwords were made for the two rows without one, and only for them.
    let made = answer["passwords"].as_array().unwrap();
    let made_for: Vec<&str> = made.iter().map(|m| m["user"].as_str().unwrap()).collect();
    assert_eq!(made_for, ["zhang", "wang"]);
    let zhang_password = made[0]["password"].as_str().unwrap().to_owned();
    assert!(zhang_password.len() >= 12);
    // Each can sign in with the password the admin hands out.
    assert_eq!(enroll(&s, "zhang", &zhang_password).await, StatusCode::OK);
    assert_eq!(enroll(&s, "li", "li-password-1").await, StatusCode::OK);

    let list = users(&s).await;
    let zhang = user(&list, "zhang").unwrap();
    assert_eq!(zhang["display_name"], "张伟");
    assert_eq!(zhang["role"], "worker");
    assert_eq!(zhang["phone"], "13800000001");
    assert_eq!(zhang["grids"], json!(["g1", "g2"]));
    assert_eq!(user(&list, "li").unwrap()["communities"], json!(["c1"]));
    assert_eq!(user(&list, "wang").unwrap()["role"], "supervisor");
    assert_eq!(user(&list, "wang").unwrap()["subdistricts"], json!(["s1"]));

    // Again, with zhang moved to one grid and a new phone: updated; the rest unchanged; no
    // password made or changed.
    let again = "用户名,姓名,角色,网格,社区,街道,电话,初始密码\n\
                 zhang,张伟,网格员,g2,,,13900000009,\n\
                 li,李娜,网格长,,c1,,13800000002,another-password\n\
                 wang,王强,督查,,,s1,,\n";
    let (code, answer) = import(&s, &s.admin, gbk(again), "text/csv").await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert_eq!(
        (
            answer["added"].as_u64(),
            answer["updated"].as_u64(),
            answer["unchanged"].as_u64()
        ),
        (Some(0), Some(1), Some(2)),
        "{answer}"
    );
    assert_eq!(answer["passwords"], json!([]));
    let list = users(&s).await;
    assert_eq!(list.len(), 4 + 3, "nobody doubled");
    let zhang = user(&list, "zhang").unwrap();
    assert_eq!(
        (&zhang["grids"], &zhang["phone"]),
        (&json!(["g2"]), &json!("13900000009"))
    );
    assert_eq!(enroll(&s, "li", "li-password-1").await, StatusCode::OK);
    assert_eq!(
        enroll(&s, "li", "another-password").await,
        StatusCode::UNAUTHORIZED,
        "a re-import never changes a password"
    );
}

#[tokio::test]
async fn one_bad_row_creates_nobody_and_is_named_in_both_languages() {
    let s = server();
    for (file, zh_says, en_says) in [
        (
            "用户名,角色,网格\nok1,网格员,g1\nok2,组长,g1\n",
            "第 3 行：角色“组长”无法识别，可填：网格员、网格长、管理员",
            "line 3: role \"组长\" is not understood",
        ),
        (
            "用户名,角色,网格\nok1,网格员,g1\nok2,网格员,g9\n",
            "第 3 行：网格“g9”不存在",
            "line 3: there is no grid \"g9\"",
        ),
        (
            "用户名,角色,社区\nok1,网格长,没有的社区\n",
            "第 2 行：社区“没有的社区”不存在",
            "line 2: there is no community",
        ),
        (
            "用户名,角色,网格\nok1,网格员,g1\nok1,网格员,g2\n",
            "第 3 行：用户名“ok1”与第 2 行重复",
            "line 3: user \"ok1\" is already on line 2",
        ),
        (
            "用户名,角色\nok1,网格员\n",
            "第 2 行：网格员和网格长须填写网格、社区或街道",
            "line 2: a worker or supervisor needs",
        ),
    ] {
        let (code, err) = import(&s, &s.admin, file.as_bytes().to_vec(), "text/csv").await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{file}: {err}");
        let (zh, en) = (
            err["error"]["message"].as_str().unwrap(),
            err["error"]["message_en"].as_str().unwrap(),
        );
        assert!(zh.contains(zh_says), "{zh}");
        assert!(en.contains(en_says), "{en}");
        assert!(!zh.contains("line"), "{zh}");
    }
    let list = users(&s).await;
    assert!(user(&list, "ok1").is_none(), "nothing of a bad file");
    assert_eq!(list.len(), 4);

    // An admin cannot demote themselves by file (they would lock the office out).
    let (code, err) = import(
        &s,
        &s.admin,
        b"user,role,grids\nboss,worker,g1\n".to_vec(),
        "text/csv",
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(user(&users(&s).await, "boss").unwrap()["role"], "admin");
}

#[tokio::test]
async fn an_xlsx_workbook_imports_and_only_admins_may() {
    let s = server();
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    for (c, h) in ["账号", "姓名", "角色", "网格", "初始密码"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in ["zhao", "赵六", "网格员", "g1", "zhao-password"]
        .iter()
        .enumerate()
    {
        ws.write_string(1, c as u16, *v).unwrap();
    }
    let bytes = book.save_to_buffer().unwrap();
    let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    // First passwords are in the answer: no browser or proxy may keep it.
    let (code, headers, _) = send_raw(
        &s,
        "POST",
        "/v1/admin/users/import",
        Some(&s.admin),
        b"user,role,grids\nqian,worker,g1\n".to_vec(),
        &[("content-type", "text/csv")],
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(headers["cache-control"], "no-store");
    let (code, err) = import(&s, &s.w1, bytes.clone(), xlsx).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{err}");
    let (code, answer) = import(&s, &s.admin, bytes, xlsx).await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["added"], 1);
    assert_eq!(enroll(&s, "zhao", "zhao-password").await, StatusCode::OK);

    // The template names every column and the roles accepted, and imports as it stands once
    // its example grids exist.
    let (code, _, body) = send_raw(
        &s,
        "GET",
        "/v1/admin/users/template.csv",
        Some(&s.admin),
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    for column in [
        "用户名",
        "姓名",
        "角色",
        "网格",
        "社区",
        "街道",
        "电话",
        "初始密码",
    ] {
        assert!(text.contains(column), "{text}");
    }
    assert!(text.contains("网格员、网格长、管理员"), "{text}");
    let (code, _, _) = send_raw(
        &s,
        "GET",
        "/v1/admin/users/template.csv",
        Some(&s.w1),
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}
