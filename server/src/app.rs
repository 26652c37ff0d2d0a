//! The field app at `/app/`: the grid worker's offline-first web app (the shared core in
//! WebAssembly, `mobile-core/web`), its files compiled into the binary from `assets/app/`.
//!
//! Every file carries an ETag (its SHA-256), so a phone revalidates with a 304 instead of
//! downloading again; the service worker keeps the app usable offline. Files under `pkg/`
//! (the wasm and its glue, built by `scripts/web-build`) are cached by the service worker
//! too, and the HTML sets its own policy: WebAssembly needs `wasm-unsafe-eval`, photos
//! shown from memory are `blob:` images.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/app/"]
struct AppFiles;

/// The app page's policy: its own files only, WebAssembly compiled from them, photos from
/// memory and the server; never framed.
pub const APP_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' blob: data:; style-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The app's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/app/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
}

/// One file of the app, or 304 when the phone holds this version, or 404.
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = AppFiles::get(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let content_type = file.metadata.mimetype();
    let content_type = match content_type {
        // Scripts and pages in UTF-8 (Chinese text).
        "text/javascript" | "application/javascript" => "text/javascript; charset=utf-8",
        "text/html" => "text/html; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        other if path.ends_with(".webmanifest") => {
            let _ = other;
            "application/manifest+json"
        }
        other => other,
    }
    .to_owned();
    let mut headers = vec![
        (header::ETAG, etag.clone()),
        // Always revalidated (a 304 is a few bytes): an upgraded server reaches phones at
        // their next visit, and the service worker serves the cached copy offline.
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ];
    if content_type.starts_with("text/html") {
        headers.push((
            header::CONTENT_SECURITY_POLICY,
            APP_CONTENT_SECURITY_POLICY.to_owned(),
        ));
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        headers.push((header::CONTENT_TYPE, content_type));
        file.data.into_owned().into_response()
    };
    for (name, value) in headers {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
