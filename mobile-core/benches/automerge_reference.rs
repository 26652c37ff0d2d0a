//! The same workload as `store`'s `apply/mixed_160k`, applied with the automerge CRDT as a
//! reference point: `cargo bench -p xuncha-core --features automerge-reference --bench automerge_reference`.
//!
//! Each device works on a fork of a base document (1,000 premises maps and an inspections
//! list), one change per op: a premises edit is a `put` on the premises map, an inspection a
//! list insert of its JSON. Measured: a fresh replica (the base document) applying all
//! changes of the 20 devices, interleaved as a server would relay them. In memory only: no
//! file, so this favours automerge.

#![allow(clippy::unwrap_used)] // bench code

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use xuncha_core::op::OpBody;
use xuncha_core::workload::{WorkloadSpec, generate};

fn reference(c: &mut Criterion) {
    let spec = WorkloadSpec::default();
    let ops = generate(&spec);
    let mut base = AutoCommit::new().with_actor(ActorId::from(vec![0u8; 16]));
    let premises = base.put_object(ROOT, "premises", ObjType::Map).unwrap();
    let ids: Vec<_> = (0..spec.premises)
        .map(|i| {
            base.put_object(&premises, format!("p-{i:04}"), ObjType::Map)
                .unwrap()
        })
        .collect();
    let inspections = base.put_object(ROOT, "inspections", ObjType::List).unwrap();
    base.commit();
    let base_heads = base.get_heads();
    let base_bytes = base.save();

    let mut devices: Vec<AutoCommit> = (0..spec.devices)
        .map(|d| base.fork().with_actor(ActorId::from(vec![d as u8 + 1; 16])))
        .collect();
    let mut order = Vec::with_capacity(ops.len());
    for op in &ops {
        let d: usize = op
            .device
            .as_str()
            .trim_start_matches("device-")
            .parse()
            .unwrap();
        let doc = &mut devices[d];
        match &op.body {
            OpBody::PremisesPatch(p) => {
                let n: usize = p
                    .premises_id
                    .as_str()
                    .trim_start_matches("p-")
                    .parse()
                    .unwrap();
                for (field, value) in &p.fields {
                    doc.put(&ids[n], field.as_str(), value.to_string()).unwrap();
                }
            }
            OpBody::Inspection(i) => {
                let len = doc.length(&inspections);
                doc.insert(&inspections, len, serde_json::to_string(i).unwrap())
                    .unwrap();
            }
            _ => {}
        }
        // A transaction with nothing new makes no change.
        if doc.commit().is_some() {
            order.push(d);
        }
    }
    // Relay order: the devices' changes interleaved as the ops were generated.
    let mut per_device: Vec<std::collections::VecDeque<automerge::Change>> = devices
        .iter_mut()
        .map(|doc| doc.get_changes(&base_heads).into_iter().collect())
        .collect();
    let changes: Vec<automerge::Change> = order
        .iter()
        .map(|d| per_device[*d].pop_front().unwrap())
        .collect();
    assert!(per_device.iter().all(|q| q.is_empty()));
    eprintln!(
        "automerge: {} ops became {} changes",
        ops.len(),
        changes.len()
    );

    let mut g = c.benchmark_group("automerge_reference");
    g.sample_size(10);
    g.throughput(Throughput::Elements(changes.len() as u64));
    g.bench_function("mixed_160k/apply_changes", |b| {
        b.iter_batched(
            || (AutoCommit::load(&base_bytes).unwrap(), changes.clone()),
            |(mut doc, changes)| {
                doc.apply_changes(changes).unwrap();
                assert_eq!(doc.length(&inspections) as f64, changes_len_hint(&ops));
                doc
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn changes_len_hint(ops: &[xuncha_core::op::Op]) -> f64 {
    ops.iter()
        .filter(|o| matches!(o.body, OpBody::Inspection(_)))
        .count() as f64
}

criterion_group!(benches, reference);
criterion_main!(benches);
