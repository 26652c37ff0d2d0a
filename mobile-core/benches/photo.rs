//! Photo pipeline benchmark (release, one core): a 12-megapixel camera JPEG (4000 x 3000,
//! made by the bench from the shared test photo, upscaled with fine noise) to a stored
//! 1600 px JPEG plus a 320 px thumbnail, side by side with libvips' `vipsthumbnail` doing
//! the same job in the same run; peak memory of the pipeline in a fresh process; stored size.
//!
//! `cargo bench -p xuncha-core --features photo --bench photo` (needs `vipsthumbnail` from
//! Debian's libvips-tools for the comparison; without it that line is skipped).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a bench binary

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xuncha_core::photo::{PhotoLimits, PhotoOptions, process};

const RUNS: usize = 15;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A 4000 x 3000 camera-like JPEG (quality 92, 4:2:0) from the shared test photo.
fn camera_jpeg() -> Vec<u8> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/exif-orientation/Landscape_0.jpg");
    let img = image::open(&src).unwrap().to_rgb8();
    let mut big = image::imageops::resize(&img, 4000, 3000, image::imageops::FilterType::Triangle);
    // Fine sensor-like noise (±1 level, as left after a phone's denoising), so the encoder
    // sees detail at full resolution rather than a smooth upscale.
    let mut state = 0x2545_f491_u32;
    for p in big.pixels_mut() {
        for c in p.0.iter_mut() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *c = c.saturating_add((state % 3) as u8).saturating_sub(1);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 92)
        .encode(big.as_raw(), 4000, 3000, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child mode: process one file and report this process's peak memory.
    if let Some(i) = args.iter().position(|a| a == "--peak-rss") {
        let bytes = std::fs::read(&args[i + 1]).unwrap();
        let before = peak_rss_kb();
        let out = process(&bytes, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
        println!("{} {} {}", before, peak_rss_kb(), out.jpeg.len());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = camera_jpeg();
    let input_path = dir.path().join("camera.jpg");
    std::fs::write(&input_path, &input).unwrap();
    println!("input: 4000 x 3000 JPEG, {} KB", input.len() / 1024);

    let mut ours = Vec::new();
    let mut stored = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = process(&input, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
        ours.push(t.elapsed());
        stored = out.jpeg.len();
    }
    let ours = median(ours);
    println!(
        "xuncha pipeline (stored 1600 px + 320 px thumbnail): median {:.1} ms over {RUNS}, stored {} KB",
        ours.as_secs_f64() * 1e3,
        stored / 1024
    );

    // Typical stored size: the shared test photographs (real camera pictures, 1800 x 1200), at
    // the default quality and two lower ones for comparison.
    let photos: Vec<Vec<u8>> = std::fs::read_dir("../../shared/testdata/exif-orientation")
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
                .map(|e| std::fs::read(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    let default_quality = PhotoOptions::default().quality;
    for quality in [default_quality, 80, 70] {
        let mut sizes: Vec<usize> = photos
            .iter()
            .map(|bytes| {
                let options = PhotoOptions {
                    quality,
                    ..PhotoOptions::default()
                };
                process(bytes, &options, &PhotoLimits::default())
                    .unwrap()
                    .jpeg
                    .len()
            })
            .collect();
        sizes.sort_unstable();
        if let (Some(min), Some(max)) = (sizes.first(), sizes.last()) {
            println!(
                "stored size of the {} shared test photographs at quality {quality}{}: median {} KB (min {} KB, max {} KB)",
                sizes.len(),
                if quality == default_quality {
                    " (default)"
                } else {
                    ""
                },
                sizes[sizes.len() / 2] / 1024,
                min / 1024,
                max / 1024
            );
        }
    }

    let vips = Command::new("vipsthumbnail").arg("--vips-version").output();
    if vips.is_err() {
        println!("vipsthumbnail not installed: comparison skipped (apt-get install libvips-tools)");
    } else {
        let mut theirs = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            for (size, name) in [("1600", "stored.jpg"), ("320", "thumb.jpg")] {
                let status = Command::new("vipsthumbnail")
                    .env("VIPS_CONCURRENCY", "1")
                    .arg(&input_path)
                    .args(["--size", size, "-o"])
                    .arg(format!(
                        "{}[Q={default_quality},strip]",
                        dir.path().join(name).display()
                    ))
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            theirs.push(t.elapsed());
        }
        let theirs = median(theirs);
        let vips_size = std::fs::metadata(dir.path().join("stored.jpg"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "vipsthumbnail, one thread, same job (two runs: 1600 and 320): median {:.1} ms, stored {} KB; ratio xuncha / vips = {:.2}",
            theirs.as_secs_f64() * 1e3,
            vips_size / 1024,
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }

    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .arg("--peak-rss")
        .arg(&input_path)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&child.stdout);
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if let [before, after, _] = v[..] {
        println!(
            "peak memory of the pipeline process: {} MB (the process before the photo: {} MB)",
            after / 1024,
            before / 1024
        );
    }
}
