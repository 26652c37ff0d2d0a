//! The FFI's own records: the core's types cross as they are (uniffi derives in the core,
//! feature `uniffi`); these are the few views the FFI shapes differently, and their
//! conversions. `Premises` flattens the position and leaves out the fields only the server
//! reads; `ChecklistItem` and `Inspection` are a phone's view of richer core types; the hazard
//! records and actions name dates as text and offer a worker's actions only.

use chrono::NaiveDate;
use xuncha_core::checklist::{self, AnswerSpec};
use xuncha_core::hazard;
use xuncha_core::model;

pub use xuncha_core::calendar::YearStatus;
pub use xuncha_core::checklist::ChecklistKind;
pub use xuncha_core::due::{DueItem, DueKind};
pub use xuncha_core::hazard::HazardStatus;
pub use xuncha_core::model::{
    Answer, AnswerValue, Finding, GasUse, Geotag, InspectionDraft, LatLon, PhotoRef, PremisesKind,
    Severity,
};
pub use xuncha_core::sync::client::{SyncPhase, SyncProgress, SyncReport, UploadReport};

use crate::XunchaError;

fn date(field: &str, s: &str) -> Result<NaiveDate, XunchaError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| XunchaError::Invalid {
        message: format!("{field}: {s:?} is not a date like 2026-11-23"),
    })
}

/// What people edit about premises.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PremisesFields {
    /// 单位名称.
    pub name: String,
    /// 详细地址.
    pub address: String,
    /// Kind.
    pub kind: PremisesKind,
    /// Gas used.
    pub gas_use: GasUse,
    /// The grid (网格).
    pub grid_id: Option<String>,
    /// 统一社会信用代码.
    pub credit_code: Option<String>,
    /// Business licence number (营业执照号), where there is no credit code.
    pub licence_no: Option<String>,
    /// 负责人.
    pub contact_person: Option<String>,
    /// 联系电话.
    pub phone: Option<String>,
    /// Storeys used.
    pub storeys: Option<u32>,
    /// Floor area, m².
    pub floor_area_m2: Option<f64>,
    /// Most people present at once.
    pub max_occupants: Option<u32>,
    /// Gas supplier (燃气供应单位).
    pub gas_supplier: Option<String>,
    /// People sleep on site.
    pub sleeps_on_site: bool,
    /// Latitude (WGS-84).
    pub lat: Option<f64>,
    /// Longitude (WGS-84).
    pub lon: Option<f64>,
}

impl PremisesFields {
    pub(crate) fn into_core(self) -> model::PremisesFields {
        let mut f = model::PremisesFields::new(self.name, self.address, self.kind);
        f.gas_use = self.gas_use;
        f.grid_id = self.grid_id;
        f.credit_code = self.credit_code;
        f.licence_no = self.licence_no;
        f.gas_supplier = self.gas_supplier;
        f.contact_person = self.contact_person;
        f.phone = self.phone;
        f.storeys = self.storeys;
        f.floor_area_m2 = self.floor_area_m2;
        f.max_occupants = self.max_occupants;
        f.sleeps_on_site = self.sleeps_on_site;
        f.location = match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => Some(model::LatLon { lat, lon }),
            _ => None,
        };
        f
    }

    fn from_core(f: &model::PremisesFields) -> Self {
        PremisesFields {
            name: f.name.clone(),
            address: f.address.clone(),
            kind: f.kind,
            gas_use: f.gas_use,
            grid_id: f.grid_id.clone(),
            credit_code: f.credit_code.clone(),
            licence_no: f.licence_no.clone(),
            gas_supplier: f.gas_supplier.clone(),
            contact_person: f.contact_person.clone(),
            phone: f.phone.clone(),
            storeys: f.storeys,
            floor_area_m2: f.floor_area_m2,
            max_occupants: f.max_occupants,
            sleeps_on_site: f.sleeps_on_site,
            lat: f.location.map(|l| l.lat),
            lon: f.location.map(|l| l.lon),
        }
    }
}

/// Premises as held.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Premises {
    /// Id.
    pub id: String,
    /// Fields.
    pub fields: PremisesFields,
    /// Archived.
    pub archived: bool,
}

impl Premises {
    pub(crate) fn from_core(p: model::Premises) -> Self {
        Premises {
            id: p.id.0,
            archived: p.fields.archived,
            fields: PremisesFields::from_core(&p.fields),
        }
    }
}

