//! Photo upload: a queue apart from op sync. Each photo is offered with `HEAD` (skipped when
//! the server has it), then sent in chunks at explicit offsets, so a dropped connection costs
//! at most one chunk: the server answers where it stands and the upload goes on from there.
//! A photo leaves the queue only when the server has verified it.

use std::path::PathBuf;

use reqwest::StatusCode;
use reqwest::blocking::Response;
use sha2::Digest as _;

use super::{SyncClient, server_error};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::ErrorBody;

const PHOTOS_PATH: &str = "/v1/photos";
const UPLOAD_OFFSET: &str = "upload-offset";

/// What became of one photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhotoUpload {
    /// Sent and verified by the server.
    Uploaded {
        /// Bytes sent in this attempt (less than the photo when an earlier one was resumed).
        sent_bytes: u64,
    },
    /// The server had it already.
    AlreadyThere,
    /// No record the server holds refers to it yet (push the ops first); stays queued.
    NotYetReferenced,
    /// Refused for good (damaged, wrong hash, outside the user's area, file gone).
    Refused(String),
}

impl PhotoUpload {
    /// Applies the outcome to the store's upload queue.
    pub fn record(&self, store: &mut Store, sha256: &str) -> Result<()> {
        match self {
            PhotoUpload::Uploaded { .. } | PhotoUpload::AlreadyThere => {
                store.photo_uploaded(sha256)
            }
            PhotoUpload::NotYetReferenced => {
                store.photo_upload_failed(sha256, "no record refers to it on the server yet", false)
            }
            PhotoUpload::Refused(why) => store.photo_upload_failed(sha256, why, true),
        }
    }
}

/// What an upload run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Photos sent and verified.
    pub uploaded: u64,
    /// Photos the server had already.
    pub already_there: u64,
    /// Photos left queued until their records reach the server.
    pub waiting: u64,
    /// Photos refused for good.
    pub refused: u64,
    /// Bytes of photo data sent.
    pub sent_bytes: u64,
    /// Requests retried after a failure.
    pub retries: u32,
}

impl UploadReport {
    /// Counts one photo's outcome.
    pub fn count(&mut self, outcome: &PhotoUpload) {
        match outcome {
            PhotoUpload::Uploaded { sent_bytes } => {
                self.uploaded += 1;
                self.sent_bytes += sent_bytes;
            }
            PhotoUpload::AlreadyThere => self.already_there += 1,
            PhotoUpload::NotYetReferenced => self.waiting += 1,
            PhotoUpload::Refused(_) => self.refused += 1,
        }
    }
}

/// The server's error code and the offset it holds, from a refusal.
fn refusal(response: Response) -> (u16, String, Option<u64>, Error) {
    let status = response.status().as_u16();
    let offset = response
        .headers()
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str::<ErrorBody>(&text).ok();
    let code = body
        .as_ref()
        .map(|b| b.error.code.clone())
        .unwrap_or_default();
    let offset = offset.or_else(|| {
        body.as_ref()
            .and_then(|b| b.error.detail.as_ref()?.get("offset")?.as_u64())
    });
    let error = match body {
        Some(b) => Error::Server {
            status,
            code: b.error.code,
            message: b.error.message,
            message_en: b.error.message_en,
        },
        None => Error::Server {
            status,
            code: "http".to_owned(),
            message: format!("服务器返回 {status}"),
            message_en: format!("server answered {status}"),
        },
    };
    (status, code, offset, error)
}

