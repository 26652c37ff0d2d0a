//! Synthetic op streams for benchmarks and load tests: many devices editing premises fields
//! and recording inspections, as a sync pull would deliver them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::checklist::sample::sample_answers;
use crate::checklist::{Catalog, ChecklistKind};
use crate::clock::Hlc;
use crate::model::{
    DeviceId, Finding, HazardId, Inspection, InspectionId, PremisesFields, PremisesId,
    PremisesKind, UserId,
};
use crate::op::{Op, OpBody, PremisesPatch};

/// The shape of a workload.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    /// Devices writing ops.
    pub devices: usize,
    /// Ops in all.
    pub ops: usize,
    /// Premises edited.
    pub premises: usize,
    /// Share of ops that are inspections (the rest are single-field premises edits).
    pub inspection_share: f64,
    /// Whether some visits find hazards (3 in 5 visits, about 0.8 hazards per visit).
    pub hazards: bool,
    /// Random seed.
    pub seed: u64,
}

impl Default for WorkloadSpec {
    /// The benchmark: 160,000 ops from 20 devices, 80% single-field edits over
    /// 1,000 premises x 8 fields, 20% inspections.
    fn default() -> Self {
        WorkloadSpec {
            devices: 20,
            ops: 160_000,
            premises: 1_000,
            inspection_share: 0.2,
            hazards: true,
            seed: 7,
        }
    }
}

const FIELDS: [&str; 8] = [
    "name",
    "address",
    "phone",
    "contact_person",
    "storeys",
    "floor_area_m2",
    "gas_use",
    "max_occupants",
];

/// A small deterministic generator (xorshift64) for synthetic data and test orders: the same
/// seed gives the same sequence, so a failing case can be replayed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Generates the ops, interleaved across devices, each device's seqs contiguous from 1.
pub fn generate(spec: &WorkloadSpec) -> Vec<Op> {
    let mut rng = Rng::new(spec.seed);
    let mut next = move || rng.next();
    let templates = inspection_templates(spec.hazards);
    let base_ms: u64 = 1_795_400_000_000;
    let mut seqs = vec![0u64; spec.devices];
    (0..spec.ops)
        .map(|i| {
            let d = i % spec.devices;
            seqs[d] += 1;
            let premises = PremisesId(format!("p-{:04}", next() as usize % spec.premises));
            let r = next();
            let body = if (r % 10_000) as f64 / 10_000.0 < spec.inspection_share {
                let t = &templates[(r as usize / 10_000) % templates.len()];
                let id = InspectionId(format!("i-{d}-{}", seqs[d]));
                let findings = t
                    .findings
                    .iter()
                    .map(|f| Finding {
                        hazard_id: HazardId::derive(&id, &f.code),
                        ..f.clone()
                    })
                    .collect();
                OpBody::Inspection(Box::new(Inspection {
                    id: id.clone(),
                    premises_id: premises,
                    root: id,
                    findings,
                    inspector: UserId(format!("worker-{d}")),
                    ..t.clone()
                }))
            } else {
                let field = FIELDS[(r >> 20) as usize % FIELDS.len()];
                let value = field_value(field, next());
                OpBody::PremisesPatch(PremisesPatch {
                    premises_id: premises,
                    fields: Map::from_iter([(field.to_owned(), value)]),
                })
            };
            Op {
                device: DeviceId(format!("device-{d:02}")),
                seq: seqs[d],
                hlc: Hlc::new(base_ms + i as u64 * 3, 0),
                author: UserId(format!("worker-{d}")),
                schema: body.schema(),
                wall_ms: (base_ms + i as u64 * 3) as i64,
                body,
            }
        })
        .collect()
}

fn field_value(field: &str, r: u64) -> Value {
    match field {
        "name" => Value::from(format!("便利店{}", r % 997)),
        "address" => Value::from(format!("幸福路{}号", r % 500)),
        "phone" => Value::from(format!("138{:08}", r % 100_000_000)),
        "contact_person" => Value::from(["王伟", "李娜", "张敏", "刘洋"][r as usize % 4]),
        "storeys" => Value::from(1 + r % 4),
        "floor_area_m2" => Value::from(20.0 + (r % 400) as f64),
        "gas_use" => Value::from(["none", "piped_natural", "bottled_lpg"][r as usize % 3]),
        _ => Value::from(r % 80),
    }
}

/// A few realistic visits: clean, one hazard, two hazards.
fn inspection_templates(hazards: bool) -> Vec<Inspection> {
    let kinds = [
        ChecklistKind::FireExtinguisher,
        ChecklistKind::EBike,
        ChecklistKind::Exits,
    ];
    let lists: Vec<_> = kinds
        .iter()
        .filter_map(|k| Catalog::builtin().latest(*k))
        .collect();
    let mut premises = PremisesFields::new("样例", "样例路1号", PremisesKind::Retail);
    premises.storeys = Some(1);
    premises.floor_area_m2 = Some(80.0);
    premises.max_occupants = Some(20);
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default();
    let root = InspectionId::from("template");
    let found: [&[&str]; 5] = if hazards {
        [&[], &["FE-03"], &["EB-04"], &[], &["EB-01", "EX-02"]]
    } else {
        [&[]; 5]
    };
    found
        .iter()
        .map(|hazards| {
            let answers = sample_answers(&lists, &premises, today, hazards, &[]);
            let findings = crate::checklist::evaluate(&lists, &premises, &answers, today, &root)
                .unwrap_or_default();
            Inspection {
                id: root.clone(),
                premises_id: PremisesId::default(),
                checklists: lists.iter().map(|l| l.reference()).collect(),
                inspector: UserId::default(),
                performed_on: today,
                recorded_at_ms: 1_795_400_000_000,
                geotag: None,
                answers,
                findings,
                note: None,
                supersedes: None,
                proximity: None,
                root: root.clone(),
                extra: BTreeMap::new(),
            }
        })
        .collect()
}
