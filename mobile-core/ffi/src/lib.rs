//! The phone's core through uniffi: what the Android and iOS apps call.
//!
//! Thin wrappers over `xuncha-core`, without logic of their own. The core's types cross as
//! they are (uniffi derives in the core, feature `uniffi`: plain Kotlin/Swift/Python values,
//! not JSON, in the bindings' `xuncha_core` module); `convert` holds the few views shaped
//! here; and [`Phone`], an object safe to share between the UI and background
//! threads. Every call is blocking; a sync runs the HTTP stack's own runtime inside, so the
//! host needs no async runtime (call it from a background thread).
//!
//! Dates cross as `YYYY-MM-DD` strings (China local dates), instants as ms since the epoch.

// The scaffolding uniffi generates is `unsafe` C ABI glue; this crate writes none itself.
#![allow(unsafe_code)]

uniffi::setup_scaffolding!();

mod convert;

use std::sync::{Arc, Mutex, MutexGuard};

use xuncha_core::model::{HazardId, PremisesId};
use xuncha_core::photo::{self, PhotoDir, PhotoLimits, PhotoOptions, Watermark};
use xuncha_core::store::Store;
use xuncha_core::sync::client::{StoreAccess, SyncClient, SyncOptions};

pub use convert::*;

pub use xuncha_core::ffi::XunchaError;

type Result<T, E = XunchaError> = std::result::Result<T, E>;

/// Receives sync progress (called on the syncing thread).
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// After every request.
    fn on_progress(&self, progress: SyncProgress);
}

/// Receives photo upload progress: photos done of all queued (called on the uploading thread).
#[uniffi::export(with_foreign)]
pub trait UploadListener: Send + Sync {
    /// After every photo.
    fn on_photo(&self, done: u32, total: u32);
}

/// A wall clock the host provides instead of the system's (tests that set a phone's clock
/// wrong; a host with a trusted time source).
#[uniffi::export(with_foreign)]
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The host's clock as the core's.
struct HostClock(Arc<dyn Clock>);

impl std::fmt::Debug for HostClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostClock")
    }
}

impl xuncha_core::clock::WallClock for HostClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
}

/// One phone's database and its connection to the server. Open one per database file (two
/// on one file wait for each other's writes); `close` releases the file.
#[derive(Debug, uniffi::Object)]
pub struct Phone {
    store: PhoneStore,
    device_id: String,
    client: SyncClient,
    photos: PhotoDir,
    /// The font for watermarks, set by the host app.
    watermark: Mutex<Option<Watermark>>,
}

/// The phone's store until it is closed.
#[derive(Debug)]
struct PhoneStore(Mutex<Option<Store>>);

impl PhoneStore {
    /// A panic on another thread does not poison the store for good.
    fn lock(&self) -> MutexGuard<'_, Option<Store>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const CLOSED: &str = "the phone was closed; open it again";

/// A sync takes the store only between requests, and fails cleanly once it is closed.
impl StoreAccess for PhoneStore {
    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> xuncha_core::Result<T>,
    ) -> xuncha_core::Result<T> {
        match self.lock().as_mut() {
            Some(store) => f(store),
            None => Err(xuncha_core::Error::Invalid {
                field: "phone".into(),
                message: CLOSED.into(),
            }),
        }
    }
}

/// The open store, borrowed for one call.
struct Open<'a>(MutexGuard<'a, Option<Store>>);

impl std::ops::Deref for Open<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        match self.0.as_ref() {
            Some(store) => store,
            None => unreachable!("an Open is made only over an open store"),
        }
    }
}

impl std::ops::DerefMut for Open<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        match self.0.as_mut() {
            Some(store) => store,
            None => unreachable!("an Open is made only over an open store"),
        }
    }
}

impl Phone {
    /// The store, or an error once the phone is closed.
    fn store(&self) -> Result<Open<'_>> {
        let guard = self.store.lock();
        if guard.is_none() {
            return Err(XunchaError::Storage {
                message: CLOSED.into(),
            });
        }
        Ok(Open(guard))
    }
}

#[uniffi::export]
impl Phone {
    /// Opens (creating and migrating) the database at `db_path`, syncing with `server_url`.
    #[uniffi::constructor]
    pub fn open(db_path: String, server_url: String) -> Result<Arc<Phone>> {
        Self::open_with_clock(db_path, server_url, None)
    }

