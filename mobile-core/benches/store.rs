//! Store benchmarks (run in release: `cargo bench -p xuncha-core --bench store`).
//!
//! - `apply/mixed_160k/*`: the workload (20 devices; 80% single-field premises edits
//!   over 1,000 premises x 8 fields, 20% inspections, each a full visit of ~21 answers, about
//!   0.8 hazards per visit) applied to a fresh SQLite file, in one transaction and in pages of
//!   1,000 ops as a sync pull delivers them. Target: at least 500,000 ops/s.
//! - `apply/premises_edits_128k/one_transaction`: the edits alone.
//! - `record_inspection/30_answers`: one full visit (all four checklists, 30 answers) recorded
//!   on a phone's file store. Target: median under 1 ms.

#![allow(clippy::unwrap_used)] // bench code

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use xuncha_core::checklist::sample::sample_answers;
use xuncha_core::checklist::{Catalog, ChecklistKind};
use xuncha_core::clock::{ManualClock, china_date};
use xuncha_core::model::{
    Answer, AnswerValue, GasUse, InspectionDraft, PremisesFields, PremisesKind, UserId,
};
use xuncha_core::store::{Store, StoreOptions};
use xuncha_core::workload::{WorkloadSpec, generate};

const PAGE: usize = 1_000;

fn apply(c: &mut Criterion) {
    let mixed = generate(&WorkloadSpec::default());
    let edits_only = generate(&WorkloadSpec {
        inspection_share: 0.0,
        ops: 128_000,
        ..WorkloadSpec::default()
    });
    let mut g = c.benchmark_group("apply");
    g.sample_size(10);
    for (name, ops, page) in [
        ("mixed_160k/one_transaction", &mixed, mixed.len()),
        ("mixed_160k/pages_of_1000", &mixed, PAGE),
        (
            "premises_edits_128k/one_transaction",
            &edits_only,
            edits_only.len(),
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
                    (dir, store)
                },
                BatchSize::PerIteration,
            )
        });
    }
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

criterion_group!(benches, apply, record_inspection);
criterion_main!(benches);
