//! Ad-hoc profiling of `Store::apply_ops` (not part of CI):
//! `cargo run --release -p xuncha-core --example apply_profile -- 0 0.2 1`
//! (arguments: inspection shares; env PAGE=ops per transaction, MEM=1 in-memory, NOHAZ=1 clean visits).
#![allow(clippy::unwrap_used)]
use xuncha_core::store::Store;
use xuncha_core::workload::{WorkloadSpec, generate};

fn main() {
    let page: usize = std::env::var("PAGE")
        .map(|p| p.parse().unwrap())
        .unwrap_or(1000);
    for share in std::env::args().skip(1).map(|a| a.parse::<f64>().unwrap()) {
        let spec = WorkloadSpec {
            inspection_share: share,
            hazards: std::env::var_os("NOHAZ").is_none(),
            ..Default::default()
        };
        let ops = generate(&spec);
        let bytes: usize = ops
            .iter()
            .map(|o| serde_json::to_string(o).unwrap().len())
            .sum();
        let dir = tempfile::tempdir().unwrap();
        let mut s = if std::env::var_os("MEM").is_some() {
            Store::open_in_memory().unwrap()
        } else {
            Store::open(dir.path().join("b.sqlite3")).unwrap()
        };
        let t = std::time::Instant::now();
        for p in ops.chunks(page) {
            s.apply_ops(p).unwrap();
        }
        let e = t.elapsed();
        println!(
            "share {share}: {:.0} ops/s, avg op json {} bytes",
            ops.len() as f64 / e.as_secs_f64(),
            bytes / ops.len()
        );
    }
}
