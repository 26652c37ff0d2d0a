//! Sync end to end: a real server process on loopback and simulated phones with their own
//! SQLite files, making conflicting offline edits and syncing in random orders, with dropped
//! responses, a killed server and concurrent pushes.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::{WallClock, china_date};
use xuncha_core::hazard::{HazardAction, HazardStatus};
use xuncha_core::model::{PremisesFields, PremisesKind};
use xuncha_core::op::OpBody;
use xuncha_core::sync::client::SyncOptions;
use xuncha_core::workload::Rng;
use xuncha_e2e::{Admin, DropProxy, Phone, ServerProcess, copy_tree, now_ms, test_options};

const SERVER: &str = env!("CARGO_BIN_EXE_xuncha-server-e2e");
const HOUR: i64 = 3_600_000;

fn shop(name: &str, grid: &str) -> PremisesFields {
    let mut f = PremisesFields::new(name, "幸福路", PremisesKind::Catering);
    f.grid_id = Some(grid.into());
    f
}

/// A server on `data` with grid g1 and its workers w1 and w2.
fn server_with_two_workers(
    dir: &std::path::Path,
    data: &std::path::Path,
) -> (ServerProcess, Admin) {
    let server = ServerProcess::start(SERVER, data, "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir);
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    admin.worker("w2", &["g1"]);
    (server, admin)
}

/// Adds `count` shops in g1 named `prefix` and a number.
fn add_shops(phone: &mut Phone, prefix: &str, count: usize) {
    for n in 0..count {
        phone
            .store
            .add_premises(shop(&format!("{prefix}{n}"), "g1"))
            .unwrap();
    }
}

/// A server with grid g1 and its worker w1, and w1's phone enrolled through a [`DropProxy`]
/// (the server process lives as long as the first value).
fn worker_behind_a_proxy(dir: &std::path::Path) -> (ServerProcess, Admin, DropProxy, Phone) {
    let server = ServerProcess::start(SERVER, &dir.join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir);
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    let proxy = DropProxy::start(server.addr);
    let mut phone = Phone::new(dir, "phone-1", &proxy.url, now_ms(), test_options());
    phone.enroll("w1");
    (server, admin, proxy, phone)
}

/// One offline session on a phone: conflicting edits, an inspection, hazard work.
fn offline_work(phone: &mut Phone, rng: &mut Rng, round: usize) {
    let shops = phone.store.list_premises(false).unwrap();
    for _ in 0..3 {
        // Everyone edits the same few fields of the same few shops.
        let p = &shops[rng.below(shops.len().min(3))];
        let mut f = p.fields.clone();
        match rng.below(3) {
            0 => f.phone = Some(format!("1380000{:04}", rng.below(10_000))),
            1 => f.contact_person = Some(format!("负责人{}", rng.below(100))),
            _ => f.max_occupants = Some(rng.below(80) as u32),
        }
        phone.store.edit_premises(&p.id, f).unwrap();
    }
    let p = &shops[rng.below(shops.len())];
    let today = china_date(phone.clock.now_ms());
    let codes = ["FE-03", "EX-02", "EB-02"];
    let visit = sample_visit(
        phone.store.catalog(),
        p,
        today,
        &[codes[round % codes.len()]],
    );
    phone.store.record_inspection(visit).unwrap();
    // Move some known hazards along, as far as this phone's view allows.
    for h in phone.store.open_hazards().unwrap().into_iter().take(3) {
        let action = match h.status {
            HazardStatus::Found => HazardAction::NoticeIssued {
                deadline: today + chrono::Days::new(7),
                notice_no: None,
            },
            HazardStatus::Rectifying => HazardAction::OwnerReportedFixed { photos: vec![] },
            HazardStatus::AwaitingRecheck if rng.below(2) == 0 => HazardAction::RecheckFailed {
                deadline: today + chrono::Days::new(14),
                photos: vec![],
            },
            _ => continue,
        };
        // Another phone may already have moved it on: a refused transition is fine here.
        let _ = phone.store.record_hazard_event(&h.id, action, None, None);
    }
}

#[test]
fn five_phones_with_skewed_clocks_converge_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.grid("g2", "和平社区");
    // Clock skew of hours both ways (inside the server's 12 h bound).
    let skews = [0, -5 * HOUR, 3 * HOUR, -HOUR, 7 * HOUR];
    let mut phones: Vec<Phone> = skews
        .iter()
        .enumerate()
        .map(|(i, skew)| {
            let user = format!("w{i}");
            admin.worker(&user, &["g1"]);
            let mut p = Phone::new(
                dir.path(),
                &format!("phone-{i}"),
                &server.url,
                now_ms() + skew,
                test_options(),
            );
            p.enroll(&user);
            p
        })
        .collect();
    // A worker of another grid, whose shop must stay out of the g1 phones.
    admin.worker("other", &["g2"]);
    let mut outsider = Phone::new(
        dir.path(),
        "phone-other",
        &server.url,
        now_ms(),
        test_options(),
    );
    outsider.enroll("other");
    outsider
        .store
        .add_premises(shop("和平小卖部", "g2"))
        .unwrap();
    outsider.sync();

    add_shops(&mut phones[0], "面馆", 4);
    phones[0].sync();
    for p in phones.iter_mut().skip(1) {
        assert_eq!(p.sync().pulled, 4);
    }

    for seed in [7u64, 1234, 99_991] {
        let mut rng = Rng::new(seed);
        for round in 0..3 {
            for p in phones.iter_mut() {
                p.clock.advance(HOUR / 6);
                offline_work(p, &mut rng, round);
            }
            // Some phones sync, in a random order; the rest stay offline this round.
            let mut order: Vec<usize> = (0..phones.len()).collect();
            rng.shuffle(&mut order);
            for &i in order.iter().take(1 + rng.below(phones.len())) {
                phones[i].sync();
            }
        }
    }
    // Everyone comes online: a round to push everything, another to pull everything.
    for _ in 0..2 {
        for p in phones.iter_mut() {
            p.sync();
        }
    }
    let digests: Vec<String> = phones.iter().map(|p| p.store.digest().unwrap()).collect();
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "phones differ: {digests:?}"
    );
    let premises = phones[0].store.list_premises(true).unwrap();
    assert_eq!(premises.len(), 4, "the g2 shop stays out of g1 phones");
    assert!(!phones[0].store.open_hazards().unwrap().is_empty());

    // The server holds g1 and g2: a fresh admin replica, which sees everything, matches it.
    let (server_digest, _) = admin.digest();
    let mut full = Phone::new(
        dir.path(),
        "admin-replica",
        &server.url,
        now_ms(),
        test_options(),
    );
    full.enroll("admin");
    full.sync();
    assert_eq!(
        full.store.digest().unwrap(),
        server_digest,
        "server and a full replica agree"
    );
    assert_eq!(full.store.list_premises(true).unwrap().len(), 5);
}

