//! What storing a verified photo costs in the photo folder and in S3-compatible object storage
//! (release build): `PhotoStorage::put` of a photo and its thumbnail, then `get` of each, as
//! the server does once an upload is verified and when a phone or the dashboard fetches it.
//! The upload's own work (chunks, hash, decoding the picture for the check and the thumbnail)
//! is the same for both and left out.
//!
//! `cargo bench -p xuncha-e2e --bench photo_store`; with `XUNCHA_BENCH_S3=s3://BUCKET/PREFIX`
//! and the `AWS_*` environment (scripts/s3-test shows one with s3s-fs) also the object store.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a bench binary: panics are failures

use std::time::{Duration, Instant};

use xuncha_core::workload::Rng;
use xuncha_server::object_storage::S3Storage;
use xuncha_server::photos::{FileStorage, PhotoStorage, Variant};

/// A phone's photo after the core's pipeline is about 300 KB, its thumbnail about 15 KB.
const PHOTO_BYTES: usize = 300 << 10;
const THUMB_BYTES: usize = 15 << 10;
const PHOTOS: usize = 200;

fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.below(256) as u8).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Per photo: ms to store (photo and thumbnail) and to read both back, p50 and p95.
fn measure(name: &str, storage: &dyn PhotoStorage) -> (f64, f64) {
    let mut rng = Rng::new(7);
    let photos: Vec<(String, Vec<u8>, Vec<u8>)> = (0..PHOTOS)
        .map(|i| {
            let sha = format!("{:064x}", i as u128 * 0x9E37_79B9_7F4A_7C15 + 1);
            (
                sha,
                bytes(&mut rng, PHOTO_BYTES),
                bytes(&mut rng, THUMB_BYTES),
            )
        })
        .collect();
    let mut puts = Vec::with_capacity(PHOTOS);
    for (sha, full, thumb) in &photos {
        let t = Instant::now();
        storage.put(sha, Variant::Thumbnail, thumb).unwrap();
        storage.put(sha, Variant::Full, full).unwrap();
        puts.push(t.elapsed());
    }
    let (mut gets, mut thumbs) = (Vec::with_capacity(PHOTOS), Vec::with_capacity(PHOTOS));
    for (sha, full, _) in &photos {
        let t = Instant::now();
        let got = storage.get(sha, Variant::Full).unwrap().unwrap();
        let between = Instant::now();
        storage.get(sha, Variant::Thumbnail).unwrap().unwrap();
        thumbs.push(between.elapsed());
        gets.push(t.elapsed());
        assert_eq!(got.len(), full.len());
    }
    puts.sort();
    gets.sort();
    thumbs.sort();
    println!(
        "{name:>8}: store p50 {:6.2} ms  p95 {:6.2} ms   read p50 {:6.2} ms  p95 {:6.2} ms   (thumbnail alone p50 {:6.2} ms)",
        percentile(&puts, 0.5),
        percentile(&puts, 0.95),
        percentile(&gets, 0.5),
        percentile(&gets, 0.95),
        percentile(&thumbs, 0.5)
    );
    (percentile(&puts, 0.5), percentile(&gets, 0.5))
}

fn main() {
    println!(
        "{PHOTOS} photos of {} KB with {} KB thumbnails, one at a time",
        PHOTO_BYTES >> 10,
        THUMB_BYTES >> 10
    );
    let dir = tempfile::tempdir().unwrap();
    let folder = measure("folder", &FileStorage::new(dir.path().join("photos")));
    let Ok(url) = std::env::var("XUNCHA_BENCH_S3") else {
        println!("(set XUNCHA_BENCH_S3=s3://BUCKET/PREFIX and AWS_* to compare object storage)");
        return;
    };
    let bucket = S3Storage::open(&url).unwrap();
    bucket.check().unwrap();
    let s3 = measure("S3", &bucket);
    println!(
        "S3 / folder: store {:.1}x, read {:.1}x",
        s3.0 / folder.0,
        s3.1 / folder.1
    );
}
