//! The domain model: identifiers, premises, inspections and what they carry.
//!
//! Plain data with serde derives; the wire form of every type here is part of the sync
//! protocol, so new fields must be optional (`#[serde(default)]`).

mod ids;
mod inspection;
mod premises;

pub use ids::{DeviceId, HazardId, InspectionId, PremisesId, UserId};
pub use inspection::{
    Answer, AnswerValue, ChecklistRef, Finding, Geotag, Inspection, InspectionDraft, PhotoRef,
};
pub use premises::{
    GasUse, LatLon, Premises, PremisesFields, PremisesKind, validate_credit_code,
    validate_field as premises_validate_field,
};

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
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 一般隐患.
    General,
    /// 疑似重大隐患.
    SuspectedMajor,
}
