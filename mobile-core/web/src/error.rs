//! Failures as JavaScript `Error`s the app can tell apart: `kind` (`invalid`, `not_found`,
//! `not_allowed`, `not_enrolled`, `network`, `server`, `storage`, `storage_full`, `busy`), a message for
//! people in Chinese and in English, and the server's `code` and `status` where it refused.

use wasm_bindgen::JsValue;

/// A failure of a call into the core.
#[derive(Debug)]
pub struct WebError {
    kind: &'static str,
    message: String,
    message_en: String,
    code: Option<String>,
    status: Option<u16>,
}

impl WebError {
    fn new(kind: &'static str, message: String, message_en: String) -> WebError {
        WebError {
            kind,
            message,
            message_en,
            code: None,
            status: None,
        }
    }

    pub(crate) fn invalid(what: &str, why: &str) -> WebError {
        WebError::new(
            "invalid",
            format!("输入有误（{what}）：{why}"),
            format!("{what}: {why}"),
        )
    }

    pub(crate) fn not_found(what: &str) -> WebError {
        WebError::new(
            "not_found",
            format!("找不到：{what}"),
            format!("{what} not found"),
        )
    }

    pub(crate) fn storage(why: &str) -> WebError {
        WebError::new(
            "storage",
            format!("本机存储不可用，记录无法保存：{why}"),
            format!("storage is not available, records cannot be kept: {why}"),
        )
    }

    pub(crate) fn busy() -> WebError {
        WebError::new(
            "busy",
            "正在同步，请稍候".to_owned(),
            "a sync is already under way".to_owned(),
        )
    }
}

impl From<xuncha_core::Error> for WebError {
    fn from(e: xuncha_core::Error) -> Self {
        use xuncha_core::Error as E;
        let en = e.to_string();
        match e {
            E::Invalid { .. } | E::Answer { .. } | E::Checklist { .. } | E::Batch(_) => {
                WebError::new("invalid", format!("输入有误：{en}"), en)
            }
            E::NotFound(_) => WebError::new("not_found", format!("找不到：{en}"), en),
            E::Transition { .. } | E::OpConflict { .. } => {
                WebError::new("not_allowed", format!("当前状态不允许此操作：{en}"), en)
            }
            E::NoUser | E::NotEnrolled => {
                WebError::new("not_enrolled", "请先登录本设备".to_owned(), en)
            }
            E::Network(_) => WebError::new(
                "network",
                "连不上服务器，记录已保存在本机，联网后再同步".to_owned(),
                en,
            ),
            E::Server {
                status,
                code,
                message,
                message_en,
            } => WebError {
                kind: "server",
                message,
                message_en,
                code: Some(code),
                status: Some(status),
            },
            E::Sqlite(rusqlite::Error::SqliteFailure(failure, _))
                if matches!(
                    failure.code,
                    rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure
                ) =>
            {
                // What a browser's storage quota looks like from SQLite: the write failed,
                // the transaction rolled back, nothing of it is kept.
                WebError::new(
                    "storage_full",
                    format!(
                        "手机存储空间不足（或浏览器不允许再存），这条记录没有保存。请释放空间后重试。（{en}）"
                    ),
                    format!(
                        "storage is full (or the browser allows no more): this was not saved. Free some space and try again. ({en})"
                    ),
                )
            }
            E::SchemaTooNew { .. } | E::Sqlite(_) | E::Json(_) => {
                WebError::new("storage", format!("本机数据库出错：{en}"), en)
            }
        }
    }
}

impl From<serde_wasm_bindgen::Error> for WebError {
    fn from(e: serde_wasm_bindgen::Error) -> Self {
        WebError::new(
            "invalid",
            format!("数据无法转换：{e}"),
            format!("value cannot be converted: {e}"),
        )
    }
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> JsValue {
        let error = js_sys::Error::new(&e.message);
        let set = |key: &str, value: JsValue| {
            let _ = js_sys::Reflect::set(&error, &JsValue::from_str(key), &value);
        };
        set("kind", JsValue::from_str(e.kind));
        set("message_en", JsValue::from_str(&e.message_en));
        if let Some(code) = &e.code {
            set("code", JsValue::from_str(code));
        }
        if let Some(status) = e.status {
            set("status", JsValue::from(status));
        }
        error.into()
    }
}
