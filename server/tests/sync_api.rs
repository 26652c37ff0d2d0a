//! The sync protocol through the HTTP router: push, pull, scope, and every kind of bad input
//! answered with a JSON error that leaves nothing behind.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use xuncha_core::calendar::WorkCalendar;
use xuncha_core::clock::Hlc;
use xuncha_core::clock::{ManualClock, china_date};
use xuncha_core::hazard::{HazardAction, HazardEvent};
use xuncha_core::model::{DeviceId, PremisesFields, PremisesKind, UserId};
use xuncha_core::op::{Op, OpBody};
use xuncha_core::store::{Store, StoreOptions};
use xuncha_server::escalation::{self, EscalationRules};

use common::*;

#[tokio::test]
async fn pushed_ops_reach_the_grid_and_no_one_else() {
    let s = server();
    let mut p = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut p, "g1");
    let ops = p.pending_ops(1000).unwrap();
    let (code, ack) = push(&s, &s.w1, &ops).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(ack["acked_seq"], ops.len() as u64);
    assert_eq!(ack["applied"], ops.len() as u64);
    assert!(ack["server_hlc"].as_str().unwrap().len() == 16);

    // Another phone of the same grid gets them, in order, and ends in the same state.
    let (code, page) = pull(&s, &s.w1b, 0).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let got: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    assert_eq!(got, ops);
    assert_eq!(page["more"], false);
    let mut other = phone("phone-w1b", "w1", now_ms());
    other.apply_ops(&got).unwrap();
    assert_eq!(other.digest().unwrap(), p.digest().unwrap());
    // Nothing new after the cursor.
    let cursor = page["cursor"].as_u64().unwrap();
    let (_, again) = pull(&s, &s.w1b, cursor).await;
    assert_eq!(
        (again["ops"].clone(), again["cursor"].as_u64()),
        (json!([]), Some(cursor))
    );
    assert_eq!(again["scope"], page["scope"]);
    // A cursor from some other database (beyond this log's end) starts again from the top.
    let (_, restarted) = pull(&s, &s.w1b, cursor + 1000).await;
    assert_eq!(restarted["ops"].as_array().unwrap().len(), ops.len());

    // The author's own device is not sent its ops back; another grid sees nothing; admins all.
    assert_eq!(pull(&s, &s.w1, 0).await.1["ops"], json!([]));
    assert_eq!(pull(&s, &s.w2, 0).await.1["ops"], json!([]));
    assert_eq!(
        pull(&s, &s.admin, 0).await.1["ops"]
            .as_array()
            .unwrap()
            .len(),
        ops.len()
    );
}

