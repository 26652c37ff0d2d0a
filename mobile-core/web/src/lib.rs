//! The phone's core in the browser: what the field app's worker calls.
//!
//! As thin as `xuncha-ffi`: no logic of its own. Values cross as plain JavaScript objects
//! in the core's own serde shapes (the same as the ops' JSON), so a field added to the core
//! reaches the app without a copy of the model here. [`Phone`] lives in a dedicated Web
//! Worker: the database is a file in the Origin Private File System (SQLite's
//! sync-access-handle pool, which only a worker may use), and a sync talks to the server
//! with `fetch`, driving the same protocol as the native apps ([`xuncha_core::sync::protocol`]).
//! The store is borrowed only for each piece of local work, so calls that arrive while a
//! sync waits for the network run at once.
//!
//! Dates cross as `YYYY-MM-DD` strings (China local dates), instants as ms since the epoch.

#![cfg(target_family = "wasm")]

mod error;
mod fetch;

use std::cell::RefCell;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use xuncha_core::checklist::{Catalog, ChecklistKind, applicable_items};
use xuncha_core::clock::china_date;
use xuncha_core::hazard::HazardAction;
use xuncha_core::model::{
    Answer, Geotag, HazardId, InspectionDraft, LatLon, PhotoRef, PremisesFields, PremisesId,
};
use xuncha_core::photo::{self, PhotoLimits, PhotoOptions, Watermark};
use xuncha_core::store::Store;
use xuncha_core::sync::protocol::{self, Protocol, StoreAccess as _, SyncOptions};

pub use error::WebError;
use fetch::Fetch;

type Result<T> = std::result::Result<T, WebError>;

/// The OPFS directory the database lives in.
const POOL_DIRECTORY: &str = ".xuncha";
/// The database's name in the pool.
const DB_NAME: &str = "xuncha.sqlite3";

/// Values to JavaScript as plain objects (not `Map`s), numbers as numbers.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(WebError::from)
}

fn from_js<T: serde::de::DeserializeOwned>(value: JsValue, what: &str) -> Result<T> {
    serde_wasm_bindgen::from_value(value).map_err(|e| WebError::invalid(what, &e.to_string()))
}

/// One phone's database and its connection to the server.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Phone {
    store: RefCell<Store>,
    protocol: Protocol,
    fetch: Fetch,
    /// A sync or upload under way (one at a time; a second call waits for nothing and says so).
    busy: RefCell<bool>,
}

#[wasm_bindgen]
impl Phone {
    /// Opens (creating and migrating) the phone's database in the Origin Private File System,
    /// syncing with the server at `server_url` (e.g. the page's origin). Only in a dedicated
    /// worker. Fails with `storage` when the browser gives no persistent storage (private
    /// mode, storage full or refused): the app must not pretend records are kept.
    pub async fn open(server_url: String) -> std::result::Result<Phone, JsValue> {
        Self::open_inner(server_url).await.map_err(JsValue::from)
    }

