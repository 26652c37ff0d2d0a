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

    // The core's build under content-hashed names, which browsers keep for good; the entry
    // the worker imports and the service worker's list of them are always revalidated.
    let (_, headers, shell) = get(&state, "/app/pkg/shell.js", &[]).await;
    assert_eq!(headers["cache-control"], "no-cache");
    let shell = String::from_utf8(shell).unwrap();
    let quoted = |text: &str, prefix: &str| {
        let from = text
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} in {text}"));
        text[from..].split('\'').next().unwrap().to_owned()
    };
    let (glue, wasm) = (
        quoted(&shell, "pkg/xuncha_web-"),
        quoted(&shell, "pkg/xuncha_web_bg-"),
    );
    let (_, headers, entry) = get(&state, "/app/pkg/xuncha_web.js", &[]).await;
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(String::from_utf8(entry).unwrap().contains(&glue[4..]));
    let (status, headers, glue_js) = get(&state, &format!("/app/{glue}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        String::from_utf8(glue_js).unwrap().contains(&wasm[4..]),
        "the glue loads the wasm of its own build"
    );
    let wasm_url = format!("/app/{wasm}");
    let wasm_url = wasm_url.as_str();
    let (status, _, _) = get(&state, "/app/pkg/xuncha_web_bg.wasm", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only hashed names");

    // The WebAssembly: its type, gzipped when asked, the same bytes once decoded.
    let (status, headers, plain) = get(&state, wasm_url, &[]).await;
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/wasm");
    assert!(plain.starts_with(b"\0asm"));
    assert!(headers.get("content-encoding").is_none());
    let (status, headers, gz) = get(&state, wasm_url, &[("accept-encoding", "br, gzip")]).await;
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
        wasm_url,
        &[("accept-encoding", "gzip"), ("if-none-match", &tag)],
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, _, _) = get(&state, wasm_url, &[("if-none-match", &tag)]).await;
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
