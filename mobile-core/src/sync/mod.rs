//! The sync protocol between phones and the server (`/v1`), shared by both sides.
//!
//! - **enroll**: a user name and password buy a device token (`Authorization: Bearer ...`).
//! - **push**: a batch of this device's ops in seq order. The server stores the new ones in one
//!   transaction, ignores exact duplicates, refuses a reused `(device, seq)` with other content
//!   (409) and answers the highest seq it holds from the device (`acked_seq`). Retrying any
//!   push is harmless.
//! - **pull**: ops after a server-assigned cursor, in pages, scoped to the user's grids.
//!
//! Every response carries the server's HLC, which advances the phone's clock. Bodies are JSON,
//! gzip-compressed both ways. Errors are [`ErrorBody`] with a stable `code`.

#[cfg(feature = "client")]
pub mod client;
pub mod protocol;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::clock::Hlc;
use crate::model::{DeviceId, UserId};
use crate::op::Op;

/// Enrolment endpoint.
pub const ENROLL_PATH: &str = "/v1/enroll";
/// Push endpoint.
pub const PUSH_PATH: &str = "/v1/sync/push";
/// Pull endpoint.
pub const PULL_PATH: &str = "/v1/sync/pull";
/// The caller's own ops as the server holds them (a phone restored from an older copy of its
/// database takes them back).
pub const OWN_PATH: &str = "/v1/sync/own";
/// Reference data endpoint (calendar, cadence).
pub const REFERENCE_PATH: &str = "/v1/reference";
/// Default page size of a pull.
pub const DEFAULT_PULL_LIMIT: usize = 1000;
/// Largest page a pull returns.
pub const MAX_PULL_LIMIT: usize = 5000;

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 网格员: inspects premises of their grids.
    Worker,
    /// 网格长/社区/街道: reads and reviews their area.
    Supervisor,
    /// Manages users, grids and reference data; sees everything.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "worker" => Some(Role::Worker),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// `POST /v1/enroll`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// The phone's device id (its store's).
    pub device_id: DeviceId,
    /// A name people recognise, e.g. the phone model.
    #[serde(default)]
    pub device_name: Option<String>,
}

/// Answer to an enrolment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// Secret device token; send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The enrolled user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// Grids they cover.
    pub grids: Vec<String>,
    /// Server clock.
    pub server_hlc: Hlc,
    /// This device's short code, unique on the server (numbers its notices).
    #[serde(default)]
    pub device_code: String,
    /// The issuing area's short name, printed in notice numbers.
    #[serde(default)]
    pub notice_area: String,
}

/// `POST /v1/sync/push`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushRequest {
    /// This device's ops in seq order.
    pub ops: Vec<Op>,
    /// How far this phone has pulled (its pull cursor): what it could know of others' work,
    /// the moves of premises to other grids included, when it wrote these ops. The server
    /// accepts work on a shop moved away from the author's grids by a move the phone had not
    /// received yet (an inspection made offline); without it, such work is set aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_to: Option<u64>,
}

/// Answer to a push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// Highest seq of this device the server holds, all before it included.
    pub acked_seq: u64,
    /// New ops stored and applied.
    pub applied: usize,
    /// Ops the server already had.
    pub duplicates: usize,
    /// New ops stored but not applied (unknown type or newer schema).
    pub deferred: usize,
    /// New ops stored but held back because their clock is too far ahead of the server's.
    pub quarantined: usize,
    /// How many of this device's ops the server holds back now, whether sent in this push or
    /// before (a replay of a push whose answer was lost counts them as duplicates above, but
    /// they are still held): the phone tells the worker their clock is wrong while it is not 0.
    #[serde(default)]
    pub held: usize,
    /// Ops of this push (new or sent before) that the server set aside: refused for their
    /// author, kept but not applied anywhere. The phone takes them out of its state too and
    /// shows them to the worker; the rest of the push is applied as usual.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<SetAside>,
    /// Server clock.
    pub server_hlc: Hlc,
    /// Server wall time (ms since the epoch), so a phone can tell its clock is wrong.
    pub server_time_ms: i64,
}

/// One op the server set aside, and why (the refusal it would have answered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// The op's seq on the caller's device.
    pub seq: u64,
    /// Stable code of the refusal, e.g. `out_of_scope`.
    pub code: String,
    /// 中文说明.
    pub message: String,
    /// English message.
    pub message_en: String,
}

/// Answer to `GET /v1/sync/pull?after=CURSOR&limit=N`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PullResponse {
    /// Ops after the cursor, oldest first (this device's own ops are left out).
    pub ops: Vec<Op>,
    /// Cursor to send next time.
    pub cursor: u64,
    /// Send beside the cursor (`check`): the server tells by it that the cursor still points
    /// into the log it came from, and answers from the start when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_check: Option<String>,
    /// Whether more ops are waiting.
    pub more: bool,
    /// Identifies what the user may see; when it changes, pull again from 0.
    pub scope: String,
    /// Server clock.
    pub server_hlc: Hlc,
    /// Server wall time (ms since the epoch).
    pub server_time_ms: i64,
    /// The highest seq of the caller's own ops the server holds. Less than it acknowledged
    /// means the server was restored from a backup: the phone pushes the rest again. Left out
    /// when a pull with nothing new is answered without the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_seq: Option<u64>,
    /// Photos the caller's own records refer to that the server lacks (sent with the first page
    /// of a pull from the start, e.g. after the server was restored from a backup): the phone
    /// queues them for upload again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_photos: Vec<String>,
    /// Every op of the caller's device the server holds set aside now (see
    /// [`PushResponse::set_aside`]): the phone sets these aside and puts back any it had set
    /// aside that are no longer listed (a supervisor let them through). Left out, like
    /// `acked_seq`, when the page is answered without the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<Vec<SetAside>>,
}

/// Answer to `GET /v1/sync/own?after=SEQ&limit=N`: the caller's device's own ops after a seq,
/// as the server holds them (applied, set aside or held in quarantine), oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OwnOpsResponse {
    /// The ops, in seq order.
    pub ops: Vec<Op>,
    /// Whether more follow (ask again after the last seq).
    pub more: bool,
    /// The highest seq of this device the server holds.
    pub held_to: u64,
}

/// Answer to `GET /v1/reference`: data the server owns and phones use offline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceData {
    /// Changes whenever any of it changes.
    pub tag: String,
    /// The working-day calendar file (`schemas/calendar/README.md`).
    pub calendar: Value,
    /// Re-inspection cadence.
    pub cadence: crate::due::Cadence,
    /// Boundaries of the grids the user covers (those that have one).
    #[serde(default)]
    pub grids: Vec<crate::location::GridArea>,
}

/// The server writes pulls from stored JSON without decoding it: this serializes exactly as
/// [`Op`] does.
#[derive(Debug, Serialize)]
pub struct RawOp<'a> {
    /// Device that wrote it.
    pub device: &'a str,
    /// Its seq on that device.
    pub seq: u64,
    /// Clock stamp.
    pub hlc: Hlc,
    /// Author.
    pub author: &'a str,
    /// Schema version.
    pub schema: u32,
    /// Device wall time.
    pub wall_ms: i64,
    /// Op type.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Payload, as stored.
    pub data: &'a RawValue,
}

/// Every error answer: `{"error": {...}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, for people (Chinese first, English beside) and for programs (`code`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `op_conflict`.
    pub code: String,
    /// 中文说明.
    pub message: String,
    /// English message.
    pub message_en: String,
    /// Specifics (which op, which field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}
