//! The page and its files, compiled into the binary (the README's one command serves them).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (path under `/assets/`, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "print.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/print.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.css"),
    ),
    (
        "vendor/leaflet/leaflet.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.js"),
    ),
    (
        "vendor/leaflet/leaflet.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.css"),
    ),
    (
        "vendor/leaflet/images/marker-icon.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/marker-icon.png"),
    ),
    (
        "vendor/leaflet/images/marker-icon-2x.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/marker-icon-2x.png"),
    ),
    (
        "vendor/leaflet/images/marker-shadow.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/marker-shadow.png"),
    ),
    (
        "vendor/leaflet/images/layers.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/layers.png"),
    ),
    (
        "vendor/leaflet/images/layers-2x.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/layers-2x.png"),
    ),
    (
        "vendor/markercluster/leaflet.markercluster.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/markercluster/leaflet.markercluster.js"),
    ),
    (
        "vendor/markercluster/MarkerCluster.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/markercluster/MarkerCluster.css"),
    ),
    (
        "vendor/markercluster/MarkerCluster.Default.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/markercluster/MarkerCluster.Default.css"),
    ),
    (
        "vendor/heat/leaflet-heat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/heat/leaflet-heat.js"),
    ),
];

const INDEX: &str = include_str!("../../assets/dashboard/index.html");

/// The policy of every HTML page the server sends: its own files only (no inline script),
/// tiles and photos as images, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: https: http:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Puts the page policy and `nosniff` on every HTML response (the dashboard, the notice,
/// the QR sheet, the status page), so no page is left without them.
pub async fn secure_html(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // A page that set its own policy (the field app) keeps it.
    if html
        && !response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY)
    {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        );
    }
    response
}

/// `GET /`: the dashboard page.
pub async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

/// `GET /assets/{path}`.
pub async fn file(Path(path): Path<String>) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
