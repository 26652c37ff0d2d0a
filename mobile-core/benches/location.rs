//! Grid lookup: which of 1,000 grid polygons a point lies in (R-tree of bounding boxes, then
//! point-in-polygon). Target: at least 1,000,000 lookups/s.
//! `cargo bench -p xuncha-core --bench location`

#![allow(clippy::unwrap_used)] // bench code

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xuncha_core::location::GridIndex;
use xuncha_core::model::LatLon;

/// 1,000 grids tiling about 11 x 11 km of Shanghai: each a 14-sided polygon inside its cell
/// of a 40 x 25 lattice (streets bend, so grids are not rectangles).
pub fn city_grids() -> Vec<(String, geo::Polygon<f64>)> {
    let (lon0, lat0, cell) = (121.40, 31.18, 0.0028);
    (0..1000)
        .map(|i| {
            let (cx, cy) = (lon0 + (i % 40) as f64 * cell, lat0 + (i / 40) as f64 * cell);
            let ring: Vec<(f64, f64)> = (0..14)
                .map(|k| {
                    let a = k as f64 / 14.0 * std::f64::consts::TAU;
                    let r = cell * (0.45 + 0.04 * ((k * 7 + i) % 3) as f64);
                    (cx + r * a.cos(), cy + r * a.sin())
                })
                .collect();
            (
                format!("grid-{i:04}"),
                geo::Polygon::new(ring.into(), vec![]),
            )
        })
        .collect()
}

fn grid_lookup(c: &mut Criterion) {
    let index = GridIndex::new(city_grids());
    let mut state = 0x9e37_79b9_u32;
    let points: Vec<LatLon> = (0..10_000)
        .map(|_| {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                f64::from(state) / f64::from(u32::MAX)
            };
            LatLon {
                lat: 31.18 + next() * 0.0028 * 25.0,
                lon: 121.40 + next() * 0.0028 * 40.0,
            }
        })
        .collect();
    let found = points
        .iter()
        .filter(|p| index.grid_at(**p).is_some())
        .count();
    assert!(found > 5_000, "most points fall in a grid: {found}");
    let mut group = c.benchmark_group("grid_at");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("1000_grids_10000_points", |b| {
        b.iter(|| points.iter().filter_map(|p| index.grid_at(*p)).count())
    });
    group.finish();
}

criterion_group!(benches, grid_lookup);
criterion_main!(benches);
