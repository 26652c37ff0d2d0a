//! One error type for every HTTP answer: a status, a stable code, a Chinese and an English
//! message, and specifics where they help. Internals (SQL, paths) are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use xuncha_core::sync::{ErrorBody, ErrorDetail};

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// 中文说明.
    pub zh: String,
    /// English message.
    pub en: String,
    /// Specifics.
    pub detail: Option<Value>,
}

impl ApiError {
    /// An error with its status, code and messages.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        zh: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code,
            zh: zh.into(),
            en: en.into(),
            detail: None,
        }
    }

    /// Adds specifics.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// 400: the body is not JSON (or not gzip when it says so).
    pub fn malformed(en: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", "请求格式错误", en)
    }

    /// 401: no token, or one the server does not know.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "未登录或设备令牌无效，请重新登记设备",
            "missing or invalid device token; enroll the device again",
        )
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, zh, en)
    }

    /// 404.
    pub fn not_found(en: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "未找到", en)
    }

    /// 413: the body (after decompression) is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("请求过大（上限 {limit} 字节），请分批上传"),
            format!(
                "request body over the limit of {limit} bytes (after decompression); send smaller batches"
            ),
        )
    }

    /// 422: well-formed but not acceptable.
    pub fn invalid(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, zh, en)
    }

    /// 500: logged in full, answered without internals.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后重试",
            "internal server error; try again later",
        )
    }
}

impl From<xuncha_core::Error> for ApiError {
    fn from(e: xuncha_core::Error) -> Self {
        use xuncha_core::Error as E;
        match &e {
            E::OpConflict { device, seq } => Self::new(
                StatusCode::CONFLICT,
                "op_conflict",
                "同一设备序号已存在不同内容的记录",
                e.to_string(),
            )
            .with_detail(serde_json::json!({ "device": device, "seq": seq })),
            // The core's own messages name the field, in Chinese first where it has one.
            E::Invalid { message, .. } => Self::invalid(
                "invalid_op",
                format!("数据不符合要求：{message}"),
                e.to_string(),
            ),
            E::Answer { .. } | E::Batch(_) | E::Checklist { .. } => {
                Self::invalid("invalid_op", "数据不符合要求", e.to_string())
            }
            E::NotFound(_) => Self::not_found(e.to_string()),
            E::Transition { .. } => Self::new(
                StatusCode::CONFLICT,
                "transition",
                "隐患当前状态不允许该操作",
                e.to_string(),
            ),
            E::NoUser
            | E::SchemaTooNew { .. }
            | E::Sqlite(_)
            | E::Json(_)
            | E::Network(_)
            | E::Server { .. }
            | E::NotEnrolled => Self::internal(e),
        }
    }
}

impl From<crate::postgres::PgError> for ApiError {
    fn from(e: crate::postgres::PgError) -> Self {
        use crate::postgres::PgError as E;
        match e {
            E::OpConflict { device, seq } => xuncha_core::Error::OpConflict {
                device: xuncha_core::model::DeviceId(device),
                seq,
            }
            .into(),
            E::Replica(e) => e.into(),
            E::Db(_) => {
                tracing::error!(error = %e, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "数据库暂时不可用，请稍后重试",
                    "the database is unavailable; try again later",
                )
            }
            E::SchemaTooNew { .. }
            | E::Decode(_)
            | E::OtherLog { .. }
            | E::LogNotEmpty { .. }
            | E::TablesNotEmpty { .. } => Self::internal(e),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.zh,
                message_en: self.en,
                detail: self.detail,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
