//! The PostgreSQL op log several instances share (server/src/postgres/log.rs), release build:
//! what a push costs in the database, beside the SQLite store doing the same batches.
//!
//! A push on PostgreSQL appends its ops under the log's lock (one lock, the end, the ops held,
//! one insert of the batch, a notification: seven round trips with BEGIN and COMMIT whatever
//! the batch size), then each instance applies them to its own replica with the core. So the
//! figures here are the two halves: appends per second across every instance together (the
//! lock serialises them), and the core applying the same batches to a SQLite replica.
//!
//! `XUNCHA_PG_KEEP=1 scripts/pg-test` starts a throwaway PostgreSQL and prints its URL; then
//! `XUNCHA_BENCH_DATABASE=postgres://... cargo bench -p xuncha-e2e --bench shared_log`.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a bench binary: panics are failures

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use xuncha_core::op::Op;
use xuncha_core::store::{Store, StoreOptions};
use xuncha_core::workload::{WorkloadSpec, generate};
use xuncha_server::postgres::log::{self, Entry};
use xuncha_server::postgres::{self as pg, follow};

/// Phones, and ops per push (a morning's sync of a dozen visits and edits).
const PHONES: usize = 1_000;
const BATCH: usize = 20;
const PUSHES_PER_PHONE: usize = 2;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Every phone's ops in pushes of `BATCH`, each phone's in seq order.
fn pushes() -> Vec<Vec<Op>> {
    let ops = generate(&WorkloadSpec {
        devices: PHONES,
        ops: PHONES * BATCH * PUSHES_PER_PHONE,
        premises: 20_000,
        ..WorkloadSpec::default()
    });
    let mut by_device: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in ops {
        by_device
            .entry(op.device.as_str().to_owned())
            .or_default()
            .push(op);
    }
    // Round by round: every phone's first push, then every phone's second.
    let mut rounds: Vec<Vec<Vec<Op>>> = vec![Vec::new(); PUSHES_PER_PHONE];
    for mut ops in by_device.into_values() {
        ops.sort_by_key(|op| op.seq);
        for (round, chunk) in ops.chunks(BATCH).enumerate() {
            rounds[round.min(PUSHES_PER_PHONE - 1)].push(chunk.to_vec());
        }
    }
    rounds.into_iter().flatten().collect()
}

/// A fresh, migrated database for one measurement.
fn fresh(base: &str, name: &str) -> String {
    let url = pg::fresh_database(base, name).unwrap();
    pg::migrate(&mut pg::connect(&url, "bench").unwrap()).unwrap();
    url
}

/// Appends every push from `instances` x `connections` writers, `group` pushes per append (an
/// instance committing the pushes that arrived together at once, as the SQLite server's group
/// commit does); returns pushes per second and the latencies of the appends.
fn append_all(
    url: &str,
    pushes: &[Vec<Op>],
    instances: usize,
    connections: usize,
    group: usize,
) -> (f64, Vec<Duration>) {
    let queue = Arc::new(Mutex::new(
        pushes
            .iter()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>(),
    ));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(pushes.len())));
    let start = Instant::now();
    thread::scope(|scope| {
        for i in 0..instances * connections {
            let (queue, latencies) = (queue.clone(), latencies.clone());
            scope.spawn(move || {
                let mut client = pg::connect(url, &format!("instance-{}", i % instances)).unwrap();
                loop {
                    let taken: Vec<&Vec<Op>> = {
                        let mut queue = queue.lock().unwrap();
                        let keep = queue.len().saturating_sub(group);
                        queue.split_off(keep)
                    };
                    if taken.is_empty() {
                        break;
                    }
                    let group: Vec<Vec<Entry<'_>>> = taken
                        .into_iter()
                        .map(|push| {
                            push.iter()
                                .map(|op| Entry {
                                    op,
                                    premises_id: None,
                                    grid_id: Some("G1"),
                                    aside: None,
                                    received_ms: 0,
                                    refile: false,
                                    let_through: false,
                                })
                                .collect()
                        })
                        .collect();
                    let group: Vec<&[Entry<'_>]> = group.iter().map(Vec::as_slice).collect();
                    let t = Instant::now();
                    let mut tx = client.transaction().unwrap();
                    for outcome in log::append_group_in(&mut tx, &group).unwrap() {
                        outcome.unwrap();
                    }
                    tx.commit().unwrap();
                    latencies.lock().unwrap().push(t.elapsed());
                }
            });
        }
    });
    let rate = pushes.len() as f64 / start.elapsed().as_secs_f64();
    let mut latencies = Arc::try_unwrap(latencies).unwrap().into_inner().unwrap();
    latencies.sort();
    (rate, latencies)
}

