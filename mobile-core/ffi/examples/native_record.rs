//! The FFI benchmark's native side: the same calls as `benches/bench_ffi.py`, made from Rust on
//! the same `Phone` type without crossing the C ABI. Prints one JSON line of medians.
//!
//! `cargo run --release -p xuncha-ffi --example native_record -- DIR N`

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement tool

use std::time::Instant;

use xuncha_core::model::PremisesId;
use xuncha_ffi::{
    Answer, AnswerValue, ChecklistKind, GasUse, InspectionDraft, Phone, PremisesFields,
    PremisesKind,
};

fn median_ns(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).cloned().unwrap_or_else(|| ".".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let phone = Phone::open(format!("{dir}/native.sqlite3"), "http://127.0.0.1:9".into()).unwrap();

    let calls: Vec<u128> = (0..n * 100)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(phone.device_id());
            t.elapsed().as_nanos()
        })
        .collect();

    // Recording needs a signed-in user: sign in locally (no server), and prepare the same
    // state for the Python side in `python.sqlite3`.
    let mut shops = Vec::new();
    for name in ["native", "python"] {
        let path = format!("{dir}/{name}-record.sqlite3");
        xuncha_core::store::Store::open(&path)
            .unwrap()
            .set_user("bench".into())
            .unwrap();
        let phone = Phone::open(path, "http://127.0.0.1:9".into()).unwrap();
        let shop = phone
            .add_premises(PremisesFields {
                name: "基准店".into(),
                address: "幸福路".into(),
                kind: PremisesKind::Retail,
                gas_use: GasUse::None,
                grid_id: Some("g1".into()),
                credit_code: None,
                licence_no: None,
                contact_person: None,
                phone: None,
                storeys: Some(1),
                floor_area_m2: Some(80.0),
                max_occupants: Some(20),
                gas_supplier: None,
                sleeps_on_site: false,
                lat: None,
                lon: None,
            })
            .unwrap();
        shops.push((phone, shop));
    }
    let (phone, shop) = shops.swap_remove(0);
    let yes_no = |code: &str, value: bool| Answer {
        code: code.into(),
        value: AnswerValue::YesNo(value),
        detail: None,
        note: None,
        photos: vec![],
    };
    let records: Vec<u128> = (0..n)
        .map(|i| {
            let answers = vec![
                yes_no("EX-01", false),
                yes_no("EX-02", false),
                Answer {
                    code: "EX-03".into(),
                    value: AnswerValue::Count(2),
                    detail: None,
                    note: None,
                    photos: vec![],
                },
                yes_no("EX-04", false),
                yes_no("EX-05", i % 2 == 0),
                yes_no("EX-06", true),
                Answer {
                    code: "EX-07".into(),
                    value: AnswerValue::Choice("no".into()),
                    detail: None,
                    note: None,
                    photos: vec![],
                },
            ];
            let draft = InspectionDraft {
                premises_id: PremisesId(shop.id.clone()),
                kinds: vec![ChecklistKind::Exits],
                answers,
                geotag: None,
                note: None,
                supersedes: None,
            };
            let t = Instant::now();
            phone.record_inspection(draft).unwrap();
            t.elapsed().as_nanos()
        })
        .collect();
    println!(
        "{{\"call_ns\": {}, \"record_ns\": {}}}",
        median_ns(calls),
        median_ns(records)
    );
}
