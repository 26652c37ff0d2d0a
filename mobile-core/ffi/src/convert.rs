//! Records and enums that cross the FFI, and their conversions to and from the core's types.

use chrono::NaiveDate;
use xuncha_core::calendar;
use xuncha_core::checklist::{self, AnswerSpec};
use xuncha_core::due;
use xuncha_core::hazard;
use xuncha_core::model::{self, PremisesId};
use xuncha_core::sync::client as sync_client;

use crate::XunchaError;

fn date(field: &str, s: &str) -> Result<NaiveDate, XunchaError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| XunchaError::Invalid {
        message: format!("{field}: {s:?} is not a date like 2026-11-23"),
    })
}

/// Kind of premises (九小场所 and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PremisesKind {
    /// 餐饮.
    Catering,
    /// 零售.
    Retail,
    /// 小生产加工.
    Workshop,
    /// 住宿.
    Lodging,
    /// 歌舞娱乐.
    Entertainment,
    /// 网吧.
    InternetCafe,
    /// 美容洗浴.
    BeautyBath,
    /// 学校、培训.
    School,
    /// 诊所.
    Clinic,
    /// 其他.
    Other,
}

/// Gas used on the premises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum GasUse {
    /// No gas.
    None,
    /// 管道天然气.
    PipedNatural,
    /// 液化气瓶.
    BottledLpg,
}

macro_rules! mirror {
    ($ffi:ident, $core:path, [$($v:ident),*]) => {
        impl $ffi {
            #[allow(dead_code)] // not every mirrored type crosses inwards
            pub(crate) fn into_core(self) -> $core {
                match self { $($ffi::$v => <$core>::$v),* }
            }
            pub(crate) fn from_core(c: $core) -> Self {
                match c { $(<$core>::$v => $ffi::$v),* }
            }
        }
    };
}

mirror!(
    PremisesKind,
    model::PremisesKind,
    [
        Catering,
        Retail,
        Workshop,
        Lodging,
        Entertainment,
        InternetCafe,
        BeautyBath,
        School,
        Clinic,
        Other
    ]
);
mirror!(GasUse, model::GasUse, [None, PipedNatural, BottledLpg]);
mirror!(
    ChecklistKind,
    checklist::ChecklistKind,
    [FireExtinguisher, GasAlarm, EBike, Exits]
);
mirror!(Severity, model::Severity, [General, SuspectedMajor]);
mirror!(
    DueKind,
    due::DueKind,
    [Routine, IssueNotice, Recheck, AwaitingApproval]
);
mirror!(
    HazardStatus,
    hazard::HazardStatus,
    [
        Found,
        Rectifying,
        AwaitingRecheck,
        AwaitingApproval,
        Closed,
        Withdrawn
    ]
);

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
        let mut f = model::PremisesFields::new(self.name, self.address, self.kind.into_core());
        f.gas_use = self.gas_use.into_core();
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
            kind: PremisesKind::from_core(f.kind),
            gas_use: GasUse::from_core(f.gas_use),
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

/// An inspection type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChecklistKind {
    /// 灭火器.
    FireExtinguisher,
    /// 燃气泄漏报警.
    GasAlarm,
    /// 电动自行车.
    EBike,
    /// 安全出口、疏散通道.
    Exits,
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

/// An answer's value.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum AnswerValue {
    /// 是/否.
    YesNo {
        /// The answer.
        value: bool,
    },
    /// A count.
    Count {
        /// The answer.
        value: u32,
    },
    /// A measurement.
    Number {
        /// The answer.
        value: f64,
    },
    /// A date, `YYYY-MM-DD`.
    Date {
        /// The answer.
        value: String,
    },
    /// One of the item's options.
    Choice {
        /// The option's value.
        value: String,
    },
    /// 不适用: the item does not apply here (never a hazard).
    NotApplicable,
}

/// An answer to one checklist item.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Answer {
    /// Item code.
    pub code: String,
    /// The value.
    pub value: AnswerValue,
    /// The item's second value where it has one (how many e-bikes, how many people).
    pub detail: Option<u32>,
    /// Free text.
    pub note: Option<String>,
    /// Photos of this item (from `Phone::add_photo`); a hazard may need one.
    pub photos: Vec<PhotoRef>,
}

impl Answer {
    pub(crate) fn from_core(a: model::Answer) -> Self {
        let value = match a.value {
            model::AnswerValue::YesNo(value) => AnswerValue::YesNo { value },
            model::AnswerValue::Count(value) => AnswerValue::Count { value },
            model::AnswerValue::Number(value) => AnswerValue::Number { value },
            model::AnswerValue::Date(d) => AnswerValue::Date {
                value: d.to_string(),
            },
            model::AnswerValue::Choice(value) => AnswerValue::Choice { value },
            model::AnswerValue::NotApplicable => AnswerValue::NotApplicable,
        };
        Answer {
            code: a.code,
            value,
            detail: a.detail,
            note: a.note,
            photos: a.photos.into_iter().map(PhotoRef::from_core).collect(),
        }
    }

