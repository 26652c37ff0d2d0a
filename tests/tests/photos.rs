//! Photos end to end: phones upload through a connection that drops, another phone of the
//! grid downloads, other grids are refused, bad uploads leave the server's memory bounded, and
//! photos a server restored from a backup lacks are sent again.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use sha2::{Digest, Sha256};
use xuncha_core::model::PhotoRef;
use xuncha_core::photo::{PhotoDir, PhotoLimits, PhotoOptions, process, samples};
use xuncha_core::sync::client::{PhotoUpload, SyncClient, SyncOptions};
use xuncha_e2e::{Admin, DropProxy, Phone, ServerProcess, inspect_with, now_ms, test_options};

const SERVER: &str = env!("CARGO_BIN_EXE_xuncha-server-e2e");

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(format!("../../shared/testdata/exif-orientation/{name}")).unwrap()
}

fn upload_all(phone: &mut Phone, dir: &PhotoDir) -> xuncha_core::sync::client::UploadReport {
    phone
        .client
        .upload_photos(&mut phone.store, &|sha| dir.full(sha), &mut |_, _| {})
        .unwrap()
}

#[test]
fn photos_upload_through_a_dropping_connection_and_reach_the_grid_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "c1");
    admin.grid("g2", "c2");
    admin.worker("w1", &["g1"]);
    admin.worker("w2", &["g2"]);

    let proxy = DropProxy::start(server.addr);
    let options = SyncOptions {
        photo_chunk_bytes: 64 << 10,
        ..test_options()
    };
    let mut a = Phone::new(dir.path(), "phone-a", &proxy.url, now_ms(), options);
    a.enroll("w1");
    let photos_a = PhotoDir(dir.path().join("photos-a"));
    let refs: Vec<PhotoRef> = ["Landscape_6.jpg", "Portrait_2.jpg"]
        .iter()
        .map(|name| {
            let p = process(
                &testdata(name),
                &PhotoOptions::default(),
                &PhotoLimits::default(),
            )
            .unwrap();
            photos_a.save(&p).unwrap()
        })
        .collect();
    inspect_with(&mut a, refs.clone());
    assert_eq!(a.store.pending_photo_count().unwrap(), 2);

    // Photos before their record: the server waits for the record; nothing is lost.
    let early = upload_all(&mut a, &photos_a);
    assert_eq!((early.waiting, early.uploaded), (2, 0));
    assert_eq!(a.store.pending_photo_count().unwrap(), 2);

    // Records first, then photos; the answer to one chunk is lost on the way.
    a.sync();
    proxy.drop_responses(1);
    let report = upload_all(&mut a, &photos_a);
    assert_eq!(proxy.dropped(), 1);
    assert_eq!((report.uploaded, report.refused, report.waiting), (2, 0, 0));
    let total: u64 = refs.iter().map(|r| r.bytes).sum();
    // Resumed where the server stood: every byte acknowledged once, none sent from scratch.
    assert_eq!(report.sent_bytes, total);
    assert_eq!(a.store.pending_photo_count().unwrap(), 0);
    // Nothing left to do the second time.
    assert_eq!(upload_all(&mut a, &photos_a), Default::default());

    // Another phone of the grid pulls the record and fetches its photos, byte for byte.
    let mut b = Phone::new(dir.path(), "phone-b", &server.url, now_ms(), test_options());
    let token_b = b.enroll("w1");
    b.sync();
    for r in &refs {
        let full = b.client.download_photo(&token_b, &r.sha256, false).unwrap();
        assert_eq!(full, std::fs::read(photos_a.full(&r.sha256)).unwrap());
        let thumb = b.client.download_photo(&token_b, &r.sha256, true).unwrap();
        assert!(thumb.len() < full.len() / 4);
    }
    // Another grid's worker is refused with a clear message.
    let mut c = Phone::new(dir.path(), "phone-c", &server.url, now_ms(), test_options());
    let token_c = c.enroll("w2");
    let err = c
        .client
        .download_photo(&token_c, &refs[0].sha256, false)
        .unwrap_err();
    assert!(
        matches!(err, xuncha_core::Error::Server { status: 403, .. }),
        "{err}"
    );
    let outcome = c
        .client
        .upload_photo(
            &token_c,
            &refs[0].sha256,
            &photos_a.full(&refs[0].sha256),
            &mut 0,
        )
        .unwrap();
    assert!(matches!(outcome, PhotoUpload::Refused(_)), "{outcome:?}");
}

