//! Fixtures shared by the server's HTTP tests: a server with two grids, two workers and an
//! admin; phone stores; requests through the router.

#![allow(dead_code)] // each test file uses a different part

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::{ManualClock, china_date};
use xuncha_core::model::{DeviceId, PremisesFields, PremisesKind, UserId};
use xuncha_core::op::Op;
use xuncha_core::store::{Store, StoreOptions};
use xuncha_core::sync::Role;
use xuncha_server::accounts::{self, Areas, Grid};
use xuncha_server::{AppState, Config, app};

pub struct Server {
    pub _dir: tempfile::TempDir,
    /// Where the verified photos end up as files: the data folder's `photos/`, or, when the
    /// suite runs against object storage, the S3 server's own folder for this server's prefix.
    pub photo_dir: std::path::PathBuf,
    pub state: AppState,
    /// Tokens by device id.
    pub w1: String,
    pub w1b: String,
    pub w2: String,
    pub admin: String,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The photo store of a test server: the data folder, or with `XUNCHA_TEST_PHOTOS=s3://BUCKET`
/// (scripts/s3-test) a prefix of its own in that bucket, and the folder where the S3 server
/// (`XUNCHA_TEST_S3_ROOT`, s3s-fs keeps objects as files) holds it.
pub fn photo_store(dir: &std::path::Path) -> (Option<String>, std::path::PathBuf) {
    match std::env::var("XUNCHA_TEST_PHOTOS") {
        Ok(base) => {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let prefix = format!(
                "t{}-{}-{}",
                std::process::id(),
                now_ms(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let bucket = base.trim_start_matches("s3://").trim_end_matches('/');
            let root = std::env::var("XUNCHA_TEST_S3_ROOT").expect("XUNCHA_TEST_S3_ROOT");
            (
                Some(format!("{}/{prefix}", base.trim_end_matches('/'))),
                std::path::Path::new(&root).join(bucket).join(prefix),
            )
        }
        Err(_) => (None, dir.join("photos")),
    }
}

/// With `XUNCHA_TEST_SERVER_DATABASE` (scripts/pg-test): a fresh PostgreSQL database for one
/// test server on that PostgreSQL server. `None`: the server keeps its SQLite file.
pub fn server_database() -> Option<String> {
    let base = std::env::var("XUNCHA_TEST_SERVER_DATABASE").ok()?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "s_{}_{}_{}",
        std::process::id(),
        now_ms(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    Some(xuncha_server::postgres::fresh_database(&base, &name).unwrap())
}

/// Runs `f` on a thread of its own: the blocking database calls of a test (the PostgreSQL
/// client must not run on the async runtime's thread, as the server never does).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

pub fn server() -> Server {
    off_runtime(server_here)
}

fn server_here() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (photo_store, photo_dir) = photo_store(dir.path());
    let config = Config {
        max_body_bytes: 256 << 10,
        max_clock_ahead_ms: 3_600_000,
        photo_store,
        database: server_database(),
        ..Config::default()
    };
    let state = AppState::open(dir.path(), config).unwrap();
    let tokens = state
        .db()
        .write(|store| {
            let c = store.tables();
            for (id, community) in [("g1", "c1"), ("g2", "c2")] {
                accounts::upsert_grid(
                    c,
                    &Grid {
                        id: id.into(),
                        name: format!("网格{id}"),
                        community: community.into(),
                        subdistrict: "s1".into(),
                    },
                )?;
            }
            for (user, role, grid) in [
                ("w1", Role::Worker, "g1"),
                ("w2", Role::Worker, "g2"),
                ("sup1", Role::Supervisor, "g1"),
                ("boss", Role::Admin, ""),
            ] {
                accounts::create_user(c, user, user, role, "password1", 0)?;
                let areas = Areas {
                    grids: vec![grid.to_owned()]
                        .into_iter()
                        .filter(|g| !g.is_empty())
                        .collect(),
                    ..Areas::default()
                };
                accounts::set_areas(c, user, &areas)?;
            }
            Ok([
                accounts::issue_token(c, "w1", &DeviceId::from("phone-w1"))?,
                accounts::issue_token(c, "w1", &DeviceId::from("phone-w1b"))?,
                accounts::issue_token(c, "w2", &DeviceId::from("phone-w2"))?,
                accounts::issue_token(c, "boss", &DeviceId::from("desk"))?,
            ])
        })
        .unwrap();
    let [w1, w1b, w2, admin] = tokens;
    Server {
        _dir: dir,
        photo_dir,
        state,
        w1,
        w1b,
        w2,
        admin,
    }
}

/// A phone store for `device`/`user` whose clock reads `at_ms`.
pub fn phone(device: &str, user: &str, at_ms: i64) -> Store {
    let mut s = Store::open_in_memory_with(StoreOptions {
        wall: Arc::new(ManualClock::new(at_ms)),
        device: Some(DeviceId::from(device)),
        ..StoreOptions::default()
    })
    .unwrap();
    s.set_user(UserId::from(user)).unwrap();
    s
}

/// Adds a shop in `grid` and inspects it (with a hazard): a realistic batch.
pub fn shop_with_inspection(s: &mut Store, grid: &str) {
    let mut f = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    f.grid_id = Some(grid.into());
    let p = s.add_premises(f).unwrap();
    let visit = sample_visit(s.catalog(), &p, china_date(now_ms()), &["FE-03"]);
    assert_eq!(s.record_inspection(visit).unwrap().findings.len(), 1);
}

pub async fn send_raw(
    server: &Server,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app(server.state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    assert_documented(method, uri, status);
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, bytes)
}

/// Sends a request; the answer as JSON (gunzipped), or as a JSON string when it is not JSON.
pub async fn send(
    server: &Server,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, headers, bytes) = send_raw(server, method, uri, token, body, headers).await;
    let text = if headers.get("content-encoding").is_some() {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .unwrap();
        out
    } else {
        bytes
    };
    let value = serde_json::from_slice(&text)
        .unwrap_or(Value::String(String::from_utf8_lossy(&text).into_owned()));
    (status, value)
}

pub async fn push(server: &Server, token: &str, ops: &[Op]) -> (StatusCode, Value) {
    let body = serde_json::to_vec(&json!({ "ops": ops })).unwrap();
    send(
        server,
        "POST",
        "/v1/sync/push",
        Some(token),
        body,
        &[("content-type", "application/json")],
    )
    .await
}

pub async fn pull(server: &Server, token: &str, after: u64) -> (StatusCode, Value) {
    send(
        server,
        "GET",
        &format!("/v1/sync/pull?after={after}"),
        Some(token),
        vec![],
        &[],
    )
    .await
}

pub async fn server_ops(server: &Server) -> u64 {
    let (_, v) = send(
        server,
        "GET",
        "/v1/admin/digest",
        Some(&server.admin),
        vec![],
        &[],
    )
    .await;
    v["ops"].as_u64().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The server's writer held by another thread, as a long write (a group of big pushes) would.
pub struct WriterHold {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<bool>,
}

/// Holds the writer until [`WriterHold::release`] (or 10 s); returns once it is held.
pub fn hold_writer(s: &Arc<Server>) -> WriterHold {
    let (held_tx, held) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let s = s.clone();
    let holder = std::thread::spawn(move || {
        s.state
            .db()
            .write(move |_| {
                held_tx.send(()).unwrap();
                Ok(released
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .is_ok())
            })
            .unwrap()
    });
    held.recv().unwrap();
    WriterHold { release, holder }
}

impl WriterHold {
    /// Lets the writer go; `true` when it was released before the 10 s ran out (so whatever
    /// was answered meanwhile did not need the writer).
    pub fn release(self) -> bool {
        let _ = self.release.send(());
        self.holder.join().unwrap()
    }
}

/// Every answer a test sees must be one the OpenAPI document lists for its route, so the
/// document cannot drift from what the server does (routes it does not describe, such as the
/// dashboard's files, are skipped).
pub fn assert_documented(method: &str, uri: &str, status: StatusCode) {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| {
        serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json parses")
    });
    let path = uri.split('?').next().unwrap_or(uri);
    let matches = |template: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), path.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
    };
    let Some(paths) = doc["paths"].as_object() else {
        return;
    };
    // A literal route wins over a templated one (`/v1/photos/x/thumb` vs `{sha256}`).
    let mut found: Vec<(&String, &Value)> = paths.iter().filter(|(t, _)| matches(t)).collect();
    found.sort_by_key(|(t, _)| t.matches('{').count());
    let Some((template, item)) = found.first() else {
        return;
    };
    let method = method.to_lowercase();
    let Some(op) = item.get(&method) else {
        if method == "head" {
            return;
        }
        panic!("{method} {template} is not in openapi.json");
    };
    let responses = &op["responses"];
    let code = status.as_str();
    if responses.get(code).is_some() || responses.get("default").is_some() {
        return;
    }
    // XUNCHA_OPENAPI_REPORT=FILE lists what is missing instead of failing (to mend the document).
    if let Ok(report) = std::env::var("XUNCHA_OPENAPI_REPORT") {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(report)
            .unwrap();
        writeln!(f, "{method} {template} {code}").unwrap();
        return;
    }
    panic!("openapi.json does not list {code} for {method} {template} (seen for {uri})");
}

/// A PostgreSQL database of its own for one test (`XUNCHA_TEST_DATABASE` names the server,
/// which scripts/pg-test starts), freshly migrated; `None`, said on stderr, when no server was
/// given, unless `XUNCHA_TEST_DATABASE_REQUIRED` is set.
pub fn pg_database(test: &str) -> Option<String> {
    use xuncha_server::postgres as pg;
    let Ok(base) = std::env::var("XUNCHA_TEST_DATABASE") else {
        assert!(
            std::env::var_os("XUNCHA_TEST_DATABASE_REQUIRED").is_none(),
            "XUNCHA_TEST_DATABASE is required but not set"
        );
        eprintln!("skipped: no XUNCHA_TEST_DATABASE (scripts/pg-test runs these)");
        return None;
    };
    let url = pg::fresh_database(&base, &format!("t_{test}_{}", std::process::id())).unwrap();
    pg::migrate(&mut pg::connect(&url, "test").unwrap()).unwrap();
    Some(url)
}
