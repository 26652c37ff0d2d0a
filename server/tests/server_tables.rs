//! One test suite for the server's own tables (accounts, photo records), run against both
//! implementations of `AccountTables` and `PhotoTables`: the SQLite server database and
//! PostgreSQL (`scripts/pg-test` gives it a
//! database; without one the PostgreSQL half says so and passes, unless
//! `XUNCHA_TEST_DATABASE_REQUIRED` is set). Everything goes through the `accounts` functions
//! the server calls, so both backends must give the same answers to the same rules.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::sync::Role;
use xuncha_server::account_tables::AccountTables;
use xuncha_server::accounts::{self, Areas, Grid, Scope};
use xuncha_server::db::Db;
use xuncha_server::job_tables::JobTables;
use xuncha_server::photo_tables::{PhotoRecord, PhotoTables};
use xuncha_server::postgres::{self as pg, tables::PgTables};
use xuncha_server::quarantine_tables::{Held, QuarantineTables};
use xuncha_server::webhook_tables::{AttemptRow, WebhookTables};
use xuncha_server::{ical, revoke, user_import};

const NOW: i64 = 1_764_547_200_000; // 2025-12-01T00:00:00Z

fn grid(id: &str, name: &str, community: &str) -> Grid {
    Grid {
        id: id.into(),
        name: name.into(),
        community: community.into(),
        subdistrict: "城关街道".into(),
    }
}

fn areas(grids: &[&str], communities: &[&str]) -> Areas {
    Areas {
        grids: grids.iter().map(|g| g.to_string()).collect(),
        communities: communities.iter().map(|c| c.to_string()).collect(),
        subdistricts: Vec::new(),
    }
}

fn code(result: Result<impl std::fmt::Debug, xuncha_server::error::ApiError>) -> &'static str {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

