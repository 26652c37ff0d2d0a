//! Several server instances on one PostgreSQL database (issue #20): phones spread over two
//! server processes by a round-robin proxy, pushes racing on both, one instance killed with
//! SIGKILL in the middle of them and started again. Every phone and both instances end with one
//! state; the shared log holds each phone's ops once each, none missing; the daily digest,
//! which both instances try every second, is queued once.
//!
//! Needs a PostgreSQL server: `XUNCHA_TEST_SERVER_DATABASE` (scripts/pg-test sets it).

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::time::Duration;

use xuncha_core::clock::{WallClock, china_date};
use xuncha_core::model::{PremisesFields, PremisesKind};
use xuncha_e2e::{Admin, Phone, RoundRobinProxy, ServerProcess, now_ms, test_options};
use xuncha_server::postgres as pg;

const SERVER: &str = env!("CARGO_BIN_EXE_xuncha-server-e2e");

/// A fresh database for this test on the PostgreSQL server named by the environment.
fn database(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("XUNCHA_TEST_SERVER_DATABASE") else {
        assert!(
            std::env::var_os("XUNCHA_TEST_DATABASE_REQUIRED").is_none(),
            "XUNCHA_TEST_SERVER_DATABASE is required but not set"
        );
        eprintln!("skipped: no XUNCHA_TEST_SERVER_DATABASE (scripts/pg-test runs this)");
        return None;
    };
    Some(pg::fresh_database(&base, &format!("{name}_{}", std::process::id())).unwrap())
}

/// An admin client of the server at `url`, its desk in a folder of its own.
fn admin_at(url: &str, dir: &std::path::Path, name: &str) -> Admin {
    let desk = dir.join(name);
    std::fs::create_dir_all(&desk).unwrap();
    Admin::connect(url, &desk)
}

