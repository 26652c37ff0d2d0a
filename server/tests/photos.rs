//! Photo upload and download through the HTTP router: chunks at explicit offsets that resume,
//! verification before anything is visible, and access only for the photo's area.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

mod common;

use axum::http::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use xuncha_core::checklist::sample::sample_visit;
use xuncha_core::clock::china_date;
use xuncha_core::model::{PhotoRef, PremisesFields, PremisesKind};
use xuncha_core::photo::{PhotoLimits, PhotoOptions, process, samples};

use common::*;

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(format!("../../shared/testdata/exif-orientation/{name}")).unwrap()
}

/// A real stored photo (what a phone uploads).
fn stored_photo(name: &str) -> (Vec<u8>, PhotoRef) {
    let p = process(
        &testdata(name),
        &PhotoOptions::default(),
        &PhotoLimits::default(),
    )
    .unwrap();
    (p.jpeg, p.reference)
}

/// A reference to arbitrary bytes, as a phone that lies or breaks would send.
fn reference_to(bytes: &[u8]) -> PhotoRef {
    PhotoRef {
        sha256: hex::encode(Sha256::digest(bytes)),
        bytes: bytes.len().max(1) as u64,
        width: 1,
        height: 1,
    }
}

/// Records on `p` an inspection of a new shop in `grid` whose FE-03 answer carries `photos`.
fn record_with_photos(p: &mut xuncha_core::store::Store, grid: &str, photos: Vec<PhotoRef>) {
    let mut f = PremisesFields::new("老王面馆", "幸福路1号", PremisesKind::Catering);
    f.grid_id = Some(grid.into());
    let premises = p.add_premises(f).unwrap();
    let mut visit = sample_visit(p.catalog(), &premises, china_date(now_ms()), &["FE-03"]);
    visit
        .answers
        .iter_mut()
        .find(|a| a.code == "FE-03")
        .unwrap()
        .photos = photos;
    p.record_inspection(visit).unwrap();
}