    fn into_core(self) -> Result<model::Answer, XunchaError> {
        let value = match self.value {
            AnswerValue::YesNo { value } => model::AnswerValue::YesNo(value),
            AnswerValue::Count { value } => model::AnswerValue::Count(value),
            AnswerValue::Number { value } => model::AnswerValue::Number(value),
            AnswerValue::Date { value } => {
                model::AnswerValue::Date(date(&format!("answer {}", self.code), &value)?)
            }
            AnswerValue::Choice { value } => model::AnswerValue::Choice(value),
            AnswerValue::NotApplicable => model::AnswerValue::NotApplicable,
        };
        let mut a = model::Answer::new(self.code, value);
        a.detail = self.detail;
        a.note = self.note;
        a.photos = self.photos.into_iter().map(PhotoRef::into_core).collect();
        Ok(a)
    }
}

/// Where the phone was.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Geotag {
    /// Latitude (WGS-84).
    pub lat: f64,
    /// Longitude (WGS-84).
    pub lon: f64,
    /// Accuracy in metres.
    pub accuracy_m: f64,
    /// `gps`, `network`, `fused`...
    pub source: String,
    /// The OS says the location is mocked.
    pub mock: bool,
    /// When the fix was taken (ms since the epoch).
    pub fix_time_ms: i64,
}

impl Geotag {
    pub(crate) fn into_core(self) -> model::Geotag {
        model::Geotag {
            lat: self.lat,
            lon: self.lon,
            accuracy_m: self.accuracy_m,
            source: self.source,
            mock: self.mock,
            fix_time_ms: self.fix_time_ms,
        }
    }
}

/// An inspection being recorded.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct InspectionDraft {
    /// The premises visited.
    pub premises_id: String,
    /// The checklists covered.
    pub kinds: Vec<ChecklistKind>,
    /// The answers.
    pub answers: Vec<Answer>,
    /// Where the phone was.
    pub geotag: Option<Geotag>,
    /// A remark.
    pub note: Option<String>,
}

impl InspectionDraft {
    pub(crate) fn into_core(self) -> Result<model::InspectionDraft, XunchaError> {
        Ok(model::InspectionDraft {
            premises_id: PremisesId(self.premises_id),
            kinds: self
                .kinds
                .into_iter()
                .map(ChecklistKind::into_core)
                .collect(),
            answers: self
                .answers
                .into_iter()
                .map(Answer::into_core)
                .collect::<Result<_, _>>()?,
            geotag: self.geotag.map(Geotag::into_core),
            note: self.note,
            supersedes: None,
        })
    }
}

/// 一般 or 疑似重大.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Severity {
    /// 一般隐患.
    General,
    /// 疑似重大隐患.
    SuspectedMajor,
}

/// A hazard an inspection found.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Finding {
    /// The hazard's id.
    pub hazard_id: String,
    /// Item code.
    pub code: String,
    /// Severity.
    pub severity: Severity,
    /// Rectify by (`YYYY-MM-DD`).
    pub deadline: String,
    /// Report at once.
    pub high_priority: bool,
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
            answers: i.answers.into_iter().map(Answer::from_core).collect(),
            findings: i
                .findings
                .into_iter()
                .map(|f| Finding {
                    hazard_id: f.hazard_id.0,
                    code: f.code,
                    severity: Severity::from_core(f.severity),
                    deadline: f.deadline.to_string(),
                    high_priority: f.high_priority,
                })
                .collect(),
        }
    }
}

/// Where a hazard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum HazardStatus {
    /// 已发现.
    Found,
    /// 整改中.
    Rectifying,
    /// 待复查.
    AwaitingRecheck,
    /// 待审批.
    AwaitingApproval,
    /// 已销号.
    Closed,
    /// Withdrawn by a correction.
    Withdrawn,
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
            severity: Severity::from_core(h.origin.finding.severity),
            status: HazardStatus::from_core(h.status),
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