/// One checklist item, for the inspection screen.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChecklistItem {
    /// Code, e.g. `EX-05`.
    pub code: String,
    /// 中文.
    pub label_zh: String,
    /// English.
    pub label_en: String,
    /// `yes_no`, `count`, `number`, `date` or `choice`.
    pub answer_type: String,
    /// The choices' values, for `choice`.
    pub options: Vec<String>,
    /// Must be answered where it applies.
    pub required: bool,
    /// A hazard found here needs a photo.
    pub photo_on_hazard: bool,
    /// Legal or standard basis.
    pub basis: String,
}

impl ChecklistItem {
    pub(crate) fn from_core(i: &checklist::Item) -> Self {
        let (answer_type, options) = match &i.answer {
            AnswerSpec::YesNo => ("yes_no", vec![]),
            AnswerSpec::Count { .. } => ("count", vec![]),
            AnswerSpec::Number { .. } => ("number", vec![]),
            AnswerSpec::Date => ("date", vec![]),
            AnswerSpec::Choice { options } => {
                ("choice", options.iter().map(|o| o.value.clone()).collect())
            }
        };
        ChecklistItem {
            code: i.code.clone(),
            label_zh: i.label.zh.clone(),
            label_en: i.label.en.clone(),
            answer_type: answer_type.to_owned(),
            options,
            required: i.required,
            photo_on_hazard: i.photo_on_hazard,
            basis: i.basis.clone(),
        }
    }
}

/// A recorded inspection.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Inspection {
    /// Id.
    pub id: String,
    /// The premises.
    pub premises_id: String,
    /// Who inspected.
    pub inspector: String,
    /// Date of the visit (`YYYY-MM-DD`).
    pub performed_on: String,
    /// The answers, with their photos.
    pub answers: Vec<Answer>,
    /// Hazards found.
    pub findings: Vec<Finding>,
    /// Distance of the geotag from the premises, metres (when both are known).
    pub distance_m: Option<f64>,
    /// Taken too far from the premises (or with a mocked location): flagged for review.
    pub proximity_flagged: bool,
}

impl Inspection {
    pub(crate) fn from_core(i: model::Inspection) -> Self {
        Inspection {
            id: i.id.0,
            premises_id: i.premises_id.0,
            inspector: i.inspector.0,
            performed_on: i.performed_on.to_string(),
            distance_m: i.proximity.as_ref().map(|p| p.distance_m),
            proximity_flagged: i.proximity.as_ref().is_some_and(|p| p.flagged),
            answers: i.answers,
            findings: i.findings,
        }
    }
}

/// A hazard.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Hazard {
    /// Id.
    pub id: String,
    /// The premises.
    pub premises_id: String,
    /// The checklist item that found it.
    pub code: String,
    /// Severity.
    pub severity: Severity,
    /// Status.
    pub status: HazardStatus,
    /// Rectify by (`YYYY-MM-DD`).
    pub deadline: Option<String>,
    /// Notice number.
    pub notice_no: Option<String>,
    /// Rectification round (1 at first, +1 per failed re-check).
    pub round: u32,
    /// Who follows it up.
    pub assignee: String,
}

impl Hazard {
    pub(crate) fn from_core(h: hazard::Hazard) -> Self {
        Hazard {
            id: h.id.0,
            premises_id: h.origin.premises_id.0,
            code: h.origin.finding.code,
            severity: h.origin.finding.severity,
            status: h.status,
            deadline: h.deadline.map(|d| d.to_string()),
            notice_no: h.notice_no,
            round: h.round,
            assignee: h.assignee.0,
        }
    }
}

/// One step of a hazard's history, oldest first.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HazardHistoryEntry {
    /// `found` for the finding, else the action's name (`notice_issued`, `recheck_passed`,
    /// `deadline_extended`, `reassigned`, `escalated`, ...).
    pub action: String,
    /// Who did it (a user id; `system` for the server's own escalations).
    pub by: String,
    /// When (the device's clock, ms since the epoch).
    pub at_ms: i64,
    /// The deadline it set (`YYYY-MM-DD`), for notices, extensions and failed re-checks.
    pub deadline: Option<String>,
    /// The note given with it.
    pub note: Option<String>,
    /// The hazard's state did not allow it where it falls in the order: kept, not applied.
    pub invalid: bool,
}