/// Worker w1 records an inspection in grid g1 whose FE-03 answer carries `photos`, and
/// pushes it: the server now knows the photos belong to g1.
async fn inspection_with(s: &Server, photos: Vec<PhotoRef>) {
    let mut p = phone("phone-w1", "w1", now_ms());
    record_with_photos(&mut p, "g1", photos.clone());
    // The phone queued them for upload.
    let queued = p.pending_photos().unwrap();
    assert!(photos.iter().all(|ph| queued.contains(&ph.sha256)));
    let (code, ack) = push(s, &s.w1, &p.pending_ops(1000).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
}

async fn patch(
    s: &Server,
    token: &str,
    sha: &str,
    offset: usize,
    length: usize,
    chunk: &[u8],
) -> (StatusCode, Value) {
    send(
        s,
        "PATCH",
        &format!("/v1/photos/{sha}"),
        Some(token),
        chunk.to_vec(),
        &[
            ("upload-offset", &offset.to_string()),
            ("upload-length", &length.to_string()),
            ("content-type", "application/offset+octet-stream"),
        ],
    )
    .await
}

/// HEAD: status and the offset the server holds.
async fn head(s: &Server, token: &str, sha: &str) -> (StatusCode, Option<u64>) {
    let (code, headers, _) = send_raw(
        s,
        "HEAD",
        &format!("/v1/photos/{sha}"),
        Some(token),
        vec![],
        &[],
    )
    .await;
    let offset = headers
        .get("upload-offset")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (code, offset)
}

async fn get(s: &Server, token: Option<&str>, path: &str) -> (StatusCode, Vec<u8>) {
    let (code, _, body) = send_raw(s, "GET", path, token, vec![], &[]).await;
    (code, body)
}

/// Photos stored by the server (files under its photo folder, or objects under its prefix
/// in the S3 server's folder).
fn stored_files(s: &Server) -> usize {
    walk(&s.photo_dir)
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

#[tokio::test]
async fn a_photo_uploads_in_chunks_resumes_and_is_seen_only_in_its_area() {
    let s = server();
    let (jpeg, photo) = stored_photo("Landscape_3.jpg");
    let sha = photo.sha256.clone();
    let (other_jpeg, other) = stored_photo("Portrait_5.jpg");

    // Before any record refers to it, the server will not take it.
    let (code, err) = patch(&s, &s.w1, &sha, 0, jpeg.len(), &jpeg[..1000]).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("photo_unreferenced"))
    );
    inspection_with(&s, vec![photo.clone()]).await;

    // Nothing yet: 404 at offset 0.
    assert_eq!(
        head(&s, &s.w1, &sha).await,
        (StatusCode::NOT_FOUND, Some(0))
    );
    // A first chunk, then the connection "drops": the server says where to go on.
    let cut = 100_000;
    let (code, _) = patch(&s, &s.w1, &sha, 0, jpeg.len(), &jpeg[..cut]).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert_eq!(
        head(&s, &s.w1, &sha).await,
        (StatusCode::NOT_FOUND, Some(cut as u64))
    );
    // Sending from the wrong place is refused with the right one.
    let (code, err) = patch(&s, &s.w1b, &sha, 0, jpeg.len(), &jpeg[..cut]).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "offset_mismatch");
    assert_eq!(err["error"]["detail"]["offset"], cut as u64);
    // Not visible while incomplete.
    assert_eq!(
        get(&s, Some(&s.w1), &format!("/v1/photos/{sha}")).await.0,
        StatusCode::NOT_FOUND
    );

    // Another grid's worker may neither upload nor look.
    let (code, err) = patch(&s, &s.w2, &sha, cut, jpeg.len(), &jpeg[cut..]).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("photo_forbidden"))
    );
    assert_eq!(head(&s, &s.w2, &sha).await.0, StatusCode::FORBIDDEN);

    // The rest completes it: verified, and the answer describes it.
    let (code, info) = patch(&s, &s.w1, &sha, cut, jpeg.len(), &jpeg[cut..]).await;
    assert_eq!(code, StatusCode::CREATED, "{info}");
    assert_eq!(info["sha256"], sha);
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(u64::from(photo.width)), Some(u64::from(photo.height)))
    );
    assert_eq!(head(&s, &s.w1, &sha).await.0, StatusCode::OK);
    // Sending it again changes nothing.
    assert_eq!(
        patch(&s, &s.w1b, &sha, 0, jpeg.len(), &jpeg[..1000])
            .await
            .0,
        StatusCode::OK
    );

    // Download: the same bytes; a thumbnail of about 320 px; the area and admins only.
    let (code, body) = get(&s, Some(&s.w1b), &format!("/v1/photos/{sha}")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body, jpeg);
    let (code, thumb) = get(&s, Some(&s.w1), &format!("/v1/photos/{sha}/thumb")).await;
    assert_eq!(code, StatusCode::OK);
    let t = image::load_from_memory(&thumb).unwrap();
    assert_eq!(t.width().max(t.height()), 320);
    assert_eq!(
        get(&s, Some(&s.admin), &format!("/v1/photos/{sha}"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, Some(&s.w2), &format!("/v1/photos/{sha}")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&s, None, &format!("/v1/photos/{sha}")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A photo no record refers to stays unknown.
    assert_eq!(
        get(&s, Some(&s.w1), &format!("/v1/photos/{}", other.sha256))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (code, _) = patch(
        &s,
        &s.w1,
        &other.sha256,
        0,
        other_jpeg.len(),
        &other_jpeg[..1000],
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(stored_files(&s), 2, "the photo and its thumbnail");
}

#[tokio::test]
async fn bad_uploads_are_refused_whole_and_nothing_becomes_visible() {
    let s = server();
    let (good, good_ref) = stored_photo("Portrait_1.jpg");
    let truncated = good[..good.len() / 2].to_vec();
    let random = samples::random_bytes(50_000);
    let bomb = samples::bomb_png();
    let cases = [
        (
            "wrong hash",
            good_ref.sha256.clone(),
            good[..good.len() - 1].to_vec(),
            "photo_hash_mismatch",
        ),
        (
            "truncated JPEG",
            reference_to(&truncated).sha256,
            truncated.clone(),
            "photo_undecodable",
        ),
        (
            "random bytes",
            reference_to(&random).sha256,
            random.clone(),
            "photo_undecodable",
        ),
        (
            "decompression bomb",
            reference_to(&bomb).sha256,
            bomb.clone(),
            "photo_undecodable",
        ),
    ];
    inspection_with(
        &s,
        vec![
            good_ref.clone(),
            reference_to(&truncated),
            reference_to(&random),
            reference_to(&bomb),
        ],
    )
    .await;
    for (what, sha, bytes, expected) in &cases {
        // In two chunks, so the refusal comes after a partial was held.
        let half = bytes.len() / 2;
        assert_eq!(
            patch(&s, &s.w1, sha, 0, bytes.len(), &bytes[..half])
                .await
                .0,
            StatusCode::NO_CONTENT,
            "{what}"
        );
        let (code, err) = patch(&s, &s.w1, sha, half, bytes.len(), &bytes[half..]).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {err}");
        assert_eq!(err["error"]["code"], *expected, "{what}: {err}");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
        // Thrown away whole: not visible, and an upload starts again from zero.
        assert_eq!(
            head(&s, &s.w1, sha).await,
            (StatusCode::NOT_FOUND, Some(0)),
            "{what}"
        );
        assert_eq!(
            get(&s, Some(&s.w1), &format!("/v1/photos/{sha}")).await.0,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(stored_files(&s), 0);

    let sha = &good_ref.sha256;
    let path = format!("/v1/photos/{sha}");
    let too_big = ((20 << 20) + 1).to_string();
    // (what, path, offset, length, expected status and code); each sends 3 bytes.
    let bad_requests = [
        (
            "not a photo id",
            "/v1/photos/NOT-A-HASH",
            Some("0"),
            "3",
            StatusCode::BAD_REQUEST,
            "bad_photo_id",
        ),
        (
            "no offset",
            &path,
            None,
            "3",
            StatusCode::BAD_REQUEST,
            "bad_upload_header",
        ),
        (
            "over the size limit",
            &path,
            Some("0"),
            &too_big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "photo_too_large",
        ),
        (
            "chunk past the length",
            &path,
            Some("0"),
            "2",
            StatusCode::BAD_REQUEST,
            "upload_overrun",
        ),
    ];
    for (what, path, offset, length, status, code) in bad_requests {
        let mut headers = vec![("upload-length", length)];
        headers.extend(offset.map(|o| ("upload-offset", o)));
        let (got, err) = send(&s, "PATCH", path, Some(&s.w1), vec![7; 3], &headers).await;
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {err}"
        );
    }
    assert_eq!(head(&s, &s.w1, sha).await, (StatusCode::NOT_FOUND, Some(0)));
    // After all that, the real photo still goes through.
    let half = good.len() / 2;
    assert_eq!(
        patch(&s, &s.w1, sha, 0, good.len(), &good[..half]).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        patch(&s, &s.w1, sha, half, good.len(), &good[half..])
            .await
            .0,
        StatusCode::CREATED
    );
}

/// w2's phone `p` records an inspection of a new g2 shop that lists `photos`, and pushes it.
async fn own_inspection_listing(
    s: &Server,
    p: &mut xuncha_core::store::Store,
    photos: Vec<PhotoRef>,
) -> Value {
    record_with_photos(p, "g2", photos);
    let ops = p.pending_ops(1000).unwrap();
    let (code, ack) = push(s, &s.w2, &ops).await;
    assert_eq!(code, StatusCode::OK, "{ack}");
    p.mark_acked(ops.last().unwrap().seq).unwrap();
    ack
}

#[tokio::test]
async fn listing_another_grids_photo_hash_does_not_open_it() {
    let s = server();
    let (jpeg, photo) = stored_photo("Landscape_3.jpg");
    let sha = photo.sha256.clone();
    inspection_with(&s, vec![photo.clone()]).await;
    let mut w2 = phone("phone-w2", "w2", now_ms());

    // Before the upload: the hash is already another grid's, so the reference is set aside.
    let ack = own_inspection_listing(&s, &mut w2, vec![photo.clone()]).await;
    assert_eq!(ack["set_aside"][0]["code"], "photo_forbidden", "{ack}");
    let cut = jpeg.len() / 2;
    let (code, _) = patch(&s, &s.w1, &sha, 0, jpeg.len(), &jpeg[..cut]).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _) = patch(&s, &s.w1, &sha, cut, jpeg.len(), &jpeg[cut..]).await;
    assert_eq!(code, StatusCode::CREATED);

    // After it: the same, and the photo stays closed to w2 either way.
    let ack = own_inspection_listing(&s, &mut w2, vec![photo]).await;
    assert_eq!(ack["set_aside"][0]["code"], "photo_forbidden", "{ack}");
    assert_eq!(
        get(&s, Some(&s.w2), &format!("/v1/photos/{sha}")).await.0,
        StatusCode::FORBIDDEN
    );
    let (code, headers, _) = send_raw(
        &s,
        "GET",
        &format!("/v1/photos/{sha}"),
        Some(&s.w1),
        vec![],
        &[],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        (&headers["content-type"], &headers["x-content-type-options"]),
        (
            &"image/jpeg".parse::<axum::http::HeaderValue>().unwrap(),
            &"nosniff".parse::<axum::http::HeaderValue>().unwrap()
        )
    );
    // A photo of w2's own, not on the server yet, is referred to as usual.
    let (_, own) = stored_photo("Portrait_5.jpg");
    let ack = own_inspection_listing(&s, &mut w2, vec![own]).await;
    assert!(ack["set_aside"].is_null(), "{ack}");
}