    /// [`Phone::open`] with the wall clock the phone stamps its changes with (`None`: the
    /// system's).
    #[uniffi::constructor]
    pub fn open_with_clock(
        db_path: String,
        server_url: String,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Arc<Phone>> {
        let mut options = xuncha_core::store::StoreOptions::default();
        if let Some(clock) = clock {
            options.wall = Arc::new(HostClock(clock));
        }
        let store = Store::open_with(&db_path, options)?;
        let client = SyncClient::new(&server_url, SyncOptions::default())?;
        // Photos live beside the database, in `photos/`.
        let dir = std::path::Path::new(&db_path)
            .parent()
            .map_or_else(|| std::path::PathBuf::from("photos"), |p| p.join("photos"));
        Ok(Arc::new(Phone {
            device_id: store.device_id().as_str().to_owned(),
            store: PhoneStore(Mutex::new(Some(store))),
            client,
            photos: PhotoDir(dir),
            watermark: Mutex::new(None),
        }))
    }

    /// This phone's device id.
    pub fn device_id(&self) -> String {
        self.device_id.clone()
    }

    /// Closes the database now (before switching user or deleting the file): waits for a
    /// write or a log copy under way, folds the log into the file and releases it. Later
    /// calls fail with `Storage`; closing again does nothing. A sync running meanwhile stops
    /// at its next step with an error.
    pub fn close(&self) {
        drop(self.store.lock().take());
    }

    /// Enrolls the phone with a user name and password; signs the user in.
    pub fn enroll(
        &self,
        user: String,
        password: String,
        device_name: Option<String>,
    ) -> Result<Enrolment> {
        let mut store = self.store()?;
        let answer = self
            .client
            .enroll(&mut store, &user, &password, device_name.as_deref())?;
        Ok(Enrolment {
            user: answer.user.0,
            role: answer.role.as_str().to_owned(),
            grids: answer.grids,
        })
    }

    /// Adds premises.
    pub fn add_premises(&self, fields: PremisesFields) -> Result<Premises> {
        let p = self.store()?.add_premises(fields.into_core())?;
        Ok(Premises::from_core(p))
    }

    /// Saves what the user changed on a premises: `before` is the record as the app showed
    /// it, `after` as the user left it. Only the fields that differ are written; every other
    /// field keeps what it holds (set meanwhile by a sync, the dashboard or an import).
    pub fn edit_premises(
        &self,
        id: String,
        before: PremisesFields,
        after: PremisesFields,
    ) -> Result<Premises> {
        let p = self.store()?.patch_premises(
            &PremisesId(id),
            &before.into_core(),
            after.into_core(),
        )?;
        Ok(Premises::from_core(p))
    }

    /// Archives (or restores) premises.
    pub fn archive_premises(&self, id: String, archived: bool) -> Result<()> {
        Ok(self.store()?.archive_premises(&PremisesId(id), archived)?)
    }

    /// The premises held, archived ones too when asked.
    pub fn list_premises(&self, include_archived: bool) -> Result<Vec<Premises>> {
        Ok(self
            .store()?
            .list_premises(include_archived)?
            .into_iter()
            .map(Premises::from_core)
            .collect())
    }

    /// The premises whose QR code (场所码, printed from the dashboard) was scanned: `None` for
    /// a code that is not a premises code, or for premises this phone does not hold (another
    /// grid's, or not synced yet).
    pub fn premises_from_qr(&self, text: String) -> Result<Option<Premises>> {
        let Some(id) = PremisesId::from_qr_text(&text) else {
            return Ok(None);
        };
        Ok(self.store()?.premises(&id)?.map(Premises::from_core))
    }

    /// The items of the newest checklist of a kind, in order, for the inspection screen.
    pub fn checklist(&self, kind: ChecklistKind) -> Vec<ChecklistItem> {
        xuncha_core::checklist::Catalog::builtin()
            .latest(kind)
            .map(|c| c.items.iter().map(ChecklistItem::from_core).collect())
            .unwrap_or_default()
    }

    /// The checklists a routine visit to these premises covers.
    pub fn default_kinds(&self, premises_id: String) -> Result<Vec<ChecklistKind>> {
        let store = self.store()?;
        let p = store
            .premises(&PremisesId(premises_id.clone()))?
            .ok_or_else(|| XunchaError::NotFound {
                message: format!("premises {premises_id} not found"),
            })?;
        Ok(Store::default_kinds(&p.fields).into_iter().collect())
    }

    /// Records an inspection: checks the answers against the checklists (an answer that does
    /// not fit names its item) and opens the hazards found.
    pub fn record_inspection(&self, draft: InspectionDraft) -> Result<Inspection> {
        Ok(Inspection::from_core(
            self.store()?.record_inspection(draft)?,
        ))
    }

    /// Inspections of some premises, newest last.
    pub fn inspections_of(&self, premises_id: String) -> Result<Vec<Inspection>> {
        Ok(self
            .store()?
            .inspections_of(&PremisesId(premises_id))?
            .into_iter()
            .map(Inspection::from_core)
            .collect())
    }

    /// Hazards not yet closed.
    pub fn open_hazards(&self) -> Result<Vec<Hazard>> {
        Ok(self
            .store()?
            .open_hazards()?
            .into_iter()
            .map(Hazard::from_core)
            .collect())
    }

    /// Every hazard of a premises, open and closed, the latest found first (a worker looking
    /// at a shop sees its whole record).
    pub fn hazards_of(&self, premises_id: String) -> Result<Vec<Hazard>> {
        Ok(self
            .store()?
            .hazards_of(&PremisesId(premises_id))?
            .into_iter()
            .map(Hazard::from_core)
            .collect())
    }

    /// What happened to a hazard, oldest first.
    pub fn hazard_history(&self, hazard_id: String) -> Result<Vec<HazardHistoryEntry>> {
        Ok(self
            .store()?
            .hazard_history(&HazardId(hazard_id))?
            .into_iter()
            .map(HazardHistoryEntry::from_core)
            .collect())
    }

    /// Moves a hazard along (notice, re-check, ...); refused when its state does not allow it.
    pub fn record_hazard_action(
        &self,
        hazard_id: String,
        action: HazardAction,
        geotag: Option<Geotag>,
        note: Option<String>,
    ) -> Result<Hazard> {
        let action = action.into_core()?;
        let hazard =
            self.store()?
                .record_hazard_event(&HazardId(hazard_id), action, geotag, note)?;
        Ok(Hazard::from_core(hazard))
    }

    /// What to do next at `now_ms`, most urgent first: overdue re-checks and notices, then
    /// routine re-inspections by cadence (offline; the cadence and working-day calendar the
    /// server last sent, else the defaults).
    pub fn due(&self, now_ms: i64) -> Result<Vec<DueItem>> {
        let store = self.store()?;
        Ok(store.due(now_ms)?.into_iter().collect())
    }

    /// Whether the working-day calendar for `year` is official, provisional (暂定, before the
    /// State Council's notice) or missing, so the app can say how far due dates can be trusted.
    pub fn calendar_status(&self, year: i32) -> Result<YearStatus> {
        Ok(self.store()?.calendar().status(year))
    }

    /// When to schedule the next OS notification (ms since the epoch), if anything is pending.
    pub fn next_reminder_at(&self, now_ms: i64) -> Result<Option<i64>> {
        let store = self.store()?;
        Ok(store.next_reminder_at(now_ms)?)
    }

    /// Takes a camera picture (JPEG or PNG bytes): turns it upright, resizes it to 1,600 px,
    /// stamps the `watermark` lines (time, place, premises; none when empty) into it, stores it
    /// without metadata with a thumbnail, and returns its reference to attach to an answer or
    /// a hazard action. Refuses damaged or oversized pictures. Blocking (about
    /// 0.1 s for 12 megapixels): call it off the UI thread. Does not touch the database.
    pub fn add_photo(&self, bytes: Vec<u8>, watermark: Vec<String>) -> Result<PhotoRef> {
        let mut options = PhotoOptions::default();
        if !watermark.is_empty() {
            let font = self
                .watermark
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let font = font.ok_or_else(|| XunchaError::Invalid {
                message: "set a watermark font (set_watermark_font) before stamping photos".into(),
            })?;
            options.watermark = Some(font.with_lines(watermark)?);
        }
        let processed = photo::process(&bytes, &options, &PhotoLimits::default())?;
        Ok(self.photos.save(&processed)?)
    }

    /// Sets the font watermarks are drawn with (a TrueType/OpenType file or collection the app
    /// ships or the system has, e.g. Noto Sans CJK); it must cover Chinese.
    pub fn set_watermark_font(&self, font_path: String) -> Result<()> {
        let bytes = std::fs::read(&font_path).map_err(|e| XunchaError::Invalid {
            message: format!("watermark font {font_path}: {e}"),
        })?;
        let font = Watermark::new(bytes, vec!["巡查水印".into()])?;
        *self.watermark.lock().unwrap_or_else(|p| p.into_inner()) = Some(font);
        Ok(())
    }

    /// Where the stored picture of a photo is (for display and upload), if it is on this phone.
    pub fn photo_path(&self, sha256: String, thumbnail: bool) -> Option<String> {
        if !xuncha_core::model::PhotoRef::is_photo_id(&sha256) {
            return None;
        }
        let path = self.photos.path(&sha256, thumbnail);
        path.exists().then(|| path.display().to_string())
    }

    /// The grid a position lies in, among the grids synced to this phone (their boundaries
    /// come from the server).
    pub fn grid_at(&self, lat: f64, lon: f64) -> Result<Option<String>> {
        Ok(self
            .store()?
            .grid_at(xuncha_core::model::LatLon { lat, lon }))
    }

    /// Changes waiting to be pushed.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self.store()?.pending_count()?)
    }