/// Syncs until it succeeds (an instance may be down or restarting meanwhile).
fn sync_through(phone: &mut Phone) {
    for _ in 0..100 {
        match phone.client.sync(&mut phone.store, &mut |_| {}) {
            Ok(_) => return,
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("{} never synced", phone.store.device_id());
}

/// A phone's offline session: a shop, an edit of a shared shop, an inspection.
fn work(phone: &mut Phone, round: usize) {
    let me = phone.store.device_id().as_str().to_owned();
    let mut f = PremisesFields::new(format!("{me}的店{round}"), "幸福路", PremisesKind::Retail);
    f.grid_id = Some("g1".into());
    phone.store.add_premises(f).unwrap();
    let shops = phone.store.list_premises(false).unwrap();
    let shared = &shops[round % shops.len()];
    let mut fields = shared.fields.clone();
    fields.phone = Some(format!("138{round:04}{}", me.len()));
    phone.store.edit_premises(&shared.id, fields).unwrap();
    let today = china_date(phone.clock.now_ms());
    let visit = xuncha_core::checklist::sample::sample_visit(
        phone.store.catalog(),
        shared,
        today,
        &["FE-03"],
    );
    phone.store.record_inspection(visit).unwrap();
}

#[test]
fn two_instances_behind_a_round_robin_proxy_converge_through_a_kill() {
    let Some(url) = database("scale_out") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--database",
        url.as_str(),
        "--escalation-check-secs",
        "1",
        // Nothing listens there: deliveries stay queued, to be counted.
        "--webhook-url",
        "http://127.0.0.1:9/hook",
    ];
    let a_data = dir.path().join("a");
    let mut a = Some(ServerProcess::start(SERVER, &a_data, "127.0.0.1:0", &args));
    let b = ServerProcess::start(SERVER, &dir.path().join("b"), "127.0.0.1:0", &args);
    let a_addr = a.as_ref().unwrap().addr;
    let admin = admin_at(&a.as_ref().unwrap().url, dir.path(), "admin-a");
    admin.grid("g1", "幸福社区");
    for w in ["w1", "w2", "w3"] {
        admin.worker(w, &["g1"]);
    }
    let proxy = RoundRobinProxy::start(vec![a_addr, b.addr]);
    let mut phones: Vec<Phone> = (0..6)
        .map(|i| {
            let mut p = Phone::new(
                dir.path(),
                &format!("phone-{i}"),
                &proxy.url,
                now_ms(),
                test_options(),
            );
            p.enroll(&format!("w{}", i % 3 + 1));
            p
        })
        .collect();
    for p in &mut phones {
        work(p, 0);
        sync_through(p);
    }

    // Rounds of work and sync on every phone at once, while instance A is killed (SIGKILL,
    // mid-push as likely as not) and started again on its address.
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let mut syncing_at_kill = 0;
    std::thread::scope(|s| {
        for p in phones.iter_mut() {
            let finished = &finished;
            s.spawn(move || {
                for round in 1..=8 {
                    work(p, round);
                    sync_through(p);
                }
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        std::thread::sleep(Duration::from_millis(200));
        syncing_at_kill = 6 - finished.load(std::sync::atomic::Ordering::SeqCst);
        a.take().unwrap().kill();
        std::thread::sleep(Duration::from_millis(700));
        a = Some(ServerProcess::start(
            SERVER,
            &a_data,
            &a_addr.to_string(),
            &args,
        ));
    });
    assert!(
        syncing_at_kill > 0,
        "phones were still pushing when the instance was killed (else it tested nothing)"
    );
    for _ in 0..2 {
        for p in &mut phones {
            sync_through(p);
        }
    }
    let sent: Vec<usize> = proxy
        .sent
        .iter()
        .map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    assert!(
        sent.iter().all(|&n| n > 0),
        "both instances served: {sent:?}"
    );

    // One state everywhere: each instance (asked directly) and every phone.
    let on_a = admin_at(&a.as_ref().unwrap().url, dir.path(), "admin-a2").digest();
    let on_b = admin_at(&b.url, dir.path(), "admin-b").digest();
    assert_eq!(on_a, on_b, "the two instances' replicas differ");
    for p in &phones {
        assert_eq!(
            p.store.digest().unwrap(),
            on_a.0,
            "{} differs",
            p.store.device_id()
        );
    }

    // Nothing lost, nothing doubled: each phone's ops 1..n in the shared log, once each.
    let mut client = pg::connect(&url, "test").unwrap();
    for p in &phones {
        let device = p.store.device_id().as_str().to_owned();
        let made = p.store.max_seq(p.store.device_id()).unwrap() as i64;
        let row = client
            .query_one(
                "SELECT COUNT(*), COUNT(DISTINCT seq), COALESCE(MAX(seq), 0)
                 FROM ops WHERE device_id = $1",
                &[&device],
            )
            .unwrap();
        let (count, distinct, max): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((count, distinct, max), (made, made, made), "{device}");
    }
    let positions: (i64, i64) = client
        .query_one("SELECT COUNT(*), COALESCE(MAX(position), 0) FROM ops", &[])
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(positions.0, positions.1, "positions 1..n without a gap");
    assert_eq!(
        on_a.1 as i64, positions.0,
        "the replicas hold the whole log"
    );

    // The projection tables (the city's own queries) follow: every shop, every inspection
    // (this workload corrects none).
    let counts = phones[0].store.counts().unwrap();
    let started = std::time::Instant::now();
    loop {
        let row = client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM premises),
                        (SELECT COUNT(*) FROM inspections)",
                &[],
            )
            .unwrap();
        let (premises, inspections): (i64, i64) = (row.get(0), row.get(1));
        if (premises as usize, inspections as usize) == (counts.premises, counts.inspections) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "projections: {premises} premises, {inspections} inspections; phones: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The daily digest, tried every second by both instances, was queued once.
    let digests: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM server_webhook_deliveries WHERE event = 'overdue.digest'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(digests, 1, "the digest runs once a day across instances");
}

/// A district on SQLite with the demo data and a phone that has synced, moved to PostgreSQL by
/// `xuncha-server migrate-to-postgres`: the server on PostgreSQL holds the same state (digest,
/// ops), the phone goes on with its token and ends where it was, the photos are readable.
#[test]
fn a_demo_district_moves_to_postgres_with_its_phones() {
    let Some(url) = database("migrate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let sqlite = ServerProcess::start_with(SERVER, &data, "127.0.0.1:0", &["--demo"], None);
    let mut phone = Phone::new(
        dir.path(),
        "phone-w01",
        &sqlite.url,
        now_ms(),
        test_options(),
    );
    phone
        .client
        .enroll(
            &mut phone.store,
            "w01",
            xuncha_server::demo::DEMO_PASSWORD,
            None,
        )
        .unwrap();
    phone.sync();
    let phone_before = phone.store.digest().unwrap();
    let before = admin_at(&sqlite.url, dir.path(), "admin-sqlite").digest();
    sqlite.kill();

    let out = std::process::Command::new(SERVER)
        .arg("--data")
        .arg(&data)
        .arg("--database")
        .arg(&url)
        .arg("migrate-to-postgres")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&before.0), "checked by digest: {said}");
    // Once only: a second copy would double every op.
    let again = std::process::Command::new(SERVER)
        .arg("--data")
        .arg(&data)
        .arg("--database")
        .arg(&url)
        .arg("migrate-to-postgres")
        .output()
        .unwrap();
    assert!(!again.status.success(), "a second copy is refused");

    let pg_server = ServerProcess::start_with(SERVER, &data, "127.0.0.1:0", &[], Some(&url));
    let admin = admin_at(&pg_server.url, dir.path(), "admin-pg");
    assert_eq!(admin.digest(), before, "the same state on PostgreSQL");
    // The same phone, token and cursor, now talking to the server on PostgreSQL.
    phone.client =
        xuncha_core::sync::client::SyncClient::new(&pg_server.url, test_options()).unwrap();
    phone.sync();
    assert_eq!(
        phone.store.digest().unwrap(),
        phone_before,
        "the phone goes on where it was"
    );

    let mut client = pg::connect(&url, "test").unwrap();
    let sha: String = client
        .query_one(
            "SELECT sha256 FROM server_photos ORDER BY sha256 LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    let (status, jpeg) = admin.get_bytes(&format!("/v1/photos/{sha}"));
    assert_eq!(status, 200);
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&jpeg)),
        sha,
        "the photo itself"
    );
}

