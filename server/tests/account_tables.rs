//! One test suite for where accounts are kept, run against both implementations of
//! `AccountTables`: the SQLite server database and PostgreSQL (`scripts/pg-test` gives it a
//! database; without one the PostgreSQL half says so and passes, unless
//! `XUNCHA_TEST_DATABASE_REQUIRED` is set). Everything goes through the `accounts` functions
//! the server calls, so both backends must give the same answers to the same rules.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::sync::Role;
use xuncha_server::account_tables::AccountTables;
use xuncha_server::accounts::{self, Areas, Grid, Scope};
use xuncha_server::db::Db;
use xuncha_server::postgres::{self as pg, account_tables::PgAccounts};

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

    // The first administrator, once.
    let generated = accounts::ensure_admin(t, None, NOW).unwrap().unwrap();
    assert_eq!(
        accounts::check_login(t, "admin", &generated).unwrap(),
        Role::Admin
    );
    assert!(accounts::ensure_admin(t, None, NOW).unwrap().is_none());
}

#[test]
fn accounts_on_sqlite() {
    let db = Db::open_in_memory().unwrap();
    db.write(|s| {
        suite(s.conn());
        Ok(())
    })
    .unwrap();
}

#[test]
fn accounts_on_postgres() {
    let Ok(base) = std::env::var("XUNCHA_TEST_DATABASE") else {
        assert!(
            std::env::var_os("XUNCHA_TEST_DATABASE_REQUIRED").is_none(),
            "XUNCHA_TEST_DATABASE is required but not set"
        );
        eprintln!("skipped: no XUNCHA_TEST_DATABASE (scripts/pg-test runs it)");
        return;
    };
    let name = format!("t_accounts_{}", std::process::id());
    let mut admin = pg::connect(&base, "test-admin").unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let mut client = pg::connect(&url, "test").unwrap();
    pg::migrate(&mut client).unwrap();
    let mut tx = client.transaction().unwrap();
    suite(&PgAccounts::new(&mut tx));
    tx.commit().unwrap();
}
