//! Photo upload: a queue apart from op sync. Each photo is offered with `HEAD` (skipped when
//! the server has it), then sent in chunks at explicit offsets, so a dropped connection costs
//! at most one chunk: the server answers where it stands and the upload goes on from there.
//! A photo leaves the queue only when the server has verified it.

use sha2::Digest as _;

use super::{Method, Protocol, Request, Response, StoreAccess, Transport, server_error, token};
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
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

/// The offset the server holds, from its `Upload-Offset` header.
fn held_offset(response: &Response) -> Option<u64> {
    response.header(UPLOAD_OFFSET)?.parse().ok()
}

/// The server's error code and the offset it holds, from a refusal.
fn refusal(response: &Response) -> (String, Option<u64>) {
    let body = serde_json::from_slice::<ErrorBody>(&response.body).ok();
    let offset = held_offset(response).or_else(|| {
        body.as_ref()
            .and_then(|b| b.error.detail.as_ref()?.get("offset")?.as_u64())
    });
    (body.map(|b| b.error.code).unwrap_or_default(), offset)
}

impl Protocol {
    /// Uploads one photo (the stored JPEG `bytes`, `None` when the file is gone from this
    /// device), resuming an earlier attempt.
    pub async fn upload_photo(
        &self,
        transport: &impl Transport,
        token: &str,
        sha256: &str,
        bytes: Option<&[u8]>,
        retries: &mut u32,
    ) -> Result<PhotoUpload> {
        let Some(bytes) = bytes else {
            return Ok(PhotoUpload::Refused(
                "the photo file is missing on this device".to_owned(),
            ));
        };
        let path = format!("{PHOTOS_PATH}/{sha256}");
        let head = Request::new(Method::Head, path.clone(), Some(token));
        let head = self.send(transport, retries, &head).await?;
        let mut offset = match head.status {
            200 => return Ok(PhotoUpload::AlreadyThere),
            404 => held_offset(&head).unwrap_or(0),
            403 => {
                return Ok(PhotoUpload::Refused(
                    "the photo belongs to records outside the user's area".to_owned(),
                ));
            }
            _ => return Err(server_error(&head)),
        };
        let total = bytes.len() as u64;
        let chunk = self.options.photo_chunk_bytes.max(1) as u64;
        let mut sent = 0;
        // Each round either advances the offset or learns the server's; the bound stops a
        // confused server from keeping us here.
        for _ in 0..(total / chunk + 1) * 4 {
            let start = usize::try_from(offset.min(total)).unwrap_or(usize::MAX);
            let end = usize::try_from((offset + chunk).min(total)).unwrap_or(usize::MAX);
            let part = bytes.get(start..end).unwrap_or_default();
            let mut request = Request::new(Method::Patch, path.clone(), Some(token));
            request.headers = vec![
                ("content-type", "application/offset+octet-stream".to_owned()),
                (UPLOAD_OFFSET, offset.to_string()),
                ("upload-length", total.to_string()),
            ];
            request.body = part.to_vec();
            let response = self.send(transport, retries, &request).await?;
            match response.status {
                200 | 201 => {
                    return Ok(PhotoUpload::Uploaded {
                        sent_bytes: sent + part.len() as u64,
                    });
                }
                204 => {
                    sent += part.len() as u64;
                    offset = held_offset(&response).unwrap_or(offset + part.len() as u64);
                }
                status => {
                    let (code, held) = refusal(&response);
                    let error = server_error(&response);
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

    /// Uploads every queued photo, oldest first; `bytes_of` reads a photo's stored JPEG
    /// (`None`: gone). Stops at the first network failure (the rest stay queued); the store
    /// is taken only between photos.
    pub async fn upload_photos(
        &self,
        transport: &impl Transport,
        store: &impl StoreAccess,
        bytes_of: &dyn Fn(&str) -> Option<Vec<u8>>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<UploadReport> {
        let (token, pending) = store.with_store(|s| Ok((token(s)?, s.pending_photos()?)))?;
        let mut report = UploadReport::default();
        progress(0, pending.len());
        for (i, sha) in pending.iter().enumerate() {
            let bytes = bytes_of(sha);
            let outcome = self
                .upload_photo(
                    transport,
                    &token,
                    sha,
                    bytes.as_deref(),
                    &mut report.retries,
                )
                .await?;
            store.with_store(|s| outcome.record(s, sha))?;
            report.count(&outcome);
            progress(i + 1, pending.len());
        }
        Ok(report)
    }

    /// Downloads a photo (or its thumbnail) someone else took, to show it on this phone.
    pub async fn download_photo(
        &self,
        transport: &impl Transport,
        token: &str,
        sha256: &str,
        thumbnail: bool,
    ) -> Result<Vec<u8>> {
        let path = format!(
            "{PHOTOS_PATH}/{sha256}{}",
            if thumbnail { "/thumb" } else { "" }
        );
        let mut retries = 0;
        let request = Request::new(Method::Get, path, Some(token));
        let response = self.send(transport, &mut retries, &request).await?;
        if !response.is_success() {
            return Err(server_error(&response));
        }
        // Content-addressed: what arrived must be what was asked for.
        if !thumbnail && hex::encode(sha2::Sha256::digest(&response.body)) != sha256 {
            return Err(Error::Network("the photo arrived damaged".to_owned()));
        }
        Ok(response.body)
    }
}