#[test]
fn a_response_lost_after_commit_is_retried_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, admin, proxy, mut phone) = worker_behind_a_proxy(dir.path());
    add_shops(&mut phone, "小店", 20);
    let (_, before) = admin.digest();
    proxy.drop_responses(1);
    let report = phone.sync();
    assert_eq!(proxy.dropped(), 1);
    assert!(report.retries >= 1, "{report:?}");
    assert_eq!(report.pushed, 20);
    assert_eq!(phone.store.pending_count().unwrap(), 0);
    let (_, after) = admin.digest();
    assert_eq!(after - before, 20, "each op stored once");

    // A pull whose page is lost on the way resumes from the saved cursor.
    admin.worker("w2", &["g1"]);
    let options = SyncOptions {
        pull_limit: 3,
        ..test_options()
    };
    let mut other = Phone::new(dir.path(), "phone-2", &proxy.url, now_ms(), options);
    other.enroll("w2");
    proxy.drop_responses(2);
    let report = other.sync();
    assert_eq!(proxy.dropped(), 3);
    assert!(report.retries >= 2, "{report:?}");
    assert_eq!(other.store.digest().unwrap(), phone.store.digest().unwrap());
}

#[test]
fn a_server_killed_mid_push_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let (server, _admin) = server_with_two_workers(dir.path(), &data);
    let (url, listen) = (server.url.clone(), server.addr.to_string());
    let options = SyncOptions {
        push_batch: 200,
        max_attempts: 2,
        ..test_options()
    };
    let mut phone = Phone::new(dir.path(), "phone-1", &url, now_ms(), options);
    phone.enroll("w1");
    let shops: Vec<_> = (0..40)
        .map(|n| {
            phone
                .store
                .add_premises(shop(&format!("小店{n}"), "g1"))
                .unwrap()
        })
        .collect();
    for round in 0..100 {
        for p in &shops {
            let mut f = p.fields.clone();
            f.phone = Some(format!("139{round:08}"));
            phone.store.edit_premises(&p.id, f).unwrap();
        }
    }
    let total = phone.store.pending_count().unwrap();
    assert_eq!(total, 4040);

    // Kill the server (SIGKILL) once some batches are in and while more are being sent.
    let pushed = Arc::new(AtomicU64::new(0));
    let seen = pushed.clone();
    let phone = Arc::new(Mutex::new(phone));
    let syncing = phone.clone();
    let worker = std::thread::spawn(move || {
        let mut p = syncing.lock().unwrap();
        let Phone { store, client, .. } = &mut *p;
        client.sync(store, &mut |progress| {
            seen.store(progress.pushed, Ordering::SeqCst)
        })
    });
    while pushed.load(Ordering::SeqCst) < 600 {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    let outcome = worker.join().unwrap();
    let mut phone = Arc::try_unwrap(phone).unwrap().into_inner().unwrap();
    let acked = phone.store.acked_seq().unwrap();
    assert!(outcome.is_err(), "the sync cannot finish without a server");
    assert!(acked >= 600 && acked < total, "acked {acked} of {total}");

    // Restart on the same port and data: everything acknowledged is there.
    let server = ServerProcess::start(SERVER, &data, &listen, &[]);
    let mut reader = Phone::new(dir.path(), "phone-2", &server.url, now_ms(), test_options());
    reader.enroll("w2");
    reader.sync();
    let held = reader.store.all_ops().unwrap().len() as u64;
    assert!(
        held >= acked,
        "server kept {held} ops, phone was told {acked}"
    );

    // The phone resumes and finishes; nothing is duplicated or lost.
    let report = phone.sync();
    assert_eq!(report.pushed + acked, total);
    assert_eq!(phone.store.pending_count().unwrap(), 0);
    reader.sync();
    assert_eq!(reader.store.all_ops().unwrap().len() as u64, total);
    assert_eq!(
        reader.store.digest().unwrap(),
        phone.store.digest().unwrap()
    );
    drop(server);
}