impl HazardHistoryEntry {
    pub(crate) fn from_core(e: hazard::HistoryEntry) -> Self {
        use hazard::HazardAction as A;
        let deadline = match &e.action {
            Some(
                A::NoticeIssued { deadline, .. }
                | A::RecheckFailed { deadline, .. }
                | A::DeadlineExtended { deadline },
            ) => Some(deadline.to_string()),
            _ => None,
        };
        HazardHistoryEntry {
            action: e.action.as_ref().map_or("found", |a| a.name()).to_owned(),
            by: e.by.0,
            at_ms: e.at_ms,
            deadline,
            note: e.note,
            invalid: e.invalid,
        }
    }
}

/// What a worker does about a hazard.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum HazardAction {
    /// 当场整改: needs at least one after-photo.
    FixedOnSpot {
        /// After-photos.
        photos: Vec<PhotoRef>,
    },
    /// 下发整改通知.
    IssueNotice {
        /// Deadline (`YYYY-MM-DD`).
        deadline: String,
        /// Notice number.
        notice_no: Option<String>,
    },
    /// The owner says it is fixed.
    OwnerReportedFixed,
    /// 复查合格.
    RecheckPassed,
    /// 复查不合格: another round.
    RecheckFailed {
        /// New deadline (`YYYY-MM-DD`).
        new_deadline: String,
    },
}

impl HazardAction {
    pub(crate) fn into_core(self) -> Result<hazard::HazardAction, XunchaError> {
        Ok(match self {
            HazardAction::FixedOnSpot { photos } => hazard::HazardAction::FixedOnSpot { photos },
            HazardAction::IssueNotice {
                deadline,
                notice_no,
            } => hazard::HazardAction::NoticeIssued {
                deadline: date("deadline", &deadline)?,
                notice_no,
            },
            HazardAction::OwnerReportedFixed => {
                hazard::HazardAction::OwnerReportedFixed { photos: vec![] }
            }
            HazardAction::RecheckPassed => hazard::HazardAction::RecheckPassed { photos: vec![] },
            HazardAction::RecheckFailed { new_deadline } => hazard::HazardAction::RecheckFailed {
                deadline: date("new_deadline", &new_deadline)?,
                photos: vec![],
            },
        })
    }
}

/// The result of enrolling.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Enrolment {
    /// The user.
    pub user: String,
    /// `worker`, `supervisor` or `admin`.
    pub role: String,
    /// Grids covered.
    pub grids: Vec<String>,
}

/// A change of this phone's that the server set aside: refused for its author (the shop had
/// left the worker's grids, say), kept on the phone and the server but applied nowhere. The
/// app lists them with the reason; a supervisor can let them through.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SetAsideChange {
    /// Its number on this phone.
    pub seq: u64,
    /// `premises_patch`, `inspection` or `hazard_event`.
    pub kind: String,
    /// The premises it is about, when it names them.
    pub premises_id: Option<String>,
    /// The hazard it is about (hazard actions).
    pub hazard_id: Option<String>,
    /// When it was recorded (this phone's clock, ms since the epoch).
    pub recorded_at_ms: i64,
    /// The server's reason code, e.g. `out_of_scope`.
    pub code: String,
    /// 中文说明.
    pub message: String,
    /// English message.
    pub message_en: String,
}

impl SetAsideChange {
    pub(crate) fn from_core(op: &xuncha_core::op::Op, why: xuncha_core::sync::SetAside) -> Self {
        use xuncha_core::op::OpBody;
        let (premises_id, hazard_id) = match &op.body {
            OpBody::PremisesPatch(p) => (Some(p.premises_id.0.clone()), None),
            OpBody::Inspection(i) => (Some(i.premises_id.0.clone()), None),
            OpBody::HazardEvent(e) => (None, Some(e.hazard_id.0.clone())),
            OpBody::Campaign(_) | OpBody::Unknown { .. } => (None, None),
        };
        SetAsideChange {
            seq: op.seq,
            kind: op.body.kind().to_owned(),
            premises_id,
            hazard_id,
            recorded_at_ms: op.wall_ms,
            code: why.code,
            message: why.message,
            message_en: why.message_en,
        }
    }
}
