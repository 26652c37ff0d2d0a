//! The project's own chaos test. Phones (their own SQLite files; clocks hours apart, one
//! behind) do conflicting offline work with GPS-like full-precision floats and photos, and sync
//! through a proxy that loses answers after the server committed and stalls longer than the
//! client waits, while the server process is killed (SIGKILL, also in the middle of a sync),
//! sometimes losing its newest commits (its data directory goes back to an earlier copy: a
//! power loss on storage that lied), and a phone's database goes back to an older backup.
//! When the faults stop, every phone and the server hold one state, the server holds every op
//! a phone wrote, and every photo is uploaded.
//!
//! Seeded and bounded: CI runs a few seeds of a few rounds; for a longer run,
//! `XUNCHA_CHAOS_SEEDS=20 XUNCHA_CHAOS_ROUNDS=30 cargo nextest run -p xuncha-e2e chaos`.
//! A failure names its seed; `XUNCHA_CHAOS_SEED=N` runs that one, and `XUNCHA_CHAOS_DEBUG=1`
//! prints the faults of each round and the ops each phone lacks.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::path::PathBuf;
use std::time::Duration;

use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::{WallClock, china_date};
use xuncha_core::model::{Geotag, LatLon, PhotoRef, PremisesFields, PremisesKind};
use xuncha_core::photo::{PhotoDir, PhotoLimits, PhotoOptions, process};
use xuncha_core::sync::client::SyncOptions;
use xuncha_core::workload::Rng;
use xuncha_e2e::{Admin, DropProxy, Phone, ServerProcess, copy_tree, now_ms, test_options};

