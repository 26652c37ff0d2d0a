//! Sync over real HTTP on loopback (release build): push throughput with 20 devices pushing
//! at once, wire bytes per op after gzip, a new phone's first sync, and the latency of a pull
//! with nothing new under 1,000 concurrent clients. Clients and server share this machine's two cores.
//!
//! `cargo bench -p xuncha-e2e --bench sync_http` (env SYNC_OPS to change the op count,
//! SYNC_PARTS to run some parts only, SYNC_SYNCHRONOUS=NORMAL for the durability A/B,
//! SYNC_SERVE=FILE to keep the first-sync server up for the field app's benchmark).
//! On PostgreSQL: SYNC_DATABASE=postgres://USER@HOST:PORT/DB (each server a fresh database
//! made there), and SYNC_INSTANCES=2 for two instances on it, the clients spread over both.
//! SYNC_INSTANCES=sqlite,1,2 SYNC_ROUNDS=5 SYNC_PUSHES=4 measures push_many on SQLite, one
//! and two instances in turn, five rounds, and gives each round's ratios between them.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a bench binary: panics are failures

use std::io::Write;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use xuncha_core::clock::Hlc;
use xuncha_core::model::{DeviceId, PremisesFields, PremisesId, PremisesKind, UserId};
use xuncha_core::op::{Op, OpBody, PremisesPatch, SCHEMA_VERSION};
use xuncha_core::store::Store;
use xuncha_core::sync::client::{SyncClient, SyncOptions};
use xuncha_core::sync::{PushRequest, Role};
use xuncha_core::workload::{WorkloadSpec, generate};
use xuncha_server::accounts::{self, Areas, Caller, Grid};
use xuncha_server::{AppState, Config, app, sync};

const DEVICES: usize = 20;
const BATCH: usize = 1000;

struct Bench {
    _dir: tempfile::TempDir,
    state: AppState,
    url: String,
    /// Every instance's address (one on SQLite; SYNC_INSTANCES on PostgreSQL).
    urls: Vec<String>,
    _others: Vec<AppState>,
    rt: tokio::runtime::Runtime,
    tokens: Vec<String>,
}

/// With SYNC_DATABASE: a fresh PostgreSQL database on that server for one bench server.
fn fresh_database() -> Option<String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let base = std::env::var("SYNC_DATABASE").ok()?;
    let name = format!(
        "bench_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    Some(xuncha_server::postgres::fresh_database(&base, &name).unwrap())
}

/// Where a bench server keeps its state.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    Sqlite,
    /// That many instances on one PostgreSQL database (SYNC_DATABASE).
    Postgres(usize),
}

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setup::Sqlite => write!(f, "SQLite"),
            Setup::Postgres(n) => write!(f, "PostgreSQL, {n} instance(s)"),
        }
    }
}

/// The set-ups push_many measures, from SYNC_INSTANCES (on PostgreSQL): `2`, or a list such
/// as `sqlite,1,2` to measure them in turn in one run and compare; default SQLite, or one
/// instance with SYNC_DATABASE.
fn setups() -> Vec<Setup> {
    let postgres = std::env::var("SYNC_DATABASE").is_ok();
    match std::env::var("SYNC_INSTANCES") {
        Ok(list) => list
            .split(',')
            .map(|n| match n.trim() {
                "sqlite" => Setup::Sqlite,
                n => {
                    assert!(postgres, "instances on PostgreSQL need SYNC_DATABASE");
                    Setup::Postgres(n.parse().unwrap())
                }
            })
            .collect(),
        Err(_) if postgres => vec![Setup::Postgres(1)],
        Err(_) => vec![Setup::Sqlite],
    }
}

/// A server with 20 workers in grid g1 and 1,000 premises already there.
fn server(premises: usize) -> Bench {
    server_on(premises, setups()[0])
}