#[test]
fn many_devices_push_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    let mut phones: Vec<Phone> = (0..12)
        .map(|i| {
            let mut p = Phone::new(
                dir.path(),
                &format!("phone-{i}"),
                &server.url,
                now_ms(),
                SyncOptions {
                    push_batch: 50,
                    ..test_options()
                },
            );
            p.enroll("w1");
            for n in 0..10 {
                let s = p
                    .store
                    .add_premises(shop(&format!("店{i}-{n}"), "g1"))
                    .unwrap();
                let mut f = s.fields.clone();
                f.storeys = Some(2);
                p.store.edit_premises(&s.id, f).unwrap();
                let visit = sample_visit(p.store.catalog(), &s, china_date(now_ms()), &["EB-02"]);
                p.store.record_inspection(visit).unwrap();
            }
            p
        })
        .collect();
    let expected: u64 = phones
        .iter()
        .map(|p| p.store.pending_count().unwrap())
        .sum();
    let (_, before) = admin.digest();
    std::thread::scope(|s| {
        for p in phones.iter_mut() {
            s.spawn(move || p.sync());
        }
    });
    let (_, after) = admin.digest();
    assert_eq!(after - before, expected);
    // Every phone then pulls the others' work and all agree.
    for p in phones.iter_mut() {
        p.sync();
    }
    let first = phones[0].store.digest().unwrap();
    assert!(phones.iter().all(|p| p.store.digest().unwrap() == first));
    assert_eq!(phones[0].store.list_premises(false).unwrap().len(), 120);
}

#[test]
fn an_op_refused_for_its_author_is_set_aside_and_the_rest_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.grid("g2", "和平社区");
    admin.worker("w1", &["g1"]);

    let mut phone = Phone::new(dir.path(), "phone-1", &server.url, now_ms(), test_options());
    let err = phone
        .client
        .sync(&mut phone.store, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, xuncha_core::Error::NotEnrolled), "{err}");
    phone.enroll("w1");
    phone.store.add_premises(shop("本网格小店", "g1")).unwrap();
    phone
        .store
        .add_premises(shop("别的网格小店", "g2"))
        .unwrap();
    let mut seen = Vec::new();
    // The shop outside the worker's grids is set aside, not the whole sync refused: the
    // rest goes through, and the phone shows the worker what was not accepted and why.
    let report = phone
        .client
        .sync(&mut phone.store, &mut |p| seen.push(*p))
        .unwrap();
    assert_eq!(seen[0].to_push, 2);
    assert_eq!((report.pushed, report.set_aside), (2, 1));
    assert_eq!(phone.store.pending_count().unwrap(), 0);
    let aside = phone.store.set_aside_ops().unwrap();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        (aside[0].0.seq, aside[0].1.code.as_str()),
        (2, "out_of_scope")
    );
    assert!(
        aside[0].1.message.contains("不在您的负责范围内"),
        "{:?}",
        aside[0].1
    );
    assert_eq!(phone.store.list_premises(false).unwrap().len(), 1);
    // Phone and server hold the same state; both keep the op (2 ops), applied nowhere.
    assert_eq!(admin.digest(), (phone.store.digest().unwrap(), 2));
    let (status, listed) = admin.call("GET", "/v1/admin/set-aside", None);
    assert_eq!(
        (status, listed["ops"][0]["code"].as_str()),
        (200, Some("out_of_scope"))
    );

    // A wrong password is a clear refusal, not a retry loop.
    let mut stranger = Phone::new(dir.path(), "phone-2", &server.url, now_ms(), test_options());
    let err = stranger
        .client
        .enroll(&mut stranger.store, "w1", "not-the-password", None)
        .unwrap_err();
    assert!(
        matches!(&err, xuncha_core::Error::Server { status: 401, .. }),
        "{err}"
    );
}