const SERVER: &str = env!("CARGO_BIN_EXE_xuncha-server-e2e");
const HOUR: i64 = 3_600_000;
/// Clock skews of the phones: one is five hours behind.
const SKEWS: [i64; 4] = [0, -5 * HOUR, 3 * HOUR, -HOUR];
const PHOTOS: [&str; 4] = [
    "Landscape_2.jpg",
    "Portrait_3.jpg",
    "Landscape_7.jpg",
    "Portrait_8.jpg",
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A double with all 17 significant digits, as a GPS fix has.
fn gps(rng: &mut Rng, around: f64) -> f64 {
    around
        + (rng.below(1 << 30) as f64) / f64::from(1u32 << 30) * 0.01
        + 1e-13 * rng.below(97) as f64
}

/// Short timeouts, so a stall outlasts the client's patience and it retries.
fn chaos_options() -> SyncOptions {
    SyncOptions {
        timeout: Duration::from_millis(1500),
        max_attempts: 4,
        photo_chunk_bytes: 48 << 10,
        ..test_options()
    }
}

struct Field {
    phone: Phone,
    photos: PhotoDir,
    photo: PhotoRef,
    /// A backup of the phone's database taken earlier, to go back to.
    backup: Option<PathBuf>,
}

/// One offline session: conflicting edits of the same shops (floats included), a visit with
/// a full-precision geotag and, where a hazard needs one, a photo.
fn offline_work(f: &mut Field, rng: &mut Rng) {
    let shops = f.phone.store.list_premises(false).unwrap();
    for _ in 0..2 {
        let p = &shops[rng.below(shops.len().min(3))];
        let mut fields = p.fields.clone();
        match rng.below(4) {
            0 => fields.phone = Some(format!("1390000{:04}", rng.below(10_000))),
            1 => fields.contact_person = Some(format!("负责人{}", rng.below(50))),
            2 => fields.max_occupants = Some(rng.below(90) as u32),
            _ => {
                fields.location = Some(LatLon {
                    lat: gps(rng, 31.22),
                    lon: gps(rng, 121.46),
                })
            }
        }
        f.phone.store.edit_premises(&p.id, fields).unwrap();
    }
    let p = &shops[rng.below(shops.len())];
    let today = china_date(f.phone.clock.now_ms());
    let codes = ["FE-03", "EX-02", "EB-02", "EX-05"];
    let mut visit = sample_visit(
        f.phone.store.catalog(),
        p,
        today,
        &[codes[rng.below(codes.len())]],
    );
    visit.geotag = Some(Geotag {
        lat: gps(rng, 31.22),
        lon: gps(rng, 121.46),
        accuracy_m: 3.0 + (rng.below(1000) as f64) / 7.0,
        source: "gps".into(),
        mock: false,
        fix_time_ms: f.phone.clock.now_ms(),
    });
    // The hazards that need a photo get this phone's camera picture.
    for a in visit.answers.iter_mut().filter(|a| !a.photos.is_empty()) {
        a.photos = vec![f.photo.clone()];
    }
    f.phone.store.record_inspection(visit).unwrap();
}

/// Syncs and uploads, taking whatever the faults do to it.
fn try_sync(f: &mut Field) {
    let _ = f.phone.client.sync(&mut f.phone.store, &mut |_| {});
    let dir = &f.photos;
    let _ = f
        .phone
        .client
        .upload_photos(&mut f.phone.store, &|sha| dir.full(sha), &mut |_, _| {});
}

fn run(seed: u64, rounds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let mut server = Some(ServerProcess::start(SERVER, &data, "127.0.0.1:0", &[]));
    let listen = server.as_ref().unwrap().addr.to_string();
    let direct = server.as_ref().unwrap().url.clone();
    let admin = Admin::connect(&direct, dir.path());
    admin.grid("g1", "幸福社区");
    let proxy = DropProxy::start(server.as_ref().unwrap().addr);
    let mut rng = Rng::new(seed);

    let mut fields: Vec<Field> = SKEWS
        .iter()
        .enumerate()
        .map(|(i, skew)| {
            let user = format!("w{i}");
            admin.worker(&user, &["g1"]);
            let mut phone = Phone::new(
                dir.path(),
                &format!("phone-{i}"),
                &proxy.url,
                now_ms() + skew,
                chaos_options(),
            );
            phone.enroll(&user);
            let photos = PhotoDir(dir.path().join(format!("photos-{i}")));
            let bytes = std::fs::read(format!(
                "../../shared/testdata/exif-orientation/{}",
                PHOTOS[i]
            ))
            .unwrap();
            let processed =
                process(&bytes, &PhotoOptions::default(), &PhotoLimits::default()).unwrap();
            let photo = photos.save(&processed).unwrap();
            Field {
                phone,
                photos,
                photo,
                backup: None,
            }
        })
        .collect();
    // Three shops everyone edits, known to all before the chaos.
    for n in 0..3 {
        let mut f = PremisesFields::new(format!("店{n}"), "幸福路", PremisesKind::Catering);
        f.grid_id = Some("g1".into());
        fields[0].phone.store.add_premises(f).unwrap();
    }
    for f in &mut fields {
        f.phone.sync();
    }

    let older = dir.path().join("server-older");
    let mut have_older = false;
    let restart = |server: &mut Option<ServerProcess>| {
        if let Some(s) = server.take() {
            s.kill();
        }
        *server = Some(ServerProcess::start(SERVER, &data, &listen, &[]));
    };
    for round in 0..rounds {
        for f in &mut fields {
            if rng.below(3) > 0 {
                offline_work(f, &mut rng);
            }
        }
        let fault = rng.below(9);
        if std::env::var("XUNCHA_CHAOS_DEBUG").is_ok() {
            eprintln!("round {round}: fault {fault}");
        }
        match fault {
            0 => proxy.drop_responses(1 + rng.below(3)),
            1 => {
                // A stall longer than the client waits; it ends by itself.
                proxy.hold_responses();
                let proxy = &proxy;
                std::thread::scope(|t| {
                    t.spawn(|| {
                        std::thread::sleep(Duration::from_millis(2200));
                        proxy.release();
                    });
                    let f = &mut fields[rng.below(SKEWS.len())];
                    try_sync(f);
                });
            }
            2 => {
                // Killed in the middle of a phone's sync, then started again.
                let delay = Duration::from_millis(rng.below(60) as u64);
                let i = rng.below(SKEWS.len());
                std::thread::scope(|t| {
                    let f = &mut fields[i];
                    t.spawn(move || try_sync(f));
                    std::thread::sleep(delay);
                    if let Some(s) = server.take() {
                        s.kill();
                    }
                });
                restart(&mut server);
            }
            3 => {
                // Keep a copy of the data directory as it is now (the server stopped for it).
                if let Some(s) = server.take() {
                    s.kill();
                }
                let _ = std::fs::remove_dir_all(&older);
                copy_tree(&data, &older);
                have_older = true;
                restart(&mut server);
            }
            4 if have_older => {
                // A power loss on storage that lied: the database loses its newest commits
                // (back to the copy); photo files, written and synced one by one, stay.
                if let Some(s) = server.take() {
                    s.kill();
                }
                for suffix in ["", "-wal", "-shm"] {
                    let name = format!("xuncha.sqlite3{suffix}");
                    let _ = std::fs::remove_file(data.join(&name));
                    if older.join(&name).exists() {
                        std::fs::copy(older.join(&name), data.join(&name)).unwrap();
                    }
                }
                restart(&mut server);
            }
            5 => {
                // A phone's data goes back to its last backup (or gets one now).
                let i = rng.below(SKEWS.len());
                let f = &mut fields[i];
                match f.backup.take() {
                    Some(backup) => f.phone.restore(&backup),
                    None => {
                        let backup = dir.path().join(format!("phone-{i}-{round}.backup"));
                        f.phone.snapshot(&backup);
                        f.backup = Some(backup);
                    }
                }
            }
            6 => {
                let f = &mut fields[rng.below(SKEWS.len())];
                f.phone.clock.advance((rng.below(120) as i64 - 60) * 60_000);
            }
            _ => {}
        }
        for f in &mut fields {
            if rng.below(4) > 0 {
                try_sync(f);
            }
        }
    }

    // The faults stop: everyone syncs until quiet, straight to the server.
    proxy.release();
    proxy.drop_responses(0);
    for _ in 0..3 {
        for f in &mut fields {
            f.phone.client =
                xuncha_core::sync::client::SyncClient::new(&direct, test_options()).unwrap();
            f.phone.sync();
            let dir = &f.photos;
            f.phone
                .client
                .upload_photos(&mut f.phone.store, &|sha| dir.full(sha), &mut |_, _| {})
                .unwrap_or_else(|e| panic!("seed {seed}: upload: {e}"));
        }
    }
    let (on_server, ops) = admin.digest();
    // XUNCHA_CHAOS_DEBUG=1: which ops each phone lacks or has extra, against a new phone.
    if std::env::var("XUNCHA_CHAOS_DEBUG").is_ok() {
        admin.worker("w9", &["g1"]);
        let mut fresh = Phone::new(dir.path(), "fresh", &direct, now_ms(), test_options());
        fresh.enroll("w9");
        fresh.sync();
        eprintln!(
            "fresh {} server {}",
            fresh.store.digest().unwrap(),
            on_server
        );
        let keys = |s: &xuncha_core::store::Store| {
            s.all_ops()
                .unwrap()
                .into_iter()
                .map(|o| (o.device.as_str().to_owned(), o.seq, o.hlc))
                .collect::<std::collections::BTreeSet<_>>()
        };
        let all = keys(&fresh.store);
        for f in &fields {
            let mine = keys(&f.phone.store);
            eprintln!(
                "{}: {} ops, missing {:?}, extra {:?}, set aside {:?}",
                f.phone.store.device_id(),
                mine.len(),
                all.difference(&mine).take(5).collect::<Vec<_>>(),
                mine.difference(&all).take(5).collect::<Vec<_>>(),
                f.phone.store.set_aside_ops().unwrap().len()
            );
        }
    }
    for f in &fields {
        let s = &f.phone.store;
        let device = s.device_id().clone();
        assert_eq!(
            s.digest().unwrap(),
            on_server,
            "seed {seed}: {device} differs"
        );
        assert_eq!(
            s.op_count().unwrap() as u64,
            ops,
            "seed {seed}: {device} op count"
        );
        assert_eq!(
            s.pending_count().unwrap(),
            0,
            "seed {seed}: {device} outbox"
        );
        assert_eq!(
            s.pending_photo_count().unwrap(),
            0,
            "seed {seed}: {device} photos"
        );
        assert!(
            s.refused_photos().unwrap().is_empty(),
            "seed {seed}: {device}: {:?}",
            s.refused_photos().unwrap()
        );
        assert!(
            s.set_aside_ops().unwrap().is_empty(),
            "seed {seed}: {device}"
        );
    }
    // Every photo referred to is on the server, whole: another phone downloads it.
    let token = xuncha_core::sync::client::SyncClient::token(&fields[1].phone.store).unwrap();
    for f in &fields {
        let held = f.phone.store.all_ops().unwrap();
        let used = held
            .iter()
            .flat_map(|op| op.body.photos())
            .any(|p| p.sha256 == f.photo.sha256);
        if used {
            let bytes = fields[1]
                .phone
                .client
                .download_photo(&token, &f.photo.sha256, false)
                .unwrap_or_else(|e| {
                    panic!("seed {seed}: photo of {}: {e}", f.phone.store.device_id())
                });
            assert_eq!(
                bytes,
                std::fs::read(f.photos.full(&f.photo.sha256)).unwrap()
            );
        }
    }
}

#[test]
fn phones_converge_through_kills_lost_commits_stalls_and_restored_backups() {
    let rounds = env_or("XUNCHA_CHAOS_ROUNDS", 8);
    let seeds: Vec<u64> = match std::env::var("XUNCHA_CHAOS_SEED") {
        Ok(one) => vec![one.parse().unwrap()],
        Err(_) => (1..=env_or("XUNCHA_CHAOS_SEEDS", 3)).collect(),
    };
    for seed in seeds {
        run(seed, rounds);
    }
}