impl SyncClient {
    /// Uploads one photo (the stored JPEG at `file`), resuming an earlier attempt.
    pub fn upload_photo(
        &self,
        token: &str,
        sha256: &str,
        file: &std::path::Path,
        retries: &mut u32,
    ) -> Result<PhotoUpload> {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                return Ok(PhotoUpload::Refused(format!(
                    "the photo file is missing on this device: {e}"
                )));
            }
        };
        let url = format!("{}{PHOTOS_PATH}/{sha256}", self.base);
        let head = self.send(retries, &|| self.http.head(&url).bearer_auth(token))?;
        let mut offset = match head.status() {
            StatusCode::OK => return Ok(PhotoUpload::AlreadyThere),
            StatusCode::NOT_FOUND => head
                .headers()
                .get(UPLOAD_OFFSET)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(0),
            StatusCode::FORBIDDEN => {
                return Ok(PhotoUpload::Refused(
                    "the photo belongs to records outside the user's area".to_owned(),
                ));
            }
            _ => return Err(server_error(head)),
        };
        let total = bytes.len() as u64;
        let chunk = self.options.photo_chunk_bytes.max(1) as u64;
        let mut sent = 0;
        // Each round either advances the offset or learns the server's; the bound stops a
        // confused server from keeping us here.
        for _ in 0..(total / chunk + 1) * 4 {
            let start = usize::try_from(offset.min(total)).unwrap_or(usize::MAX);
            let end = usize::try_from((offset + chunk).min(total)).unwrap_or(usize::MAX);
            let part = bytes.get(start..end).unwrap_or_default().to_vec();
            let response = self.send(retries, &|| {
                self.http
                    .patch(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/offset+octet-stream")
                    .header(UPLOAD_OFFSET, offset)
                    .header("upload-length", total)
                    .body(part.clone())
            })?;
            match response.status() {
                StatusCode::CREATED | StatusCode::OK => {
                    return Ok(PhotoUpload::Uploaded {
                        sent_bytes: sent + part.len() as u64,
                    });
                }
                StatusCode::NO_CONTENT => {
                    sent += part.len() as u64;
                    offset = response
                        .headers()
                        .get(UPLOAD_OFFSET)
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                        .unwrap_or(offset + part.len() as u64);
                }
                _ => {
                    let (status, code, held, error) = refusal(response);
                    match (status, code.as_str()) {
                        // The chunk landed before the connection dropped, or an earlier
                        // attempt got further: go on from where the server is.
                        (409, "offset_mismatch") => {
                            offset = held.ok_or(error)?;
                        }
                        (409, "photo_unreferenced") => return Ok(PhotoUpload::NotYetReferenced),
                        (403 | 413 | 422, _) => {
                            let message = match &error {
                                Error::Server { message_en, .. } => message_en.clone(),
                                other => other.to_string(),
                            };
                            return Ok(PhotoUpload::Refused(message));
                        }
                        _ => return Err(error),
                    }
                }
            }
        }
        Err(Error::Network(
            "the photo upload made no progress; try again later".to_owned(),
        ))
    }

    /// Downloads a photo (or its thumbnail) someone else took, to show it on this phone.
    pub fn download_photo(&self, token: &str, sha256: &str, thumbnail: bool) -> Result<Vec<u8>> {
        let url = format!(
            "{}{PHOTOS_PATH}/{sha256}{}",
            self.base,
            if thumbnail { "/thumb" } else { "" }
        );
        let mut retries = 0;
        let response = self.send(&mut retries, &|| self.http.get(&url).bearer_auth(token))?;
        if !response.status().is_success() {
            return Err(server_error(response));
        }
        let bytes = response
            .bytes()
            .map_err(|e| Error::Network(format!("reading the photo failed: {e}")))?;
        // Content-addressed: what arrived must be what was asked for.
        if !thumbnail && hex::encode(sha2::Sha256::digest(&bytes)) != sha256 {
            return Err(Error::Network("the photo arrived damaged".to_owned()));
        }
        Ok(bytes.to_vec())
    }

    /// Uploads every queued photo, oldest first; `file_of` says where a photo's stored JPEG
    /// is. Stops at the first network failure (the rest stay queued).
    pub fn upload_photos(
        &self,
        store: &mut Store,
        file_of: &dyn Fn(&str) -> PathBuf,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<UploadReport> {
        let token = Self::token(store)?;
        let pending = store.pending_photos()?;
        let mut report = UploadReport::default();
        progress(0, pending.len());
        for (i, sha) in pending.iter().enumerate() {
            let outcome = self.upload_photo(&token, sha, &file_of(sha), &mut report.retries)?;
            outcome.record(store, sha)?;
            report.count(&outcome);
            progress(i + 1, pending.len());
        }
        Ok(report)
    }
}