#[tokio::test]
async fn metrics_count_requests_ops_and_what_the_replica_holds() {
    let s = server();
    // A shop, its inspection and a notice whose deadline passed three days ago: three ops.
    overdue_hazard(&s, 3).await;
    assert_eq!(pull(&s, &s.w1b, 0).await.0, StatusCode::OK);
    assert_eq!(
        send(&s, "GET", "/v1/nothing-here", None, vec![], &[])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for made_up in ["BREW", "WHEN"] {
        send(&s, made_up, "/v1/nothing-here", None, vec![], &[]).await;
    }
    // Metrics are an admin's on the public address (open on the operations listener).
    assert_eq!(
        send(&s, "GET", "/metrics", Some(&s.w1), vec![], &[])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (code, headers, body) = send_raw(&s, "GET", "/metrics", Some(&s.admin), vec![], &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let values: std::collections::HashMap<&str, f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    let get = |k: &str| {
        *values
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing from:\n{text}"))
    };
    let n = 3.0;
    assert_eq!(
        get(r#"xuncha_http_requests_total{method="POST",route="/v1/sync/push",status="200"}"#),
        1.0
    );
    assert_eq!(
        get(r#"xuncha_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    assert_eq!(
        get(r#"xuncha_http_request_duration_seconds_count{method="GET",route="/v1/sync/pull"}"#),
        1.0
    );
    assert_eq!(
        get(r#"xuncha_http_requests_total{method="other",route="unmatched",status="404"}"#),
        2.0,
        "made-up methods share one series"
    );
    assert!(!text.contains("BREW"));
    assert_eq!(get(r#"xuncha_pushed_ops_total{outcome="applied"}"#), n);
    assert_eq!(get("xuncha_pulled_ops_total"), n);
    assert!(get("xuncha_group_commits_total") >= 1.0);
    assert_eq!(get(r#"xuncha_held{what="premises"}"#), 1.0);
    assert_eq!(get(r#"xuncha_held{what="open_hazards"}"#), 1.0);
    assert_eq!(get(r#"xuncha_held{what="ops"}"#), n);
    assert_eq!(get(r#"xuncha_held{what="quarantined_ops"}"#), 0.0);
    assert_eq!(get("xuncha_last_backup_timestamp_seconds"), 0.0, "never");
    assert_eq!(get(r#"xuncha_overdue_hazards{severity="general"}"#), 1.0);
    assert_eq!(
        get(r#"xuncha_overdue_hazards{severity="suspected_major"}"#),
        0.0
    );
    let year = chrono::Datelike::year(&china_date(now_ms()));
    let official = get(&format!(r#"xuncha_calendar_official{{year="{year}"}}"#));
    if year == 2026 {
        assert_eq!(official, 1.0);
        assert_eq!(
            get(r#"xuncha_calendar_official{year="2027"}"#),
            0.0,
            "provisional"
        );
    }
}

#[tokio::test]
async fn forty_guesses_at_once_are_throttled_like_forty_in_a_row() {
    let s = Arc::new(server());
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..40 {
        let s = s.clone();
        guesses.spawn(async move {
            let body =
                json!({ "user": "w1", "password": format!("guess-{n}"), "device_id": "guess-1" });
            send(
                &s,
                "POST",
                "/v1/enroll",
                None,
                serde_json::to_vec(&body).unwrap(),
                &[("content-type", "application/json")],
            )
            .await
            .0
        });
    }
    let codes = guesses.join_all().await;
    let checked = codes
        .iter()
        .filter(|c| **c == StatusCode::UNAUTHORIZED)
        .count();
    let refused = codes
        .iter()
        .filter(|c| **c == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (5, 35), "{codes:?}");
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_user_and_never_hold_the_writer() {
    let s = Arc::new(server());
    let enroll = |user: &'static str, password: &'static str| {
        let s = s.clone();
        async move {
            let body = json!({ "user": user, "password": password, "device_id": "guess-1" });
            send(
                &s,
                "POST",
                "/v1/enroll",
                None,
                serde_json::to_vec(&body).unwrap(),
                &[("content-type", "application/json")],
            )
            .await
        }
    };
    // Password checks run outside the writer: one is answered while a long write holds it.
    let hold = hold_writer(&s);
    let (code, body) = enroll("w1", "not-the-password").await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_login"))
    );
    assert!(hold.release(), "answered while the writer was held");

    // Four more failures, then the name is refused, even with the right password.
    for _ in 0..4 {
        assert_eq!(
            enroll("w1", "still-wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (code, body) = enroll("w1", "password1").await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert!(
        body["error"]["detail"]["retry_after_s"].as_u64().unwrap() > 0,
        "{body}"
    );
    // Another user is not affected, nor are devices already enrolled.
    let (code, body) = enroll("w2", "password1").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, _) = pull(&s, &s.w1, 0).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn pulls_come_in_pages_and_gzip() {
    let s = server();
    let mut p = phone("phone-w1", "w1", now_ms());
    for _ in 0..3 {
        shop_with_inspection(&mut p, "g1");
    }
    let ops = p.pending_ops(1000).unwrap();
    assert_eq!(push(&s, &s.w1, &ops).await.0, StatusCode::OK);
    let mut cursor = 0;
    let mut got = Vec::new();
    loop {
        let (code, page) = send(
            &s,
            "GET",
            &format!("/v1/sync/pull?after={cursor}&limit=2"),
            Some(&s.w1b),
            vec![],
            &[("accept-encoding", "gzip")],
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        got.extend(serde_json::from_value::<Vec<Op>>(page["ops"].clone()).unwrap());
        cursor = page["cursor"].as_u64().unwrap();
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(got, ops);
    let (code, _) = send(
        &s,
        "GET",
        "/v1/sync/pull?after=-3",
        Some(&s.w1b),
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_large_pull_page_is_the_same_gzipped_or_not() {
    // Over 64 KB of JSON: compressed on a blocking thread rather than the async runtime.
    let s = server();
    let mut p = phone("phone-w1", "w1", now_ms());
    for _ in 0..40 {
        shop_with_inspection(&mut p, "g1");
    }
    let ops = p.pending_ops(1000).unwrap();
    assert_eq!(push(&s, &s.w1, &ops).await.0, StatusCode::OK);
    let uri = "/v1/sync/pull?after=0&limit=5000";
    let (code, headers, plain) = send_raw(&s, "GET", uri, Some(&s.w1b), vec![], &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(headers.get("content-encoding").is_none());
    assert!(plain.len() > 64 << 10, "{} bytes", plain.len());
    let (code, headers, packed) = send_raw(
        &s,
        "GET",
        uri,
        Some(&s.w1b),
        vec![],
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers.get("content-encoding").unwrap(), "gzip");
    assert!(packed.len() < plain.len() / 4, "{} bytes", packed.len());
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&packed[..]),
        &mut unpacked,
    )
    .unwrap();
    // The same page (the server's clock fields aside).
    let (a, b): (Value, Value) = (
        serde_json::from_slice(&plain).unwrap(),
        serde_json::from_slice(&unpacked).unwrap(),
    );
    assert!(a["ops"] == b["ops"] && a["cursor"] == b["cursor"] && a["more"] == false);
    assert_eq!(
        serde_json::from_value::<Vec<Op>>(b["ops"].clone()).unwrap(),
        ops
    );
}

#[tokio::test]
async fn a_replayed_batch_changes_nothing_and_a_reused_seq_is_refused() {
    let s = server();
    let mut p = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut p, "g1");
    let ops = p.pending_ops(1000).unwrap();
    assert_eq!(push(&s, &s.w1, &ops).await.0, StatusCode::OK);
    let held = server_ops(&s).await;
    let (code, ack) = push(&s, &s.w1, &ops).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        (ack["applied"].as_u64(), ack["duplicates"].as_u64()),
        (Some(0), Some(ops.len() as u64))
    );
    assert_eq!(ack["acked_seq"], ops.len() as u64);
    assert_eq!(server_ops(&s).await, held);

    // A resend that overlaps (its ack was lost, then the phone recorded more): the old copies
    // are skipped and the new ops behind them are filed under their grid for others' pulls.
    shop_with_inspection(&mut p, "g1");
    let all = p.pending_ops(1000).unwrap();
    let (code, ack) = push(&s, &s.w1, &all).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(
        (ack["applied"].as_u64(), ack["duplicates"].as_u64()),
        (Some((all.len() - ops.len()) as u64), Some(ops.len() as u64))
    );
    let pulled: Vec<Op> =
        serde_json::from_value(pull(&s, &s.w1b, 0).await.1["ops"].clone()).unwrap();
    assert_eq!(pulled, all, "every op reaches the grid once, in order");
    assert_eq!(pull(&s, &s.w2, 0).await.1["ops"], json!([]));
    let (ops, held) = (all, server_ops(&s).await);

    // Same (device, seq), other content: 409, and the new op behind it is not stored either.
    let mut forged = ops.last().unwrap().clone();
    forged.wall_ms += 1;
    let mut next = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut next, "g1");
    let mut fresh = next.pending_ops(1).unwrap()[0].clone();
    fresh.seq = ops.len() as u64 + 1;
    let (code, err) = push(&s, &s.w1, &[forged, fresh]).await;
    assert_eq!(code, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["code"], "op_conflict");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| c > '\u{2e80}'),
        "Chinese first"
    );
    assert_eq!(server_ops(&s).await, held);
}

#[tokio::test]
async fn concurrent_pushes_commit_together_and_a_refused_one_leaves_nothing() {
    let s = Arc::new(server());
    // Eight more phones of w1.
    let devices: Vec<(String, String)> = (0..8)
        .map(|i| {
            let device = format!("phone-w1-{i}");
            let token = common::off_runtime(|| {
                s.state.db().write({
                    let device = device.clone();
                    move |store| {
                        xuncha_server::accounts::issue_token(
                            store.tables(),
                            "w1",
                            &DeviceId::from(device.as_str()),
                        )
                    }
                })
            })
            .unwrap();
            (device, token)
        })
        .collect();
    let mut reference = phone("reference", "w1", now_ms());
    let mut batches = Vec::new();
    for (device, token) in &devices {
        let mut p = phone(device, "w1", now_ms());
        shop_with_inspection(&mut p, "g1");
        let ops = p.pending_ops(1000).unwrap();
        reference.apply_ops(&ops).unwrap();
        batches.push((token.clone(), ops));
    }
    // w2 writes into g1, which is not theirs: refused whole, in the middle of the others.
    // A broken batch (it starts after a gap) is refused whole, inside the group.
    let mut broken = phone("phone-w2", "w2", now_ms());
    shop_with_inspection(&mut broken, "g2");
    batches.insert(
        4,
        (
            s.w2.clone(),
            broken.pending_ops(1000).unwrap()[1..].to_vec(),
        ),
    );

    // Keep the writer busy so that the pushes queue up and commit as groups.
    let (before_commits, before_writes) = s.state.db().group_stats();
    let hold = hold_writer(&s);
    let busy = {
        let s = s.clone();
        std::thread::spawn(move || {
            // The first push leads a group and waits for the writer; the other eight queue.
            wait_for_group_queue(&s, (8, true));
            hold.release()
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (token, ops)) in batches.into_iter().enumerate() {
        let s = s.clone();
        tasks.spawn(async move { (i, ops.len(), push(&s, &token, &ops).await) });
    }
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|(i, ..)| *i);
    assert!(busy.join().unwrap());
    for (i, n, (code, body)) in &answers {
        if *i == 4 {
            assert_eq!(code, &StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["error"]["code"], "seq_gap");
        } else {
            assert_eq!(code, &StatusCode::OK, "{body}");
            assert_eq!(body["acked_seq"], *n as u64, "{body}");
        }
    }
    let (commits, writes) = s.state.db().group_stats();
    assert_eq!(
        writes - before_writes,
        9,
        "every push went through the group writer"
    );
    assert!(
        commits - before_commits < 9,
        "pushes that waited for the writer committed together ({} commits)",
        commits - before_commits
    );
    // The server holds exactly the accepted ops, in the state a phone reaches from them.
    let total: u64 = answers
        .iter()
        .filter(|(i, ..)| *i != 4)
        .map(|(_, n, _)| *n as u64)
        .sum();
    assert_eq!(server_ops(&s).await, total);
    let server_digest =
        common::off_runtime(|| s.state.db().write(|st| Ok(st.replica().digest()?))).unwrap();
    assert_eq!(server_digest, reference.digest().unwrap());
}

/// Waits (up to 10 s) until the grouped writes stand as `(queued, leading)`.
fn wait_for_group_queue(s: &Server, want: (usize, bool)) {
    let start = std::time::Instant::now();
    while s.state.db().group_queue() != want {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "grouped writes stand at {:?}, not {want:?}",
            s.state.db().group_queue()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_group_that_fails_answers_each_of_its_writes_and_the_writer_goes_on() {
    use std::time::Duration;
    let s = Arc::new(server());
    // A deferred foreign key is checked only at COMMIT: a write that breaks it gets through
    // its savepoint and makes the whole group's commit fail.
    common::off_runtime(|| s.state
        .db()
        .write(|st| {
            st.replica().conn().execute_batch(
                "CREATE TABLE t_parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE t_child (parent INTEGER REFERENCES t_parent (id) DEFERRABLE INITIALLY DEFERRED);
                 INSERT INTO t_parent (id) VALUES (1);",
            )?;
            Ok(())
        }))
        .unwrap();
    let grouped = |parent: i64| {
        let s = s.clone();
        std::thread::spawn(move || {
            common::off_runtime(|| {
                s.state.db().write_grouped(move |st| {
                    st.replica()
                        .conn()
                        .execute("INSERT INTO t_child (parent) VALUES (?1)", [parent])?;
                    Ok(parent)
                })
            })
        })
    };
    // Hold the writer: the first write leads a group of its own and waits for the writer; the
    // next two queue behind it and form the second group.
    let hold = hold_writer(&s);
    let first = grouped(1);
    wait_for_group_queue(&s, (0, true)); // the first leads its own group
    let (broken, good) = (grouped(99), grouped(1));
    wait_for_group_queue(&s, (2, true)); // the next two wait behind it
    assert!(hold.release());
    assert_eq!(first.join().unwrap().unwrap(), 1);
    let broken = broken.join().unwrap().unwrap_err();
    let good = good.join().unwrap().unwrap_err();
    assert_eq!(
        (broken.status, good.status),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::INTERNAL_SERVER_ERROR
        )
    );
    let rows = |s: &Server| {
        common::off_runtime(|| {
            s.state.db().read(|c, _| {
                Ok(c.query_row("SELECT COUNT(*) FROM t_child", [], |r| r.get::<_, i64>(0))?)
            })
        })
        .unwrap()
    };
    assert_eq!(rows(&s), 1, "only the first group's write was committed");
    // The writer is usable afterwards.
    assert_eq!(grouped(1).join().unwrap().unwrap(), 1);
    assert_eq!(rows(&s), 2);

    // Many writes queued at once commit in groups of at most MAX_GROUP.
    let hold = hold_writer(&s);
    let (commits_before, writes_before) = s.state.db().group_stats();
    let mut many = vec![grouped(1)];
    wait_for_group_queue(&s, (0, true)); // the first leads its own group
    many.extend((1..70).map(|_| grouped(1)));
    wait_for_group_queue(&s, (69, true)); // the other 69 wait behind it
    assert!(hold.release());
    for w in many {
        assert_eq!(w.join().unwrap().unwrap(), 1);
    }
    let (commits, writes) = s.state.db().group_stats();
    assert_eq!(writes - writes_before, 70);
    assert!(
        commits - commits_before >= 70usize.div_ceil(xuncha_server::db::MAX_GROUP) as u64,
        "{} commits for 70 writes",
        commits - commits_before
    );
    assert_eq!(rows(&s), 72);

    // A write that panics takes its group down, not the writer: the next ones still commit.
    let panicking = {
        let s = s.clone();
        std::thread::spawn(move || {
            common::off_runtime(|| {
                s.state
                    .db()
                    .write_grouped(|_| -> Result<(), xuncha_server::error::ApiError> {
                        panic!("a bug in a handler")
                    })
            })
        })
    };
    assert!(panicking.join().is_err());
    let (done, finished) = std::sync::mpsc::channel();
    let next = grouped(1);
    std::thread::spawn(move || done.send(next.join().unwrap().unwrap()).unwrap());
    assert_eq!(finished.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    assert_eq!(rows(&s), 73);
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_store_nothing() {
    let s = server();
    let mut p = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut p, "g1");
    let ops = p.pending_ops(1000).unwrap();
    let json_body = serde_json::to_vec(&json!({ "ops": ops })).unwrap();
    let ct = [("content-type", "application/json")];

    /// What, token, body, headers, expected status and error code.
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        Vec<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "no token",
            None,
            json_body.clone(),
            ct.to_vec(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong token",
            Some("f00d"),
            json_body.clone(),
            ct.to_vec(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "not JSON",
            Some(&s.w1),
            b"{\"ops\": [".to_vec(),
            ct.to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "wrong types",
            Some(&s.w1),
            br#"{"ops": [{"device": 7}]}"#.to_vec(),
            ct.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_shape",
        ),
        (
            "bad gzip",
            Some(&s.w1),
            b"not gzip".to_vec(),
            vec![("content-encoding", "gzip")],
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "too large",
            Some(&s.w1),
            vec![b' '; 300 << 10],
            ct.to_vec(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        // A gzip bomb: 40 KB on the wire, 40 MB unpacked.
        (
            "gzip bomb",
            Some(&s.w1),
            gzip(&vec![b' '; 40 << 20]),
            vec![("content-encoding", "gzip")],
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "other device's token",
            Some(&s.w1b),
            json_body.clone(),
            ct.to_vec(),
            StatusCode::FORBIDDEN,
            "wrong_device",
        ),
        (
            "unsupported encoding",
            Some(&s.w1),
            json_body.clone(),
            vec![("content-encoding", "br")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
        ),
    ];
    for (what, token, body, headers, status, code) in cases {
        let (got, err) = send(&s, "POST", "/v1/sync/push", token, body, &headers).await;
        assert_eq!(got, status, "{what}: {err}");
        assert_eq!(err["error"]["code"], code, "{what}: {err}");
        assert!(
            !err["error"]["message_en"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }
    assert_eq!(server_ops(&s).await, 0);

    // A gap in seqs, and ops out of order.
    let (code, err) = push(&s, &s.w1, &ops[1..]).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("seq_gap"))
    );
    assert_eq!(err["error"]["detail"]["acked_seq"], 0);
    let reversed: Vec<Op> = ops.iter().rev().cloned().collect();
    let (code, err) = push(&s, &s.w1, &reversed).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_in_order"))
    );
    assert_eq!(server_ops(&s).await, 0);
}

#[tokio::test]
async fn ops_outside_the_callers_grids_are_set_aside_and_the_rest_applied() {
    let s = server();
    // w2 covers g2 only; its batch has a g2 shop first, then a g1 shop: the g2 shop is taken,
    // the g1 shop and its inspection are set aside (kept, applied nowhere), and the push
    // succeeds, so the phone is not stuck behind them.
    let mut p = phone("phone-w2", "w2", now_ms());
    shop_with_inspection(&mut p, "g2");
    shop_with_inspection(&mut p, "g1");
    let ops = p.pending_ops(1000).unwrap();
    let (code, ack) = push(&s, &s.w2, &ops).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(ack["applied"], 2, "{ack}");
    let set_aside: Vec<(u64, String)> = ack["set_aside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["seq"].as_u64().unwrap(),
                w["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        set_aside,
        vec![(3, "out_of_scope".into()), (4, "unknown_premises".into())]
    );
    assert_eq!(ack["acked_seq"], 4);
    // Nobody receives them; a replay says the same and changes nothing.
    let (_, everything) = pull(&s, &s.admin, 0).await;
    assert_eq!(everything["ops"].as_array().unwrap().len(), 2);
    let replay = push(&s, &s.w2, &ops).await.1;
    assert_eq!(
        (
            replay["duplicates"].as_u64(),
            replay["set_aside"].as_array().map(Vec::len)
        ),
        (Some(4), Some(2))
    );
    // The phone takes them out of its state as well: it then holds what the server holds.
    let listed: Vec<xuncha_core::sync::SetAside> =
        serde_json::from_value(ack["set_aside"].clone()).unwrap();
    assert!(p.follow_set_aside(&listed, false).unwrap());
    let on_server =
        common::off_runtime(|| s.state.db().write(|store| Ok(store.replica().digest()?))).unwrap();
    assert_eq!(p.digest().unwrap(), on_server);
    assert_eq!(p.set_aside_ops().unwrap().len(), 2);
    // The pull lists them too (all of the device's), so a phone that missed the answer learns.
    let (_, page) = pull(&s, &s.w2, 0).await;
    assert_eq!(page["set_aside"].as_array().unwrap().len(), 2, "{page}");

    // Premises without a grid belong to no worker.
    let mut q = phone("phone-w2", "w2", now_ms());
    q.apply_ops(&ops).unwrap();
    q.mark_acked(4).unwrap();
    q.add_premises(PremisesFields::new(
        "无网格小店",
        "某路",
        PremisesKind::Retail,
    ))
    .unwrap();
    let (code, ack) = push(&s, &s.w2, &q.pending_ops(10).unwrap()).await;
    assert_eq!(
        (code, ack["set_aside"][0]["code"].as_str()),
        (StatusCode::OK, Some("out_of_scope"))
    );

    // Moving a g1 shop into g2 needs both grids: w1 may not.
    let mut a = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut a, "g1");
    assert_eq!(
        push(&s, &s.w1, &a.pending_ops(1000).unwrap()).await.0,
        StatusCode::OK
    );
    a.mark_acked(2).unwrap();
    let shop = a.list_premises(false).unwrap()[0].clone();
    let mut moved = shop.fields.clone();
    moved.grid_id = Some("g2".into());
    a.edit_premises(&shop.id, moved).unwrap();
    let (code, ack) = push(&s, &s.w1, &a.pending_ops(1000).unwrap()).await;
    assert_eq!(
        (code, ack["set_aside"][0]["code"].as_str()),
        (StatusCode::OK, Some("out_of_scope"))
    );
    assert!(
        pull(&s, &s.w2, 0).await.1["ops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["device"] != "phone-w1"),
        "the move does not reach g2"
    );

    // An admin may move it; g2's scope tag changes so its phones pull the shop's history.
    let (_, before) = pull(&s, &s.w2, 0).await;
    let mut desk = phone("desk", "boss", now_ms());
    desk.apply_ops(
        &serde_json::from_value::<Vec<Op>>(pull(&s, &s.admin, 0).await.1["ops"].clone()).unwrap(),
    )
    .unwrap();
    let mut moved = desk.premises(&shop.id).unwrap().unwrap().fields;
    moved.grid_id = Some("g2".into());
    desk.edit_premises(&shop.id, moved).unwrap();
    let (code, ack) = push(&s, &s.admin, &desk.pending_ops(10).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    let (_, after) = pull(&s, &s.w2, 0).await;
    assert_ne!(after["scope"], before["scope"]);
    let ops: Vec<Op> = serde_json::from_value(after["ops"].clone()).unwrap();
    assert!(
        ops.iter().any(|o| o.device.as_str() == "desk"),
        "the move reaches g2"
    );
    assert!(
        ops.iter().any(|o| o.device.as_str() == "phone-w1"),
        "and so does the shop's history"
    );
}

#[tokio::test]
async fn ops_from_a_clock_far_ahead_wait_in_quarantine() {
    let s = server();
    let day = 86_400_000;
    let mut p = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut p, "g1");
    let first = p.pending_ops(1000).unwrap();
    assert_eq!(push(&s, &s.w1, &first).await.0, StatusCode::OK);
    p.mark_acked(first.len() as u64).unwrap();

    // The phone's clock jumps two days ahead: its next ops are held, acknowledged, not applied.
    let mut ahead = Store::open_in_memory_with(StoreOptions {
        wall: Arc::new(ManualClock::new(now_ms() + 2 * day)),
        device: Some(DeviceId::from("phone-w1")),
        ..StoreOptions::default()
    })
    .unwrap();
    ahead.set_user(UserId::from("w1")).unwrap();
    ahead.apply_ops(&first).unwrap();
    let shop = ahead.list_premises(false).unwrap()[0].clone();
    let mut renamed = shop.fields.clone();
    renamed.name = "老王面馆（新）".into();
    ahead.edit_premises(&shop.id, renamed).unwrap();
    let later: Vec<Op> = ahead
        .pending_ops(1000)
        .unwrap()
        .into_iter()
        .filter(|o| o.seq > first.len() as u64)
        .collect();
    let (code, ack) = push(&s, &s.w1, &later).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(
        (ack["quarantined"].as_u64(), ack["applied"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(ack["acked_seq"], later[0].seq);
    assert_eq!(ack["held"], 1);
    // A replay is a duplicate, not a second copy, and the answer still says the op is held
    // (the first answer may have been lost: the phone must still learn its clock is wrong).
    let replay = push(&s, &s.w1, &later).await.1;
    assert_eq!(
        (replay["duplicates"].as_u64(), replay["held"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        pull(&s, &s.w1b, 0).await.1["ops"].as_array().unwrap().len(),
        first.len()
    );
    let (_, q) = send(
        &s,
        "GET",
        "/v1/admin/quarantine",
        Some(&s.admin),
        vec![],
        &[],
    )
    .await;
    assert_eq!(q["ops"].as_array().unwrap().len(), 1);

    // Only admins release; after release the edit is applied and pulled.
    let (code, _) = send(
        &s,
        "POST",
        "/v1/admin/quarantine/release",
        Some(&s.w1),
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, r) = send(
        &s,
        "POST",
        "/v1/admin/quarantine/release",
        Some(&s.admin),
        vec![],
        &[],
    )
    .await;
    assert_eq!((code, r["released"].as_u64()), (StatusCode::OK, Some(1)));
    let (_, page) = pull(&s, &s.w1b, 0).await;
    let got: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    assert_eq!(got.len(), first.len() + 1);
    assert_eq!(got.last(), later.last());
}

#[tokio::test]
async fn releasing_a_clock_days_ahead_does_not_drag_everyone_elses_clock() {
    let s = server(); // quarantine bound: 1 h
    let hour = 3_600_000;
    let mut fast = phone("phone-w1", "w1", now_ms() + 72 * hour);
    shop_with_inspection(&mut fast, "g1");
    let ops = fast.pending_ops(1000).unwrap();
    let (code, ack) = push(&s, &s.w1, &ops).await;
    assert_eq!(
        (code, ack["quarantined"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    let (code, _) = send(
        &s,
        "POST",
        "/v1/admin/quarantine/release",
        Some(&s.admin),
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::OK);

    // Every answer now carries a clock at most the bound ahead of the server's wall clock.
    let within = |hlc: &Value| {
        let h: Hlc = serde_json::from_value(hlc.clone()).unwrap();
        h.physical_ms() as i64 <= now_ms() + hour
    };
    let (_, page) = pull(&s, &s.w2, 0).await;
    assert!(within(&page["server_hlc"]), "pull: {}", page["server_hlc"]);
    let (_, ack) = push(&s, &s.w1, &[]).await;
    assert!(within(&ack["server_hlc"]), "push: {}", ack["server_hlc"]);
    // Even the server's own writes (a dashboard action, a job) are stamped within the bound.
    let own =
        common::off_runtime(|| s.state.db().write(|store| Ok(store.replica().hlc()))).unwrap();
    assert!(
        own.physical_ms() as i64 <= now_ms() + hour,
        "store clock {own}"
    );

    // A phone with a right clock takes the answer in and its next ops are not held.
    let mut other = phone("phone-w2", "w2", now_ms());
    let page_ops: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    other.apply_ops(&page_ops).unwrap();
    let server_hlc: Hlc = serde_json::from_value(page["server_hlc"].clone()).unwrap();
    other
        .observe_server_hlc(server_hlc, page["server_time_ms"].as_i64().unwrap())
        .unwrap();
    shop_with_inspection(&mut other, "g2");
    let (code, ack) = push(&s, &s.w2, &other.pending_ops(1000).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    assert_eq!(
        (ack["applied"].as_u64(), ack["quarantined"].as_u64()),
        (Some(2), Some(0)),
        "the other phone's ops are not quarantined: {ack}"
    );
}

#[tokio::test]
async fn the_server_syncs_each_commit_to_disk() {
    let s = server();
    let mode: i64 = common::off_runtime(|| {
        s.state.db().write(|store| {
            Ok(store
                .replica()
                .conn()
                .pragma_query_value(None, "synchronous", |r| r.get(0))?)
        })
    })
    .unwrap();
    if s.state.db().is_shared() {
        // PostgreSQL holds the truth and syncs it first; the replica takes what a power cut
        // cost it from the log again (tests/tests/scale_out.rs).
        assert_eq!(mode, 1, "synchronous=NORMAL: the replica need not wait");
        return;
    }
    assert_eq!(
        mode, 2,
        "synchronous=FULL: an acknowledged push survives a power loss"
    );
}

#[tokio::test]
async fn enrolment_checks_the_password_and_admin_tools_need_an_admin() {
    let s = server();
    let enroll = |user: &str, password: &str, device: &str| {
        serde_json::to_vec(&json!({ "user": user, "password": password, "device_id": device }))
            .unwrap()
    };
    let (code, ok) = send(
        &s,
        "POST",
        "/v1/enroll",
        None,
        enroll("w1", "password1", "phone-new"),
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{ok}");
    assert_eq!(
        (ok["role"].as_str(), ok["grids"].clone()),
        (Some("worker"), json!(["g1"]))
    );
    // Notice numbers name the sub-district of the worker's grids, not the product.
    assert_eq!(ok["notice_area"], "s1");
    let token = ok["token"].as_str().unwrap().to_owned();
    let (code, me) = send(&s, "GET", "/v1/me", Some(&token), vec![], &[]).await;
    assert_eq!(
        (code, me["device"].as_str()),
        (StatusCode::OK, Some("phone-new"))
    );

    for (user, password) in [("w1", "wrong-password"), ("nobody", "password1")] {
        let (code, err) = send(
            &s,
            "POST",
            "/v1/enroll",
            None,
            enroll(user, password, "phone-x"),
            &[],
        )
        .await;
        assert_eq!(
            (code, err["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_login"))
        );
    }
    // A device enrolled to w1 cannot be taken over by w2.
    let (code, _) = send(
        &s,
        "POST",
        "/v1/enroll",
        None,
        enroll("w2", "password1", "phone-new"),
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);

    let user = serde_json::to_vec(&json!({ "id": "w3", "role": "worker", "password": "password3", "areas": { "communities": ["c2"] } })).unwrap();
    assert_eq!(
        send(
            &s,
            "POST",
            "/v1/admin/users",
            Some(&token),
            user.clone(),
            &[]
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (code, _) = send(
        &s,
        "POST",
        "/v1/admin/users",
        Some(&s.admin),
        user.clone(),
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(
        send(&s, "POST", "/v1/admin/users", Some(&s.admin), user, &[])
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (_, ok) = send(
        &s,
        "POST",
        "/v1/enroll",
        None,
        enroll("w3", "password3", "phone-w3"),
        &[],
    )
    .await;
    assert_eq!(ok["grids"], json!(["g2"]), "a community covers its grids");
    let (code, err) = send(
        &s,
        "PUT",
        "/v1/admin/users/w3/areas",
        Some(&s.admin),
        br#"{"grids": ["nope"]}"#.to_vec(),
        &[],
    )
    .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_grid"))
    );
    let (code, err) = send(
        &s,
        "PUT",
        "/v1/admin/grids/g9",
        Some(&s.admin),
        b"{".to_vec(),
        &[],
    )
    .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed"))
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let s = server();
    let (code, doc) = send(&s, "GET", "/v1/openapi.json", None, vec![], &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = [
        ("get", "/healthz"),
        ("get", "/"),
        ("get", "/status"),
        ("get", "/assets/{path}"),
        ("post", "/dash/login"),
        ("post", "/dash/logout"),
        ("get", "/dash/api/session"),
        ("get", "/dash/api/map"),
        ("get", "/dash/api/hazards/{id}"),
        ("post", "/dash/api/hazards/{id}/actions"),
        ("get", "/dash/api/hazards/{id}/assignees"),
        ("get", "/dash/api/campaigns"),
        ("post", "/dash/api/campaigns"),
        ("get", "/dash/api/campaigns/{id}"),
        ("post", "/dash/api/campaigns/{id}/end"),
        ("get", "/dash/api/campaigns/{id}/{file}"),
        ("get", "/dash/api/premises"),
        ("get", "/dash/api/premises/{id}"),
        ("get", "/dash/api/workers"),
        ("get", "/dash/api/workers/{id}"),
        ("get", "/dash/api/overdue"),
        ("get", "/dash/api/due-week"),
        ("get", "/dash/api/figures"),
        ("get", "/dash/api/export/{file}"),
        ("get", "/dash/notice/{id}"),
        ("get", "/dash/premises/{id}/qr.png"),
        ("get", "/dash/qr"),
        ("get", "/v1/admin/users"),
        ("post", "/v1/admin/premises/import"),
        ("get", "/v1/admin/premises/template.csv"),
        ("post", "/v1/admin/users/import"),
        ("get", "/v1/admin/users/template.csv"),
        ("get", "/v1/status"),
        ("get", "/metrics"),
        ("get", "/v1/openapi.json"),
        ("post", "/v1/enroll"),
        ("get", "/v1/me"),
        ("post", "/v1/sync/push"),
        ("get", "/v1/sync/pull"),
        ("get", "/v1/sync/own"),
        ("get", "/v1/admin/set-aside"),
        ("post", "/v1/me/password"),
        ("put", "/v1/me/reminders"),
        ("put", "/v1/admin/users/{id}/reminders"),
        ("put", "/v1/admin/users/{id}/disabled"),
        ("put", "/v1/admin/users/{id}/password"),
        ("get", "/v1/admin/users/{id}/devices"),
        ("post", "/v1/admin/users/{id}/sign-out"),
        ("post", "/v1/admin/users/{id}/feed/rotate"),
        ("post", "/v1/admin/devices/{id}/revoke"),
        ("post", "/v1/admin/set-aside/retry"),
        ("post", "/v1/admin/users"),
        ("put", "/v1/admin/users/{id}/areas"),
        ("put", "/v1/admin/grids/{id}"),
        ("get", "/v1/admin/digest"),
        ("get", "/v1/admin/quarantine"),
        ("get", "/v1/reference"),
        ("get", "/v1/overdue"),
        ("post", "/v1/admin/grids/import"),
        ("get", "/v1/feeds/{user}/{file}"),
        ("put", "/v1/admin/calendar"),
        ("put", "/v1/admin/cadence"),
        ("post", "/v1/admin/quarantine/release"),
        ("head", "/v1/photos/{sha256}"),
        ("patch", "/v1/photos/{sha256}"),
        ("get", "/v1/photos/{sha256}"),
        ("get", "/v1/photos/{sha256}/thumb"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths
            .values()
            .map(|p| {
                let methods = ["get", "head", "post", "put", "patch", "delete"];
                p.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| methods.contains(&k.as_str()))
                    .count()
            })
            .sum::<usize>(),
        routes.len(),
        "no undocumented extras"
    );
    for (method, path) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
        // ...and the route exists: anything but the fallback's 404.
        let uri = path
            .replace("{id}", "x")
            .replace("{user}", "x")
            .replace("{file}", "x.ics");
        let (code, body) = send(
            &s,
            &method.to_uppercase(),
            &uri,
            Some(&s.admin),
            b"{}".to_vec(),
            &[],
        )
        .await;
        assert!(
            code != StatusCode::NOT_FOUND || body["error"]["message_en"] != "no such endpoint",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn only_supervisors_approve_closing_major_hazards_or_escalate() {
    let s = server();
    let mut p = phone("phone-w1", "w1", now_ms());
    shop_with_inspection(&mut p, "g1");
    let ops = p.pending_ops(1000).unwrap();
    assert_eq!(push(&s, &s.w1, &ops).await.0, StatusCode::OK);
    let hazard = p.open_hazards().unwrap()[0].id.clone();
    let before =
        common::off_runtime(|| s.state.db().write(|st| Ok(st.replica().digest()?))).unwrap();
    for (n, action) in [
        HazardAction::ClosureApproved,
        HazardAction::Escalated { level: 1 },
    ]
    .into_iter()
    .enumerate()
    {
        let last = ops.last().unwrap();
        let op = Op {
            seq: last.seq + 1 + n as u64,
            hlc: Hlc::new(last.hlc.physical_ms() + 1 + n as u64, 0),
            body: OpBody::HazardEvent(HazardEvent {
                hazard_id: hazard.clone(),
                action,
                geotag: None,
                note: None,
            }),
            ..last.clone()
        };
        // Set aside (kept, applied nowhere), so the worker's later work is not held up.
        let (code, ack) = push(&s, &s.w1, &[op]).await;
        assert_eq!(
            (code, ack["set_aside"][0]["code"].as_str()),
            (StatusCode::OK, Some("supervisor_only")),
            "{ack}"
        );
    }
    let after =
        common::off_runtime(|| s.state.db().write(|st| Ok(st.replica().digest()?))).unwrap();
    assert_eq!(before, after, "the hazard is as it was");
}

/// A g1 shop inspected 20 days ago by w1's phone, with a hazard whose notice deadline passed
/// `days_late` days ago, pushed to the server.
async fn overdue_hazard(s: &Server, days_late: u64) -> xuncha_core::model::HazardId {
    let day = 86_400_000;
    let mut p = phone("phone-w1", "w1", now_ms() - 20 * day);
    shop_with_inspection(&mut p, "g1");
    let hazard = p.open_hazards().unwrap()[0].id.clone();
    let deadline = china_date(now_ms()) - chrono::Days::new(days_late);
    let notice = HazardAction::NoticeIssued {
        deadline,
        notice_no: None,
    };
    p.record_hazard_event(&hazard, notice, None, None).unwrap();
    let (code, ack) = push(s, &s.w1, &p.pending_ops(100).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    hazard
}

#[tokio::test]
async fn overdue_hazards_escalate_once_and_phones_see_it() {
    let s = server();
    let today = china_date(now_ms());
    let hazard = overdue_hazard(&s, 10).await;

    let run = |s: &Server| {
        common::off_runtime(|| {
            s.state.db().write(|st| {
                escalation::run(
                    st.store(),
                    today,
                    &EscalationRules::default(),
                    WorkCalendar::builtin(),
                )
            })
        })
        .unwrap()
    };
    // Whoever the server's store last acted for (a database seeded by the demo names a
    // worker), the server's own escalations are the system's.
    common::off_runtime(|| {
        s.state
            .db()
            .write(|st| Ok(st.store().set_user(UserId::from("w1"))?))
    })
    .unwrap();
    let first = run(&s);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].hazard_id.clone(), first[0].level),
        (hazard.clone(), 2)
    );
    assert!(run(&s).is_empty(), "a second run escalates nothing");

    // The escalation is an op like any other: the grid's phones receive it.
    let (_, page) = pull(&s, &s.w1b, 0).await;
    let ops: Vec<Op> = serde_json::from_value(page["ops"].clone()).unwrap();
    let mut other = phone("phone-w1b", "w1", now_ms());
    other.apply_ops(&ops).unwrap();
    let h = other.hazard(&hazard).unwrap().unwrap();
    assert_eq!(h.escalation, 2);
    let escalations: Vec<&Op> = ops
        .iter()
        .filter(|o| {
            matches!(&o.body, OpBody::HazardEvent(e)
                if matches!(e.action, HazardAction::Escalated { .. }))
        })
        .collect();
    assert_eq!(escalations.len(), 1);
    assert_eq!(escalations[0].author.as_str(), "system");

    // Supervisors see it in the overdue report of their area; another grid's worker does not.
    let (code, report) = send(&s, "GET", "/v1/overdue", Some(&s.admin), vec![], &[]).await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["by_grid"]["g1"]["hazards"], 1, "{report}");
    assert_eq!(report["by_community"]["c1"]["hazards"], 1, "{report}");
    assert_eq!(report["items"][0]["kind"], "recheck");
    assert_eq!(report["items"][0]["hazard_id"], hazard.as_str());
    let (_, theirs) = send(&s, "GET", "/v1/overdue", Some(&s.w2), vec![], &[]).await;
    assert_eq!(theirs["items"], json!([]));

    // The worker's calendar feed: a secret URL a calendar app can subscribe to.
    let (_, me) = send(&s, "GET", "/v1/me", Some(&s.w1), vec![], &[]).await;
    let feed = me["calendar_feed"].as_str().unwrap().to_owned();
    assert!(
        feed.starts_with("/v1/feeds/w1/") && feed.ends_with(".ics"),
        "{feed}"
    );
    let (code, ics) = send(&s, "GET", &feed, None, vec![], &[]).await;
    assert_eq!(code, StatusCode::OK);
    let ics = ics.as_str().unwrap().to_owned();
    assert!(
        ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"),
        "{ics}"
    );
    assert!(
        ics.contains("SUMMARY:隐患复查 Re-check: 老王面馆 (逾期"),
        "{ics}"
    );
    let (code, _) = send(&s, "GET", &feed.replace("/w1/", "/w2/"), None, vec![], &[]).await;
    assert_eq!(
        code,
        StatusCode::NOT_FOUND,
        "a key opens only its own user's feed"
    );
    let (_, theirs) = send(&s, "GET", "/v1/me", Some(&s.w2), vec![], &[]).await;
    let (code, other) = send(
        &s,
        "GET",
        theirs["calendar_feed"].as_str().unwrap(),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        !other.as_str().unwrap().contains("VEVENT"),
        "w2's grid has nothing due"
    );

    // Escalation levels by date: T+1 calendar day, T+3 working days.
    let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    let rules = EscalationRules::default();
    let cal = WorkCalendar::builtin();
    let at = |t: &str| escalation::target_level(d("2026-09-29"), d(t), &rules, cal);
    assert_eq!(
        (at("2026-09-29"), at("2026-09-30"), at("2026-10-08")),
        (0, 1, 1)
    );
    assert_eq!(
        at("2026-10-09"),
        2,
        "30 Sep, 8 Oct, 9 Oct are the three working days"
    );
}

#[tokio::test]
async fn webhooks_are_signed_retried_with_backoff_and_logged() {
    use std::sync::Mutex;
    use xuncha_server::webhook::{self, WebhookConfig};

    // A receiver that fails its first two requests.
    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;
    let seen: Seen = Arc::default();
    let receiver = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    let h = |k: &str| {
                        headers
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let mut seen = seen.lock().unwrap();
                    seen.push((h("x-xuncha-event"), h("x-xuncha-signature"), body));
                    if seen.len() <= 2 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, receiver).into_future());

    let s = server();
    let now = now_ms();
    let hazard = overdue_hazard(&s, 2).await;
    let done = common::off_runtime(|| {
        s.state.db().write(move |st| {
            escalation::run_job(
                st,
                now,
                &EscalationRules::default(),
                WorkCalendar::builtin(),
                true,
            )
        })
    })
    .unwrap();
    assert_eq!(done.len(), 1);

    xuncha_core::sync::client::install_tls_provider();
    let http = reqwest::Client::new();
    let config = WebhookConfig {
        url,
        secret: "s3cret".into(),
        max_attempts: 5,
        first_retry: std::time::Duration::from_secs(30),
    };
    // Escalation and digest both fail once; not retried before the backoff; then delivered.
    assert_eq!(
        webhook::deliver_due(&s.state, &http, &config, now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        webhook::deliver_due(&s.state, &http, &config, now + 10_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "nothing sent during the backoff"
    );
    assert_eq!(
        webhook::deliver_due(&s.state, &http, &config, now + 31_000)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        webhook::deliver_due(&s.state, &http, &config, now + 3_600_000)
            .await
            .unwrap(),
        0,
        "each once"
    );

    let seen = seen.lock().unwrap().clone();
    let events: Vec<&str> = seen.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(
        events,
        [
            "hazard.escalated",
            "overdue.digest",
            "hazard.escalated",
            "overdue.digest"
        ]
    );
    for (_, sig, body) in &seen {
        assert_eq!(sig, &webhook::signature("s3cret", body.as_bytes()));
        assert_ne!(sig, &webhook::signature("other", body.as_bytes()));
    }
    let escalated: Value = serde_json::from_str(&seen[2].2).unwrap();
    assert_eq!(escalated["data"]["hazard_id"], hazard.as_str());
    let digest: Value = serde_json::from_str(&seen[3].2).unwrap();
    assert_eq!(digest["data"]["overdue"], 1);

    // The delivery log keeps every attempt's outcome; a second run the same day adds no digest.
    let log: Vec<(u32, Option<u16>, Option<i64>)> =
        common::off_runtime(|| s.state.db().tables(|t| t.deliveries(100)))
            .unwrap()
            .into_iter()
            .map(|d| (d.attempts, d.last_status, d.delivered_ms))
            .collect();
    assert_eq!(log, vec![(2, Some(200), Some(now + 31_000)); 2]);
    common::off_runtime(|| {
        s.state.db().write(move |st| {
            escalation::run_job(
                st,
                now + 60_000,
                &EscalationRules::default(),
                WorkCalendar::builtin(),
                true,
            )
        })
    })
    .unwrap();
    let queued = common::off_runtime(|| s.state.db().tables(|t| t.deliveries(100)))
        .unwrap()
        .len();
    assert_eq!(queued, 2);
}

#[tokio::test]
async fn a_user_with_an_unknown_grid_is_not_created_at_all() {
    let s = server();
    let body = |grid: &str| {
        serde_json::to_vec(&json!({
            "id": "new.worker", "display_name": "新网格员", "role": "worker",
            "password": "a-long-password", "areas": { "grids": [grid] },
        }))
        .unwrap()
    };
    let ct = [("content-type", "application/json")];
    let (code, err) = send(
        &s,
        "POST",
        "/v1/admin/users",
        Some(&s.admin),
        body("NOPE-99"),
        &ct,
    )
    .await;
    assert!(code.is_client_error(), "{code} {err}");
    let (_, users) = send(&s, "GET", "/v1/admin/users", Some(&s.admin), vec![], &[]).await;
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["id"] != "new.worker"),
        "nothing half-made: {users}"
    );
    // Right the second time, with the name given.
    let (code, made) = send(
        &s,
        "POST",
        "/v1/admin/users",
        Some(&s.admin),
        body("g1"),
        &ct,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{made}");
    let (_, users) = send(&s, "GET", "/v1/admin/users", Some(&s.admin), vec![], &[]).await;
    let user = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "new.worker")
        .unwrap()
        .clone();
    assert_eq!(
        (user["display_name"].as_str(), user["grids"].clone()),
        (Some("新网格员"), json!(["g1"]))
    );
}
