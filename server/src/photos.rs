//! Photo upload and download: content-addressed by SHA-256, resumable, and verified before
//! anything becomes visible.
//!
//! - `HEAD /v1/photos/{sha256}`: 200 when the server has the photo; 404 otherwise, with
//!   `Upload-Offset` saying how much of an interrupted upload it already holds.
//! - `PATCH /v1/photos/{sha256}` with `Upload-Offset` and `Upload-Length`: appends a chunk at
//!   exactly that offset (409 with the right `Upload-Offset` otherwise). With the last chunk
//!   the server checks the hash and decodes the picture within limits; only then is the photo
//!   stored and visible (201). A bad one is thrown away whole (422).
//! - `GET /v1/photos/{sha256}` and `.../thumb`: the picture and its thumbnail.
//!
//! Who may: an upload or download is allowed to those who see a record (inspection or hazard
//! event) that refers to the photo. A photo no record refers to yet is refused with 409, so a
//! phone pushes its ops first and retries the photo later.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use sha2::{Digest, Sha256};
use xuncha_core::photo::{PhotoLimits, PhotoOptions};

use crate::AppState;
use crate::accounts::{Caller, Scope};
use crate::error::ApiError;
use crate::photo_tables::PhotoRecord;

/// The two files kept of a photo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The picture as the phone stored it.
    Full,
    /// The server's thumbnail of it.
    Thumbnail,
}