/// The suite: every account rule that reaches the tables, on `t`.
fn suite(t: &dyn AccountTables) {
    // Grids and users; refusals change nothing.
    accounts::upsert_grid(t, &grid("G1", "幸福社区第一网格", "幸福社区")).unwrap();
    accounts::upsert_grid(t, &grid("G2", "幸福社区第二网格", "幸福社区")).unwrap();
    accounts::upsert_grid(t, &grid("H1", "和平社区第一网格", "和平社区")).unwrap();
    assert_eq!(
        code(accounts::upsert_grid(t, &grid("", "无编号", "x"))),
        "invalid_grid"
    );
    accounts::create_user(t, "w1", "王伟", Role::Worker, "password-w1", NOW).unwrap();
    accounts::create_user(t, "w2", "李娜", Role::Worker, "password-w2", NOW).unwrap();
    accounts::create_user(t, "s1", "张强", Role::Supervisor, "password-s1", NOW).unwrap();
    assert_eq!(
        code(accounts::create_user(
            t,
            "w1",
            "另一个",
            Role::Worker,
            "password-xx",
            NOW
        )),
        "user_exists"
    );
    assert_eq!(
        code(accounts::create_user(
            t,
            "bad name",
            "x",
            Role::Worker,
            "password-xx",
            NOW
        )),
        "invalid_user"
    );
    assert_eq!(
        code(accounts::create_user(
            t,
            "w9",
            "x",
            Role::Worker,
            "short",
            NOW
        )),
        "weak_password"
    );
    assert!(!t.user_exists("w9").unwrap());

    // Areas: grids, or a whole community.
    accounts::set_areas(t, "w1", &areas(&["G1"], &[])).unwrap();
    accounts::set_areas(t, "w2", &areas(&["G2", "H1"], &[])).unwrap();
    accounts::set_areas(t, "s1", &areas(&[], &["幸福社区"])).unwrap();
    assert_eq!(
        code(accounts::set_areas(t, "w1", &areas(&["G9"], &[]))),
        "unknown_grid"
    );
    assert_eq!(
        code(accounts::set_areas(t, "nobody", &areas(&["G1"], &[]))),
        "not_found"
    );
    let caller = |user: &str, role| accounts::Caller {
        user: UserId::from(user),
        role,
        device: DeviceId::from("-"),
    };
    let (scope, tag) = accounts::scope_of(t, &caller("w1", Role::Worker)).unwrap();
    assert_eq!(scope, Scope::Grids(["G1".to_owned()].into()));
    let (scope, _) = accounts::scope_of(t, &caller("s1", Role::Supervisor)).unwrap();
    assert_eq!(
        scope,
        Scope::Grids(["G1".to_owned(), "G2".to_owned()].into())
    );
    let (all, _) = accounts::scope_of(t, &caller("admin", Role::Admin)).unwrap();
    assert_eq!(all, Scope::All);
    accounts::set_areas(t, "w1", &areas(&["G1", "G2"], &[])).unwrap();
    let (_, wider) = accounts::scope_of(t, &caller("w1", Role::Worker)).unwrap();
    assert_ne!(
        tag, wider,
        "the scope tag changes with what the user covers"
    );
    accounts::set_areas(t, "w1", &areas(&["G1"], &[])).unwrap();
    assert_eq!(
        accounts::scope_of(t, &caller("w1", Role::Worker))
            .unwrap()
            .1,
        tag
    );

    // Who covers a grid: workers first, then supervisors, by name.
    let covering: Vec<(String, &str)> = accounts::users_covering(t, "G2")
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.role))
        .collect();
    assert_eq!(
        covering,
        [("w2".to_owned(), "worker"), ("s1".to_owned(), "supervisor")]
    );
    let (role, scope) = accounts::role_and_scope(t, &UserId::from("s1"))
        .unwrap()
        .unwrap();
    assert_eq!(role, Role::Supervisor);
    assert!(scope.covers("G2") && !scope.covers("H1"));
    assert!(
        accounts::role_and_scope(t, &UserId::from("nobody"))
            .unwrap()
            .is_none()
    );
    let names = accounts::display_names(t, ["w1", "s1", "system", "w1"]).unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names["s1"], "张强");

    // Logins.
    assert_eq!(
        accounts::check_login(t, "w1", "password-w1").unwrap(),
        Role::Worker
    );
    assert_eq!(
        code(accounts::check_login(t, "w1", "password-xx")),
        "bad_login"
    );
    assert_eq!(
        code(accounts::check_login(t, "nobody", "password-w1")),
        "bad_login"
    );
    accounts::set_password(t, "w1", "new-password-w1").unwrap();
    assert_eq!(
        code(accounts::check_login(t, "w1", "password-w1")),
        "bad_login"
    );
    accounts::check_login(t, "w1", "new-password-w1").unwrap();
    assert_eq!(
        code(accounts::set_password(t, "nobody", "password-xx")),
        "not_found"
    );

    // Devices: enrolment, tokens, a device belongs to one user, numbers never reused.
    let phone = DeviceId::from("phone-1");
    let (who, token) =
        accounts::enroll(t, "w1", "new-password-w1", &phone, Some("华为"), NOW).unwrap();
    assert_eq!(who.user.as_str(), "w1");
    assert_eq!(accounts::authenticate(t, &token).unwrap(), who);
    assert_eq!(
        code(accounts::enroll(t, "w2", "password-w2", &phone, None, NOW)),
        "device_taken"
    );
    let (_, again) = accounts::enroll(t, "w1", "new-password-w1", &phone, None, NOW).unwrap();
    assert_eq!(
        code(accounts::authenticate(t, &token)),
        "unauthorized",
        "the old token"
    );
    accounts::authenticate(t, &again).unwrap();
    assert_eq!(
        code(accounts::authenticate(t, "not-a-token")),
        "unauthorized"
    );
    let other = DeviceId::from("phone-2");
    let issued = accounts::issue_token(t, "w2", &other).unwrap();
    assert_eq!(
        accounts::authenticate(t, &issued).unwrap().user.as_str(),
        "w2"
    );
    let (one, two) = (
        accounts::device_code(t, &phone).unwrap(),
        accounts::device_code(t, &other).unwrap(),
    );
    assert_ne!(one, two);
    assert_eq!(accounts::device_code(t, &phone).unwrap(), one, "stable");

    // Dashboard sessions: not for workers; live until they expire or close.
    assert_eq!(
        code(accounts::open_session(t, "w1", "new-password-w1", NOW)),
        "dashboard_forbidden"
    );
    let session = accounts::open_session(t, "s1", "password-s1", NOW).unwrap();
    let (by, csrf) = accounts::session_caller(t, &session.token, NOW + 1).unwrap();
    assert_eq!(
        (by.user.as_str(), csrf.as_str()),
        ("s1", session.csrf.as_str())
    );
    assert_eq!(
        code(accounts::session_caller(
            t,
            &session.token,
            NOW + accounts::SESSION_MS
        )),
        "unauthorized",
        "expired"
    );
    // A later sign-in sweeps expired sessions away, revoking their devices.
    let later = NOW + accounts::SESSION_MS + 1;
    let fresh = accounts::open_session(t, "s1", "password-s1", later).unwrap();
    assert_eq!(
        code(accounts::authenticate(t, &session.token)),
        "unauthorized"
    );
    accounts::session_caller(t, &fresh.token, later).unwrap();
    accounts::close_session(t, &fresh.token).unwrap();
    assert_eq!(
        code(accounts::session_caller(t, &fresh.token, later)),
        "unauthorized"
    );
    assert_eq!(
        code(accounts::authenticate(t, &fresh.token)),
        "unauthorized"
    );

    // The admin's list: every user with their areas, by id.
    let listed = t.users().unwrap();
    let ids: Vec<&str> = listed.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["s1", "w1", "w2"]);
    assert_eq!(listed[2].areas.grids, ["G2", "H1"]);
    assert_eq!(listed[0].areas.communities, ["幸福社区"]);
    assert_eq!(listed[0].profile.role, "supervisor");

    // Cutting access off: everywhere but one device, one device, a whole user.
    let stamp = revoke::stamp(t).unwrap();
    let third = DeviceId::from("phone-3");
    let (_, kept) = accounts::enroll(t, "w2", "password-w2", &third, Some("小米"), NOW).unwrap();
    assert_eq!(
        revoke::sign_out_everywhere(t, "w2", Some("phone-3")).unwrap(),
        1
    );
    assert_eq!(code(accounts::authenticate(t, &issued)), "unauthorized");
    accounts::authenticate(t, &kept).unwrap();
    let devices = revoke::devices_of(t, "w2").unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].device_id, "phone-3", "newest first");
    assert!(devices[1].revoked && !devices[0].revoked);
    revoke::revoke_device(t, "phone-3").unwrap();
    assert_eq!(code(accounts::authenticate(t, &kept)), "unauthorized");
    assert_eq!(code(revoke::revoke_device(t, "no-such-phone")), "not_found");
    revoke::set_disabled(t, "w1", true).unwrap();
    assert_eq!(
        code(accounts::check_login(t, "w1", "new-password-w1")),
        "bad_login"
    );
    assert_eq!(code(accounts::authenticate(t, &again)), "unauthorized");
    assert!(
        accounts::users_covering(t, "G1")
            .unwrap()
            .iter()
            .all(|a| a.id != "w1")
    );
    assert!(
        accounts::role_and_scope(t, &UserId::from("w1"))
            .unwrap()
            .is_none()
    );
    revoke::set_disabled(t, "w1", false).unwrap();
    accounts::check_login(t, "w1", "new-password-w1").unwrap();
    assert_eq!(code(revoke::set_disabled(t, "nobody", true)), "not_found");
    assert!(
        revoke::stamp(t).unwrap() > stamp,
        "other instances learn of it"
    );

    // Calendar feed addresses: stable until replaced.
    let feed = ical::feed_key(t, "w1").unwrap();
    assert_eq!(ical::feed_key(t, "w1").unwrap(), feed);
    assert_ne!(ical::feed_key(t, "w2").unwrap(), feed);
    revoke::rotate_feed(t, "w1").unwrap();
    let replaced = ical::feed_key(t, "w1").unwrap();
    assert_ne!(replaced, feed);
    revoke::change_password(t, "w1", "third-password", None).unwrap();
    assert_ne!(ical::feed_key(t, "w1").unwrap(), replaced);

    // Importing accounts in the caller's transaction: new ones created, known ones updated,
    // an unknown area refusing the whole file.
    let csv = "用户名,姓名,角色,网格,社区,街道,电话,初始密码\n\
               w2,李娜娜,网格员,G1,,,13900000002,\n\
               w3,赵敏,网格员,H1,,,13900000003,first-password-w3\n";
    let users =
        user_import::users_from_rows(&xuncha_server::import::rows(csv.as_bytes(), false).unwrap())
            .unwrap();
    let known = user_import::existing(t, &users).unwrap();
    assert_eq!(known, ["w2".to_owned()].into());
    let hashed = user_import::hash_new(&users, &known).unwrap();
    let outcome = user_import::store_users_in(t, &users, &hashed, None, NOW).unwrap();
    assert_eq!((outcome.added, outcome.updated), (1, 1));
    accounts::check_login(t, "w3", "first-password-w3").unwrap();
    let w2 = t.profile("w2").unwrap().unwrap();
    assert_eq!(
        (w2.display_name.as_str(), w2.phone.as_deref()),
        ("李娜娜", Some("13900000002"))
    );
    assert_eq!(t.areas_of("w2").unwrap().grids, ["G1"]);
    let again = user_import::store_users_in(t, &users, &hashed, None, NOW).unwrap();
    assert_eq!(again.unchanged, 2);
    let bad = "用户名,姓名,角色,网格\nw4,钱七,网格员,NOPE\n";
    let bad_users =
        user_import::users_from_rows(&xuncha_server::import::rows(bad.as_bytes(), false).unwrap())
            .unwrap();
    let none = user_import::hash_new(&bad_users, &Default::default()).unwrap();
    assert_eq!(
        code(user_import::store_users_in(t, &bad_users, &none, None, NOW)),
        "bad_import"
    );
    assert!(!t.user_exists("w4").unwrap());
    t.set_grid_geometry("G1", r#"{"type":"Polygon","coordinates":[]}"#)
        .unwrap();

    // Grids as stored; an epoch change moves the scope tag of those who cover the grid.
    let grids = t.grids().unwrap();
    let ids: Vec<&str> = grids.iter().map(|g| g.grid.id.as_str()).collect();
    assert_eq!(ids, ["G1", "G2", "H1"]);
    assert!(grids[0].geometry.is_some() && grids[1].geometry.is_none());
    let g2 = t.grid("G2").unwrap().unwrap();
    assert_eq!((g2.grid.community.as_str(), g2.epoch), ("幸福社区", 0));
    assert!(t.grid("G9").unwrap().is_none());
    let (_, before) = accounts::scope_of(t, &caller("s1", Role::Supervisor)).unwrap();
    t.bump_grid_epoch("G2").unwrap();
    assert_eq!(t.grid("G2").unwrap().unwrap().epoch, 1);
    let (_, after) = accounts::scope_of(t, &caller("s1", Role::Supervisor)).unwrap();
    assert_ne!(before, after);

    // Workers, and the morning reminder switched off for one of them.
    let all: Vec<String> = t.workers(false).unwrap().into_iter().map(|w| w.0).collect();
    assert_eq!(all, ["w1", "w2", "w3"]);
    assert!(t.set_reminders("w2", false).unwrap());
    assert!(!t.set_reminders("nobody", false).unwrap());
    let reminded: Vec<String> = t.workers(true).unwrap().into_iter().map(|w| w.0).collect();
    assert_eq!(reminded, ["w1", "w3"]);

    // The first administrator, once.
    let generated = accounts::ensure_admin(t, None, NOW).unwrap().unwrap();
    assert_eq!(
        accounts::check_login(t, "admin", &generated).unwrap(),
        Role::Admin
    );
    assert!(accounts::ensure_admin(t, None, NOW).unwrap().is_none());
}

