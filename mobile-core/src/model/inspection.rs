//! Inspections: immutable records of one visit, with answers, findings and the geotag.
//!
//! An inspection is never edited: a correction is a new inspection that `supersedes` the
//! earlier one. Inspections form a grow-only set, so they merge by union.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{HazardId, InspectionId, PremisesId, Severity, UserId};
use crate::checklist::ChecklistKind;
use crate::error::{Error, Result};

/// Which checklist, at which version, an inspection was answered against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChecklistRef {
    /// Inspection type.
    pub kind: ChecklistKind,
    /// Checklist version.
    pub version: u32,
}

/// A photo as an op refers to it: content-addressed by the SHA-256 of the stored bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PhotoRef {
    /// Hex SHA-256 of the stored JPEG.
    pub sha256: String,
    /// Size of the stored file.
    pub bytes: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl PhotoRef {
    /// Whether `id` has the shape of a photo id (lowercase hex SHA-256), so it is safe to use
    /// in a path or URL.
    pub fn is_photo_id(id: &str) -> bool {
        id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }

    /// Checks the shape of the reference (the photo itself is checked on upload).
    pub fn validate(&self) -> Result<()> {
        if !Self::is_photo_id(&self.sha256) {
            return Err(Error::invalid(
                "photo.sha256",
                format!("{:?} is not a lowercase hex SHA-256", self.sha256),
            ));
        }
        if self.bytes == 0 || self.width == 0 || self.height == 0 {
            return Err(Error::invalid(
                "photo",
                "size and dimensions must be positive",
            ));
        }
        Ok(())
    }
}

/// Where the phone was when the record was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Geotag {
    /// Latitude, WGS-84 degrees.
    pub lat: f64,
    /// Longitude, WGS-84 degrees.
    pub lon: f64,
    /// Reported accuracy radius in metres.
    pub accuracy_m: f64,
    /// Where the fix came from: `gps`, `network`, `fused`, `manual`.
    pub source: String,
    /// The operating system says the position was mocked.
    #[serde(default)]
    pub mock: bool,
    /// When the fix was taken (device wall time, ms since the Unix epoch).
    pub fix_time_ms: i64,
}

impl Geotag {
    /// Checks ranges; NaN and absurd accuracy are refused.
    pub fn validate(&self) -> Result<()> {
        if !(-90.0..=90.0).contains(&self.lat) {
            return Err(Error::invalid(
                "geotag.lat",
                format!("{} is not a latitude", self.lat),
            ));
        }
        if !(-180.0..=180.0).contains(&self.lon) {
            return Err(Error::invalid(
                "geotag.lon",
                format!("{} is not a longitude", self.lon),
            ));
        }
        if !(0.0..=100_000.0).contains(&self.accuracy_m) {
            return Err(Error::invalid(
                "geotag.accuracy_m",
                format!("{} m is not a usable accuracy", self.accuracy_m),
            ));
        }
        if !matches!(self.source.as_str(), "gps" | "network" | "fused" | "manual") {
            return Err(Error::invalid(
                "geotag.source",
                format!("{:?} is not gps, network, fused or manual", self.source),
            ));
        }
        Ok(())
    }
}

/// The value given for one checklist item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AnswerValue {
    /// Yes or no.
    YesNo(bool),
    /// A whole count.
    Count(u32),
    /// A measurement.
    Number(f64),
    /// A calendar date.
    Date(NaiveDate),
    /// One of the item's options.
    Choice(String),
    /// The item does not apply here (legitimate, never a hazard).
    NotApplicable,
}

/// One answered checklist item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Answer {
    /// Item code, e.g. `FE-03`.
    pub code: String,
    /// The answer.
    pub value: AnswerValue,
    /// The item's second value where it has one (how many e-bikes, how many people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub detail: Option<u32>,
    /// Photos taken for this item (before-photos when it is a hazard).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub photos: Vec<PhotoRef>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub note: Option<String>,
}

impl Answer {
    /// An answer with no detail, photo or note.
    pub fn new(code: impl Into<String>, value: AnswerValue) -> Self {
        Answer {
            code: code.into(),
            value,
            detail: None,
            photos: Vec::new(),
            note: None,
        }
    }
}

/// A hazard found by evaluating the answers against the checklist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Finding {
    /// The hazard this finding opens (derived from the inspection and item).
    pub hazard_id: HazardId,
    /// Item code.
    pub code: String,
    /// Severity after the item's overrides.
    pub severity: Severity,
    /// Rectification period in days; 0 = fix on the spot.
    pub rectify_days: u32,
    /// Default deadline: the inspection date plus the period.
    pub deadline: NaiveDate,
    /// Flagged as high priority by the checklist.
    #[serde(default)]
    pub high_priority: bool,
}

/// What a worker fills in; the store turns it into an [`Inspection`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct InspectionDraft {
    /// The premises visited.
    pub premises_id: PremisesId,
    /// The inspection types covered by the visit (the newest checklist version of each is used).
    pub kinds: Vec<ChecklistKind>,
    /// The answers.
    pub answers: Vec<Answer>,
    /// Where the phone was.
    pub geotag: Option<Geotag>,
    /// A general remark.
    pub note: Option<String>,
    /// The inspection this one corrects.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub supersedes: Option<InspectionId>,
}

/// One inspection visit, as recorded and synced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// Id.
    pub id: InspectionId,
    /// The premises visited.
    pub premises_id: PremisesId,
    /// Checklists (and versions) answered.
    pub checklists: Vec<ChecklistRef>,
    /// Who inspected.
    pub inspector: UserId,
    /// Local (China) date of the visit; date rules such as scrap ages count from it.
    pub performed_on: NaiveDate,
    /// Device wall time when it was recorded.
    pub recorded_at_ms: i64,
    /// Where the phone was.
    #[serde(default)]
    pub geotag: Option<Geotag>,
    /// The answers.
    pub answers: Vec<Answer>,
    /// Hazards found.
    pub findings: Vec<Finding>,
    /// A general remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The inspection this one corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<InspectionId>,
    /// How far from the premises the geotag was, and whether that is flagged for review
    /// (computed when recorded, where both positions are known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proximity: Option<crate::location::Proximity>,
    /// The first inspection of the correction chain; hazard ids derive from it.
    pub root: InspectionId,
    /// Fields from newer app versions, kept and re-sent unchanged.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