fn main() {
    let Ok(base) = std::env::var("XUNCHA_BENCH_DATABASE") else {
        println!(
            "set XUNCHA_BENCH_DATABASE=postgres://.../postgres (XUNCHA_PG_KEEP=1 scripts/pg-test starts one)"
        );
        return;
    };
    let pushes = pushes();
    let ops: usize = pushes.iter().map(Vec::len).sum();
    println!(
        "{} pushes of {BATCH} ops from {PHONES} phones ({ops} ops)",
        pushes.len()
    );

    let mut one_instance = 0.0;
    for (instances, connections, group) in [(1, 1, 1), (1, 8, 1), (2, 8, 1), (1, 8, 8), (2, 8, 8)] {
        let url = fresh(
            &base,
            &format!("bench_log_{instances}_{connections}_{group}"),
        );
        let (rate, lat) = append_all(&url, &pushes, instances, connections, group);
        if (instances, connections) == (1, 8) {
            one_instance = rate;
        }
        println!(
            "append, {instances} instance(s) x {connections} connection(s), {group} push(es) per append: {rate:7.0} pushes/s ({:7.0} ops/s)  p50 {:6.2} ms  p95 {:6.2} ms{}",
            rate * BATCH as f64,
            percentile(&lat, 0.5),
            percentile(&lat, 0.95),
            if instances == 2 {
                format!("  ({:.2}x one instance)", rate / one_instance)
            } else {
                String::new()
            },
        );
    }

    // Pulls from the filled log: a phone's page of 500 after a random cursor.
    let url = pg::url_with_database(&base, "bench_log_2_8_1");
    let mut client = pg::connect(&url, "puller").unwrap();
    let end = log::end(&mut client).unwrap().0;
    let mut pulls = Vec::new();
    let mut rng = xuncha_core::workload::Rng::new(3);
    for _ in 0..200 {
        let cursor = rng.below(end as usize) as i64;
        let t = Instant::now();
        let page = log::after(&mut client, cursor, 500).unwrap();
        pulls.push(t.elapsed());
        assert!(!page.is_empty());
    }
    pulls.sort();
    let (log_bytes, rows): (i64, i64) = {
        let r = client
            .query_one(
                "SELECT pg_total_relation_size('ops'), (SELECT COUNT(*) FROM ops)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    println!(
        "the log on disk: {:.1} MB for {rows} ops ({} bytes per op, indexes included)",
        log_bytes as f64 / 1e6,
        log_bytes / rows.max(1)
    );
    println!(
        "pull a page of 500 from {end} ops: p50 {:6.2} ms  p95 {:6.2} ms",
        percentile(&pulls, 0.5),
        percentile(&pulls, 0.95)
    );

    // The other half of a push on PostgreSQL, and the whole of one on SQLite's critical path:
    // the core applying the same batches to a replica file, one commit each.
    let dir = tempfile::tempdir().unwrap();
    let mut replica =
        Store::open_with(dir.path().join("replica.sqlite"), StoreOptions::default()).unwrap();
    replica
        .conn()
        .pragma_update(None, "synchronous", "FULL")
        .unwrap();
    let start = Instant::now();
    for batch in &pushes {
        replica.apply_ops(batch).unwrap();
    }
    let rate = pushes.len() as f64 / start.elapsed().as_secs_f64();
    println!(
        "SQLite replica, the core applying each push (one commit each): {rate:7.0} pushes/s ({:7.0} ops/s)",
        rate * BATCH as f64
    );

    // A new instance's replica catching up on the whole log.
    let mut fresh_replica =
        Store::open_with(dir.path().join("follower.sqlite"), StoreOptions::default()).unwrap();
    fresh_replica
        .conn()
        .execute_batch(
            "CREATE TABLE server_log_follow (log_id TEXT NOT NULL, position INTEGER NOT NULL)",
        )
        .unwrap();
    let start = Instant::now();
    let reached = follow::catch_up(
        &mut client,
        &mut fresh_replica,
        follow::PAGE,
        follow::Projections::Leave,
    )
    .unwrap();
    let took = start.elapsed().as_secs_f64();
    assert_eq!(reached, end);
    println!(
        "a new instance's replica following the whole log: {:.1} s ({:.0} ops/s)",
        took,
        end as f64 / took
    );
    assert_eq!(fresh_replica.digest().unwrap(), replica.digest().unwrap());

    // The same, also writing the projection tables (premises, inspections, hazards) as it goes.
    let mut writer = Store::open_with(
        dir.path().join("projecting.sqlite"),
        StoreOptions::default(),
    )
    .unwrap();
    writer
        .conn()
        .execute_batch(
            "CREATE TABLE server_log_follow (log_id TEXT NOT NULL, position INTEGER NOT NULL)",
        )
        .unwrap();
    let start = Instant::now();
    follow::catch_up(
        &mut client,
        &mut writer,
        follow::PAGE,
        follow::Projections::Write,
    )
    .unwrap();
    let took = start.elapsed().as_secs_f64();
    let hazards: i64 = client
        .query_one("SELECT COUNT(*) FROM hazards", &[])
        .unwrap()
        .get(0);
    println!(
        "the same, writing the projection tables too: {:.1} s ({:.0} ops/s; {hazards} hazards, {} premises rows)",
        took,
        end as f64 / took,
        client
            .query_one("SELECT COUNT(*) FROM premises", &[])
            .unwrap()
            .get::<_, i64>(0)
    );
}
