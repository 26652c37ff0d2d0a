//! Request and response bodies: JSON, gzip both ways, and hard size limits. The limit applies
//! after decompression, so a small gzip bomb is refused like a large body.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Responses smaller than this are sent uncompressed (gzip would not pay).
const GZIP_MIN_BYTES: usize = 512;

/// Responses at least this large are compressed off the async runtime.
const BLOCKING_GZIP_BYTES: usize = 64 << 10;

/// The request body as JSON text: gunzipped when it says `Content-Encoding: gzip`, and at most
/// `limit` bytes either way.
pub fn read(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::malformed(format!("could not read the body: {e}"))
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => {
            if body.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            Ok(body.to_vec())
        }
        "gzip" => {
            let mut out = Vec::with_capacity(body.len() * 4);
            GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::malformed(format!("body is not valid gzip: {e}")))?;
            if out.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            Ok(out)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            "不支持的压缩格式",
            format!("Content-Encoding {other:?} is not supported; use gzip or none"),
        )),
    }
}

/// Parses JSON: 400 when it is not JSON at all, 422 when it is JSON of the wrong shape.
pub fn parse<T: DeserializeOwned>(json: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(json).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            ApiError::invalid("wrong_shape", "数据字段或类型不正确", format!("{e}"))
        } else {
            ApiError::malformed(format!("body is not valid JSON: {e}"))
        }
    })
}

/// A JSON response, gzipped when the client accepts it and it is worth it.
pub fn json<T: Serialize>(headers: &HeaderMap, status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => raw_json(headers, status, bytes),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Whether a response of `len` bytes goes out gzipped.
fn gzipped(headers: &HeaderMap, len: usize) -> bool {
    len >= GZIP_MIN_BYTES
        && headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

/// [`raw_json`] for possibly large text (a pull page is up to a few MB): compressing it takes
/// tens of milliseconds, which would hold up every other request of an async worker thread, so
/// it runs on a blocking thread.
pub async fn raw_json_large(headers: &HeaderMap, status: StatusCode, bytes: Vec<u8>) -> Response {
    if bytes.len() < BLOCKING_GZIP_BYTES || !gzipped(headers, bytes.len()) {
        return raw_json(headers, status, bytes);
    }
    let headers = headers.clone();
    tokio::task::spawn_blocking(move || raw_json(&headers, status, bytes))
        .await
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}

/// [`json`] for text already serialized.
pub fn raw_json(headers: &HeaderMap, status: StatusCode, bytes: Vec<u8>) -> Response {
    let json = HeaderValue::from_static("application/json");
    if !gzipped(headers, bytes.len()) {
        return (status, [(header::CONTENT_TYPE, json)], bytes).into_response();
    }
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::default());
    let compressed = std::io::Write::write_all(&mut enc, &bytes).and_then(|()| enc.finish());
    match compressed {
        Ok(gz) => (
            status,
            [
                (header::CONTENT_TYPE, json),
                (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                (header::VARY, HeaderValue::from_static("accept-encoding")),
            ],
            gz,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// A JSON request body (gzip allowed) whose every failure is a JSON [`ApiError`].
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> axum::extract::FromRequest<crate::AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &crate::AppState,
    ) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let raw = Bytes::from_request(req, state).await;
        let json = read(&headers, raw, state.config.max_body_bytes)?;
        Ok(JsonBody(parse(&json)?))
    }
}
