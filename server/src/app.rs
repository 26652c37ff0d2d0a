//! The field app at `/app/`: the grid worker's offline-first web app (the shared core in
//! WebAssembly, `mobile-core/web`), its files compiled into the binary from `assets/app/`.
//!
//! Every file carries an ETag (its SHA-256), so a phone revalidates with a 304 instead of
//! downloading again; the service worker keeps the app usable offline. Files under `pkg/`
//! (the wasm and its glue, built by `scripts/web-build`) are cached by the service worker
//! too, and the HTML sets its own policy: WebAssembly needs `wasm-unsafe-eval`, photos
//! shown from memory are `blob:` images.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

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

/// Whether a file is worth compressing (text and WebAssembly, not images).
fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/wasm")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/manifest+json")
        || content_type.starts_with("image/svg+xml")
}

/// A file's gzip encoding, made once per file (the files never change while the server runs;
/// the wasm shrinks from about 4.3 MB to 1.7 MB).
fn gzipped(path: &str, data: &[u8]) -> Arc<Vec<u8>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
        return hit.clone();
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let encoded = encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map(Arc::new)
        .unwrap_or_else(|_| Arc::new(Vec::new()));
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_owned(), encoded.clone());
    encoded
}

/// One file of the app (gzipped when the browser takes it), or 304 when the phone holds this
/// version, or 404.
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = AppFiles::get(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hash = hex::encode(file.metadata.sha256_hash());
    let content_type = if path.ends_with(".webmanifest") {
        "application/manifest+json"
    } else {
        match file.metadata.mimetype() {
            // Scripts and pages in UTF-8 (Chinese text).
            "text/javascript" | "application/javascript" => "text/javascript; charset=utf-8",
            "text/html" => "text/html; charset=utf-8",
            "text/css" => "text/css; charset=utf-8",
            other => other,
        }
    }
    .to_owned();
    let gzip = compressible(&content_type)
        && request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    // Each encoding is its own representation, with its own tag.
    let etag = if gzip {
        format!("\"{hash}-gz\"")
    } else {
        format!("\"{hash}\"")
    };
    let mut headers = vec![
        (header::ETAG, etag.clone()),
        (header::VARY, "accept-encoding".to_owned()),
        (header::CACHE_CONTROL, cache_control(path).to_owned()),
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
    } else if gzip {
        headers.push((header::CONTENT_TYPE, content_type));
        headers.push((header::CONTENT_ENCODING, "gzip".to_owned()));
        axum::body::Body::from(gzipped(path, &file.data).as_ref().clone()).into_response()
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

/// Files named by their content (`xuncha_web_bg-0123456789abcdef.wasm`, made so by
/// scripts/web-build) never change: browsers keep them for good. The rest is always
/// revalidated (a 304 is a few bytes), so an upgraded server reaches phones at their next
/// visit, and the service worker serves the cached copy offline.
fn cache_control(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    let hashed = stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == 16 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}