    /// Photos waiting to be uploaded.
    pub fn pending_photo_count(&self) -> Result<u64> {
        Ok(self.store()?.pending_photo_count()?)
    }

    /// Uploads the queued photos (separately from `sync`, e.g. only on Wi-Fi), resuming
    /// interrupted ones. Call after `sync`: the server takes a photo only once it holds the
    /// record that refers to it. Blocking: call from a background thread; the database is
    /// locked only between photos, so the app stays usable while it runs.
    pub fn upload_photos(&self, listener: Option<Arc<dyn UploadListener>>) -> Result<UploadReport> {
        let (token, pending) = {
            let store = self.store()?;
            (SyncClient::token(&store)?, store.pending_photos()?)
        };
        let total = u32::try_from(pending.len()).unwrap_or(u32::MAX);
        let mut report = xuncha_core::sync::client::UploadReport::default();
        for (i, sha) in pending.iter().enumerate() {
            let outcome = self.client.upload_photo(
                &token,
                sha,
                &self.photos.full(sha),
                &mut report.retries,
            )?;
            outcome.record(&mut *self.store()?, sha)?;
            report.count(&outcome);
            if let Some(l) = &listener {
                l.on_photo(u32::try_from(i + 1).unwrap_or(u32::MAX), total);
            }
        }
        Ok(report)
    }

