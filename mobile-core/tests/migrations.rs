//! Schema migrations: a database created at any earlier version upgrades to exactly the
//! schema of a fresh one, released migration files never change, and a file from a newer
//! app is refused rather than damaged.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use xuncha_core::Error;
use xuncha_core::store::Store;
use xuncha_core::store::schema::{MIGRATIONS, configure, migrate_to};

/// SHA-256 of every released migration. Add a line for a new file; never change one.
const RELEASED: &[(&str, &str)] = &[
    (
        "0001_op_log.sql",
        "c2500d7c8a3b27667a421fed2a597510997a6b149409a2df1ad767720985b299",
    ),
    (
        "0002_domain.sql",
        "2b7e552555f0c90b069216709a140f42fb187a38948aaa1b5eb99c3b3a208348",
    ),
    (
        "0003_photo_uploads.sql",
        "14ed9efe23d1cd74f7a8d980b1fb0f15821bf11ad4e51e8fdac296220e67afc9",
    ),
    (
        "0004_set_aside.sql",
        "5cc3fd3d1306eda14b80940759941346707df800d4675df4ea8d7ecfc6dedcf2",
    ),
    (
        "0005_photo_files.sql",
        "69cb9f76005a29d9876d8695a29ed5ce85bdfbf1bb9c7568018629c43e3ddf42",
    ),
    (
        "0006_campaigns.sql",
        "8d8c0da501c013fb8849ccadaa3e40822c71908586f630cc6d8bff4793d9ee8f",
    ),
];

fn schema_of(path: &std::path::Path) -> (i64, Vec<(String, String, Option<String>)>) {
    let c = Connection::open(path).unwrap();
    let version = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let mut stmt = c
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    (version, rows.map(Result::unwrap).collect())
}

#[test]
fn every_earlier_version_upgrades_to_the_fresh_schema() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.sqlite3");
    drop(Store::open(&fresh).unwrap());
    let expected = schema_of(&fresh);
    assert_eq!(expected.0, MIGRATIONS.len() as i64);
    for version in 0..MIGRATIONS.len() {
        let path = dir.path().join(format!("v{version}.sqlite3"));
        let mut c = Connection::open(&path).unwrap();
        configure(&c).unwrap();
        migrate_to(&mut c, version).unwrap();
        if version >= 1 {
            // Data written at the old version survives the upgrade.
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('device_id', 'old-phone')",
                [],
            )
            .unwrap();
        }
        drop(c);
        let store = Store::open(&path).unwrap();
        if version >= 1 {
            assert_eq!(store.device_id().as_str(), "old-phone");
        }
        drop(store);
        assert_eq!(schema_of(&path), expected, "upgrade from version {version}");
    }
}

#[test]
fn released_migrations_are_never_edited() {
    assert_eq!(
        MIGRATIONS.len(),
        RELEASED.len(),
        "add the new migration's hash to RELEASED"
    );
    for ((name, sql), (released_name, hash)) in MIGRATIONS.iter().zip(RELEASED) {
        assert_eq!(name, released_name);
        assert_eq!(
            &hex::encode(Sha256::digest(sql.as_bytes())),
            hash,
            "{name} was edited after release"
        );
    }
}

#[test]
fn a_database_from_a_newer_app_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.sqlite3");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, Error::SchemaTooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("update the app"));
}

#[test]
fn new_files_get_8_kb_pages_and_files_made_with_4_kb_pages_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let page_size = |path: &std::path::Path| -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap()
    };
    let fresh = dir.path().join("fresh.sqlite3");
    drop(Store::open(&fresh).unwrap());
    assert_eq!(page_size(&fresh), 8192);

    // A file made by an earlier build, at SQLite's default 4 KB, with data in it.
    let old = dir.path().join("old.sqlite3");
    let mut c = Connection::open(&old).unwrap();
    c.pragma_update(None, "page_size", 4096).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    migrate_to(&mut c, MIGRATIONS.len()).unwrap();
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('device_id', 'old-phone')",
        [],
    )
    .unwrap();
    drop(c);
    let mut store = Store::open(&old).unwrap();
    assert_eq!(store.device_id().as_str(), "old-phone");
    store
        .set_user(xuncha_core::model::UserId::from("wang.wei"))
        .unwrap();
    store
        .add_premises(xuncha_core::model::PremisesFields::new(
            "老王面馆",
            "幸福路1号",
            xuncha_core::model::PremisesKind::Catering,
        ))
        .unwrap();
    drop(store);
    assert_eq!(page_size(&old), 4096, "kept");
    assert_eq!(
        Store::open(&old)
            .unwrap()
            .list_premises(false)
            .unwrap()
            .len(),
        1
    );
}