/// [`server`] on `setup`.
fn server_on(premises: usize, setup: Setup) -> Bench {
    let instances = match setup {
        Setup::Sqlite => 1,
        Setup::Postgres(n) => n,
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        max_body_bytes: 64 << 20,
        database: (setup != Setup::Sqlite).then(fresh_database).flatten(),
        ..Config::default()
    };
    assert!(
        config.database.is_some() || instances == 1,
        "several instances need SYNC_DATABASE"
    );
    let state = AppState::open(&dir.path().join("i0"), config.clone()).unwrap();
    // A/B of what durability costs: SYNC_SYNCHRONOUS=NORMAL runs the server's commits as before
    // they were synced to disk (synchronous=FULL, the server's setting).
    if let Ok(mode) = std::env::var("SYNC_SYNCHRONOUS") {
        state
            .db()
            .write(move |s| {
                Ok(s.replica()
                    .conn()
                    .pragma_update(None, "synchronous", &mode)?)
            })
            .unwrap();
    }
    let now = chrono::Utc::now().timestamp_millis();
    let tokens = state
        .db()
        .write(|store| {
            let c = store.tables();
            accounts::upsert_grid(
                c,
                &Grid {
                    id: "g1".into(),
                    name: "一网格".into(),
                    community: String::new(),
                    subdistrict: String::new(),
                },
            )?;
            accounts::create_user(c, "boss", "boss", Role::Admin, "password1", 0)?;
            (0..DEVICES)
                .map(|d| {
                    let user = format!("worker-{d}");
                    accounts::create_user(c, &user, &user, Role::Worker, "password1", 0)?;
                    accounts::set_areas(
                        c,
                        &user,
                        &Areas {
                            grids: vec!["g1".into()],
                            ..Areas::default()
                        },
                    )?;
                    accounts::issue_token(c, &user, &DeviceId(format!("device-{d:02}")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    // The premises the workload edits, in g1, from an admin's device.
    let seed: Vec<Op> = (0..premises)
        .map(|p| {
            let mut f = PremisesFields::new(format!("店{p}"), "幸福路", PremisesKind::Retail);
            f.grid_id = Some("g1".into());
            Op {
                device: DeviceId::from("seeder"),
                seq: p as u64 + 1,
                hlc: Hlc::new(now as u64 - 60_000, p as u16),
                author: UserId::from("boss"),
                schema: SCHEMA_VERSION,
                wall_ms: now,
                body: OpBody::PremisesPatch(PremisesPatch {
                    premises_id: PremisesId(format!("p-{p:04}")),
                    fields: f.to_registers(),
                }),
            }
        })
        .collect();
    let caller = Caller {
        user: UserId::from("boss"),
        role: Role::Admin,
        device: DeviceId::from("seeder"),
    };
    state
        .db()
        .write(|s| sync::push_batch(s, &caller, &seed, None, now, 3_600_000))
        .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(axum::serve(listener, app(state.clone())).into_future());
    let mut urls = vec![url.clone()];
    let mut others = Vec::new();
    for i in 1..instances {
        let other = AppState::open(&dir.path().join(format!("i{i}")), config.clone()).unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        rt.spawn(axum::serve(listener, app(other.clone())).into_future());
        others.push(other);
    }
    Bench {
        _dir: dir,
        state,
        url,
        urls,
        _others: others,
        rt,
        tokens,
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The workload as 20 devices' ops, stamped with today's clock so none is quarantined.
fn workload(inspection_share: f64, total: usize) -> Vec<Vec<Op>> {
    let spec = WorkloadSpec {
        devices: DEVICES,
        ops: total,
        inspection_share,
        ..WorkloadSpec::default()
    };
    let mut ops = generate(&spec);
    let now = chrono::Utc::now().timestamp_millis() as u64;
    for (i, op) in ops.iter_mut().enumerate() {
        op.hlc = Hlc::new(now - 30_000 + i as u64 / 16, 0);
        op.wall_ms = (now - 30_000) as i64;
    }
    let mut per_device: Vec<Vec<Op>> = vec![Vec::new(); DEVICES];
    for op in ops {
        let d: usize = op.device.as_str()["device-".len()..].parse().unwrap();
        per_device[d].push(op);
    }
    per_device
}

/// The server's share alone: checks, apply and index of parsed batches, no HTTP or JSON.
/// One batch after the other (one commit each), or `grouped`: one thread per device, and the
/// writes queued while the writer is busy commit together (as the push handler does).
fn push_in_process(label: &str, inspection_share: f64, total: usize, grouped: bool) {
    let bench = server(1000);
    let batches: Vec<(usize, Vec<Op>)> = workload(inspection_share, total)
        .into_iter()
        .enumerate()
        .flat_map(|(d, ops)| {
            ops.chunks(BATCH)
                .map(|c| (d, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    let caller = |d: usize| Caller {
        user: UserId(format!("worker-{d}")),
        role: Role::Worker,
        device: DeviceId(format!("device-{d:02}")),
    };
    // Each device's batches, prepared before the clock starts.
    let mut per_device: Vec<Vec<Vec<Op>>> = vec![Vec::new(); DEVICES];
    if grouped {
        for (d, ops) in &batches {
            per_device[*d].push(ops.clone());
        }
    }
    let started = Instant::now();
    if grouped {
        let db = bench.state.db();
        std::thread::scope(|s| {
            for (d, mine) in per_device.into_iter().enumerate() {
                s.spawn(move || {
                    for ops in mine {
                        let caller = caller(d);
                        db.write_grouped(move |s| {
                            sync::push_batch(s, &caller, &ops, None, now, 3_600_000)
                        })
                        .unwrap();
                    }
                });
            }
        });
    } else {
        for (d, ops) in &batches {
            let caller = caller(*d);
            bench
                .state
                .db()
                .write(|s| sync::push_batch(s, &caller, ops, None, now, 3_600_000))
                .unwrap();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let held = bench
        .state
        .db()
        .write(|s| Ok(s.replica().op_count()?))
        .unwrap();
    assert_eq!(held, total + 1000, "every op stored once");
    let how = if grouped {
        "20 threads, group commit"
    } else {
        "one commit per batch"
    };
    println!(
        "push_batch in process ({how}), {label}: {total} ops in {secs:.2} s = {:.0} ops/s",
        total as f64 / secs
    );
}

/// Pushes the workload with one thread per device; returns ops/s, raw and gzip bytes per op.
fn push_throughput(label: &str, inspection_share: f64, total: usize) {
    let bench = server(1000);
    let per_device = workload(inspection_share, total);
    let (mut raw_bytes, mut wire_bytes) = (0usize, 0usize);
    let bodies: Vec<Vec<Vec<u8>>> = per_device
        .iter()
        .map(|ops| {
            ops.chunks(BATCH)
                .map(|chunk| {
                    let json = serde_json::to_vec(&PushRequest {
                        ops: chunk.to_vec(),
                        pulled_to: None,
                    })
                    .unwrap();
                    let gz = gzip(&json);
                    raw_bytes += json.len();
                    wire_bytes += gz.len();
                    gz
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for (d, batches) in bodies.iter().enumerate() {
            let url = bench.urls[d % bench.urls.len()].clone();
            let token = bench.tokens[d].clone();
            s.spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(300))
                    .build()
                    .unwrap();
                for body in batches {
                    let res = http
                        .post(format!("{url}/v1/sync/push"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .header("content-encoding", "gzip")
                        .body(body.clone())
                        .send()
                        .unwrap();
                    assert!(
                        res.status().is_success(),
                        "{}",
                        res.text().unwrap_or_default()
                    );
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let held = bench
        .state
        .db()
        .write(|s| Ok(s.replica().op_count()?))
        .unwrap();
    assert_eq!(held, total + 1000, "every op stored once");
    let (commits, writes) = bench.state.db().group_stats();
    println!(
        "push {label}: {total} ops from {DEVICES} devices in {secs:.2} s = {:.0} ops/s; \
         {:.1} bytes/op as JSON, {:.1} bytes/op gzipped; {:.1} pushes per commit",
        total as f64 / secs,
        raw_bytes as f64 / total as f64,
        wire_bytes as f64 / total as f64,
        writes as f64 / commits.max(1) as f64,
    );
}

/// A new phone's first sync: the server holds the workload (stored in process beforehand); a
/// fresh phone store on a file enrolls and pulls everything over HTTP with the real client
/// (pages of 5,000, one transaction each).
fn first_sync(label: &str, inspection_share: f64, total: usize) {
    let bench = server(1000);
    let now = chrono::Utc::now().timestamp_millis();
    for (d, ops) in workload(inspection_share, total).into_iter().enumerate() {
        let caller = Caller {
            user: UserId(format!("worker-{d}")),
            role: Role::Worker,
            device: DeviceId(format!("device-{d:02}")),
        };
        for chunk in ops.chunks(BATCH) {
            bench
                .state
                .db()
                .write(|s| sync::push_batch(s, &caller, chunk, None, now, 3_600_000))
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Store::open(dir.path().join("phone.sqlite3")).unwrap();
    let client = SyncClient::new(&bench.url, SyncOptions::default()).unwrap();
    client
        .enroll(&mut phone, "worker-0", "password1", Some("bench"))
        .unwrap();
    let started = Instant::now();
    client.sync(&mut phone, &mut |_| {}).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let held = phone.op_count().unwrap();
    assert_eq!(held, total + 1000, "the phone holds every op");
    assert_eq!(
        phone.digest().unwrap(),
        bench
            .state
            .db()
            .write(|s| Ok(s.replica().digest()?))
            .unwrap()
    );
    println!(
        "first sync of a new phone, {label}: {held} ops in {secs:.2} s = {:.0} ops/s",
        held as f64 / secs
    );
    // SYNC_SERVE=FILE keeps this server up for the field app's benchmark
    // (server/tests/browser/bench_field_app.py), on the same data: its address goes in FILE,
    // and it stops when FILE is removed.
    if let Ok(file) = std::env::var("SYNC_SERVE") {
        std::fs::write(&file, &bench.url).unwrap();
        println!("serving {} until {file} is removed", bench.url);
        while std::path::Path::new(&file).exists() {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// 1,000 clients each pull (with nothing new) several times at once; latency percentiles.
fn pull_latency(clients: usize, rounds: usize) {
    let bench = server(1000);
    let end = bench
        .state
        .db()
        .write(|s| Ok(s.replica().op_count()? as u64))
        .unwrap();
    let tokens: Vec<String> = bench
        .state
        .db()
        .write(|store| {
            (0..clients)
                .map(|i| {
                    accounts::issue_token(
                        store.tables(),
                        "worker-0",
                        &DeviceId(format!("puller-{i}")),
                    )
                })
                .collect()
        })
        .unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let urls: Vec<String> = bench
        .urls
        .iter()
        .map(|u| format!("{u}/v1/sync/pull?after={end}"))
        .collect();
    let mut latencies: Vec<Duration> = bench.rt.block_on(async {
        // Warm the connections first.
        let warm = tokens.iter().enumerate().map(|(i, t)| {
            let req = http.get(&urls[i % urls.len()]).bearer_auth(t);
            async move { req.send().await.unwrap().bytes().await.unwrap() }
        });
        futures_join_all(warm).await;
        let tasks = tokens.iter().enumerate().map(|(i, t)| {
            let (http, url, t) = (http.clone(), urls[i % urls.len()].clone(), t.clone());
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    let at = Instant::now();
                    let res = http.get(&url).bearer_auth(&t).send().await.unwrap();
                    assert!(res.status().is_success());
                    let body = res.bytes().await.unwrap();
                    assert!(body.starts_with(br#"{"ops":[]"#));
                    out.push(at.elapsed());
                }
                out
            })
        });
        let mut all = Vec::new();
        for t in tasks.collect::<Vec<_>>() {
            all.extend(t.await.unwrap());
        }
        all
    });
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "pull with nothing new, {clients} concurrent clients x {rounds} ({}): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        setups()[0],
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}

/// 1,000 phones each push `pushes` small batches (`ops` premises edits each) at once, as in a
/// morning's sync: pushes per second and each push's latency.
fn push_many(clients: usize, pushes: usize, ops: usize, setup: Setup) -> f64 {
    let bench = server_on(1000, setup);
    let tokens: Vec<String> = bench
        .state
        .db()
        .tables(|tables| {
            (0..clients)
                .map(|i| {
                    accounts::issue_token(
                        tables,
                        &format!("worker-{}", i % DEVICES),
                        &DeviceId(format!("phone-{i:04}")),
                    )
                })
                .collect()
        })
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let bodies: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|i| {
            (0..pushes)
                .map(|k| {
                    let batch: Vec<Op> = (0..ops)
                        .map(|j| {
                            let seq = (k * ops + j) as u64 + 1;
                            let premises = PremisesId(format!("p-{:04}", (i * 7 + j) % 1000));
                            Op {
                                device: DeviceId(format!("phone-{i:04}")),
                                seq,
                                hlc: Hlc::new(now - 20_000 + seq, i as u16),
                                author: UserId(format!("worker-{}", i % DEVICES)),
                                schema: SCHEMA_VERSION,
                                wall_ms: now as i64,
                                body: OpBody::PremisesPatch(PremisesPatch {
                                    premises_id: premises,
                                    fields: [(
                                        "phone".to_owned(),
                                        serde_json::json!(format!("138{i:04}{seq:04}")),
                                    )]
                                    .into_iter()
                                    .collect(),
                                }),
                            }
                        })
                        .collect();
                    serde_json::to_vec(&PushRequest {
                        ops: batch,
                        pulled_to: None,
                    })
                    .unwrap()
                })
                .collect()
        })
        .collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let urls: Vec<String> = bench
        .urls
        .iter()
        .map(|u| format!("{u}/v1/sync/push"))
        .collect();
    // Each set-up starts with PostgreSQL's dirty pages written out, so that none pays for a
    // checkpoint the WAL of the one before brought on.
    if let Ok(url) = std::env::var("SYNC_DATABASE") {
        let mut admin = xuncha_server::postgres::connect(&url, "bench").unwrap();
        admin.batch_execute("CHECKPOINT").unwrap();
    }
    let started = Instant::now();
    let mut latencies: Vec<Duration> = bench.rt.block_on(async {
        let tasks: Vec<_> = bodies
            .into_iter()
            .zip(tokens)
            .enumerate()
            .map(|(i, (mine, token))| {
                let (http, url) = (http.clone(), urls[i % urls.len()].clone());
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(mine.len());
                    for body in mine {
                        let at = Instant::now();
                        let res = http
                            .post(&url)
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert!(res.status().is_success());
                        res.bytes().await.unwrap();
                        out.push(at.elapsed());
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let secs = started.elapsed().as_secs_f64();
    let held = bench
        .state
        .db()
        .write(|s| Ok(s.replica().op_count()?))
        .unwrap();
    assert_eq!(held, 1000 + clients * pushes * ops, "every op stored once");
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let rate = (clients * pushes) as f64 / secs;
    println!(
        "push, {clients} phones x {pushes} pushes of {ops} ops ({}): {:.0} pushes/s ({:.0} ops/s); \
         a push p50 {:.0} ms, p99 {:.0} ms",
        setup,
        rate,
        (clients * pushes * ops) as f64 / secs,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    rate
}

/// push_many on each set-up of SYNC_INSTANCES in turn, SYNC_ROUNDS times (default once),
/// SYNC_PUSHES pushes per phone (default 2). With several set-ups, each round's ratio of each
/// set-up's throughput to each earlier one's, and the median of those ratios: this machine's speed
/// drifts by a quarter over minutes, so only set-ups measured side by side are compared.
fn push_many_rounds(full: bool) {
    let setups = setups();
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .map(|v| v.parse().unwrap())
            .unwrap_or(default)
    };
    let (rounds, pushes) = (env("SYNC_ROUNDS", 1), env("SYNC_PUSHES", 2));
    let clients = if full { 1000 } else { 50 };
    let rates: Vec<Vec<f64>> = (0..rounds)
        .map(|_| {
            setups
                .iter()
                .map(|&setup| push_many(clients, pushes, 20, setup))
                .collect()
        })
        .collect();
    for later in 1..setups.len() {
        for earlier in 0..later {
            let mut r: Vec<f64> = rates.iter().map(|at| at[later] / at[earlier]).collect();
            r.sort_by(f64::total_cmp);
            let shown: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
            println!(
                "push, {} against {}: {}x in the {} rounds (sorted), median {:.2}x",
                setups[later],
                setups[earlier],
                shown.join(" "),
                r.len(),
                r[r.len() / 2],
            );
        }
    }
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

fn main() {
    xuncha_core::sync::client::install_tls_provider();
    // `cargo bench` passes --bench; `cargo test --benches` would not: then run a small smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("SYNC_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 160_000 } else { 4_000 });
    // SYNC_PARTS=push,in_process,first_sync,pull runs only those (default: all).
    let parts = std::env::var("SYNC_PARTS").unwrap_or_default();
    let run = |part: &str| parts.is_empty() || parts.split(',').any(|p| p == part);
    if run("push_many") {
        push_many_rounds(full);
    }
    if run("push") {
        push_throughput("premises edits only", 0.0, total);
        push_throughput("80% edits + 20% inspections", 0.2, total);
    }
    if run("in_process") {
        for grouped in [false, true] {
            push_in_process("premises edits only", 0.0, total, grouped);
            push_in_process("80% edits + 20% inspections", 0.2, total, grouped);
        }
    }
    if run("first_sync") {
        first_sync("80% edits + 20% inspections", 0.2, total);
    }
    if run("pull") {
        pull_latency(if full { 1000 } else { 50 }, if full { 5 } else { 2 });
    }
}