    /// The local path of a photo (or its thumbnail), downloading it from the server first
    /// when this phone does not have it (a photo another worker took). Blocking.
    pub fn fetch_photo(&self, sha256: String, thumbnail: bool) -> Result<String> {
        if let Some(path) = self.photo_path(sha256.clone(), thumbnail) {
            return Ok(path);
        }
        if !xuncha_core::model::PhotoRef::is_photo_id(&sha256) {
            return Err(XunchaError::Invalid {
                message: format!("{sha256:?} is not a photo id"),
            });
        }
        let token = SyncClient::token(&*self.store()?)?;
        let bytes = self.client.download_photo(&token, &sha256, thumbnail)?;
        let path = self.photos.path(&sha256, thumbnail);
        self.photos.put(&path, &bytes)?;
        Ok(path.display().to_string())
    }

    /// This phone's changes the server set aside, oldest first, with the reason: show them to
    /// the worker (they are not part of the records any more, here or anywhere).
    pub fn set_aside_changes(&self) -> Result<Vec<SetAsideChange>> {
        Ok(self
            .store()?
            .set_aside_ops()?
            .into_iter()
            .map(|(op, why)| SetAsideChange::from_core(&op, why))
            .collect())
    }

    /// Fingerprint of the phone's state (equal on phones holding the same changes).
    pub fn digest(&self) -> Result<String> {
        Ok(self.store()?.digest()?)
    }

    /// Pushes this phone's changes, then pulls others' until caught up. Blocking: call from a
    /// background thread. The database is taken only for the local work between requests
    /// (applying a pulled page), never while waiting for the network, so the app stays usable.
    pub fn sync(&self, listener: Option<Arc<dyn SyncListener>>) -> Result<SyncReport> {
        let mut progress = |p: &xuncha_core::sync::client::SyncProgress| {
            if let Some(l) = &listener {
                l.on_progress(*p);
            }
        };
        drop(self.store()?); // a closed phone says so plainly
        // The store is taken only between requests: the app stays usable during a slow sync.
        let report = self.client.sync_shared(&self.store, &mut progress)?;
        Ok(report)
    }
}

/// A WGS-84 position (as recorded) converted to GCJ-02, for drawing on Chinese base maps.
#[uniffi::export]
pub fn wgs84_to_gcj02(lat: f64, lon: f64) -> LatLon {
    let p = xuncha_core::location::wgs84_to_gcj02(xuncha_core::model::LatLon { lat, lon });
    LatLon {
        lat: p.lat,
        lon: p.lon,
    }
}
