//! The error the FFI edge (`xuncha-ffi`, uniffi) reports, with feature `uniffi`. It lives
//! here, beside the core's types that cross the FFI as they are, so that a value the core
//! refuses while crossing (a date that is not one) arrives as this error, not as uniffi's
//! internal one.

/// Every failure, with a message for people (English; the server's Chinese text where the
/// server refused).
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum XunchaError {
    /// Input that does not fit: a field, or an answer that does not fit the checklist.
    #[error("{message}")]
    Invalid {
        /// What is wrong, naming the field or checklist item.
        message: String,
    },
    /// Something asked for does not exist.
    #[error("{message}")]
    NotFound {
        /// What.
        message: String,
    },
    /// A hazard action its state does not allow.
    #[error("{message}")]
    NotAllowed {
        /// Why.
        message: String,
    },
    /// The device must be enrolled (or a user signed in) first.
    #[error("{message}")]
    NotEnrolled {
        /// What to do.
        message: String,
    },
    /// The server could not be reached, even after retries.
    #[error("{message}")]
    Network {
        /// What happened.
        message: String,
    },
    /// The server refused.
    #[error("{message_en}")]
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
    /// The local database failed (or was written by a newer app).
    #[error("{message}")]
    Storage {
        /// What happened.
        message: String,
    },
}

impl From<crate::Error> for XunchaError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        let message = e.to_string();
        match e {
            E::Invalid { .. } | E::Answer { .. } | E::Checklist { .. } | E::Batch(_) => {
                XunchaError::Invalid { message }
            }
            E::NotFound(_) => XunchaError::NotFound { message },
            E::Transition { .. } | E::OpConflict { .. } => XunchaError::NotAllowed { message },
            E::NoUser | E::NotEnrolled => XunchaError::NotEnrolled { message },
            E::Network(_) => XunchaError::Network { message },
            E::Server {
                status,
                code,
                message,
                message_en,
            } => XunchaError::Server {
                status,
                code,
                message,
                message_en,
            },
            E::SchemaTooNew { .. } | E::Sqlite(_) | E::Json(_) => XunchaError::Storage { message },
        }
    }
}