/// A stored photo (from the photo pipeline): its SHA-256 is its id.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PhotoRef {
    /// SHA-256 of the stored bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl PhotoRef {
    pub(crate) fn from_core(p: model::PhotoRef) -> Self {
        PhotoRef {
            sha256: p.sha256,
            bytes: p.bytes,
            width: p.width,
            height: p.height,
        }
    }

    fn into_core(self) -> model::PhotoRef {
        model::PhotoRef {
            sha256: self.sha256,
            bytes: self.bytes,
            width: self.width,
            height: self.height,
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
            HazardAction::FixedOnSpot { photos } => hazard::HazardAction::FixedOnSpot {
                photos: photos.into_iter().map(PhotoRef::into_core).collect(),
            },
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

/// Where a sync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncPhase {
    /// Sending changes.
    Push,
    /// Receiving others' changes.
    Pull,
    /// Finished.
    Done,
}

/// Progress of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    /// Phase.
    pub phase: SyncPhase,
    /// Changes the server acknowledged so far.
    pub pushed: u64,
    /// Changes waiting when the sync started.
    pub to_push: u64,
    /// Changes received so far.
    pub pulled: u64,
}

impl SyncProgress {
    pub(crate) fn from_core(p: &sync_client::SyncProgress) -> Self {
        SyncProgress {
            phase: match p.phase {
                sync_client::SyncPhase::Push => SyncPhase::Push,
                sync_client::SyncPhase::Pull => SyncPhase::Pull,
                sync_client::SyncPhase::Done => SyncPhase::Done,
            },
            pushed: p.pushed,
            to_push: p.to_push,
            pulled: p.pulled,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Changes the server acknowledged.
    pub pushed: u64,
    /// Of those, held back because this phone's clock is far ahead.
    pub quarantined: u64,
    /// Changes received.
    pub pulled: u64,
    /// Of those, new here.
    pub applied: u64,
    /// Requests retried.
    pub retries: u32,
    /// Server clock minus this phone's (ms): warn the user when it is large.
    pub server_clock_offset_ms: i64,
    /// This phone's changes the server holds set aside (see `Phone::set_aside_changes`).
    pub set_aside: u64,
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
            OpBody::Unknown { .. } => (None, None),
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

impl SyncReport {
    pub(crate) fn from_core(r: &sync_client::SyncReport) -> Self {
        SyncReport {
            pushed: r.pushed,
            quarantined: r.quarantined,
            pulled: r.pulled,
            applied: r.applied,
            retries: r.retries,
            server_clock_offset_ms: r.server_clock_offset_ms,
            set_aside: r.set_aside,
        }
    }
}

/// What a photo upload run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct UploadReport {
    /// Photos sent and verified by the server.
    pub uploaded: u64,
    /// Photos the server had already.
    pub already_there: u64,
    /// Photos left queued until their records reach the server (sync first).
    pub waiting: u64,
    /// Photos the server refused for good (damaged, outside the user's area).
    pub refused: u64,
    /// Bytes sent.
    pub sent_bytes: u64,
    /// Requests retried.
    pub retries: u32,
}

impl UploadReport {
    pub(crate) fn from_core(r: &sync_client::UploadReport) -> Self {
        UploadReport {
            uploaded: r.uploaded,
            already_there: r.already_there,
            waiting: r.waiting,
            refused: r.refused,
            sent_bytes: r.sent_bytes,
            retries: r.retries,
        }
    }
}

/// How far a year's working days can be trusted (deadlines count working days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CalendarStatus {
    /// The State Council's arrangement is in the calendar.
    Official,
    /// An estimate before the notice is out (show it as 暂定).
    Provisional,
    /// Not in the calendar: plain Monday-to-Friday weeks.
    Unknown,
}

mirror!(
    CalendarStatus,
    calendar::YearStatus,
    [Official, Provisional, Unknown]
);

/// What needs doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DueKind {
    /// A routine re-inspection.
    Routine,
    /// A hazard found without a notice yet.
    IssueNotice,
    /// A re-check at (or after) a hazard's deadline.
    Recheck,
    /// A suspected major hazard waiting for a supervisor (shown, not actionable).
    AwaitingApproval,
}

/// One entry of the due list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DueItem {
    /// What.
    pub kind: DueKind,
    /// Where.
    pub premises_id: String,
    /// The hazard, for hazard work.
    pub hazard_id: Option<String>,
    /// By when (`YYYY-MM-DD`, China local date).
    pub due_on: String,
    /// Days past `due_on`.
    pub overdue_days: u64,
    /// A suspected major hazard is involved.
    pub major: bool,
}

impl DueItem {
    pub(crate) fn from_core(i: due::DueItem) -> Self {
        DueItem {
            kind: DueKind::from_core(i.kind),
            premises_id: i.premises_id.0,
            hazard_id: i.hazard_id.map(|h| h.0),
            due_on: i.due_on.to_string(),
            overdue_days: i.overdue_days,
            major: i.major,
        }
    }
}

/// A position.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct LatLon {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}