#[test]
fn a_shop_moved_away_while_its_worker_was_offline_keeps_the_workers_inspection() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.grid("g2", "和平社区");
    admin.worker("w1", &["g1"]);
    admin.worker("w2", &["g2"]);
    let phone = |name: &str, user: &str| {
        let mut p = Phone::new(dir.path(), name, &server.url, now_ms(), test_options());
        p.enroll(user);
        p
    };
    let mut w1 = phone("phone-w1", "w1");
    let mut w2 = phone("phone-w2", "w2");
    let mut desk = phone("desk", "admin");
    let shop = w1.store.add_premises(shop("老王面馆", "g1")).unwrap();
    w1.sync();

    // The supervisor's desk moves the shop to g2 while w1 is out of reach...
    desk.sync();
    let mut moved = desk.store.premises(&shop.id).unwrap().unwrap().fields;
    moved.grid_id = Some("g2".into());
    desk.store.edit_premises(&shop.id, moved).unwrap();
    desk.sync();
    // ...and w1, offline, inspects it, finds a hazard and issues a notice.
    let today = china_date(w1.clock.now_ms());
    let found = w1
        .store
        .record_inspection(sample_visit(w1.store.catalog(), &shop, today, &["FE-03"]))
        .unwrap();
    let hazard = found.findings[0].hazard_id.clone();
    let notice = HazardAction::NoticeIssued {
        deadline: today + chrono::Days::new(7),
        notice_no: None,
    };
    w1.store
        .record_hazard_event(&hazard, notice, None, None)
        .unwrap();

    // The field work is accepted: w1 had the right as far as its phone knew.
    let report = w1.sync();
    assert_eq!((report.pushed, report.set_aside), (2, 0), "{report:?}");
    w2.sync();
    desk.sync();
    let h = w2
        .store
        .hazard(&hazard)
        .unwrap()
        .expect("g2's worker sees the hazard");
    assert_eq!(h.status, HazardStatus::Rectifying);
    let on_server = admin.digest().0;
    assert_eq!(w2.store.digest().unwrap(), on_server);
    assert_eq!(desk.store.digest().unwrap(), on_server);

    // Having pulled past the move, w1's next inspection of the shop is not its to make: it is
    // set aside, the sync still succeeds, and the phone says so.
    let again = w1
        .store
        .record_inspection(sample_visit(w1.store.catalog(), &shop, today, &[]))
        .unwrap();
    let report = w1.sync();
    assert_eq!((report.pushed, report.set_aside), (1, 1), "{report:?}");
    let aside = w1.store.set_aside_ops().unwrap();
    assert_eq!(aside[0].1.code, "out_of_scope");
    assert!(
        matches!(&aside[0].0.body, OpBody::Inspection(i) if i.id == again.id),
        "kept on the phone, with the reason"
    );
    assert_eq!(
        w1.store.inspections_of(&shop.id).unwrap().len(),
        1,
        "but not part of its records"
    );

    // An admin gives w1 the grid and lets it through: it reaches g2 and comes back on w1.
    let (status, body) = admin.call(
        "PUT",
        "/v1/admin/users/w1/areas",
        Some(serde_json::json!({ "grids": ["g1", "g2"] })),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin.call("POST", "/v1/admin/set-aside/retry", None);
    assert_eq!(
        (status, body["let_through"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let report = w1.sync();
    assert_eq!(report.set_aside, 0, "{report:?}");
    assert!(w1.store.set_aside_ops().unwrap().is_empty());
    w2.sync();
    assert_eq!(w2.store.inspections_of(&shop.id).unwrap().len(), 2);
    let on_server = admin.digest().0;
    assert_eq!(w2.store.digest().unwrap(), on_server);
    assert_eq!(w1.store.digest().unwrap(), on_server);
}

#[test]
fn a_worker_given_another_grid_receives_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.grid("g2", "和平社区");
    admin.worker("w1", &["g1"]);
    admin.worker("w2", &["g2"]);
    let mut other = Phone::new(dir.path(), "phone-2", &server.url, now_ms(), test_options());
    other.enroll("w2");
    other.store.add_premises(shop("和平小卖部", "g2")).unwrap();
    other.sync();

    let mut phone = Phone::new(dir.path(), "phone-1", &server.url, now_ms(), test_options());
    phone.enroll("w1");
    phone.store.add_premises(shop("幸福面馆", "g1")).unwrap();
    phone.sync();
    assert_eq!(phone.store.list_premises(false).unwrap().len(), 1);

    // g2's shop was written before the phone's cursor; the new scope brings it anyway.
    let (status, body) = admin.call(
        "PUT",
        "/v1/admin/users/w1/areas",
        Some(serde_json::json!({ "grids": ["g1", "g2"] })),
    );
    assert_eq!(status, 200, "{body}");
    let report = phone.sync();
    assert!(report.pulled >= 1, "{report:?}");
    let names: Vec<String> = phone
        .store
        .list_premises(false)
        .unwrap()
        .into_iter()
        .map(|p| p.fields.name)
        .collect();
    assert!(names.contains(&"和平小卖部".to_owned()), "{names:?}");
}

#[test]
fn notice_numbers_from_phones_offline_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        SERVER,
        &dir.path().join("server"),
        "127.0.0.1:0",
        &["--notice-area", "幸福街道"],
    );
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    admin.worker("w2", &["g1"]);
    let mut numbers = Vec::new();
    for (name, user) in [("phone-1", "w1"), ("phone-2", "w2")] {
        let mut p = Phone::new(dir.path(), name, &server.url, now_ms(), test_options());
        p.enroll(user);
        let shop = p
            .store
            .add_premises(shop(&format!("{name}的店"), "g1"))
            .unwrap();
        let today = china_date(now_ms());
        for _ in 0..2 {
            let found = p
                .store
                .record_inspection(sample_visit(p.store.catalog(), &shop, today, &["EX-05"]))
                .unwrap();
            let h = p
                .store
                .record_hazard_event(
                    &found.findings[0].hazard_id,
                    HazardAction::NoticeIssued {
                        deadline: today + chrono::Days::new(7),
                        notice_no: None,
                    },
                    None,
                    None,
                )
                .unwrap();
            numbers.push(h.notice_no.unwrap());
        }
        p.sync();
    }
    let year = chrono::Datelike::year(&china_date(now_ms()));
    assert!(
        numbers
            .iter()
            .all(|n| n.starts_with(&format!("幸福街道〔{year}〕")) && n.ends_with("号")),
        "{numbers:?}"
    );
    assert!(
        numbers[0].ends_with("-001号") && numbers[1].ends_with("-002号"),
        "{numbers:?}"
    );
    let distinct: std::collections::HashSet<&String> = numbers.iter().collect();
    assert_eq!(distinct.len(), 4, "{numbers:?}");
}

