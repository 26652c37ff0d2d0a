//! Store benchmarks (run in release: `cargo bench -p xuncha-core --bench store`).
//!
//! - `apply/mixed_160k/*`: the workload (20 devices; 80% single-field premises edits
//!   over 1,000 premises x 8 fields, 20% inspections, each a full visit of ~21 answers, about
//!   0.8 hazards per visit) applied to a fresh SQLite file, in one transaction, in pages of
//!   1,000 ops (a push's batch, as the server applies it) and of 5,000 (a phone's pull page).
//!   Target: at least 500,000 ops/s.
//!   `one_transaction_and_close` also counts closing the store, which waits for the
//!   background checkpoint and copies the rest of the log into the file.
//! - `apply/premises_edits_128k/one_transaction`: the edits alone.
//! - `apply/mixed_160k_clean_visits/one_transaction`: the same mix with visits that find no
//!   hazards (what materialising hazards costs).
//! - `floor/one_bare_row_per_op_160k`: a reference, not the store: one SQLite row per op
//!   holding only the op's JSON, no index, one transaction, on the store's own file settings.
//!   Any design that writes a row per op is bounded by it.
//! - `record_inspection/30_answers`: one full visit (all four checklists, 30 answers) recorded
//!   on a phone's file store. Target: median under 1 ms.
//! - `due/2000_premises_10000_inspections`: a worker's due list offline. Target: at most 10 ms.

#![allow(clippy::unwrap_used)] // bench code

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use xuncha_core::checklist::sample::{sample_answers, sample_visit};
use xuncha_core::checklist::{Catalog, ChecklistKind};
use xuncha_core::clock::{ManualClock, WallClock, china_date};

use xuncha_core::hazard::HazardAction;
use xuncha_core::model::{
    Answer, AnswerValue, GasUse, InspectionDraft, PremisesFields, PremisesKind, UserId,
};
use xuncha_core::store::{Store, StoreOptions};
use xuncha_core::sync::MAX_PULL_LIMIT;
use xuncha_core::workload::{WorkloadSpec, generate};

const PAGE: usize = 1_000;