/// Where verified photos live. Files under the data directory by default; an object store
/// (OSS, S3, MinIO) fits behind the same three calls.
pub trait PhotoStorage: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` as `variant` of the photo `sha256`, durably, replacing nothing visible
    /// half-written (write then rename).
    fn put(&self, sha256: &str, variant: Variant, bytes: &[u8]) -> std::io::Result<()>;
    /// The stored bytes, if any.
    fn get(&self, sha256: &str, variant: Variant) -> std::io::Result<Option<Vec<u8>>>;
}

/// Unfinished uploads kept where every instance reaches them (the bucket, on PostgreSQL), so
/// a phone cut off from one instance resumes on another: each chunk an object of its own, at
/// its offset; the bytes held are the chunks that follow on from the start.
pub trait SharedUploads: Send + Sync + std::fmt::Debug {
    /// The chunks held of the upload of `sha256`: (offset, length), by offset.
    fn chunks(&self, sha256: &str) -> std::io::Result<Vec<(u64, u64)>>;
    /// Stores a chunk at `offset` (handed on as received, not copied: chunks are large).
    fn put_chunk(&self, sha256: &str, offset: u64, bytes: axum::body::Bytes)
    -> std::io::Result<()>;
    /// A chunk's bytes.
    fn get_chunk(&self, sha256: &str, offset: u64) -> std::io::Result<axum::body::Bytes>;
    /// Forgets every chunk of the upload.
    fn remove_chunks(&self, sha256: &str) -> std::io::Result<()>;
    /// Every unfinished upload held.
    fn unfinished(&self) -> std::io::Result<Vec<Unfinished>>;
}

/// An unfinished upload: the photo, the bytes held of it, and how long since its last chunk
/// arrived (`None`: unknown, e.g. a clock that went back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    pub sha256: String,
    pub bytes: u64,
    pub idle: Option<Duration>,
}

/// Which unfinished uploads to remove before a new one of `length` bytes starts, by index in
/// `held`, and whether it then fits under `max` bytes in all: those untouched for a week go
/// whenever seen (nothing else removes them from a bucket); if the rest and the new one do
/// not fit, those untouched for a day go too; if it still does not fit, it is refused for now.
fn make_room_plan(held: &[Unfinished], length: u64, max: u64) -> (Vec<usize>, bool) {
    let idle_over = |u: &Unfinished, limit: Duration| u.idle.is_some_and(|a| a > limit);
    let mut remove: Vec<usize> = (0..held.len())
        .filter(|&i| idle_over(&held[i], STALE_UPLOAD))
        .collect();
    let kept = |remove: &[usize]| -> u64 {
        (0..held.len())
            .filter(|i| !remove.contains(i))
            .map(|i| held[i].bytes)
            .sum()
    };
    if kept(&remove) + length <= max {
        return (remove, true);
    }
    remove = (0..held.len())
        .filter(|&i| idle_over(&held[i], IDLE_UPLOAD))
        .collect();
    let fits = kept(&remove) + length <= max;
    (remove, fits)
}

/// How far chunks held at (offset, length), by offset, cover an upload from its start
/// (chunks from two phones sending the same photo may overlap: the bytes are the same).
fn covered(chunks: &[(u64, u64)]) -> u64 {
    let mut end = 0;
    for &(offset, length) in chunks {
        if offset > end {
            break;
        }
        end = end.max(offset + length);
    }
    end
}

/// Photos as files: `ROOT/ab/abcdef….jpg` and `….thumb.jpg` (fanned out by the first two hex
/// digits so no directory grows huge).
#[derive(Debug)]
pub struct FileStorage {
    root: PathBuf,
}

impl FileStorage {
    /// Storage under `root` (created when needed).
    pub fn new(root: PathBuf) -> FileStorage {
        FileStorage { root }
    }

    fn path(&self, sha256: &str, variant: Variant) -> PathBuf {
        let suffix = match variant {
            Variant::Full => "jpg",
            Variant::Thumbnail => "thumb.jpg",
        };
        self.root
            .join(&sha256[..2])
            .join(format!("{sha256}.{suffix}"))
    }
}

impl PhotoStorage for FileStorage {
    fn put(&self, sha256: &str, variant: Variant, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(sha256, variant);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("part");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, &path)
    }

    fn get(&self, sha256: &str, variant: Variant) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(sha256, variant)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Photo chunks handled at once (see [`Photos`]'s `busy`).
const UPLOADS_AT_ONCE: usize = 2;
/// The largest chunk of a photo upload (the phone sends 256 KiB).
pub const MAX_CHUNK_BYTES: usize = 4 << 20;

/// Unfinished uploads held at most, in bytes, all together.
pub const MAX_PARTIAL_BYTES: u64 = 2 << 30;
/// An unfinished upload without a chunk for this long makes room for new ones.
const IDLE_UPLOAD: Duration = Duration::from_secs(24 * 3600);

/// Partial uploads are dropped after this long without a chunk.
const STALE_UPLOAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// The photo service: storage, partial uploads and the limits a picture must meet.
#[derive(Debug)]
pub struct Photos {
    storage: Box<dyn PhotoStorage>,
    uploads: PathBuf,
    /// One lock per photo being uploaded, so two devices sending the same photo take turns.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Chunks read and written at once: a chunk is read into memory only with a permit (and a
    /// finished photo is read whole only under `checking`), so hostile uploads sent all at once
    /// take bounded memory (two chunks and one whole photo), not one buffer per connection.
    busy: tokio::sync::Semaphore,
    /// See [`MAX_PARTIAL_BYTES`].
    max_partial: u64,
    /// Held while a finished upload is read whole and checked.
    checking: Mutex<()>,
    /// Largest photo accepted.
    pub max_bytes: u64,
    limits: PhotoLimits,
    options: PhotoOptions,
    /// Unfinished uploads in the bucket instead of `uploads/` (several instances).
    shared: Option<Box<dyn SharedUploads>>,
}

impl Photos {
    /// Keeps unfinished uploads in `shared` (reached by every instance) rather than in the
    /// data folder; `uploads/` then only holds a finished upload while it is checked.
    pub fn with_shared_uploads(mut self, shared: Box<dyn SharedUploads>) -> Photos {
        self.shared = Some(shared);
        self
    }

    /// Photos under `data_dir` (`photos/` verified, `uploads/` in progress); partial uploads
    /// older than a week are removed.
    pub fn open(data_dir: &Path, max_bytes: u64) -> std::io::Result<Photos> {
        let files = Box::new(FileStorage::new(data_dir.join("photos")));
        Self::open_with(data_dir, files, max_bytes)
    }

    /// Photos kept in `storage`, with partial uploads under `data_dir` (`uploads/`); those
    /// older than a week are removed.
    pub fn open_with(
        data_dir: &Path,
        storage: Box<dyn PhotoStorage>,
        max_bytes: u64,
    ) -> std::io::Result<Photos> {
        let uploads = data_dir.join("uploads");
        std::fs::create_dir_all(&uploads)?;
        for entry in std::fs::read_dir(&uploads)?.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_UPLOAD);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self::with_storage(storage, uploads, max_bytes))
    }

    /// Photos kept in `storage`, with partial uploads in `uploads`.
    pub fn with_storage(
        storage: Box<dyn PhotoStorage>,
        uploads: PathBuf,
        max_bytes: u64,
    ) -> Photos {
        let limits = PhotoLimits {
            max_file_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            ..PhotoLimits::default()
        };
        Photos {
            storage,
            uploads,
            locks: Mutex::new(HashMap::new()),
            busy: tokio::sync::Semaphore::new(UPLOADS_AT_ONCE),
            max_partial: MAX_PARTIAL_BYTES,
            checking: Mutex::new(()),
            max_bytes,
            limits,
            options: PhotoOptions::default(),
            shared: None,
        }
    }

    fn partial(&self, sha256: &str) -> PathBuf {
        self.uploads.join(format!("{sha256}.part"))
    }

    /// Bytes held of an unfinished upload.
    fn offset(&self, sha256: &str) -> Result<u64, ApiError> {
        match &self.shared {
            Some(shared) => Ok(covered(&shared.chunks(sha256).map_err(ApiError::internal)?)),
            None => Ok(std::fs::metadata(self.partial(sha256)).map_or(0, |m| m.len())),
        }
    }

    /// [`Photos::append`] with the chunks in the bucket: the finished upload is gathered into
    /// a file to be checked, and its chunks are forgotten.
    fn append_shared(
        &self,
        shared: &dyn SharedUploads,
        sha256: &str,
        offset: u64,
        end: u64,
        length: u64,
        chunk: axum::body::Bytes,
    ) -> Result<(u64, Option<PathBuf>), ApiError> {
        shared
            .put_chunk(sha256, offset, chunk)
            .map_err(ApiError::internal)?;
        if end < length {
            return Ok((end, None));
        }
        // One upload gathered at a time, as one is checked at a time: memory stays bounded.
        let _one = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        let chunks = shared.chunks(sha256).map_err(ApiError::internal)?;
        let path = self.partial(sha256);
        let mut file = std::fs::File::create(&path).map_err(ApiError::internal)?;
        let mut written = 0u64;
        for (at, len) in chunks {
            if at > written || at + len <= written {
                continue;
            }
            let bytes = shared.get_chunk(sha256, at).map_err(ApiError::internal)?;
            let skip = (written - at) as usize;
            file.write_all(bytes.get(skip..).unwrap_or_default())
                .map_err(ApiError::internal)?;
            written = at + bytes.len() as u64;
        }
        drop(file);
        // Checked from the file whatever it holds; the chunks are done with either way.
        shared.remove_chunks(sha256).map_err(ApiError::internal)?;
        Ok((end, Some(path)))
    }

    fn lock(&self, sha256: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(sha256.to_owned()).or_default().clone()
    }

    /// Appends a chunk at `offset`; returns the new offset, and the file when it is complete
    /// (the caller reads and removes it, whatever the verification says).
    fn append(
        &self,
        sha256: &str,
        offset: u64,
        length: u64,
        chunk: axum::body::Bytes,
    ) -> Result<(u64, Option<PathBuf>), ApiError> {
        let lock = self.lock(sha256);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let held = self.offset(sha256)?;
        if offset != held {
            return Err(offset_mismatch(held));
        }
        let end = offset + chunk.len() as u64;
        if end > length {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "upload_overrun",
                "上传的数据超过了声明的长度",
                format!("chunk ends at {end}, past Upload-Length {length}"),
            ));
        }
        if offset == 0 {
            self.make_room(length)?;
        }
        if let Some(shared) = &self.shared {
            return self.append_shared(shared.as_ref(), sha256, offset, end, length, chunk);
        }
        let path = self.partial(sha256);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(ApiError::internal)?;
        f.write_all(&chunk).map_err(ApiError::internal)?;
        f.sync_data().map_err(ApiError::internal)?;
        if end < length {
            return Ok((end, None));
        }
        Ok((end, Some(path)))
    }

    /// Before a new partial upload: the partial uploads together stay under
    /// [`MAX_PARTIAL_BYTES`] (records that refer to photos their phones never finish sending
    /// must not fill the disk or the bucket), as [`make_room_plan`] decides; a new upload that
    /// does not fit is refused for now (503: the phone retries later).
    fn make_room(&self, length: u64) -> Result<(), ApiError> {
        let held = self.unfinished().map_err(ApiError::internal)?;
        let (remove, fits) = make_room_plan(&held, length, self.max_partial);
        for i in remove {
            let sha256 = &held[i].sha256;
            let removed = match &self.shared {
                Some(shared) => shared.remove_chunks(sha256),
                None => std::fs::remove_file(self.partial(sha256)),
            };
            if let Err(e) = removed {
                tracing::warn!(photo = %sha256, "an unfinished upload was not removed: {e}");
            }
        }
        if fits {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "uploads_full",
            "服务器暂存的未完成上传过多，请稍后再试",
            "too many unfinished uploads are held; try again later",
        ))
    }

    /// The unfinished uploads held, in the bucket or in `uploads/`.
    fn unfinished(&self) -> std::io::Result<Vec<Unfinished>> {
        if let Some(shared) = &self.shared {
            return shared.unfinished();
        }
        let now = SystemTime::now();
        Ok(std::fs::read_dir(&self.uploads)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let sha256 = name.strip_suffix(".part")?.to_owned();
                let m = e.metadata().ok()?;
                let idle = m.modified().ok().and_then(|t| now.duration_since(t).ok());
                Some(Unfinished {
                    sha256,
                    bytes: m.len(),
                    idle,
                })
            })
            .collect())
    }

    /// Checks a finished upload from its file: the hash and the JPEG headers as it streams
    /// by, so a file that is not the app's photo is refused without being held in memory;
    /// then, one at a time, the whole picture ([`Photos::verify_and_store`]).
    fn check_file(&self, sha256: &str, path: &Path) -> Result<PhotoInfo, ApiError> {
        const HEAD: usize = 64 << 10;
        let mut file = std::fs::File::open(path).map_err(ApiError::internal)?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(HEAD);
        let mut buf = vec![0u8; HEAD];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(ApiError::internal)?;
            if n == 0 {
                break;
            }
            let room = HEAD - head.len();
            head.extend_from_slice(&buf[..n.min(room)]);
            hasher.update(&buf[..n]);
        }
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            return Err(hash_mismatch(&actual, sha256));
        }
        xuncha_core::photo::check_pipeline_jpeg(&head).map_err(undecodable)?;
        // One whole photo in memory at a time, however many uploads finish together.
        let _one = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = std::fs::read(path).map_err(ApiError::internal)?;
        self.verify_and_store(sha256, &bytes)
    }

    /// Checks a complete upload and stores it; nothing is kept when it fails.
    fn verify_and_store(&self, sha256: &str, bytes: &[u8]) -> Result<PhotoInfo, ApiError> {
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != sha256 {
            return Err(hash_mismatch(&actual, sha256));
        }
        let verified =
            xuncha_core::photo::verify(bytes, &self.options, &self.limits).map_err(undecodable)?;
        self.storage
            .put(sha256, Variant::Thumbnail, &verified.thumbnail)
            .and_then(|()| self.storage.put(sha256, Variant::Full, bytes))
            .map_err(ApiError::internal)?;
        Ok(PhotoInfo {
            sha256: sha256.to_owned(),
            bytes: bytes.len() as u64,
            width: verified.width,
            height: verified.height,
        })
    }
}

/// A verified photo, as answered to an upload.
#[derive(Clone, Debug, Serialize)]
pub struct PhotoInfo {
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// Size.
    pub bytes: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The header carrying an upload's position.
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// The header carrying an upload's total length.
pub const UPLOAD_LENGTH: &str = "upload-length";

fn offset_mismatch(held: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "offset_mismatch",
        "上传位置不对，请从服务器已收到的位置继续",
        format!("the server holds {held} bytes of this upload; continue from there"),
    )
    .with_detail(serde_json::json!({ "offset": held }))
}

fn check_sha(sha256: &str) -> Result<(), ApiError> {
    if xuncha_core::model::PhotoRef::is_photo_id(sha256) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_photo_id",
            "照片编号格式不对",
            "a photo id is the lowercase hex SHA-256 of its bytes",
        ))
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_upload_header",
                "缺少或错误的上传头信息",
                format!("header {name} must be a non-negative integer"),
            )
        })
}

/// Whether the caller may touch the photo: `None` when no record refers to it. Two index
/// look-ups that stop at the first match, however many records refer to the photo.
pub(crate) fn access(
    conn: &rusqlite::Connection,
    sha256: &str,
    scope: &Scope,
) -> Result<Option<bool>, ApiError> {
    let referenced: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM server_photo_refs WHERE sha256 = ?1)")?
        .query_row([sha256], |r| r.get(0))?;
    if !referenced {
        return Ok(None);
    }
    let visible = match scope {
        Scope::All => true,
        Scope::Grids(grids) => {
            let grids = serde_json::to_string(grids).map_err(ApiError::internal)?;
            // Driven from the photo's references (a key prefix), each premises' grid by key.
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM server_photo_refs r
                   WHERE r.sha256 = ?1
                     AND (SELECT json_extract(pf.value, '$') FROM premises_fields pf
                          WHERE pf.premises_id = r.premises_id AND pf.field = 'grid_id')
                         IN (SELECT value FROM json_each(?2)))",
            )?
            .query_row(rusqlite::params![sha256, grids], |r| r.get(0))?
        }
    };
    Ok(Some(visible))
}

fn hash_mismatch(actual: &str, sha256: &str) -> ApiError {
    ApiError::invalid(
        "photo_hash_mismatch",
        "照片内容与编号不符（可能传输出错），请重新上传",
        format!("the uploaded bytes hash to {actual}, not {sha256}"),
    )
}

fn undecodable(e: xuncha_core::Error) -> ApiError {
    ApiError::invalid(
        "photo_undecodable",
        "照片无法解码或超出尺寸限制",
        e.to_string(),
    )
}

fn forbidden() -> ApiError {
    ApiError::forbidden(
        "photo_forbidden",
        "无权访问该照片：它属于您负责范围以外的记录",
        "this photo belongs to records outside your area",
    )
}

fn unreferenced() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "photo_unreferenced",
        "尚无记录引用该照片，请先同步检查记录再上传照片",
        "no record refers to this photo yet; sync the records first, then upload",
    )
}

/// What the server knows of a photo for this caller.
struct Known {
    visible: bool,
    access: Option<bool>,
}

async fn known(state: &AppState, caller: &Caller, sha256: &str) -> Result<Known, ApiError> {
    let (scope, _) = state.scope(caller).await?;
    let sha = sha256.to_owned();
    state
        .read(move |conn, tables| {
            let visible = tables.photo_held(&sha)?;
            Ok(Known {
                visible,
                access: access(conn, &sha, &scope)?,
            })
        })
        .await
}

fn with_offset(mut response: Response, offset: u64) -> Response {
    response
        .headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    response
}

/// `HEAD /v1/photos/{sha256}`.
async fn head(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(sha256): UrlPath<String>,
) -> Result<Response, ApiError> {
    check_sha(&sha256)?;
    let known = known(&state, &caller, &sha256).await?;
    if known.access == Some(false) {
        return Err(forbidden());
    }
    if known.visible {
        return Ok(StatusCode::OK.into_response());
    }
    let photos = state.photos.clone();
    let offset = tokio::task::spawn_blocking(move || photos.offset(&sha256))
        .await
        .map_err(ApiError::internal)??;
    Ok(with_offset(StatusCode::NOT_FOUND.into_response(), offset))
}

/// `PATCH /v1/photos/{sha256}`: one chunk.
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(sha256): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    check_sha(&sha256)?;
    let offset = header_u64(&headers, UPLOAD_OFFSET)?;
    let length = header_u64(&headers, UPLOAD_LENGTH)?;
    let max = state.photos.max_bytes;
    if length > max || length == 0 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "photo_too_large",
            format!("照片大小不符合要求（上限 {max} 字节）"),
            format!("Upload-Length {length} is not between 1 and {max} bytes"),
        ));
    }
    let known = known(&state, &caller, &sha256).await?;
    match known.access {
        None => return Err(unreferenced()),
        Some(false) => return Err(forbidden()),
        Some(true) => {}
    }
    if known.visible {
        return Ok(with_offset(StatusCode::OK.into_response(), length));
    }
    // The chunk is read only now, with a permit, and only as much as a chunk may be.
    let _permit = state
        .photos
        .busy
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let chunk = axum::body::to_bytes(body, MAX_CHUNK_BYTES.min(state.config.max_body_bytes))
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                ApiError::too_large(MAX_CHUNK_BYTES.min(state.config.max_body_bytes))
            } else {
                ApiError::malformed(format!("could not read the chunk: {e}"))
            }
        })?;
    let photos = state.photos.clone();
    let sha = sha256.clone();
    let (end, info) = tokio::task::spawn_blocking(move || {
        let (end, complete) = photos.append(&sha, offset, length, chunk)?;
        let Some(path) = complete else {
            return Ok((end, None));
        };
        let info = photos.check_file(&sha, &path);
        let _ = std::fs::remove_file(&path);
        Ok::<_, ApiError>((end, Some(info?)))
    })
    .await
    .map_err(ApiError::internal)??;
    let Some(info) = info else {
        return Ok(with_offset(StatusCode::NO_CONTENT.into_response(), end));
    };
    let (user, now, row) = (caller.user.0.clone(), state.now_ms(), info.clone());
    state
        .tables(move |tables| {
            tables.record_photo(&PhotoRecord {
                sha256: row.sha256,
                bytes: row.bytes as i64,
                width: row.width,
                height: row.height,
                uploaded_by: user,
                uploaded_ms: now,
            })
        })
        .await?;
    Ok(with_offset(
        (StatusCode::CREATED, axum::Json(info)).into_response(),
        end,
    ))
}

async fn download(
    state: AppState,
    caller: Caller,
    sha256: String,
    variant: Variant,
) -> Result<Response, ApiError> {
    check_sha(&sha256)?;
    let known = known(&state, &caller, &sha256).await?;
    if known.access == Some(false) {
        return Err(forbidden());
    }
    if !known.visible {
        return Err(ApiError::not_found("no verified photo with this id"));
    }
    let photos = state.photos.clone();
    let sha = sha256.clone();
    let bytes = tokio::task::spawn_blocking(move || photos.storage.get(&sha, variant))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("photo {sha256} is listed but not stored")))?;
    Ok((
        [
            // Every stored photo is the pipeline's JPEG (checked at upload); never sniffed.
            (header::CONTENT_TYPE, "image/jpeg".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            // Content-addressed: a photo id never changes its bytes.
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_owned(),
            ),
            (header::ETAG, format!("\"{sha256}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /v1/photos/{sha256}`.
