//! Xuncha's server: holds the authoritative replica in SQLite and serves the dashboard.
//!
//! This first cut serves a health check and a status page over the server's replica (built
//! on `xuncha-core`, the same store and merge rules as the phones) and can seed demo data.
//! The sync protocol, accounts and the dashboard proper build on [`app`].

pub mod demo;
mod status;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use xuncha_core::model::DeviceId;
use xuncha_core::store::{Store, StoreOptions};

/// Shared state of the HTTP handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The server's replica. SQLite calls are blocking: use [`AppState::with_store`].
    store: Arc<Mutex<Store>>,
}

/// Errors the server reports to its operator.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The replica failed.
    #[error(transparent)]
    Core(#[from] xuncha_core::Error),
    /// The data directory is not usable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl AppState {
    /// Opens (creating as needed) the server's database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<AppState, ServerError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let options = StoreOptions {
            device: Some(DeviceId::from("server")),
            ..StoreOptions::default()
        };
        let store = Store::open_with(data_dir.join("xuncha.sqlite3"), options)?;
        Ok(AppState::from_store(store))
    }

    /// Wraps an open store.
    pub fn from_store(store: Store) -> AppState {
        AppState {
            store: Arc::new(Mutex::new(store)),
        }
    }

    /// Runs `f` on the store on a blocking thread, never on the async runtime.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, xuncha_core::Error> + Send + 'static,
    ) -> Result<T, ServerError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?
        .map_err(ServerError::from)
    }
}

/// The HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(status::page))
        .route("/v1/status", get(status::json))
        .with_state(state)
}