fn apply(c: &mut Criterion) {
    let mixed = generate(&WorkloadSpec::default());
    let edits_only = generate(&WorkloadSpec {
        inspection_share: 0.0,
        ops: 128_000,
        ..WorkloadSpec::default()
    });
    let clean_visits = generate(&WorkloadSpec {
        hazards: false,
        ..WorkloadSpec::default()
    });
    let mut g = c.benchmark_group("apply");
    g.sample_size(10);
    for (name, ops, page) in [
        ("mixed_160k/one_transaction", &mixed, mixed.len()),
        ("mixed_160k/one_transaction_and_close", &mixed, mixed.len()),
        ("mixed_160k/pages_of_1000", &mixed, PAGE),
        ("mixed_160k/pages_of_5000", &mixed, MAX_PULL_LIMIT),
        (
            "premises_edits_128k/one_transaction",
            &edits_only,
            edits_only.len(),
        ),
        (
            "mixed_160k_clean_visits/one_transaction",
            &clean_visits,
            clean_visits.len(),
        ),
    ] {
        g.throughput(Throughput::Elements(ops.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = Store::open(dir.path().join("bench.sqlite3")).unwrap();
                    (dir, store)
                },
                |(dir, mut store)| {
                    for chunk in ops.chunks(page) {
                        store.apply_ops(chunk).unwrap();
                    }
                    if name.ends_with("_and_close") {
                        // Counts the checkpoints too: waits for the background one, then
                        // closing copies what is left of the log into the file.
                        drop(store);
                        return (dir, None);
                    }
                    (dir, Some(store))
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    sqlite_floor(c, &mixed);
}

/// One bare SQLite row per op (the op's JSON under a rowid), in one transaction on a store's
/// file: what writing a row per op costs before any index, merge or fold.
fn sqlite_floor(c: &mut Criterion, ops: &[xuncha_core::op::Op]) {
    let data: Vec<String> = ops
        .iter()
        .map(|op| {
            let mut buf = Vec::new();
            op.body.encode_data(&mut buf).unwrap();
            String::from_utf8(buf).unwrap()
        })
        .collect();
    let mut g = c.benchmark_group("floor");
    g.sample_size(10);
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("one_bare_row_per_op_160k", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path().join("bench.sqlite3")).unwrap();
                store
                    .conn()
                    .execute_batch(
                        "CREATE TABLE floor (id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
                    )
                    .unwrap();
                (dir, store)
            },
            |(dir, store)| {
                let tx = store.conn().unchecked_transaction().unwrap();
                {
                    let mut insert = tx.prepare("INSERT INTO floor (data) VALUES (?1)").unwrap();
                    for d in &data {
                        insert.execute([d]).unwrap();
                    }
                }
                tx.commit().unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn record_inspection(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_795_400_000_000));
    let mut store = Store::open_with(
        dir.path().join("phone.sqlite3"),
        StoreOptions {
            wall: clock.clone(),
            device: None,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store.set_user(UserId::from("wang.wei")).unwrap();
    let mut fields = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    fields.gas_use = GasUse::BottledLpg;
    fields.storeys = Some(1);
    fields.floor_area_m2 = Some(60.0);
    fields.max_occupants = Some(30);
    let premises = store.add_premises(fields.clone()).unwrap();
    let lists: Vec<_> = ChecklistKind::ALL
        .iter()
        .map(|k| Catalog::builtin().latest(*k).unwrap())
        .collect();
    let lpg = Answer::new("GA-00", AnswerValue::Choice("lpg".into()));
    let answers = sample_answers(
        &lists,
        &fields,
        china_date(1_795_400_000_000),
        &["FE-03", "EB-04"],
        &[lpg],
    );
    assert_eq!(answers.len(), 30);
    let draft = InspectionDraft {
        premises_id: premises.id,
        kinds: ChecklistKind::ALL.to_vec(),
        answers,
        geotag: None,
        note: None,
        supersedes: None,
    };
    c.bench_function("record_inspection/30_answers", |b| {
        b.iter(|| {
            clock.advance(1_000);
            store.record_inspection(draft.clone()).unwrap()
        })
    });
}

/// A worker's phone with 2,000 premises and 10,000 past inspections over 150 days (1 in 25
/// finding a hazard, most of those with a notice out): the due list and next reminder.
fn due_list(c: &mut Criterion) {
    const DAY: i64 = 86_400_000;
    let now = 1_795_400_000_000;
    let clock = Arc::new(ManualClock::new(now - 150 * DAY));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_with(
        dir.path().join("phone.sqlite3"),
        StoreOptions {
            wall: clock.clone(),
            device: None,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store.set_user(UserId::from("wang.wei")).unwrap();
    let kinds = [
        PremisesKind::Retail,
        PremisesKind::Catering,
        PremisesKind::Entertainment,
        PremisesKind::Lodging,
    ];
    let shops: Vec<_> = (0..2_000)
        .map(|i| {
            let mut f = PremisesFields::new(format!("店{i}"), "幸福路", kinds[i % kinds.len()]);
            f.storeys = Some(1);
            f.floor_area_m2 = Some(80.0);
            f.max_occupants = Some(20);
            f.sleeps_on_site = f.kind == PremisesKind::Lodging;
            store.add_premises(f).unwrap()
        })
        .collect();
    for n in 0..10_000usize {
        clock.advance(150 * DAY / 10_000);
        let shop = &shops[(n * 7) % shops.len()];
        let hazard: &[&str] = if n % 25 == 0 { &["EX-05"] } else { &[] };
        let visit = sample_visit(store.catalog(), shop, china_date(clock.now_ms()), hazard);
        let inspection = store.record_inspection(visit).unwrap();
        if let Some(f) = inspection.findings.first().filter(|_| n % 3 != 0) {
            let deadline = f.deadline;
            store
                .record_hazard_event(
                    &f.hazard_id,
                    HazardAction::NoticeIssued {
                        deadline,
                        notice_no: None,
                    },
                    None,
                    None,
                )
                .unwrap();
        }
    }
    let items = store.due(now).unwrap();
    assert!(items.len() > 500, "{}", items.len());
    c.bench_function("due/2000_premises_10000_inspections", |b| {
        b.iter(|| store.due(now).unwrap())
    });
    c.bench_function("next_reminder_at/2000_premises_10000_inspections", |b| {
        b.iter(|| store.next_reminder_at(now).unwrap())
    });
}

criterion_group!(benches, apply, record_inspection, due_list);
criterion_main!(benches);