#[test]
fn bad_uploads_are_refused_and_the_servers_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(SERVER, &dir.path().join("server"), "127.0.0.1:0", &[]);
    let admin = Admin::connect(&server.url, dir.path());
    admin.grid("g1", "c1");
    admin.worker("w1", &["g1"]);
    let mut a = Phone::new(dir.path(), "phone-a", &server.url, now_ms(), test_options());
    let token = a.enroll("w1");

    let good = process(
        &testdata("Portrait_7.jpg"),
        &PhotoOptions::default(),
        &PhotoLimits::default(),
    )
    .unwrap()
    .jpeg;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JPEG", good[..good.len() / 2].to_vec()),
        ("random bytes", samples::random_bytes(200_000)),
        ("decompression bomb", samples::bomb_png()),
        // As large as the server takes (20 MiB), in its largest chunks, six at once.
        ("enormous random file 1", samples::random_bytes(20 << 20)),
        (
            "enormous random file 2",
            samples::random_bytes((20 << 20) - 1),
        ),
        (
            "enormous random file 3",
            samples::random_bytes((20 << 20) - 2),
        ),
        (
            "enormous random file 4",
            samples::random_bytes((20 << 20) - 3),
        ),
        ("a camera's file with its EXIF", testdata("Portrait_7.jpg")),
    ];
    let refs: Vec<PhotoRef> = bad
        .iter()
        .map(|(_, bytes)| PhotoRef {
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
            width: 1,
            height: 1,
        })
        .collect();
    inspect_with(&mut a, refs.clone());
    a.sync();
    let before = server.peak_rss_kib();

    let photos = PhotoDir(dir.path().join("photos-a"));
    std::fs::create_dir_all(&photos.0).unwrap();
    let client = SyncClient::new(
        &server.url,
        SyncOptions {
            photo_chunk_bytes: xuncha_server::photos::MAX_CHUNK_BYTES,
            ..test_options()
        },
    )
    .unwrap();
    for (bytes, r) in bad.iter().map(|(_, b)| b).zip(&refs) {
        std::fs::write(photos.full(&r.sha256), bytes).unwrap();
    }
    // All at once, as a hostile client would: the server reads a few chunks at a time.
    std::thread::scope(|t| {
        for ((what, _), r) in bad.iter().zip(&refs) {
            let (client, token, photos) = (&client, &token, &photos);
            t.spawn(move || {
                let outcome = client
                    .upload_photo(token, &r.sha256, &photos.full(&r.sha256), &mut 0)
                    .unwrap();
                let PhotoUpload::Refused(why) = &outcome else {
                    panic!("{what}: {outcome:?}");
                };
                assert!(
                    why.contains("picture") || why.contains("JPEG") || why.contains("limit"),
                    "{what}: {why}"
                );
                let err = client.download_photo(token, &r.sha256, false).unwrap_err();
                assert!(
                    matches!(err, xuncha_core::Error::Server { status: 404, .. }),
                    "{what}: {err}"
                );
            });
        }
    });
    // A chunk over the largest is refused from its size.
    let over = samples::random_bytes(1000);
    let sha = &refs[5].sha256;
    let response = reqwest::blocking::Client::new()
        .patch(format!("{}/v1/photos/{sha}", server.url))
        .bearer_auth(&token)
        .header("upload-offset", "0")
        .header("upload-length", (20u64 << 20).to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(
            over.iter()
                .copied()
                .cycle()
                .take(xuncha_server::photos::MAX_CHUNK_BYTES + 1)
                .collect::<Vec<u8>>(),
        )
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let after = server.peak_rss_kib();
    println!(
        "server peak RSS: {} MiB before the bad uploads, {} MiB after",
        before / 1024,
        after / 1024
    );
    // Two chunks (4 MiB) and one whole photo (20 MiB) are held at once, whatever the number
    // of connections; the bomb and the camera file are refused from their headers.
    assert!(after < 150 * 1024, "peak RSS {after} KiB");
}

#[test]
fn photos_a_restored_server_lacks_are_uploaded_again() {
    if xuncha_e2e::on_postgres(
        "a restore from `xuncha-server backup` (the SQLite file; PostgreSQL is backed up with pg_dump)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, copy) = (dir.path().join("server"), dir.path().join("backup"));
    let server = ServerProcess::start(SERVER, &data, "127.0.0.1:0", &[]);
    let (url, listen) = (server.url.clone(), server.addr.to_string());
    let admin = Admin::connect(&url, dir.path());
    admin.grid("g1", "c1");
    admin.worker("w1", &["g1"]);
    let mut a = Phone::new(dir.path(), "phone-a", &url, now_ms(), test_options());
    a.enroll("w1");
    let photos_a = PhotoDir(dir.path().join("photos-a"));
    let processed = process(
        &testdata("Landscape_6.jpg"),
        &PhotoOptions::default(),
        &PhotoLimits::default(),
    )
    .unwrap();
    let photo = photos_a.save(&processed).unwrap();
    inspect_with(&mut a, vec![photo.clone()]);

    // The record reaches the server before the backup, the photo (wifi only, say) after it.
    a.sync();
    let out = std::process::Command::new(SERVER)
        .arg("--data")
        .arg(&data)
        .arg("backup")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(upload_all(&mut a, &photos_a).uploaded, 1);
    assert_eq!(a.store.pending_photo_count().unwrap(), 0);
    server.kill();

    // Restored from the copy: it holds the record but not the photo.
    let _server = ServerProcess::start(SERVER, &copy, &listen, &[]);
    let mut b = Phone::new(dir.path(), "phone-b", &url, now_ms(), test_options());
    let token_b = b.enroll("w1");
    b.sync();
    let err = b
        .client
        .download_photo(&token_b, &photo.sha256, false)
        .unwrap_err();
    assert!(
        matches!(err, xuncha_core::Error::Server { status: 404, .. }),
        "{err}"
    );
    // Phone a's next sync pulls from the start and hears which of its photos are missing.
    a.sync();
    assert_eq!(a.store.pending_photo_count().unwrap(), 1);
    assert_eq!(upload_all(&mut a, &photos_a).uploaded, 1);
    let full = b
        .client
        .download_photo(&token_b, &photo.sha256, false)
        .unwrap();
    assert_eq!(full, std::fs::read(photos_a.full(&photo.sha256)).unwrap());
}