/// Verified photos' records.
fn photos(t: &dyn PhotoTables) {
    let record = |sha: &str, by: &str| PhotoRecord {
        sha256: sha.into(),
        bytes: 300_000,
        width: 1600,
        height: 1200,
        uploaded_by: by.into(),
        uploaded_ms: NOW,
    };
    assert!(!t.photo_held("aa").unwrap());
    t.record_photo(&record("aa", "w1")).unwrap();
    t.record_photo(&record("bb", "w2")).unwrap();
    // A second upload of the same photo keeps the first record.
    t.record_photo(&record("aa", "w2")).unwrap();
    assert_eq!(t.uploaded_by("aa").unwrap().as_deref(), Some("w1"));
    assert!(t.photo_held("bb").unwrap());
    let held = t
        .photos_held(&["aa".into(), "cc".into(), "bb".into()])
        .unwrap();
    assert_eq!(held, ["aa".to_owned(), "bb".to_owned()].into());
    assert_eq!(t.photo_count().unwrap(), 2);
}

/// The webhook queue: taken deliveries are leased, attempts logged, retries and give-ups.
fn webhooks(t: &dyn WebhookTables) {
    for (i, event) in ["a", "b", "c"].iter().enumerate() {
        t.enqueue_delivery(event, &format!("{{\"n\":{i}}}"), NOW + i as i64)
            .unwrap();
    }
    assert!(
        t.take_due(NOW - 1, 5, 10, 1_000).unwrap().is_empty(),
        "none due yet"
    );
    let first = t.take_due(NOW + 10, 5, 2, 1_000).unwrap();
    let events: Vec<&str> = first.iter().map(|p| p.event.as_str()).collect();
    assert_eq!(events, ["a", "b"], "oldest first, at most the limit");
    // Leased: another sender now takes only the third.
    let second = t.take_due(NOW + 10, 5, 10, 1_000).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].event.as_str(), second[0].body.as_str()),
        ("c", "{\"n\":2}")
    );
    // a delivered; b failed, to be retried later; c's sender died (nothing recorded).
    let attempt =
        |p: &xuncha_server::webhook_tables::Pending, delivered: bool, next: i64| AttemptRow {
            id: p.id,
            attempts: p.attempts + 1,
            status: Some(if delivered { 200 } else { 503 }),
            error: (!delivered).then(|| "answered 503".to_owned()),
            delivered_ms: delivered.then_some(NOW + 20),
            next_attempt_ms: next,
        };
    t.record_attempt(&attempt(&first[0], true, NOW + 20))
        .unwrap();
    t.record_attempt(&attempt(&first[1], false, NOW + 5_000))
        .unwrap();
    assert!(t.take_due(NOW + 500, 5, 10, 1_000).unwrap().is_empty());
    // After c's lease: c again; after b's backoff: b, with its attempt counted.
    let again = t.take_due(NOW + 1_011, 5, 10, 1_000).unwrap();
    assert_eq!(
        again.iter().map(|p| p.event.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    t.record_attempt(&attempt(&again[0], true, NOW + 1_011))
        .unwrap();
    let retry = t.take_due(NOW + 5_000, 5, 10, 1_000).unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!((retry[0].event.as_str(), retry[0].attempts), ("b", 1));
    // Given up after the most attempts.
    t.record_attempt(&attempt(&retry[0], false, NOW + 6_000))
        .unwrap();
    assert!(
        t.take_due(NOW + 9_000, 2, 10, 1_000)
            .unwrap()
            .iter()
            .all(|p| p.event != "b")
    );
    // The log: every delivery in the order queued, with its last outcome.
    let log: Vec<(String, u32, Option<u16>, Option<i64>)> = t
        .deliveries(10)
        .unwrap()
        .into_iter()
        .map(|d| (d.event, d.attempts, d.last_status, d.delivered_ms))
        .collect();
    assert_eq!(
        log,
        [
            ("a".to_owned(), 1, Some(200), Some(NOW + 20)),
            ("b".to_owned(), 2, Some(503), None),
            ("c".to_owned(), 1, Some(200), Some(NOW + 20)),
        ]
    );
    assert_eq!(t.deliveries(1).unwrap().len(), 1, "at most the limit");
}

/// The quarantine: ops held per device in seq order, listed, released.
fn quarantine(t: &dyn QuarantineTables) {
    let held = |device: &str, seq: i64, received_ms: i64| Held {
        device: device.into(),
        seq,
        hlc: seq * 1_000,
        received_ms,
        op: format!("{{\"seq\":{seq}}}"),
    };
    assert_eq!(
        (t.held_max_seq("p1").unwrap(), t.held_count("p1").unwrap()),
        (0, 0)
    );
    for (device, seq, at) in [("p1", 7, 30), ("p1", 8, 30), ("p1", 9, 31), ("p2", 3, 10)] {
        t.hold(&held(device, seq, at)).unwrap();
    }
    assert!(
        t.hold(&held("p1", 7, 40)).is_err(),
        "one op per (device, seq)"
    );
    assert_eq!(
        (t.held_max_seq("p1").unwrap(), t.held_count("p1").unwrap()),
        (9, 3)
    );
    assert_eq!(t.held_op("p1", 8).unwrap().as_deref(), Some("{\"seq\":8}"));
    assert!(t.held_op("p1", 6).unwrap().is_none());
    assert_eq!(t.held_after("p1", 7, 1).unwrap(), ["{\"seq\":8}"]);
    let all: Vec<(String, i64)> = t
        .all_held()
        .unwrap()
        .into_iter()
        .map(|h| (h.device, h.seq))
        .collect();
    assert_eq!(
        all,
        [
            ("p1".into(), 7),
            ("p1".into(), 8),
            ("p1".into(), 9),
            ("p2".into(), 3)
        ]
    );
    let oldest = t.oldest_held(2).unwrap();
    assert_eq!(
        (oldest[0].device.as_str(), oldest[0].seq, oldest[1].seq),
        ("p2", 3, 7)
    );
    assert_eq!(oldest[0].received_ms, 10);
    t.release_held(&[("p1".into(), 7), ("p1".into(), 8)])
        .unwrap();
    assert_eq!(
        (t.held_count("p1").unwrap(), t.held_total().unwrap()),
        (1, 2)
    );
}

/// Jobs claim their day once.
fn jobs(t: &dyn JobTables) {
    assert!(t.claim_period("digest", "2026-12-01").unwrap());
    assert!(
        !t.claim_period("digest", "2026-12-01").unwrap(),
        "once a day"
    );
    assert!(
        t.claim_period("reminder", "2026-12-01").unwrap(),
        "each job its own"
    );
    assert!(t.claim_period("digest", "2026-12-02").unwrap());
    assert!(!t.claim_period("digest", "2026-12-02").unwrap());
}

#[test]
fn server_tables_on_sqlite() {
    let db = Db::open_in_memory().unwrap();
    db.tables(|t| {
        suite(t);
        photos(t);
        webhooks(t);
        quarantine(t);
        jobs(t);
        Ok(())
    })
    .unwrap();
}

#[test]
fn server_tables_on_postgres() {
    let Some(url) = common::pg_database("server_tables") else {
        return;
    };
    let mut client = pg::connect(&url, "test").unwrap();
    // Each statement its own transaction (a refused insert must not end the suite's).
    let tables = PgTables::new(&mut client);
    suite(&tables);
    photos(&tables);
    webhooks(&tables);
    quarantine(&tables);
    jobs(&tables);
}