    async fn open_inner(server_url: String) -> Result<Phone> {
        let config = sqlite_wasm_vfs::sahpool::OpfsSAHPoolCfgBuilder::new()
            .directory(POOL_DIRECTORY)
            .build();
        sqlite_wasm_vfs::sahpool::install::<sqlite_wasm_rs::WasmOsCallback>(&config, true)
            .await
            .map_err(|e| {
                WebError::storage(&format!("the browser's file storage is not available: {e}"))
            })?;
        let store = Store::open(DB_NAME)?;
        Ok(Phone {
            store: RefCell::new(store),
            protocol: Protocol::new(SyncOptions::default()),
            fetch: Fetch::new(&server_url),
            busy: RefCell::new(false),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> xuncha_core::Result<T>) -> Result<T> {
        Ok(self.store.with_store(f)?)
    }

    /// This phone's device id.
    pub fn device_id(&self) -> Result<String> {
        self.with(|s| Ok(s.device_id().as_str().to_owned()))
    }

    /// What the start screen shows: the signed-in user (or null), changes and photos waiting,
    /// when the last sync finished, and changes the server set aside.
    pub fn status(&self) -> Result<JsValue> {
        #[derive(Serialize)]
        struct Status {
            user: Option<String>,
            device_id: String,
            pending_ops: u64,
            pending_photos: u64,
            last_sync_ms: Option<i64>,
            set_aside: usize,
        }
        let status = self.with(|s| {
            Ok(Status {
                user: s.user().map(|u| u.0.clone()),
                device_id: s.device_id().as_str().to_owned(),
                pending_ops: s.pending_count()?,
                pending_photos: s.pending_photo_count()?,
                last_sync_ms: protocol::last_synced_ms(s)?,
                set_aside: s.set_aside_ops()?.len(),
            })
        })?;
        to_js(&status)
    }

    /// Enrolls the phone with a user name and password; signs the user in. Returns the
    /// user, role and grids.
    pub async fn enroll(
        &self,
        user: String,
        password: String,
        device_name: Option<String>,
    ) -> Result<JsValue> {
        let answer = self
            .protocol
            .enroll(
                &self.fetch,
                &self.store,
                &user,
                &password,
                device_name.as_deref(),
            )
            .await?;
        #[derive(Serialize)]
        struct Enrolment {
            user: String,
            role: &'static str,
            grids: Vec<String>,
        }
        to_js(&Enrolment {
            user: answer.user.0,
            role: answer.role.as_str(),
            grids: answer.grids,
        })
    }

    /// Adds premises (`PremisesFields`).
    pub fn add_premises(&self, fields: JsValue) -> Result<JsValue> {
        let fields: PremisesFields = from_js(fields, "premises")?;
        to_js(&self.with(|s| s.add_premises(fields))?)
    }

    /// Saves what the user changed on a premises: `before` as the app showed it, `after` as
    /// the user left it; only the fields that differ are written.
    pub fn edit_premises(&self, id: String, before: JsValue, after: JsValue) -> Result<JsValue> {
        let before: PremisesFields = from_js(before, "before")?;
        let after: PremisesFields = from_js(after, "after")?;
        to_js(&self.with(|s| s.patch_premises(&PremisesId(id), &before, after))?)
    }

    /// Archives (or restores) premises.
    pub fn archive_premises(&self, id: String, archived: bool) -> Result<()> {
        self.with(|s| s.archive_premises(&PremisesId(id), archived))
    }

    /// The premises held, archived ones too when asked.
    pub fn list_premises(&self, include_archived: bool) -> Result<JsValue> {
        to_js(&self.with(|s| s.list_premises(include_archived))?)
    }

    /// One premises, or null.
    pub fn premises(&self, id: String) -> Result<JsValue> {
        to_js(&self.with(|s| s.premises(&PremisesId(id)))?)
    }

    /// The premises whose QR code (场所码) was scanned: null for a code that is not a
    /// premises code, or for premises this phone does not hold.
    pub fn premises_from_qr(&self, text: String) -> Result<JsValue> {
        let Some(id) = PremisesId::from_qr_text(&text) else {
            return Ok(JsValue::NULL);
        };
        to_js(&self.with(|s| s.premises(&id))?)
    }

    /// The newest checklist of a kind (`fire_safety`, ...), items in order, with their
    /// conditions, help text and legal basis.
    pub fn checklist(&self, kind: JsValue) -> Result<JsValue> {
        let kind: ChecklistKind = from_js(kind, "kind")?;
        to_js(&Catalog::builtin().latest(kind))
    }

    /// Every checklist kind, in the order a visit walks through them.
    pub fn checklist_kinds(&self) -> Result<JsValue> {
        to_js(&ChecklistKind::ALL)
    }

    /// The codes of the items that apply on a premises given the answers so far
    /// (`Answer[]`), in order: what the inspection screen shows as the worker answers.
    pub fn applicable_items(
        &self,
        kinds: JsValue,
        premises_id: String,
        answers: JsValue,
    ) -> Result<JsValue> {
        let kinds: Vec<ChecklistKind> = from_js(kinds, "kinds")?;
        let answers: Vec<Answer> = from_js(answers, "answers")?;
        let (premises, now) =
            self.with(|s| Ok((s.premises(&PremisesId(premises_id.clone()))?, s.now_ms())))?;
        let premises =
            premises.ok_or_else(|| WebError::not_found(&format!("premises {premises_id}")))?;
        let lists: Vec<_> = kinds
            .iter()
            .filter_map(|k| Catalog::builtin().latest(*k))
            .collect();
        to_js(&applicable_items(
            &lists,
            &premises.fields,
            &answers,
            china_date(now),
        ))
    }

    /// The checklists a routine visit to these premises covers.
    pub fn default_kinds(&self, premises_id: String) -> Result<JsValue> {
        let premises = self
            .with(|s| s.premises(&PremisesId(premises_id.clone())))?
            .ok_or_else(|| WebError::not_found(&format!("premises {premises_id}")))?;
        to_js(&Store::default_kinds(&premises.fields))
    }

    /// Records an inspection (`InspectionDraft`): checks the answers against the checklists
    /// (an answer that does not fit names its item) and opens the hazards found.
    pub fn record_inspection(&self, draft: JsValue) -> Result<JsValue> {
        let draft: InspectionDraft = from_js(draft, "inspection")?;
        to_js(&self.with(|s| s.record_inspection(draft))?)
    }

    /// Inspections of some premises, newest last.
    pub fn inspections_of(&self, premises_id: String) -> Result<JsValue> {
        to_js(&self.with(|s| s.inspections_of(&PremisesId(premises_id)))?)
    }

    /// Hazards not yet closed.
    pub fn open_hazards(&self) -> Result<JsValue> {
        to_js(&self.with(|s| s.open_hazards())?)
    }

    /// Every hazard of a premises, the latest found first.
    pub fn hazards_of(&self, premises_id: String) -> Result<JsValue> {
        to_js(&self.with(|s| s.hazards_of(&PremisesId(premises_id)))?)
    }

    /// One hazard as it stands, or null.
    pub fn hazard(&self, hazard_id: String) -> Result<JsValue> {
        to_js(&self.with(|s| s.hazard(&HazardId(hazard_id)))?)
    }

    /// What happened to a hazard, oldest first.
    pub fn hazard_history(&self, hazard_id: String) -> Result<JsValue> {
        to_js(&self.with(|s| s.hazard_history(&HazardId(hazard_id)))?)
    }

    /// Moves a hazard along (`HazardAction`: notice, re-check, fixed on the spot, ...);
    /// refused when its state does not allow it.
    pub fn record_hazard_action(
        &self,
        hazard_id: String,
        action: JsValue,
        geotag: JsValue,
        note: Option<String>,
    ) -> Result<JsValue> {
        let action: HazardAction = from_js(action, "action")?;
        let geotag: Option<Geotag> = from_js(geotag, "geotag")?;
        to_js(&self.with(|s| s.record_hazard_event(&HazardId(hazard_id), action, geotag, note))?)
    }

    /// What to do at `now_ms`, most urgent first (overdue re-checks and notices, then
    /// routine re-inspections by cadence), offline.
    pub fn due(&self, now_ms: f64) -> Result<JsValue> {
        to_js(&self.with(|s| s.due(now_ms as i64))?)
    }

    /// When the next reminder is due (ms since the epoch), or null.
    pub fn next_reminder_at(&self, now_ms: f64) -> Result<JsValue> {
        to_js(&self.with(|s| s.next_reminder_at(now_ms as i64))?)
    }

    /// Whether the working-day calendar for `year` is official, provisional or missing.
    pub fn calendar_status(&self, year: i32) -> Result<JsValue> {
        to_js(&self.with(|s| Ok(s.calendar().status(year)))?)
    }

    /// The grids this phone holds, `[{id, name}]`, for choosing a new shop's grid.
    pub fn grids(&self) -> Result<JsValue> {
        #[derive(Serialize)]
        struct Grid {
            id: String,
            name: String,
        }
        let grids = self.with(|s| s.grid_names())?;
        to_js(
            &grids
                .into_iter()
                .map(|(id, name)| Grid { id, name })
                .collect::<Vec<_>>(),
        )
    }

    /// The grid a position lies in, among the grids synced to this phone.
    pub fn grid_at(&self, lat: f64, lon: f64) -> Result<Option<String>> {
        self.with(|s| Ok(s.grid_at(LatLon { lat, lon })))
    }

    /// Takes a camera picture (JPEG or PNG bytes): turns it upright, resizes it, stores it
    /// without metadata with a thumbnail in the database, and returns its reference
    /// (`PhotoRef`) to attach to an answer or a hazard action. Refuses damaged or oversized
    /// pictures. With `watermark` lines (time, place, premises) and `draw_text(layout, lines)`,
    /// which returns the coverage of each pixel of the layout's band (a `Uint8Array` of
    /// `width * band_height`, drawn white on nothing), the lines are stamped into the picture.
    pub fn add_photo(
        &self,
        bytes: &[u8],
        watermark: Vec<String>,
        draw_text: Option<js_sys::Function>,
    ) -> Result<JsValue> {
        let mut options = PhotoOptions::default();
        let prepared = photo::prepare(bytes, &options, &PhotoLimits::default())?;
        if let (false, Some(draw_text)) = (watermark.is_empty(), draw_text) {
            // The page's worker draws the lines with the phone's own fonts (CJK included),
            // where the core's layout says; the core stamps them.
            let layout = prepared.watermark_layout(watermark.len());
            let drawn = draw_text
                .call2(&JsValue::NULL, &to_js(&layout)?, &to_js(&watermark)?)
                .map_err(|e| {
                    WebError::invalid(
                        "watermark",
                        &e.as_string().unwrap_or_else(|| format!("{e:?}")),
                    )
                })?;
            let coverage = js_sys::Uint8Array::new(&drawn).to_vec();
            options.watermark = Some(Watermark::drawn(watermark, layout, coverage)?);
        }
        let processed = prepared.finish(&options)?;
        let reference: PhotoRef = processed.reference.clone();
        self.with(|s| s.put_photo_file(&reference, &processed.jpeg, &processed.thumbnail))?;
        to_js(&reference)
    }

    /// A photo's JPEG (or thumbnail) held on this phone, or undefined.
    pub fn photo(&self, sha256: String, thumbnail: bool) -> Result<Option<Vec<u8>>> {
        self.with(|s| s.photo_file(&sha256, thumbnail))
    }

    /// Changes waiting to be pushed.
    pub fn pending_count(&self) -> Result<f64> {
        Ok(self.with(|s| s.pending_count())? as f64)
    }

    /// This phone's changes the server set aside, oldest first, with the reason.
    pub fn set_aside_changes(&self) -> Result<JsValue> {
        #[derive(Serialize)]
        struct Change {
            seq: u64,
            kind: String,
            code: String,
            message: String,
            message_en: String,
        }
        let changes = self.with(|s| s.set_aside_ops())?;
        let changes: Vec<Change> = changes
            .into_iter()
            .map(|(op, why)| Change {
                seq: op.seq,
                kind: op.body.kind().to_owned(),
                code: why.code,
                message: why.message,
                message_en: why.message_en,
            })
            .collect();
        to_js(&changes)
    }

    /// Fingerprint of the phone's state (equal on phones holding the same changes).
    pub fn digest(&self) -> Result<String> {
        self.with(|s| s.digest())
    }

    /// Pushes this phone's changes, then pulls others' until caught up; `progress` is called
    /// with `{phase, pushed, to_push, pulled}` after every request. Nothing is lost when the
    /// page closes half-way: the next sync goes on from what the server acknowledged.
    pub async fn sync(&self, progress: Option<js_sys::Function>) -> Result<JsValue> {
        let _busy = self.begin()?;
        let mut report_progress = |p: &xuncha_core::sync::protocol::SyncProgress| {
            if let Some(f) = &progress {
                let phase = match p.phase {
                    protocol::SyncPhase::Push => "push",
                    protocol::SyncPhase::Pull => "pull",
                    protocol::SyncPhase::Done => "done",
                };
                let value = serde_json::json!({
                    "phase": phase, "pushed": p.pushed, "to_push": p.to_push, "pulled": p.pulled,
                });
                if let Ok(v) = to_js(&value) {
                    let _ = f.call1(&JsValue::NULL, &v);
                }
            }
        };
        let report = self
            .protocol
            .sync(&self.fetch, &self.store, &mut report_progress)
            .await?;
        to_js(&serde_json::json!({
            "pushed": report.pushed,
            "pulled": report.pulled,
            "applied": report.applied,
            "quarantined": report.quarantined,
            "set_aside": report.set_aside,
            "retries": report.retries,
            "server_clock_offset_ms": report.server_clock_offset_ms,
        }))
    }

    /// Turns the worker's morning reminder (SMS or WeChat, sent by the server) on or off.
    /// Needs the network.
    pub async fn set_reminders(&self, on: bool) -> Result<()> {
        Ok(self
            .protocol
            .set_reminders(&self.fetch, &self.store, on)
            .await?)
    }

    /// Uploads the queued photos (after `sync`: the server takes a photo only once it holds
    /// the record that refers to it), resuming interrupted ones; `progress(done, total)`.
    pub async fn upload_photos(&self, progress: Option<js_sys::Function>) -> Result<JsValue> {
        let _busy = self.begin()?;
        let bytes_of = |sha: &str| {
            self.store
                .with_store(|s| s.photo_file(sha, false))
                .ok()
                .flatten()
        };
        let mut report_progress = |done: usize, total: usize| {
            if let Some(f) = &progress {
                let _ = f.call2(
                    &JsValue::NULL,
                    &JsValue::from(done as f64),
                    &JsValue::from(total as f64),
                );
            }
        };
        let report = self
            .protocol
            .upload_photos(&self.fetch, &self.store, &bytes_of, &mut report_progress)
            .await?;
        to_js(&serde_json::json!({
            "uploaded": report.uploaded,
            "already_there": report.already_there,
            "waiting": report.waiting,
            "refused": report.refused,
            "sent_bytes": report.sent_bytes,
            "retries": report.retries,
        }))
    }

    /// A photo someone else took (or its thumbnail), downloaded from the server and kept
    /// only in memory.
    pub async fn fetch_photo(&self, sha256: String, thumbnail: bool) -> Result<Vec<u8>> {
        if let Some(bytes) = self.with(|s| s.photo_file(&sha256, thumbnail))? {
            return Ok(bytes);
        }
        if !PhotoRef::is_photo_id(&sha256) {
            return Err(WebError::invalid(
                "photo",
                &format!("{sha256:?} is not a photo id"),
            ));
        }
        let token = self.with(|s| protocol::token(s))?;
        Ok(self
            .protocol
            .download_photo(&self.fetch, &token, &sha256, thumbnail)
            .await?)
    }

    /// Marks a sync or upload under way until the guard is dropped.
    fn begin(&self) -> Result<Busy<'_>> {
        let mut busy = self.busy.borrow_mut();
        if *busy {
            return Err(WebError::busy());
        }
        *busy = true;
        Ok(Busy(&self.busy))
    }
}

/// A sync or upload under way.
struct Busy<'a>(&'a RefCell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        *self.0.borrow_mut() = false;
    }
}
