#![allow(clippy::unwrap_used)]
use xuncha_core::store::Store;
use xuncha_core::workload::{WorkloadSpec, generate};
fn main() {
    if std::env::var("DUMP").is_ok() {
        let ops = generate(&WorkloadSpec {
            inspection_share: 1.0,
            ops: 5,
            ..Default::default()
        });
        for o in ops {
            println!("{}", serde_json::to_string(&o).unwrap());
        }
        return;
    }
    for share in std::env::args().skip(1).map(|a| a.parse::<f64>().unwrap()) {
        let ops = generate(&WorkloadSpec {
            inspection_share: share,
            ..Default::default()
        });
        let bytes: usize = ops
            .iter()
            .map(|o| serde_json::to_string(o).unwrap().len())
            .sum();
        let dir = tempfile::tempdir().unwrap();
        let mut s = if std::env::var("MEM").is_ok() {
            Store::open_in_memory().unwrap()
        } else {
            Store::open(dir.path().join("b.sqlite3")).unwrap()
        };
        let t = std::time::Instant::now();
        let page: usize = std::env::var("PAGE")
            .map(|p| p.parse().unwrap())
            .unwrap_or(1000);
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
#[allow(dead_code)]
fn dump() {}
