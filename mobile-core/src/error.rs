//! The core's error type. Messages say what was wrong and, where it helps, what to do.

use crate::model::{DeviceId, HazardId};

/// Anything the core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of a record is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, e.g. `credit_code` or `geotag.lat`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// An answer does not fit the checklist.
    #[error("checklist item {code}: {message}")]
    Answer {
        /// The item code, e.g. `FE-03`.
        code: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// A checklist file does not load.
    #[error("checklist {file}: {message}")]
    Checklist {
        /// Which file.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// Something asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A hazard action that its current state does not allow (on this device).
    #[error("hazard {hazard}: cannot {action} while it is {status}")]
    Transition {
        /// The hazard.
        hazard: HazardId,
        /// The action attempted.
        action: String,
        /// Its current status.
        status: String,
    },
    /// A device reused a sequence number for a different op.
    #[error(
        "op {device}/{seq} was already stored with different content; a device must never reuse a sequence number"
    )]
    OpConflict {
        /// The device.
        device: DeviceId,
        /// The reused sequence number.
        seq: u64,
    },
    /// A sync batch is not acceptable as a whole.
    #[error("sync batch: {0}")]
    Batch(String),
    /// Recording needs a signed-in user.
    #[error("no user is signed in on this device; enroll it first")]
    NoUser,
    /// The database file was written by a newer app.
    #[error(
        "the database has schema version {found}, newer than this app knows ({known}); update the app"
    )]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// The server could not be reached, even after retries.
    #[error("network: {0}")]
    Network(String),
    /// The server refused a request.
    #[error("server refused the request ({status} {code}): {message_en}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's error code, e.g. `out_of_scope`.
        code: String,
        /// 中文说明.
        message: String,
        /// English message.
        message_en: String,
    },
    /// Sync needs an enrolled device.
    #[error("this device is not enrolled; enroll it with a user name and password first")]
    NotEnrolled,
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// JSON failed to encode or decode.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
    pub(crate) fn answer(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Answer {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