/// What guards accounts holds across instances: wrong passwords sent in turn to two instances
/// are counted together (the sixth is refused on either), and a phone signed out on one
/// instance is refused on the other within seconds.
#[test]
fn sign_in_limits_and_sign_outs_hold_across_instances() {
    let Some(url) = database("accounts") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args = ["--database", url.as_str()];
    let a = ServerProcess::start(SERVER, &dir.path().join("a"), "127.0.0.1:0", &args);
    let b = ServerProcess::start(SERVER, &dir.path().join("b"), "127.0.0.1:0", &args);
    let admin = admin_at(&a.url, dir.path(), "admin-a");
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    admin.worker("w2", &["g1"]);

    let http = reqwest::blocking::Client::new();
    let enroll = |url: &str, user: &str, password: &str| {
        http.post(format!("{url}/v1/enroll"))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "user": user, "password": password, "device_id": "guesser"
                })
                .to_string(),
            )
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Five wrong passwords for w2, in turn on A and B (the default limit is five per name).
    let statuses: Vec<u16> = (0..6)
        .map(|i| enroll(if i % 2 == 0 { &a.url } else { &b.url }, "w2", "wrong"))
        .collect();
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 429],
        "counted across instances"
    );
    assert_eq!(
        enroll(&a.url, "w2", xuncha_e2e::USER_PASSWORD),
        429,
        "even the right one"
    );

    // w1's phone works through B; an admin signs w1 out on A; B refuses the phone soon after.
    let mut phone = Phone::new(dir.path(), "phone-w1", &b.url, now_ms(), test_options());
    phone.enroll("w1");
    phone.sync();
    let (status, body) = admin.call("POST", "/v1/admin/users/w1/sign-out", None);
    assert_eq!(status, 200, "{body}");
    let started = std::time::Instant::now();
    loop {
        match phone.client.sync(&mut phone.store, &mut |_| {}) {
            Err(xuncha_core::Error::Server { status: 401, .. }) => break,
            _ if started.elapsed() > Duration::from_secs(5) => {
                panic!("instance B still accepts a token revoked on A")
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A photo upload cut off when its instance dies resumes on the other: the chunks are kept in
/// the bucket both instances share, so the other instance answers with the offset reached
/// and takes the rest. (With the photos in S3: scripts/pg-test runs it so.)
#[test]
fn a_photo_upload_cut_off_on_one_instance_resumes_on_the_other() {
    let Some(url) = database("uploads") else {
        return;
    };
    let Ok(photos) = std::env::var("XUNCHA_TEST_PHOTOS") else {
        eprintln!("skipped: needs object storage (XUNCHA_TEST_PHOTOS; scripts/pg-test sets it)");
        return;
    };
    let bucket = format!(
        "{}/resume-{}",
        photos.trim_end_matches('/'),
        std::process::id()
    );
    let args = ["--database", url.as_str(), "--photos", bucket.as_str()];
    let dir = tempfile::tempdir().unwrap();
    let a = ServerProcess::start(SERVER, &dir.path().join("a"), "127.0.0.1:0", &args);
    let b = ServerProcess::start(SERVER, &dir.path().join("b"), "127.0.0.1:0", &args);
    let admin = admin_at(&a.url, dir.path(), "admin-a");
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);

    // The inspection that refers to the photo reaches the server first (through A).
    let mut phone = Phone::new(dir.path(), "phone-1", &a.url, now_ms(), test_options());
    phone.enroll("w1");
    let picture = std::fs::read("../../shared/testdata/exif-orientation/Landscape_6.jpg").unwrap();
    let processed = xuncha_core::photo::process(
        &picture,
        &xuncha_core::photo::PhotoOptions::default(),
        &xuncha_core::photo::PhotoLimits::default(),
    )
    .unwrap();
    xuncha_e2e::inspect_with(&mut phone, vec![processed.reference.clone()]);
    phone.sync();

    // Half of the photo to A, then A dies.
    let (jpeg, sha) = (&processed.jpeg, processed.reference.sha256.clone());
    let token = xuncha_core::sync::client::SyncClient::token(&phone.store).unwrap();
    let http = reqwest::blocking::Client::new();
    let patch = |base: &str, offset: usize, part: &[u8]| {
        http.patch(format!("{base}/v1/photos/{sha}"))
            .bearer_auth(&token)
            .header("upload-offset", offset.to_string())
            .header("upload-length", jpeg.len().to_string())
            .body(part.to_vec())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let half = jpeg.len() / 2;
    assert_eq!(patch(&a.url, 0, &jpeg[..half]), 204);
    a.kill();

    // B knows how far it got, and takes the rest.
    let head = http
        .head(format!("{}/v1/photos/{sha}", b.url))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(head.status().as_u16(), 404);
    assert_eq!(
        head.headers()["upload-offset"].to_str().unwrap(),
        half.to_string(),
        "the other instance resumes where the first stopped"
    );
    assert_eq!(
        patch(&b.url, 0, &jpeg[..10]),
        409,
        "not from the start again"
    );
    assert_eq!(patch(&b.url, half, &jpeg[half..]), 201);
    let got = http
        .get(format!("{}/v1/photos/{sha}", b.url))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&got[..], &jpeg[..], "the photo whole");
    // The chunks are gone from the bucket once the photo is stored.
    let head = http
        .head(format!("{}/v1/photos/{sha}", b.url))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    if let Ok(root) = std::env::var("XUNCHA_TEST_S3_ROOT") {
        let bucket_dir = std::path::Path::new(&root).join(bucket.trim_start_matches("s3://"));
        let left = bucket_dir.join("uploads").join(&sha);
        let chunks = std::fs::read_dir(&left).map(|d| d.count()).unwrap_or(0);
        assert_eq!(chunks, 0, "chunks left in {}", left.display());
    }
}

/// An op set aside by one instance is let through from the other: the shared log holds it a
/// second time at its end, marked, and every instance moves it there (a new instance following
/// the log from the start too). The phones' cursors, past its old place, reach it.
#[test]
fn an_op_set_aside_on_one_instance_is_let_through_from_the_other() {
    let Some(url) = database("let_through") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args = ["--database", url.as_str()];
    let a = ServerProcess::start(SERVER, &dir.path().join("a"), "127.0.0.1:0", &args);
    let b = ServerProcess::start(SERVER, &dir.path().join("b"), "127.0.0.1:0", &args);
    let admin_a = admin_at(&a.url, dir.path(), "admin-a");
    let admin_b = admin_a.at(&b.url);
    admin_a.grid("g1", "幸福社区");
    admin_a.grid("g2", "和平社区");
    admin_a.worker("w1", &["g1"]);
    admin_a.worker("w2", &["g2"]);
    let mut w1 = Phone::new(dir.path(), "phone-w1", &a.url, now_ms(), test_options());
    w1.enroll("w1");
    let mut w2 = Phone::new(dir.path(), "phone-w2", &b.url, now_ms(), test_options());
    w2.enroll("w2");

    // w1 records a shop in its grid and one in g2, not its own: the second is set aside by
    // A, and is the last op of the log.
    let shop_in = |grid: &str, name: &str| {
        let mut f = PremisesFields::new(name, "幸福路", PremisesKind::Retail);
        f.grid_id = Some(grid.into());
        f
    };
    w1.store.add_premises(shop_in("g1", "幸福小卖部")).unwrap();
    let away = w1.store.add_premises(shop_in("g2", "和平面馆")).unwrap();
    let report = w1.sync();
    assert_eq!((report.pushed, report.set_aside), (2, 1), "{report:?}");
    w2.sync();
    assert!(w2.store.premises(&away.id).unwrap().is_none());
    let mut client = pg::connect(&url, "test").unwrap();
    let aside_at: i64 = client
        .query_one(
            "SELECT position FROM ops WHERE aside_code IS NOT NULL AND device_id = 'phone-w1'",
            &[],
        )
        .unwrap()
        .get(0);
    let end_before: i64 = client
        .query_one("SELECT MAX(position) FROM ops", &[])
        .unwrap()
        .get(0);
    assert_eq!(aside_at, end_before, "the op set aside is the log's last");

    // The admin gives w1 the grid and lets the op through on B.
    let (status, body) = admin_b.call(
        "PUT",
        "/v1/admin/users/w1/areas",
        Some(serde_json::json!({ "grids": ["g1", "g2"] })),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin_b.call("POST", "/v1/admin/set-aside/retry", None);
    assert_eq!(
        (
            status,
            body["let_through"].as_u64(),
            body["still_set_aside"].as_u64()
        ),
        (200, Some(1), Some(0)),
        "{body}"
    );
    let rows: Vec<(i64, bool, bool)> = client
        .query(
            "SELECT position, aside_code IS NOT NULL, let_through FROM ops
             WHERE device_id = 'phone-w1' AND seq = (SELECT seq FROM ops WHERE position = $1)
             ORDER BY position",
            &[&aside_at],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [(aside_at, true, false), (end_before + 1, false, true)],
        "held where it arrived, set aside, and again at the end, let through"
    );
    let (status, body) = admin_a.call("POST", "/v1/admin/set-aside/retry", None);
    assert_eq!(
        (status, body["let_through"].as_u64()),
        (200, Some(0)),
        "A follows: nothing is left to let through twice: {body}"
    );

    // Both instances, a third that follows the log from the start, and w1's phone end with
    // one state; g2's worker (whose cursor was past the op's old place) has the shop.
    let c = ServerProcess::start(SERVER, &dir.path().join("c"), "127.0.0.1:0", &args);
    w1.sync();
    w2.sync();
    assert!(w1.store.set_aside_ops().unwrap().is_empty());
    assert_eq!(
        w2.store.premises(&away.id).unwrap().unwrap().fields.name,
        "和平面馆"
    );
    let on_b = admin_b.digest();
    assert_eq!(admin_a.digest(), on_b);
    assert_eq!(admin_a.at(&c.url).digest(), on_b);
    assert_eq!(w1.store.digest().unwrap(), on_b.0, "w1 holds both grids");
}

/// A replica that lost its last commits (its files older than the log: a power cut before
/// they reached the disk, which on PostgreSQL they need not, the log being the truth) takes
/// those ops from the log again when the instance starts, and ends where it was.
#[test]
fn a_replica_that_lost_its_last_commits_takes_them_from_the_log_again() {
    let Some(url) = database("replica_behind") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args = ["--database", url.as_str()];
    let data = dir.path().join("a");
    let a = ServerProcess::start(SERVER, &data, "127.0.0.1:0", &args);
    let addr = a.addr.to_string();
    let admin = admin_at(&a.url, dir.path(), "admin");
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    let mut phone = Phone::new(dir.path(), "phone-w1", &a.url, now_ms(), test_options());
    phone.enroll("w1");
    work(&mut phone, 0);
    phone.sync();

    // The replica's files as they were then, kept aside (the server stopped, so whole).
    a.kill();
    let replica = xuncha_server::replica_path(&data);
    let files = |at: &std::path::Path| -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| {
                let name = format!("replica.sqlite3{suffix}");
                (data.join(&name), at.join(&name))
            })
            .collect()
    };
    let kept = dir.path().join("kept");
    std::fs::create_dir_all(&kept).unwrap();
    for (live, copy) in files(&kept) {
        if live.exists() {
            std::fs::copy(live, copy).unwrap();
        }
    }
    let a = ServerProcess::start(SERVER, &data, &addr, &args);
    for round in 1..=3 {
        work(&mut phone, round);
        phone.sync();
    }
    let before = admin.digest();

    // The later commits lost: the older files back, the instance started again.
    a.kill();
    for (live, copy) in files(&kept) {
        let _ = std::fs::remove_file(&live);
        if copy.exists() {
            std::fs::copy(copy, live).unwrap();
        }
    }
    assert!(replica.exists());
    let a = ServerProcess::start(SERVER, &data, &addr, &args);
    assert_eq!(
        admin.digest(),
        before,
        "the same state and op count as before the loss"
    );
    let report = phone.sync();
    assert_eq!(report.pushed, 0, "{report:?}");
    assert_eq!(phone.store.digest().unwrap(), before.0);
    drop(a);
}