#[test]
fn calendar_and_cadence_edited_on_the_server_reach_the_phones() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    let mut phone = Phone::new(dir.path(), "phone-1", &server.url, now_ms(), test_options());
    phone.enroll("w1");
    phone.sync();
    assert!(phone.store.calendar().covers(2026) && !phone.store.calendar().covers(2027));

    // Next year's holidays are announced; the district checks crowded venues weekly.
    let (status, mut calendar) = admin.call("GET", "/v1/reference", None);
    assert_eq!(status, 200);
    let calendar = calendar["calendar"].take();
    let mut next = calendar.clone();
    next["years"]["2027"] = serde_json::json!({
        "holidays": [{ "name": "元旦", "from": "2027-01-01", "to": "2027-01-03" }],
        "workdays": []
    });
    let (status, body) = admin.call("PUT", "/v1/admin/calendar", Some(next));
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin.call(
        "PUT",
        "/v1/admin/cadence",
        Some(serde_json::json!({ "crowded_days": 7 })),
    );
    assert_eq!(status, 200, "{body}");
    let mut broken = calendar;
    broken["format"] = "something else".into();
    let (status, body) = admin.call("PUT", "/v1/admin/calendar", Some(broken));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_calendar"))
    );

    phone.sync();
    assert!(phone.store.calendar().covers(2027));
    assert_eq!(phone.store.cadence().crowded_days, 7);
    assert_eq!(
        phone.store.cadence().default_days,
        30,
        "fields not given keep their defaults"
    );
    // It survives a restart of the app.
    let path = phone.path.clone();
    drop(phone);
    let reopened = xuncha_core::store::Store::open(&path).unwrap();
    assert!(reopened.calendar().covers(2027));
}

#[test]
fn grid_boundaries_imported_from_geojson_reach_the_phones() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    let square = |x: f64, y: f64| {
        serde_json::json!({
            "type": "Polygon",
            "coordinates": [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]]
        })
    };
    let collection = serde_json::json!({
        "type": "FeatureCollection",
        "features": [
            { "type": "Feature", "properties": { "id": "g1", "name": "幸福一网格", "community": "幸福社区" }, "geometry": square(121.47, 31.23) },
            { "type": "Feature", "properties": { "id": "g2", "name": "幸福二网格", "community": "幸福社区" }, "geometry": square(121.48, 31.23) }
        ]
    });
    let (status, body) = admin.call("POST", "/v1/admin/grids/import", Some(collection));
    assert_eq!(
        (status, body["imported"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    let broken = serde_json::json!({ "type": "FeatureCollection", "features": [
        { "type": "Feature", "properties": { "id": "g3" }, "geometry": { "type": "Point", "coordinates": [121.0, 31.0] } }
    ]});
    let (status, body) = admin.call("POST", "/v1/admin/grids/import", Some(broken));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_geojson")),
        "{body}"
    );

    admin.worker("w1", &["g1"]);
    let mut phone = Phone::new(dir.path(), "phone-1", &server.url, now_ms(), test_options());
    phone.enroll("w1");
    phone.sync();
    let at = |lat, lon| phone.store.grid_at(xuncha_core::model::LatLon { lat, lon });
    assert_eq!(at(31.235, 121.475).as_deref(), Some("g1"));
    assert_eq!(
        at(31.235, 121.485),
        None,
        "g2 is not this worker's, so not on the phone"
    );
}

#[test]
fn the_app_records_while_a_sync_waits_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, admin, proxy, mut phone) = worker_behind_a_proxy(dir.path());
    phone.store.add_premises(shop("甲店", "g1")).unwrap();
    let Phone { store, client, .. } = phone;
    let shared = Arc::new(Mutex::new(store));

    // The push's answer is held: the sync is waiting for the network.
    proxy.hold_responses();
    let syncing = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            client
                .sync_shared(&*shared, &mut |_| {})
                .map(|r| (r, client))
        })
    };
    proxy.wait_until_holding(1);
    {
        let mut store = shared
            .try_lock()
            .expect("the sync does not hold the store while it waits for the server");
        store.add_premises(shop("乙店", "g1")).unwrap();
    }
    proxy.release();
    let (report, client) = syncing.join().unwrap().unwrap();
    // The push loop takes what was recorded meanwhile too.
    assert_eq!(report.pushed, 2);
    let mut store = shared.lock().unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
    let report = client.sync(&mut store, &mut |_| {}).unwrap();
    assert_eq!(report.pushed, 0);
    assert_eq!(admin.digest().0, store.digest().unwrap());
}

