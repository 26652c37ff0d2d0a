//! The domain model: identifiers, premises, inspections and what they carry.
//!
//! Plain data with serde derives; the wire form of every type here is part of the sync
//! protocol, so new fields must be optional (`#[serde(default)]`).

mod ids;
mod inspection;
mod premises;

pub use ids::{CampaignId, DeviceId, HazardId, InspectionId, PremisesId, UserId};
pub use inspection::{
    Answer, AnswerValue, ChecklistRef, Finding, Geotag, Inspection, InspectionDraft, PhotoRef,
};
pub use premises::{
    GasUse, LatLon, Premises, PremisesFields, PremisesKind, validate_credit_code,
    validate_field as premises_validate_field,
};

// On the FFI a date is its ISO text, `2026-11-23`.
#[cfg(feature = "uniffi")]
use chrono::NaiveDate;
#[cfg(feature = "uniffi")]
uniffi::custom_type!(NaiveDate, String, {
    remote,
    lower: |date| date.to_string(),
    try_lift: |text| Ok(NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|_| crate::ffi::XunchaError::Invalid {
            message: format!("{text:?} is not a date like 2026-11-23"),
        })?),
});

/// Text shown to people: Chinese first, English available.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Text {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

/// How serious a hazard is. A grid worker can only flag a suspected major hazard; the formal
/// grading is done by the authority.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 一般隐患.
    General,
    /// 疑似重大隐患.
    SuspectedMajor,
}
