//! The PostgreSQL backend against a real PostgreSQL server: the shared op log (positions in
//! commit order, idempotent appends racing from several instances, followers told of appends)
//! and jobs that run once per period across instances (a run or a leader killed midway).
//!
//! `scripts/pg-test` starts a throwaway cluster and sets `XUNCHA_TEST_DATABASE` (a URL to a
//! database the tests may create databases from). Without it these tests say so and pass,
//! unless `XUNCHA_TEST_DATABASE_REQUIRED` is set, as pg-test does.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use xuncha_core::model::PremisesFields;
use xuncha_core::op::Op;
use xuncha_core::store::Store;
use xuncha_core::sync::SetAside;
use xuncha_server::db::Db;
use xuncha_server::error::ApiError;
use xuncha_server::postgres::log::{self, Entry};
use xuncha_server::postgres::{self as pg, Client, PgError, follow, jobs};

/// A database of its own for one test (see `common::pg_database`).
fn database(test: &str) -> Option<String> {
    common::pg_database(test)
}

fn connect(url: &str, instance: &str) -> Client {
    pg::connect(url, instance).unwrap()
}

/// Realistic ops: `shops` shops added and inspected on one phone.
fn phone_ops(device: &str, shops: usize) -> Vec<Op> {
    let mut phone = common::phone(device, "w1", common::now_ms());
    for _ in 0..shops {
        common::shop_with_inspection(&mut phone, "G1");
    }
    phone.pending_ops(10_000).unwrap()
}

fn entries(ops: &[Op]) -> Vec<Entry<'_>> {
    ops.iter()
        .map(|op| Entry {
            op,
            premises_id: None,
            grid_id: Some("G1"),
            aside: None,
            received_ms: 1,
            refile: false,
            let_through: false,
        })
        .collect()
}