#[test]
fn a_pull_cut_off_half_way_keeps_the_pages_it_applied_and_resumes_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, admin, proxy, mut phone) = worker_behind_a_proxy(dir.path());
    add_shops(&mut phone, "小店", 30);
    phone.sync();
    admin.worker("w2", &["g1"]);
    let options = SyncOptions {
        pull_limit: 3,
        max_attempts: 2,
        ..test_options()
    };
    let mut other = Phone::new(dir.path(), "phone-2", &proxy.url, now_ms(), options);
    other.enroll("w2");

    // The network goes once two pages (6 ops) are in; the next page may already be on its
    // way (pages are fetched one ahead) and is kept if it arrives.
    let cut = other.client.sync(&mut other.store, &mut |p| {
        if p.pulled >= 6 {
            proxy.drop_responses(usize::MAX);
        }
    });
    assert!(cut.is_err(), "{cut:?}");
    let held = other.store.op_count().unwrap();
    assert!((6..=9).contains(&held), "held {held}");

    proxy.drop_responses(0);
    let report = other.sync();
    assert_eq!(
        report.pulled as usize,
        30 - held,
        "resumed after the pages held"
    );
    assert_eq!(other.store.digest().unwrap(), phone.store.digest().unwrap());
}

#[test]
fn a_server_restored_from_a_backup_gets_back_what_it_lost_from_the_phones() {
    if xuncha_e2e::on_postgres(
        "a restore from `xuncha-server backup` (the SQLite file; PostgreSQL is backed up with pg_dump)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, copy) = (dir.path().join("server"), dir.path().join("backup"));
    let (server, admin) = server_with_two_workers(dir.path(), &data);
    let (url, listen) = (server.url.clone(), server.addr.to_string());
    let mut one = Phone::new(dir.path(), "phone-1", &url, now_ms(), test_options());
    one.enroll("w1");
    let mut two = Phone::new(dir.path(), "phone-2", &url, now_ms(), test_options());
    two.enroll("w2");
    add_shops(&mut one, "小店", 5);
    one.sync();
    two.sync();

    // A backup with the real command while the server runs; it never overwrites one.
    let backup = || {
        std::process::Command::new(SERVER)
            .arg("--data")
            .arg(&data)
            .arg("backup")
            .arg(&copy)
            .output()
            .unwrap()
    };
    let (_, status) = admin.call("GET", "/v1/status", None);
    assert_eq!(status["last_backup_ms"], serde_json::Value::Null);
    let started = now_ms();
    let out = backup();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("备份完成"));
    // The server shows when (on /status and in /metrics, to alert on when backups stop).
    let (_, status) = admin.call("GET", "/v1/status", None);
    let taken = status["last_backup_ms"].as_i64().unwrap();
    assert!((started..=now_ms()).contains(&taken), "{status}");
    let (_, page) = admin.call("GET", "/status", None);
    assert!(page.as_str().unwrap().contains("最近备份"));
    let (_, metrics) = admin.call("GET", "/metrics", None);
    let line = format!("xuncha_last_backup_timestamp_seconds {}", taken / 1000);
    assert!(metrics.as_str().unwrap().contains(&line), "{line}");
    // Without signing in: on the operations listener the same; on the phones' address, none.
    let ops = server
        .ops_url
        .clone()
        .expect("the operations listener's address");
    let anonymous = reqwest::blocking::Client::new();
    let scrape = anonymous.get(format!("{ops}/metrics")).send().unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(scrape.text().unwrap().contains(&line));
    for path in ["/metrics", "/status", "/v1/status"] {
        let public = anonymous.get(format!("{url}{path}")).send().unwrap();
        assert_eq!(public.status(), 404, "{path}");
    }
    let again = backup();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a database"));

    // Work after the backup, synced everywhere: then the server's disk is lost.
    for p in one.store.list_premises(false).unwrap() {
        let mut f = p.fields.clone();
        f.phone = Some("13900000000".into());
        one.store.edit_premises(&p.id, f).unwrap();
    }
    let visited = two.store.list_premises(false).unwrap().remove(0);
    let visit = sample_visit(
        two.store.catalog(),
        &visited,
        china_date(now_ms()),
        &["EX-05"],
    );
    two.store.record_inspection(visit).unwrap();
    one.sync();
    two.sync();
    one.sync();
    let before = one.store.digest().unwrap();
    assert_eq!(two.store.digest().unwrap(), before);
    assert_eq!(admin.digest().0, before);
    server.kill();

    // The server starts from the copy, on the same address: it lacks the later work.
    let server = ServerProcess::start(SERVER, &copy, &listen, &[]);
    assert_ne!(admin.digest().0, before);
    let (_, status) = admin.call("GET", "/v1/status", None);
    assert_eq!(
        status["last_backup_ms"].as_i64(),
        Some(taken),
        "the copy knows its time"
    );
    // A phone enrolled after the restore writes enough that the restored log numbers its ops
    // past the cursors the other phones hold into the lost one.
    let mut three = Phone::new(dir.path(), "phone-3", &url, now_ms(), test_options());
    three.enroll("w1");
    three.sync();
    add_shops(&mut three, "新店", 300);
    three.sync();

    // The phones send again what the server lost and pull the new log from its start.
    two.sync();
    one.sync();
    two.sync();
    three.sync();
    let (end, _) = admin.digest();
    assert_ne!(end, before, "phone-3's work is there too");
    for phone in [&one, &two, &three] {
        assert_eq!(
            phone.store.digest().unwrap(),
            end,
            "{}",
            phone.store.device_id()
        );
    }
    drop(server);
}

