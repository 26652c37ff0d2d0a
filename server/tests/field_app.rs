//! The field app's files at `/app/`: compiled in, with their policy, tags, gzip and 304s.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use xuncha_server::{AppState, Config, app};

async fn get(
    state: &AppState,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let res = app(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn the_app_is_served_with_its_policy_tags_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), Config::default()).unwrap();

    let (status, headers, body) = get(&state, "/app/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("app.js"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("'wasm-unsafe-eval'"), "{policy}");
    assert!(!policy.contains("'unsafe-eval'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let (status, headers, _) = get(&state, "/app", &[]).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers["location"], "/app/");

    // The WebAssembly: its type, gzipped when asked, the same bytes once decoded.
    let (status, headers, plain) = get(&state, "/app/pkg/xuncha_web_bg.wasm", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/wasm");
    assert!(plain.starts_with(b"\0asm"));
    assert!(headers.get("content-encoding").is_none());
    let (status, headers, gz) = get(
        &state,
        "/app/pkg/xuncha_web_bg.wasm",
        &[("accept-encoding", "br, gzip")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(
        gz.len() * 2 < plain.len(),
        "gzip shrinks it: {} of {}",
        gz.len(),
        plain.len()
    );
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut decoded).unwrap();
    assert_eq!(decoded, plain);

    // A phone holding this version gets a 304, per encoding.
    let tag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, body) = get(
        &state,
        "/app/pkg/xuncha_web_bg.wasm",
        &[("accept-encoding", "gzip"), ("if-none-match", &tag)],
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, _, _) = get(
        &state,
        "/app/pkg/xuncha_web_bg.wasm",
        &[("if-none-match", &tag)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the plain bytes are another representation"
    );

    // Scripts in UTF-8, the manifest as one, images not compressed, nothing else served.
    let (_, headers, _) = get(&state, "/app/app.js", &[("accept-encoding", "gzip")]).await;
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    let (_, headers, _) = get(&state, "/app/manifest.webmanifest", &[]).await;
    assert_eq!(headers["content-type"], "application/manifest+json");
    for missing in [
        "/app/nope.js",
        "/app/../Cargo.toml",
        "/app/pkg/../../src/app.rs",
    ] {
        let (status, _, _) = get(&state, missing, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}