/// Whether the session `pid` is waiting for a lock.
fn waiting_for_lock(admin: &mut Client, pid: i32) -> bool {
    admin
        .query_one(
            "SELECT COALESCE(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .unwrap()
        .get(0)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

#[test]
fn migrations_apply_once_even_when_instances_start_together() {
    let Some(url) = database("migrate") else {
        return;
    };
    // `database` migrated it: nothing is left to apply.
    assert!(pg::migrate(&mut connect(&url, "a")).unwrap().is_empty());

    // Two instances starting on an empty database at once: one applies, the other waits and
    // finds nothing to do.
    let mut admin = connect(&url, "admin");
    admin
        .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let applied: Vec<usize> = (0..2)
        .map(|i| {
            let (url, barrier) = (url.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = connect(&url, &format!("i{i}"));
                barrier.wait();
                pg::migrate(&mut c).unwrap().len()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        applied.iter().sum::<usize>(),
        pg::MIGRATIONS.len(),
        "{applied:?}"
    );

    // A database a newer build migrated is refused, not written to.
    admin
        .execute(
            "UPDATE server_meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
    match pg::migrate(&mut connect(&url, "old")) {
        Err(PgError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// The classic trap, shown on a plain sequence, then the log's answer to it: transaction A
/// takes a number, B takes the next and commits first; a reader between the two commits
/// must not move its cursor past A's op.
#[test]
fn a_pull_never_skips_an_op_that_commits_later() {
    let Some(url) = database("interleave") else {
        return;
    };
    let mut admin = connect(&url, "admin");

    // A sequence numbered at insert: the reader skips A's op for good.
    admin
        .batch_execute("CREATE TABLE naive (n BIGSERIAL PRIMARY KEY, what TEXT NOT NULL)")
        .unwrap();
    let mut a = connect(&url, "a");
    let mut b = connect(&url, "b");
    let mut ta = a.transaction().unwrap();
    ta.execute("INSERT INTO naive (what) VALUES ('a')", &[])
        .unwrap();
    b.execute("INSERT INTO naive (what) VALUES ('b')", &[])
        .unwrap();
    let seen: Vec<i64> = admin
        .query("SELECT n FROM naive WHERE n > 0 ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seen, [2], "the reader sees B's op, numbered after A's");
    ta.commit().unwrap();
    let later: Vec<i64> = admin
        .query("SELECT n FROM naive WHERE n > 2 ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        later.is_empty(),
        "with a sequence, A's op (1) is never pulled"
    );

    // The log: A appends and has not committed; B's append waits for it.
    let ops_a = phone_ops("phone-a", 1);
    let ops_b = phone_ops("phone-b", 1);
    let mut ta = a.transaction().unwrap();
    let appended_a = log::append_in(&mut ta, &entries(&ops_a)).unwrap();
    assert_eq!(appended_a.positions.first(), Some(&Some(1)));
    let b_pid = pid(&mut b);
    let (tx, rx) = mpsc::channel();
    let sent_b = ops_b.clone();
    let racing = thread::spawn(move || {
        let appended = log::append(&mut b, &entries(&sent_b)).unwrap();
        tx.send(()).unwrap();
        appended
    });
    wait_until("B waits for A's append", || {
        waiting_for_lock(&mut admin, b_pid)
    });
    assert!(rx.try_recv().is_err(), "B cannot append before A commits");
    assert!(
        log::after(&mut admin, 0, 100).unwrap().is_empty(),
        "a reader sees nothing of the log while A is open"
    );
    ta.commit().unwrap();
    let appended_b = racing.join().unwrap();
    let first_b = ops_a.len() as i64 + 1;
    assert_eq!(appended_b.positions.first(), Some(&Some(first_b)));

    // Every position the reader meets is final: pulled in pages from cursor 0, each op once.
    let mut cursor = 0;
    let mut pulled = Vec::new();
    loop {
        let page = log::after(&mut admin, cursor, 3).unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.position;
        pulled.extend(page.into_iter().map(|l| l.op));
    }
    let expected: Vec<Op> = ops_a.iter().chain(&ops_b).cloned().collect();
    assert_eq!(pulled, expected);
}

#[test]
fn appends_racing_on_two_instances_keep_every_op_once_and_in_commit_order() {
    let Some(url) = database("race") else {
        return;
    };
    const PHONES: usize = 6;
    // Each phone pushes its ops in batches, through either instance, and sends every batch
    // twice (a retry after a lost answer), the second time through the other instance.
    let phones: Vec<Vec<Op>> = (0..PHONES)
        .map(|i| phone_ops(&format!("phone-{i}"), 4))
        .collect();
    let total: usize = phones.iter().map(Vec::len).sum();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // A reader pulling all the while, as phones do, moving its cursor to the last op seen.
    let reader = {
        let (url, stop) = (url.clone(), stop.clone());
        thread::spawn(move || {
            let mut c = connect(&url, "reader");
            let mut cursor = 0;
            let mut seen = Vec::new();
            loop {
                let finished = stop.load(std::sync::atomic::Ordering::SeqCst);
                let page = log::after(&mut c, cursor, 7).unwrap();
                if let Some(last) = page.last() {
                    cursor = last.position;
                }
                let empty = page.is_empty();
                seen.extend(page);
                if finished && empty {
                    return seen;
                }
            }
        })
    };
    let pushers: Vec<_> = phones
        .into_iter()
        .enumerate()
        .map(|(i, ops)| {
            let url = url.clone();
            thread::spawn(move || {
                let mut instances = [
                    connect(&url, &format!("one-{i}")),
                    connect(&url, &format!("two-{i}")),
                ];
                for (n, batch) in ops.chunks(3).enumerate() {
                    let first = (i + n) % 2;
                    log::append(&mut instances[first], &entries(batch)).unwrap();
                    let again = log::append(&mut instances[1 - first], &entries(batch)).unwrap();
                    assert!(
                        again.positions.iter().all(Option::is_none),
                        "a resend adds nothing"
                    );
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.join().unwrap();

    // Positions 1..=total, each once, and every op of every phone once, in its seq order.
    let positions: Vec<i64> = seen.iter().map(|l| l.position).collect();
    assert_eq!(positions, (1..=total as i64).collect::<Vec<_>>());
    let mut by_device: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for l in &seen {
        by_device
            .entry(l.op.device.as_str().to_owned())
            .or_default()
            .push(l.op.seq);
    }
    assert_eq!(by_device.len(), PHONES);
    for seqs in by_device.values() {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }
    // The chain runs unbroken over the log, as the SQLite server computes it.
    let mut chain = Vec::new();
    for l in &seen {
        chain = xuncha_server::db::chain_next(
            &chain,
            l.op.device.as_str(),
            l.op.seq as i64,
            l.op.hlc.as_u64() as i64,
        );
        assert_eq!(l.chain, chain, "chain at {}", l.position);
    }
    let (end, check) = log::end(&mut connect(&url, "end")).unwrap();
    assert_eq!(end, total as i64);
    assert_eq!(check, Some(hex::encode(&chain)));
}

#[test]
fn a_resent_op_is_skipped_and_another_op_under_its_seq_refused() {
    let Some(url) = database("resend") else {
        return;
    };
    let mut c = connect(&url, "one");
    let ops = phone_ops("phone-r", 1);
    let first = log::append(&mut c, &entries(&ops)).unwrap();
    assert!(first.positions.iter().all(Option::is_some));
    // The same batch with itself repeated inside: nothing new.
    let twice: Vec<Op> = ops.iter().chain(&ops).cloned().collect();
    let again = log::append(&mut c, &entries(&twice)).unwrap();
    assert!(again.positions.iter().all(Option::is_none));
    assert_eq!(again.end, first.end);

    // Another op under a held (device, seq): refused, and the batch it came in adds nothing.
    let mut forged = ops[0].clone();
    forged.wall_ms += 1;
    let fresh = phone_ops("phone-s", 1);
    let mixed: Vec<Op> = fresh.iter().cloned().chain([forged]).collect();
    match log::append(&mut c, &entries(&mixed)) {
        Err(PgError::OpConflict { device, seq }) => {
            assert_eq!((device.as_str(), seq), ("phone-r", ops[0].seq));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Two different ops under one (device, seq) inside one batch: refused too.
    let mut other = fresh[0].clone();
    other.wall_ms += 1;
    assert!(matches!(
        log::append(&mut c, &entries(&[fresh[0].clone(), other])),
        Err(PgError::OpConflict { .. })
    ));
    assert_eq!(log::end(&mut c).unwrap().0, first.end);
}

/// Pushes that arrived together are appended at once, each all or nothing: one carrying a
/// forged op is refused alone, the others are stored, and an op two pushes carry is stored once.
#[test]
fn a_group_of_pushes_refuses_only_the_push_that_conflicts() {
    let Some(url) = database("group") else {
        return;
    };
    let mut c = connect(&url, "one");
    let held = phone_ops("phone-h", 1);
    log::append(&mut c, &entries(&held)).unwrap();
    let mut forged = held[0].clone();
    forged.wall_ms += 1;
    let a = phone_ops("phone-a", 1);
    let b = phone_ops("phone-b", 1);
    // The bad push also carries a new op of its own, which must not be stored either.
    let bad: Vec<Op> = vec![phone_ops("phone-x", 1)[0].clone(), forged];
    let (ea, eb, ebad) = (entries(&a), entries(&b), entries(&bad));
    let eb_again = entries(&b[..1]);
    let mut tx = c.transaction().unwrap();
    let outcomes = log::append_group_in(&mut tx, &[&ea, &ebad, &eb, &eb_again]).unwrap();
    tx.commit().unwrap();
    assert!(matches!(outcomes[1], Err(PgError::OpConflict { .. })));
    let first = held.len() as i64;
    let got_a = outcomes[0].as_ref().unwrap();
    assert_eq!(
        got_a.positions,
        (1..=a.len() as i64)
            .map(|i| Some(first + i))
            .collect::<Vec<_>>()
    );
    let got_b = outcomes[2].as_ref().unwrap();
    assert!(got_b.positions.iter().all(Option::is_some));
    assert_eq!(
        outcomes[3].as_ref().unwrap().positions,
        [None],
        "carried twice, stored once"
    );
    let stored: Vec<String> = log::after(&mut c, 0, 100)
        .unwrap()
        .into_iter()
        .map(|l| l.op.device.as_str().to_owned())
        .collect();
    assert_eq!(stored.len(), held.len() + a.len() + b.len());
    assert!(
        !stored.iter().any(|d| d == "phone-x"),
        "nothing of the refused push"
    );
}

#[test]
fn followers_hear_of_appends_that_commit_and_only_those() {
    let Some(url) = database("follow") else {
        return;
    };
    let mut follower = connect(&url, "two");
    log::listen(&mut follower).unwrap();
    let mut writer = connect(&url, "one");
    let ops = phone_ops("phone-f", 1);

    // A rolled-back append announces nothing.
    let mut tx = writer.transaction().unwrap();
    log::append_in(&mut tx, &entries(&ops)).unwrap();
    tx.rollback().unwrap();
    assert_eq!(
        log::wait_for_append(&mut follower, Duration::from_millis(300)).unwrap(),
        None
    );

    let appended = log::append(&mut writer, &entries(&ops)).unwrap();
    let heard = log::wait_for_append(&mut follower, Duration::from_secs(10)).unwrap();
    assert_eq!(heard, Some(appended.end));
    // The follower reads what it heard of from its own position.
    assert_eq!(log::after(&mut follower, 0, 100).unwrap().len(), ops.len());
    // A resend appends nothing and announces nothing.
    log::append(&mut writer, &entries(&ops)).unwrap();
    assert_eq!(
        log::wait_for_append(&mut follower, Duration::from_millis(300)).unwrap(),
        None
    );
}

#[test]
fn a_period_runs_once_across_instances_and_again_when_its_run_dies() {
    let Some(url) = database("jobs") else {
        return;
    };
    let mut admin = connect(&url, "admin");
    admin
        .batch_execute("CREATE TABLE digests (period TEXT NOT NULL, instance TEXT NOT NULL)")
        .unwrap();
    let work = |instance: &'static str, period: &'static str| {
        move |tx: &mut pg::Transaction<'_>| -> Result<(), PgError> {
            tx.execute(
                "INSERT INTO digests (period, instance) VALUES ($1, $2)",
                &[&period, &instance],
            )?;
            Ok(())
        }
    };

    // Four instances race for one period: one runs it.
    let barrier = Arc::new(Barrier::new(4));
    let ran: Vec<bool> = ["i1", "i2", "i3", "i4"]
        .into_iter()
        .map(|instance| {
            let (url, barrier) = (url.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = connect(&url, instance);
                barrier.wait();
                jobs::run_once(
                    &mut c,
                    "digest",
                    "2026-12-01",
                    instance,
                    work(instance, "2026-12-01"),
                )
                .unwrap()
                .is_some()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(ran.iter().filter(|r| **r).count(), 1, "{ran:?}");
    let count: i64 = admin
        .query_one(
            "SELECT count(*) FROM digests WHERE period = '2026-12-01'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 1);

    // A run dies midway (its session killed while it works): the period is not lost; the
    // instance waiting on it runs it instead.
    let (pid_tx, pid_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let dying = {
        let url = url.clone();
        thread::spawn(move || {
            let mut c = connect(&url, "dying");
            jobs::run_once(&mut c, "digest", "2026-12-02", "dying", |tx| {
                tx.execute("INSERT INTO digests VALUES ('2026-12-02', 'dying')", &[])?;
                let me: i32 = tx.query_one("SELECT pg_backend_pid()", &[])?.get(0);
                pid_tx.send(me).unwrap();
                go_rx.recv().unwrap();
                tx.execute("SELECT 1", &[])?; // the session is gone by now
                Ok(())
            })
        })
    };
    let dying_pid = pid_rx.recv().unwrap();
    let mut taker = connect(&url, "taker");
    let taker_pid = pid(&mut taker);
    let taking = thread::spawn(move || {
        jobs::run_once(
            &mut taker,
            "digest",
            "2026-12-02",
            "taker",
            work("taker", "2026-12-02"),
        )
        .unwrap()
        .is_some()
    });
    wait_until("the second instance waits on the first's claim", || {
        waiting_for_lock(&mut admin, taker_pid)
    });
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&dying_pid])
        .unwrap();
    go_tx.send(()).unwrap();
    assert!(
        dying.join().unwrap().is_err(),
        "the killed run reports its failure"
    );
    assert!(
        taking.join().unwrap(),
        "the waiting instance ran the period"
    );
    let rows: Vec<String> = admin
        .query(
            "SELECT instance FROM digests WHERE period = '2026-12-02'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["taker"], "the dead run's work went with it");
    assert_eq!(
        jobs::ran_by(&mut admin, "digest", "2026-12-02")
            .unwrap()
            .as_deref(),
        Some("taker")
    );
    // And once run, the period is not run again by anyone.
    assert!(
        jobs::run_once(
            &mut admin,
            "digest",
            "2026-12-02",
            "late",
            work("late", "2026-12-02")
        )
        .unwrap()
        .is_none()
    );
}

/// The leader is a real process (psql) holding the job's lock; SIGKILL ends it, its session
/// ends with it, and another instance takes the lead.
#[test]
fn the_lead_passes_on_when_the_leader_is_killed() {
    let Some(url) = database("lead") else {
        return;
    };
    let (space, key) = jobs::lock_of("escalation");
    let mut leader = Command::new("psql")
        .args([url.as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql (postgresql-client) is needed for this test");
    {
        use std::io::Write;
        let stdin = leader.stdin.as_mut().unwrap();
        writeln!(stdin, "SELECT pg_advisory_lock({space}, {key});").unwrap();
        stdin.flush().unwrap();
    }
    let mut admin = connect(&url, "admin");
    wait_until("psql holds the lead", || {
        admin
            .query_one(
                "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND classid = $1::int::oid AND objid = $2::int::oid",
                &[&space, &key],
            )
            .unwrap()
            .get(0)
    });
    let mut follower = jobs::Leadership::new(connect(&url, "two"));
    assert!(!follower.try_lead("escalation").unwrap());
    assert!(follower.try_lead("digest").unwrap(), "other jobs are free");

    leader.kill().unwrap(); // SIGKILL
    leader.wait().unwrap();
    wait_until("the lead passes to the other instance", || {
        follower.try_lead("escalation").unwrap()
    });
    // Asking again while leading does not stack the lock: one resign frees it for a third.
    assert!(follower.try_lead("escalation").unwrap());
    let mut third = jobs::Leadership::new(connect(&url, "three"));
    assert!(!third.try_lead("escalation").unwrap());
    follower.resign("escalation").unwrap();
    assert!(third.try_lead("escalation").unwrap());
    // Dropping an instance's session gives up its lead too.
    drop(third);
    let mut fourth = jobs::Leadership::new(connect(&url, "four"));
    wait_until("the lead of a closed session is free", || {
        fourth.try_lead("escalation").unwrap()
    });
    let jobs = [
        "escalation",
        "digest",
        "webhooks",
        "backup",
        "quarantine",
        "projections",
    ];
    let distinct: HashSet<i32> = jobs.iter().map(|j| jobs::lock_of(j).1).collect();
    assert_eq!(
        distinct.len(),
        jobs.len(),
        "every job has a lock of its own"
    );
}

/// What a phone's pull gives it: the ops after its cursor that were not set aside.
fn pull_into(phone: &mut Store, client: &mut Client, cursor: &mut i64) {
    let logged = log::after(client, *cursor, 10_000).unwrap();
    if let Some(last) = logged.last() {
        *cursor = last.position;
    }
    let ops: Vec<Op> = logged
        .into_iter()
        .filter(|l| l.aside.is_none())
        .map(|l| l.op)
        .collect();
    phone.apply_ops(&ops).unwrap();
}

fn catch_up(db: &Db, client: &mut Client, page: i64) -> i64 {
    db.write(|s| {
        follow::catch_up(client, s.store(), page, follow::Projections::Write)
            .map_err(ApiError::from)
    })
    .unwrap()
}

fn digest(db: &Db) -> String {
    db.write(|s| Ok(s.replica().digest()?)).unwrap()
}

/// Phones push through two instances (shops, inspections, then concurrent edits of one shop,
/// and an op set aside); each instance's replica follows the log through the core's apply, and
/// every phone and both replicas end with one digest. A replica that applied ops without
/// recording its position (as if killed between the two) resumes without doubling anything; a
/// replica of another database's log is refused.
#[test]
fn both_instances_replicas_follow_the_log_to_the_phones_digest() {
    let Some(url) = database("replicas") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let one = Db::open(&dir.path().join("one.sqlite")).unwrap();
    let two = Db::open(&dir.path().join("two.sqlite")).unwrap();
    let mut instances = [connect(&url, "one"), connect(&url, "two")];
    let now = common::now_ms();
    let mut phones: Vec<Store> = (0..3)
        .map(|i| common::phone(&format!("phone-{i}"), "w1", now))
        .collect();
    let mut cursors = [0i64; 3];
    let push = |phone: &mut Store, through: usize, instances: &mut [Client; 2]| {
        let ops = phone.pending_ops(10_000).unwrap();
        log::append(&mut instances[through], &entries(&ops)).unwrap();
        if let Some(last) = ops.last() {
            phone.mark_acked(last.seq).unwrap();
        }
    };
    for (i, phone) in phones.iter_mut().enumerate() {
        common::shop_with_inspection(phone, "G1");
        common::shop_with_inspection(phone, "G1");
        push(phone, i % 2, &mut instances);
    }
    for (phone, cursor) in phones.iter_mut().zip(&mut cursors) {
        pull_into(phone, &mut instances[0], cursor);
    }
    // Two phones rename one shop at once and push through different instances.
    let shop = phones[0].list_premises(false).unwrap()[0].clone();
    for (i, name) in [(0, "王记面馆"), (1, "老王家面馆")] {
        let mut fields: PremisesFields = shop.fields.clone();
        fields.name = name.into();
        phones[i].edit_premises(&shop.id, fields).unwrap();
    }
    push(&mut phones[1], 1, &mut instances);
    push(&mut phones[0], 0, &mut instances);
    // One op the pushing instance set aside (refused for its author): kept, never applied.
    common::shop_with_inspection(&mut phones[2], "G1");
    let refused = phones[2].pending_ops(10_000).unwrap();
    let why = SetAside {
        seq: refused[0].seq,
        code: "out_of_scope".into(),
        message: "不在负责的网格内".into(),
        message_en: "outside the author's grids".into(),
    };
    let mut set_aside = entries(&refused[..1]);
    set_aside[0].aside = Some(&why);
    log::append(&mut instances[1], &set_aside).unwrap();

    let end = log::end(&mut instances[0]).unwrap().0;
    assert_eq!(catch_up(&one, &mut instances[0], 3), end, "in pages of 3");
    assert_eq!(catch_up(&two, &mut instances[1], follow::PAGE), end);
    for (phone, cursor) in phones.iter_mut().zip(&mut cursors) {
        pull_into(phone, &mut instances[1], cursor);
    }
    let expected = digest(&one);
    assert_eq!(digest(&two), expected);
    for phone in &phones[..2] {
        assert_eq!(phone.digest().unwrap(), expected);
    }
    let kept = one.write(|s| Ok(s.replica().set_aside_ops()?)).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1.code, "out_of_scope");
    let shops = one
        .write(|s| Ok(s.replica().list_premises(false)?))
        .unwrap();
    assert_eq!(
        shops.len(),
        6,
        "the set-aside shop is not part of the state"
    );
    let renamed: Vec<&str> = shops
        .iter()
        .map(|p| p.fields.name.as_str())
        .filter(|n| *n != "老王面馆")
        .collect();
    assert!(
        renamed == ["王记面馆"] || renamed == ["老王家面馆"],
        "one rename wins, on every replica alike: {renamed:?}"
    );

    // The projection tables hold what the replicas hold: every shop (the rename that won),
    // every inspection, every hazard as the core folded it; not the shop set aside.
    let mut admin = connect(&url, "admin");
    assert_eq!(pg::projections::written_to(&mut admin).unwrap(), end);
    let mut in_pg: Vec<(String, String)> = admin
        .query("SELECT id, name FROM premises", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    in_pg.sort();
    let mut in_replica: Vec<(String, String)> = shops
        .iter()
        .map(|p| (p.id.as_str().to_owned(), p.fields.name.clone()))
        .collect();
    in_replica.sort();
    assert_eq!(in_pg, in_replica);
    let hazards = one.write(|s| Ok(s.replica().open_hazards()?)).unwrap();
    assert_eq!(hazards.len(), 6);
    for h in &hazards {
        let row = admin
            .query_one(
                "SELECT status, assignee, state::text FROM hazards WHERE id = $1",
                &[&h.id.as_str()],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), h.status.as_str());
        assert_eq!(row.get::<_, String>(1), h.assignee.as_str());
        let state: serde_json::Value = serde_json::from_str(row.get(2)).unwrap();
        assert_eq!(state, serde_json::to_value(h).unwrap());
    }
    let inspections: i64 = admin
        .query_one("SELECT count(*) FROM inspections", &[])
        .unwrap()
        .get(0);
    assert_eq!(inspections, 6);

    // A writer behind the others (an older position) never takes a row back: a replica that
    // holds the shop as it was first recorded writes it at that position.
    let renamed_id = shop.id.as_str().to_owned();
    let log_so_far = log::after(&mut admin, 0, 10_000).unwrap();
    let created_at = log_so_far
        .iter()
        .find(|l| {
            matches!(&l.op.body, xuncha_core::op::OpBody::PremisesPatch(p) if p.premises_id == shop.id)
        })
        .unwrap()
        .position;
    let mut stale = common::phone("stale", "w1", now);
    let early: Vec<Op> = log_so_far
        .iter()
        .take_while(|l| l.position <= created_at)
        .map(|l| l.op.clone())
        .collect();
    stale.apply_ops(&early).unwrap();
    assert_eq!(
        stale.premises(&shop.id).unwrap().unwrap().fields.name,
        "老王面馆"
    );
    let touched = pg::projections::Touched::by(&early);
    pg::projections::write(&mut admin, &stale, &touched, created_at).unwrap();
    let name: String = admin
        .query_one("SELECT name FROM premises WHERE id = $1", &[&renamed_id])
        .unwrap()
        .get(0);
    assert_ne!(
        name, "老王面馆",
        "the stale writer's name did not come back"
    );
    assert_eq!(pg::projections::written_to(&mut admin).unwrap(), end);

    // Nothing new: catching up again applies nothing and changes nothing.
    assert_eq!(catch_up(&one, &mut instances[0], 3), end);
    assert_eq!(digest(&one), expected);

    // A replica that applied the first ops but never recorded its position resumes from 0
    // and skips what it holds.
    let three = Db::open(&dir.path().join("three.sqlite")).unwrap();
    let first: Vec<Op> = log::after(&mut instances[0], 0, 4)
        .unwrap()
        .into_iter()
        .map(|l| l.op)
        .collect();
    three.write(|s| Ok(s.store().apply_ops(&first)?)).unwrap();
    assert_eq!(catch_up(&three, &mut instances[1], 2), end);
    assert_eq!(digest(&three), expected);
    assert_eq!(
        three.write(|s| Ok(s.replica().op_count()?)).unwrap(),
        one.write(|s| Ok(s.replica().op_count()?)).unwrap()
    );

    // Let through later (an admin's decision): the log holds the op again at its end, marked,
    // once; each replica moves it there, and one whose position is behind does not move it
    // twice.
    let mut through = entries(&refused[..1]);
    through[0].let_through = true;
    let appended = log::append(&mut instances[0], &through).unwrap();
    assert_eq!(appended.positions, [Some(end + 1)]);
    let again = log::append(&mut instances[1], &through).unwrap();
    assert_eq!(again.positions, [None], "let through once");
    for (db, client) in [&one, &two].into_iter().zip(instances.iter_mut()) {
        assert_eq!(catch_up(db, client, follow::PAGE), end + 1);
        assert!(
            db.write(|s| Ok(s.replica().set_aside_ops()?))
                .unwrap()
                .is_empty()
        );
        let shops = db.write(|s| Ok(s.replica().list_premises(false)?)).unwrap();
        assert_eq!(shops.len(), 7, "the shop let through is part of the state");
    }
    let with_it = digest(&one);
    assert_ne!(with_it, expected);
    assert_eq!(digest(&two), with_it);
    let log_id = log::id(&mut instances[0]).unwrap();
    one.write(|s| Ok(follow::record(s.replica().conn(), &log_id, end - 1)?))
        .unwrap();
    assert_eq!(catch_up(&one, &mut instances[0], follow::PAGE), end + 1);
    assert_eq!(digest(&one), with_it, "read again from behind, moved once");

    // Pointed at another database's log, the replica refuses rather than mixing two logs.
    let Some(other) = database("replicas_other") else {
        return;
    };
    let mut elsewhere = connect(&other, "elsewhere");
    match one.write(|s| {
        follow::catch_up(&mut elsewhere, s.store(), 3, follow::Projections::Leave)
            .map_err(ApiError::from)
    }) {
        Err(e) => assert_eq!(e.code, "internal"),
        Ok(p) => panic!("followed another log to {p}"),
    }
    let Err(PgError::OtherLog { .. }) = one
        .write(|s| {
            Ok(follow::position(
                s.replica().conn(),
                &log::id(&mut elsewhere).unwrap(),
            ))
        })
        .unwrap()
    else {
        panic!("expected OtherLog");
    };
}

/// The demo district's SQLite log copied into PostgreSQL: a replica following the copy holds
/// the same state (digest), the projection tables the same figures, and a second copy into
/// the same database is refused.
#[test]
fn the_demo_district_copied_into_postgres_has_the_same_digest_and_figures() {
    let Some(url) = database("copy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    xuncha_server::demo::seed(dir.path(), common::now_ms()).unwrap();
    let sqlite = Db::open(&xuncha_server::db_path(dir.path())).unwrap();
    let mut client = connect(&url, "copy");
    let copied = sqlite
        .write(|s| {
            pg::copy::log_from_sqlite(s.replica().conn(), &mut client).map_err(ApiError::from)
        })
        .unwrap();
    let (ops, aside): (i64, i64) = sqlite
        .write(|s| {
            Ok(s.replica().conn().query_row(
                "SELECT COUNT(*), (SELECT COUNT(*) FROM set_aside) FROM ops",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert!(ops > 1_000, "the demo has a district's worth of ops: {ops}");
    assert_eq!((copied.ops as i64, copied.set_aside as i64), (ops, aside));
    assert_eq!(copied.end, ops);

    let follower_dir = tempfile::tempdir().unwrap();
    let follower = Db::open(&follower_dir.path().join("replica.sqlite")).unwrap();
    assert_eq!(catch_up(&follower, &mut client, follow::PAGE), ops);
    assert_eq!(digest(&follower), digest(&sqlite));

    // Figures: hazards by status and shops, in the projection tables as in SQLite.
    let by_status =
        |rows: Vec<(String, i64)>| -> BTreeMap<String, i64> { rows.into_iter().collect() };
    let in_sqlite = by_status(
        sqlite
            .write(|s| {
                let mut stmt = s
                    .replica()
                    .conn()
                    .prepare("SELECT status, COUNT(*) FROM hazards GROUP BY status")?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .unwrap(),
    );
    let in_pg = by_status(
        client
            .query("SELECT status, COUNT(*) FROM hazards GROUP BY status", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect(),
    );
    assert!(
        in_sqlite.len() > 2,
        "the demo's hazards are in several states: {in_sqlite:?}"
    );
    assert_eq!(in_pg, in_sqlite);
    let shops_sqlite = sqlite
        .write(|s| Ok(s.replica().list_premises(true)?.len()))
        .unwrap() as i64;
    let shops_pg: i64 = client
        .query_one("SELECT COUNT(*) FROM premises", &[])
        .unwrap()
        .get(0);
    assert_eq!(shops_pg, shops_sqlite);

    // The server's own tables: a phone's token issued on SQLite works on PostgreSQL, device
    // numbers (on notices) are kept and continue, every user sees the same grids, the same
    // photo records and feed addresses.
    use xuncha_server::account_tables::AccountTables;
    use xuncha_server::accounts;
    use xuncha_server::photo_tables::PhotoTables;
    let phone = xuncha_core::model::DeviceId::from("copied-phone");
    let token = sqlite
        .write(|s| accounts::issue_token(s.tables(), "w01", &phone))
        .unwrap();
    // Feed addresses the server has shown (its feed secret exists once one was).
    let feeds: BTreeMap<String, String> = sqlite
        .write(|s| {
            let conn = s.tables();
            conn.users()?
                .into_iter()
                .map(|u| Ok((u.id.clone(), xuncha_server::ical::feed_key(conn, &u.id)?)))
                .collect()
        })
        .unwrap();
    let counts = sqlite
        .write(|s| {
            pg::copy::server_tables_from_sqlite(s.replica().conn(), &mut client)
                .map_err(ApiError::from)
        })
        .unwrap();
    for (table, copied) in &counts {
        let held: i64 = sqlite
            .write(|s| {
                Ok(s.replica().conn().query_row(
                    &format!("SELECT COUNT(*) FROM {table}"),
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        if *table != "server_meta" {
            assert_eq!(*copied, held, "{table}");
        }
        let in_pg: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .unwrap()
            .get(0);
        assert!(in_pg >= *copied, "{table}: {in_pg} < {copied}");
    }
    assert!(
        counts.iter().any(|(t, n)| *t == "server_users" && *n > 5),
        "{counts:?}"
    );
    let pg_tables = pg::tables::PgTables::new(&mut client);
    let on_pg = accounts::authenticate(&pg_tables, &token).unwrap();
    assert_eq!(on_pg.user.as_str(), "w01");
    let code_sqlite = sqlite
        .write(|s| accounts::device_code(s.tables(), &phone))
        .unwrap();
    assert_eq!(
        accounts::device_code(&pg_tables, &phone).unwrap(),
        code_sqlite
    );
    let newer = xuncha_core::model::DeviceId::from("enrolled-after-the-move");
    accounts::issue_token(&pg_tables, "w01", &newer).unwrap();
    assert!(
        pg_tables.device_number("enrolled-after-the-move").unwrap()
            > pg_tables.device_number("copied-phone").unwrap()
    );
    let users = sqlite.write(|s| s.tables().users()).unwrap();
    assert_eq!(pg_tables.users().unwrap(), users);
    assert_eq!(
        pg_tables.grids().unwrap(),
        sqlite.write(|s| s.tables().grids()).unwrap()
    );
    for u in &users {
        let caller = accounts::Caller {
            user: xuncha_core::model::UserId(u.id.clone()),
            role: xuncha_core::sync::Role::parse(&u.profile.role).unwrap(),
            device: phone.clone(),
        };
        let here = sqlite
            .write(|s| accounts::scope_of(s.tables(), &caller))
            .unwrap()
            .0;
        assert_eq!(
            accounts::scope_of(&pg_tables, &caller).unwrap().0,
            here,
            "{}",
            u.id
        );
        assert_eq!(
            xuncha_server::ical::feed_key(&pg_tables, &u.id).unwrap(),
            feeds[&u.id],
            "feed addresses keep working"
        );
    }
    let photos_sqlite = sqlite.write(|s| s.tables().photo_count()).unwrap();
    assert!(photos_sqlite > 0);
    assert_eq!(pg_tables.photo_count().unwrap(), photos_sqlite);
    assert!(matches!(
        sqlite
            .write(|s| Ok(pg::copy::server_tables_from_sqlite(
                s.replica().conn(),
                &mut client
            )))
            .unwrap(),
        Err(PgError::TablesNotEmpty { .. })
    ));

    // The photo folder into other storage (a bucket in production), every photo checked
    // against its name; a damaged one stops the copy, named.
    use xuncha_server::photos::{FileStorage, PhotoStorage, Variant};
    let shas = sqlite
        .write(|s| Ok(pg::copy::photo_records(s.replica().conn())?))
        .unwrap();
    let folder = FileStorage::new(dir.path().join("photos"));
    let bucket_dir = tempfile::tempdir().unwrap();
    let bucket = FileStorage::new(bucket_dir.path().to_path_buf());
    let moved = pg::copy::photos_between(&shas, &folder, &bucket).unwrap();
    assert_eq!(moved.photos, shas.len());
    for sha in &shas {
        for variant in [Variant::Full, Variant::Thumbnail] {
            assert_eq!(
                bucket.get(sha, variant).unwrap(),
                folder.get(sha, variant).unwrap()
            );
        }
    }
    folder
        .put(&shas[0], Variant::Full, b"not the photo")
        .unwrap();
    let refused = pg::copy::photos_between(&shas, &folder, &bucket).unwrap_err();
    assert!(refused.contains(&shas[0]), "{refused}");

    // A second copy into the same log would double every op: refused.
    let again = sqlite.write(|s| Ok(pg::copy::log_from_sqlite(s.replica().conn(), &mut client)));
    assert!(matches!(again.unwrap(), Err(PgError::LogNotEmpty { end }) if end == ops));
}

/// Sign-in throttling across instances: failures counted on one instance refuse on the
/// other, a right password forgets the name's failures, attempts racing on both instances
/// pass exactly as many as allowed, and a window that is over lets the name try again.
#[test]
fn sign_in_failures_count_across_instances() {
    let Some(url) = database("throttle") else {
        return;
    };
    use xuncha_server::login::LoginLimits;
    use xuncha_server::postgres::throttle;
    let limits = LoginLimits {
        attempts: 3,
        attempts_per_address: 5,
        window: Duration::from_secs(300),
    };
    let mut one = connect(&url, "one");
    let mut two = connect(&url, "two");
    for i in 0..3 {
        let instance = if i == 1 { &mut two } else { &mut one };
        throttle::begin(instance, &limits, "w1", Some("10.0.0.1"))
            .unwrap()
            .unwrap();
    }
    let seconds = throttle::begin(&mut two, &limits, "w1", Some("10.0.0.2"))
        .unwrap()
        .unwrap_err();
    assert!((295..=300).contains(&seconds), "{seconds}");
    // The address has two failures left: another name from it, twice, then refused.
    throttle::begin(&mut two, &limits, "w2", Some("10.0.0.1"))
        .unwrap()
        .unwrap();
    throttle::begin(&mut one, &limits, "w3", Some("10.0.0.1"))
        .unwrap()
        .unwrap();
    assert!(
        throttle::begin(&mut one, &limits, "w4", Some("10.0.0.1"))
            .unwrap()
            .is_err()
    );
    // A right password (w2's) forgets w2's failures and gives one back to the address.
    throttle::succeeded(&mut two, "w2", Some("10.0.0.1")).unwrap();
    throttle::begin(&mut one, &limits, "w4", Some("10.0.0.1"))
        .unwrap()
        .unwrap();

    // Ten attempts at once on two instances for a fresh name: three pass.
    let barrier = Arc::new(Barrier::new(10));
    let passed: usize = (0..10)
        .map(|i| {
            let (url, barrier) = (url.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = connect(&url, if i % 2 == 0 { "one" } else { "two" });
                barrier.wait();
                throttle::begin(&mut c, &limits, "racer", None)
                    .unwrap()
                    .is_ok()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| usize::from(h.join().unwrap()))
        .sum();
    assert_eq!(passed, 3);

    // When the window is over, the name may try again (as if five minutes had passed).
    let mut admin = connect(&url, "admin");
    admin
        .execute(
            "UPDATE login_failures SET since_ms = since_ms - 300001 WHERE key = 'user:w1'",
            &[],
        )
        .unwrap();
    throttle::begin(&mut one, &limits, "w1", None)
        .unwrap()
        .unwrap();
    let count: i32 = admin
        .query_one(
            "SELECT count FROM login_failures WHERE key = 'user:w1'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "a new window");
}

/// Two instances sending webhooks at once take different deliveries, and none is sent twice.
#[test]
fn instances_sending_webhooks_at_once_take_different_deliveries() {
    let Some(url) = database("webhooks") else {
        return;
    };
    use xuncha_server::postgres::tables::PgTables;
    use xuncha_server::webhook_tables::WebhookTables;
    let mut c = connect(&url, "one");
    for i in 0..40 {
        PgTables::new(&mut c)
            .enqueue_delivery("hazard.escalated", &format!("{{\"n\":{i}}}"), 1)
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(4));
    let taken: Vec<Vec<i64>> = (0..4)
        .map(|i| {
            let (url, barrier) = (url.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = connect(&url, if i % 2 == 0 { "one" } else { "two" });
                barrier.wait();
                let mut mine = Vec::new();
                loop {
                    let mut tx = c.transaction().unwrap();
                    let got = PgTables::new(&mut tx).take_due(10, 5, 3, 60_000).unwrap();
                    tx.commit().unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.iter().map(|p| p.id));
                }
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut all: Vec<i64> = taken.iter().flatten().copied().collect();
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(all.len(), before, "no delivery taken twice");
    assert_eq!(all.len(), 40, "every delivery taken");
}

/// A burst of requests on one instance shares a bounded set of connections to PostgreSQL
/// (waiting for one rather than opening one each: PostgreSQL forks a process per connection
/// and refuses those past its limit, for every instance together), and every request is
/// answered.
#[test]
fn a_burst_of_requests_waits_for_a_connection_instead_of_opening_one_each() {
    let Some(url) = database("pool") else {
        return;
    };
    let db = Db::open_shared_in_memory(&url, "pool").unwrap();
    let most = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                for _ in 0..10 {
                    db.tables(|t| {
                        t.grids_covered("nobody")?;
                        let open = db.shared_connections().unwrap();
                        most.fetch_max(open, std::sync::atomic::Ordering::Relaxed);
                        // Held a while, so the requests overlap.
                        thread::sleep(Duration::from_millis(5));
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
    });
    let most = most.into_inner();
    let bound = xuncha_server::postgres::replica::MAX_CONNECTIONS;
    assert!(
        (bound / 2..=bound).contains(&most),
        "64 requests at once used {most} connections (at most {bound})"
    );
    let mut admin = connect(&url, "admin");
    let in_postgres: i64 = admin
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'xuncha-server pool'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        in_postgres as usize <= bound + 1,
        "{in_postgres} sessions in PostgreSQL (at most {bound} and the writer's own)"
    );
}

/// A write on an instance while another holds the log's lock does not queue for the lock at
/// once (granted it when the other's group commits, it would apply that group under the lock
/// while every instance waits): it waits for the commit without queueing, applies what was
/// appended, then takes the lock. Its ops come after the other's; after an append rolled back
/// it writes as if nothing happened; a third writer that queued meanwhile goes first and is
/// caught up under the lock. Its replica ends like one following the log from the start.
#[test]
fn a_write_waits_for_another_instances_append_without_queueing_for_the_lock() {
    let Some(url) = database("turns") else {
        return;
    };
    let instance = Db::open_shared_in_memory(&url, "turns").unwrap();
    let mut admin = connect(&url, "admin");
    let mut other = connect(&url, "other");
    // How this instance's connections wait on the log's advisory lock now.
    let waits = |admin: &mut Client| -> Vec<String> {
        admin
            .query(
                "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND NOT l.granted
                   AND a.application_name = 'xuncha-server turns'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    // The devices of the log's ops after `from`, a name per run of one device.
    let runs_after = |admin: &mut Client, from: usize| -> Vec<String> {
        let logged = log::after(admin, from as i64, 10_000).unwrap();
        let mut runs: Vec<String> = logged.iter().map(|l| l.op.device.0.clone()).collect();
        runs.dedup();
        runs
    };
    // Another session holds the lock with `theirs` appended; this instance writes `mine`
    // meanwhile; `between` runs while the write waits; the holder then ends with `end`.
    let write_while_held = |admin: &mut Client,
                            other: &mut Client,
                            theirs: &[Op],
                            mine: &[Op],
                            between: &mut dyn FnMut(&mut Client),
                            end: fn(pg::Transaction<'_>)| {
        let mut holding = other.transaction().unwrap();
        log::append_in(&mut holding, &entries(theirs)).unwrap();
        thread::scope(|s| {
            let writing = s.spawn(|| instance.write(|w| Ok(w.store().apply_ops(mine)?)).unwrap());
            wait_until("the write waits for the other's append", || {
                !waits(admin).is_empty()
            });
            assert_eq!(
                waits(admin),
                ["ShareLock"],
                "waiting for the holder to finish, not queued for the lock itself"
            );
            between(admin);
            assert!(!writing.is_finished());
            end(holding);
            writing.join().unwrap();
        });
    };

    let theirs = phone_ops("phone-other", 2);
    let mine = phone_ops("phone-mine", 1);
    write_while_held(&mut admin, &mut other, &theirs, &mine, &mut |_| {}, |tx| {
        tx.commit().unwrap()
    });
    assert_eq!(runs_after(&mut admin, 0), ["phone-other", "phone-mine"]);
    let end = theirs.len() + mine.len();

    // The holder's append is undone: the write goes on alone.
    let undone = phone_ops("phone-undone", 1);
    let mine = phone_ops("phone-mine-2", 1);
    write_while_held(&mut admin, &mut other, &undone, &mine, &mut |_| {}, |tx| {
        tx.rollback().unwrap()
    });
    assert_eq!(runs_after(&mut admin, end), ["phone-mine-2"]);
    let end = end + mine.len();

    // A third writer queues for the lock while the write waits: it is given the lock before
    // the write queues, and the write applies its ops under the lock before its own.
    let theirs = phone_ops("phone-other-2", 1);
    let late_ops = phone_ops("phone-late", 1);
    let mine = phone_ops("phone-mine-3", 1);
    let mut late = connect(&url, "late");
    let late_pid = pid(&mut late);
    let (go, start) = mpsc::channel::<()>();
    let late_append = thread::spawn(move || {
        start.recv().unwrap();
        log::append(&mut late, &entries(&late_ops)).unwrap();
    });
    write_while_held(
        &mut admin,
        &mut other,
        &theirs,
        &mine,
        &mut |admin| {
            go.send(()).unwrap();
            wait_until("the third writer queues", || {
                waiting_for_lock(admin, late_pid)
            });
        },
        |tx| tx.commit().unwrap(),
    );
    late_append.join().unwrap();
    assert_eq!(
        runs_after(&mut admin, end),
        ["phone-other-2", "phone-late", "phone-mine-3"]
    );

    let dir = tempfile::tempdir().unwrap();
    let fresh = Db::open(&dir.path().join("fresh.sqlite")).unwrap();
    catch_up(&fresh, &mut admin, follow::PAGE);
    assert_eq!(digest(&instance), digest(&fresh));
}