#[test]
fn a_phone_restored_from_an_older_copy_of_its_database_takes_its_work_back_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = server_with_two_workers(dir.path(), &dir.path().join("server"));
    let mut phone = Phone::new(dir.path(), "phone-1", &server.url, now_ms(), test_options());
    phone.enroll("w1");
    add_shops(&mut phone, "早", 5);
    phone.sync();
    let backup = dir.path().join("phone-1.backup.sqlite3");
    phone.snapshot(&backup);
    // Work after the backup, synced: the server holds it, the copy does not.
    add_shops(&mut phone, "后", 5);
    phone.sync();

    // The phone is restored from the older copy and, offline, records new work under seqs
    // the server already holds with other content.
    phone.restore(&backup);
    assert_eq!(phone.store.list_premises(false).unwrap().len(), 5);
    add_shops(&mut phone, "新", 2);
    let report = phone.sync();
    assert_eq!(report.pushed, 2, "{report:?}");
    assert_eq!(phone.store.pending_count().unwrap(), 0);
    assert_eq!(phone.store.list_premises(false).unwrap().len(), 12);

    // Everyone converges, and the phone goes on without a conflict.
    let mut other = Phone::new(dir.path(), "phone-2", &server.url, now_ms(), test_options());
    other.enroll("w2");
    other.sync();
    let (on_server, ops) = admin.digest();
    assert_eq!(ops, 12);
    assert_eq!(phone.store.digest().unwrap(), on_server);
    assert_eq!(other.store.digest().unwrap(), on_server);
    add_shops(&mut phone, "再", 1);
    assert_eq!(phone.sync().pushed, 1);

    // Restored again, with nothing new recorded: the first pull says the server holds more of
    // its work than it has, and the phone takes it back before it writes anything.
    phone.restore(&backup);
    phone.sync();
    assert_eq!(phone.store.list_premises(false).unwrap().len(), 13);
    add_shops(&mut phone, "末", 1);
    assert_eq!(phone.sync().pushed, 1);
    other.sync();
    let (on_server, ops) = admin.digest();
    assert_eq!(ops, 14);
    assert_eq!(phone.store.digest().unwrap(), on_server);
    assert_eq!(other.store.digest().unwrap(), on_server);
}

#[test]
fn a_server_that_lost_its_newest_commits_is_pulled_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let (server, admin) = server_with_two_workers(dir.path(), &data);
    admin.worker("w3", &["g1"]);
    let phone = |name: &str, user: &str| {
        let mut p = Phone::new(dir.path(), name, &server.url, now_ms(), test_options());
        p.enroll(user);
        p
    };
    let (mut a, mut b, mut c) = (phone("a", "w1"), phone("b", "w2"), phone("c", "w3"));
    add_shops(&mut a, "甲", 3);
    for p in [&mut a, &mut b, &mut c] {
        p.sync();
    }
    // The data directory as it was at this point.
    let (url, listen) = (server.url.clone(), server.addr.to_string());
    server.kill();
    let older = dir.path().join("older");
    copy_tree(&data, &older);
    let server = ServerProcess::start(SERVER, &data, &listen, &[]);
    assert_eq!(server.url, url);
    add_shops(&mut a, "乙", 3);
    a.sync();
    b.sync();

    // The machine loses its newest commits (emulated: the directory goes back to the copy).
    server.kill();
    std::fs::remove_dir_all(&data).unwrap();
    copy_tree(&older, &data);
    let _server = ServerProcess::start(SERVER, &data, &listen, &[]);
    // c writes first: the server numbers c's ops where a's lost ones were; then a sends its
    // lost ops again; b's cursor points past both.
    add_shops(&mut c, "丙", 3);
    c.sync();
    a.sync();
    b.sync();
    c.sync();
    let (on_server, ops) = admin.digest();
    assert_eq!(ops, 9);
    for p in [&a, &b, &c] {
        assert_eq!(
            p.store.digest().unwrap(),
            on_server,
            "{}",
            p.store.device_id()
        );
    }
}