async fn full(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(sha256): UrlPath<String>,
) -> Result<Response, ApiError> {
    download(state, caller, sha256, Variant::Full).await
}

/// `GET /v1/photos/{sha256}/thumb`.
async fn thumb(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(sha256): UrlPath<String>,
) -> Result<Response, ApiError> {
    download(state, caller, sha256, Variant::Thumbnail).await
}

/// The photo routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/photos/{sha256}", get(full).head(head).patch(upload))
        .route("/v1/photos/{sha256}/thumb", get(thumb))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_bytes_held_are_the_chunks_that_follow_on_from_the_start() {
        assert_eq!(covered(&[]), 0);
        assert_eq!(covered(&[(0, 10), (10, 5)]), 15);
        assert_eq!(covered(&[(0, 10), (20, 5)]), 10, "a gap stops it");
        assert_eq!(covered(&[(5, 5)]), 0, "nothing from the start");
        assert_eq!(
            covered(&[(0, 10), (5, 10), (15, 1)]),
            16,
            "two phones' chunks overlapping"
        );
    }

    #[test]
    fn room_for_a_new_upload_goes_to_the_stale_then_the_idle() {
        let upload = |sha: &str, bytes: u64, idle_hours: u64| Unfinished {
            sha256: sha.into(),
            bytes,
            idle: Some(Duration::from_secs(idle_hours * 3600)),
        };
        let held = [
            upload("busy", 1000, 1),
            upload("idle", 1000, 30),
            upload("stale", 500, 8 * 24),
        ];
        assert_eq!(
            make_room_plan(&held, 500, 3000),
            (vec![2], true),
            "a week untouched goes even when there is room"
        );
        assert_eq!(
            make_room_plan(&held, 1500, 3000),
            (vec![1, 2], true),
            "a day untouched goes when room is short"
        );
        assert_eq!(
            make_room_plan(&held, 2500, 3000),
            (vec![1, 2], false),
            "one still busy is never taken: the new one waits"
        );
        let unknown = [Unfinished {
            idle: None,
            ..upload("clock-went-back", 1000, 0)
        }];
        assert_eq!(make_room_plan(&unknown, 2500, 3000), (vec![], false));
        assert_eq!(make_room_plan(&[], 3000, 3000), (vec![], true));
    }

    /// The same rule over the folder and, with `XUNCHA_TEST_PHOTOS` (scripts/s3-test,
    /// scripts/pg-test), over the chunks in a real S3 server's bucket (s3s-fs keeps each
    /// object as a file and dates it by the file's time, which the test sets back).
    fn unfinished_uploads_are_bounded(mut photos: Photos, age: &dyn Fn(&str, Duration)) {
        photos.max_partial = 3000;
        let sha = |c: char| c.to_string().repeat(64);
        let chunk = axum::body::Bytes::from(vec![7u8; 1000]);
        photos.append(&sha('a'), 0, 2000, chunk.clone()).unwrap();
        photos.append(&sha('b'), 0, 2000, chunk.clone()).unwrap();
        let refused = photos
            .append(&sha('c'), 0, 2000, chunk.clone())
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(photos.offset(&sha('a')).unwrap(), 1000, "nothing taken");
        // One left idle for two days makes room.
        age(&sha('a'), Duration::from_secs(2 * 24 * 3600));
        photos.append(&sha('c'), 0, 2000, chunk.clone()).unwrap();
        assert_eq!(photos.offset(&sha('a')).unwrap(), 0, "the idle one is gone");
        assert_eq!(photos.offset(&sha('b')).unwrap(), 1000, "the others stay");
        // One untouched for a week goes at the next new upload, room or not.
        age(&sha('b'), Duration::from_secs(8 * 24 * 3600));
        let small = axum::body::Bytes::from(vec![7u8; 100]);
        photos.append(&sha('d'), 0, 200, small).unwrap();
        assert_eq!(
            photos.offset(&sha('b')).unwrap(),
            0,
            "the stale one is gone"
        );
        assert_eq!(photos.offset(&sha('c')).unwrap(), 1000);
        assert_eq!(photos.offset(&sha('d')).unwrap(), 100);
    }

    /// Sets the modification time of `path` (a file, or every file in a folder) `by` back.
    fn set_back(path: &Path, by: Duration) {
        let files: Vec<PathBuf> = if path.is_dir() {
            std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        } else {
            vec![path.to_owned()]
        };
        for file in files {
            std::fs::File::options()
                .write(true)
                .open(file)
                .unwrap()
                .set_modified(SystemTime::now() - by)
                .unwrap();
        }
    }

    #[test]
    fn unfinished_uploads_cannot_fill_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let photos = Photos::with_storage(
            Box::new(FileStorage::new(dir.path().join("photos"))),
            dir.path().join("uploads"),
            10_000,
        );
        std::fs::create_dir_all(dir.path().join("uploads")).unwrap();
        let uploads = dir.path().join("uploads");
        unfinished_uploads_are_bounded(photos, &|sha, by| {
            set_back(&uploads.join(format!("{sha}.part")), by)
        });
    }

    #[test]
    fn unfinished_uploads_cannot_fill_the_bucket() {
        let (Ok(base), Ok(root)) = (
            std::env::var("XUNCHA_TEST_PHOTOS"),
            std::env::var("XUNCHA_TEST_S3_ROOT"),
        ) else {
            eprintln!("skipped: no XUNCHA_TEST_PHOTOS (scripts/s3-test runs this)");
            return;
        };
        let prefix = format!(
            "unit-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        );
        let bucket = base.trim_start_matches("s3://").trim_end_matches('/');
        let storage = crate::object_storage::S3Storage::open(&format!("{base}/{prefix}")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("uploads")).unwrap();
        let photos = Photos::with_storage(
            Box::new(storage.clone()),
            dir.path().join("uploads"),
            10_000,
        )
        .with_shared_uploads(Box::new(storage));
        let uploads = Path::new(&root).join(bucket).join(&prefix).join("uploads");
        unfinished_uploads_are_bounded(photos, &|sha, by| set_back(&uploads.join(sha), by));
    }
}