#[test]
fn a_user_disabled_from_the_command_line_is_cut_off_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let (server, _admin) = server_with_two_workers(dir.path(), &data);
    let mut phone = Phone::new(dir.path(), "phone-1", &server.url, now_ms(), test_options());
    phone.enroll("w1");
    add_shops(&mut phone, "店", 1);
    phone.sync(); // the server now holds the phone's token in its cache

    // Another process (the command line beside the running server) disables the user.
    let status = xuncha_e2e::command_line(SERVER, &data)
        .args(["user", "disable", "w1"])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let refused = loop {
        match phone.client.sync(&mut phone.store, &mut |_| {}) {
            Err(xuncha_core::Error::Server { status: 401, .. }) => break true,
            _ if started.elapsed() > Duration::from_secs(5) => break false,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(
        refused,
        "still syncing {:?} after the user was disabled",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Restore drill: the server backs itself up on a schedule; a server started on the newest
/// copy holds what the phones had synced before it; a backup that cannot be written shows on
/// `/status` and in `/metrics` until one succeeds.
#[test]
fn scheduled_backups_restore_and_a_failing_one_shows() {
    if xuncha_e2e::on_postgres(
        "--backup-dir (the SQLite file; PostgreSQL is backed up with pg_dump)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, copies) = (dir.path().join("server"), dir.path().join("copies"));
    let server = ServerProcess::start(
        SERVER,
        &data,
        "127.0.0.1:0",
        &[
            "--backup-dir",
            copies.to_str().unwrap(),
            "--backup-every",
            "1s",
            "--backup-keep-daily",
            "2",
        ],
    );
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "幸福社区");
    admin.worker("w1", &["g1"]);
    let mut phone = Phone::new(dir.path(), "phone-1", &server.url, now_ms(), test_options());
    phone.enroll("w1");
    add_shops(&mut phone, "小店", 20);
    phone.sync();
    let synced = now_ms();
    let (digest, _) = admin.digest();

    // Wait for a copy taken after the sync.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = admin.call("GET", "/v1/status", None);
        if status["last_backup_ms"]
            .as_i64()
            .is_some_and(|t| t > synced + 1000)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled backup: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Copies are named by time; the newest of today only is kept (one day, two allowed).
    let latest = xuncha_server::backup_schedule::latest(&copies).expect("a copy");
    let names: Vec<_> = std::fs::read_dir(&copies).unwrap().collect();
    assert!(names.len() <= 3, "old copies are pruned: {}", names.len());

    // The drill: a second server on the newest copy has everything synced before it.
    let restored_dir = dir.path().join("restored");
    copy_tree(&latest, &restored_dir);
    let restored = ServerProcess::start(SERVER, &restored_dir, "127.0.0.1:0", &[]);
    std::fs::create_dir_all(dir.path().join("drill")).unwrap();
    let drill = Admin::connect(&restored.url, &dir.path().join("drill"));
    assert_eq!(drill.digest().0, digest);
    drop(restored);
    drop(server);

    // A backup directory that cannot be written: the failure shows, on the operations
    // listener too.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file, not a directory").unwrap();
    let failing = ServerProcess::start(
        SERVER,
        &data,
        "127.0.0.1:0",
        &[
            "--backup-dir",
            blocked.join("copies").to_str().unwrap(),
            "--backup-every",
            "1s",
        ],
    );
    let ops = failing.ops_url.clone().unwrap();
    let http = reqwest::blocking::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: serde_json::Value = serde_json::from_str(
            &http
                .get(format!("{ops}/v1/status"))
                .send()
                .unwrap()
                .text()
                .unwrap(),
        )
        .unwrap();
        if let Some(f) = status["backup_failure"].as_object() {
            assert!(
                f["message"].as_str().unwrap().contains("blocked"),
                "{status}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the failure never showed: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = http
        .get(format!("{ops}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("xuncha_backup_failing 1"), "{metrics}");
    let page = http
        .get(format!("{ops}/status"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("备份失败"), "{page}");
}

#[test]
fn users_imported_from_the_command_line_beside_the_running_server_sync_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let (server, _admin) = server_with_two_workers(dir.path(), &data);
    // A GBK CSV as Chinese Excel saves it: a new worker without a password, w2 renamed.
    let file = dir.path().join("users.csv");
    let csv = "用户名,姓名,角色,网格,电话\nw3,孙新,网格员,g1,13800000003\nw2,周改名,网格员,g1,\n";
    std::fs::write(&file, encoding_rs::GBK.encode(csv).0).unwrap();
    let out = xuncha_e2e::command_line(SERVER, &data)
        .args(["user", "import"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("1 added, 1 updated"), "{said}");
    let password = said
        .lines()
        .find_map(|l| l.strip_prefix("w3\t"))
        .unwrap_or_else(|| panic!("no first password for w3 in {said}"));
    // The new worker's phone enrolls on the running server with it and syncs the grid.
    let mut phone = Phone::new(
        dir.path(),
        "phone-w3",
        &server.url,
        now_ms(),
        test_options(),
    );
    phone
        .client
        .enroll(&mut phone.store, "w3", password, Some("e2e"))
        .unwrap();
    add_shops(&mut phone, "新店", 1);
    phone.sync();

    // A file with a grid that does not exist changes nothing and says which line.
    std::fs::write(&file, "user,role,grids\nw4,worker,g1\nw5,worker,g9\n").unwrap();
    let out = xuncha_e2e::command_line(SERVER, &data)
        .args(["user", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("第 3 行") && said.contains("line 3"),
        "{said}"
    );
    let mut w4 = Phone::new(
        dir.path(),
        "phone-w4",
        &server.url,
        now_ms(),
        test_options(),
    );
    assert!(
        w4.client
            .enroll(&mut w4.store, "w4", "whatever-password", Some("e2e"))
            .is_err()
    );
}
