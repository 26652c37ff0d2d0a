//! The native apps' sync client (feature `client`): the [`protocol`](super::protocol) over
//! blocking HTTP (reqwest with rustls).
//!
//! Blocking calls (the HTTP stack runs its own runtime inside), so a host app calls
//! [`SyncClient::sync`] from a background thread without running an async runtime itself.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use reqwest::blocking::Client;

use super::EnrollResponse;
use super::protocol::{Method, Request, Response, Transport};
pub use super::protocol::{
    PhotoUpload, Protocol, StoreAccess, SyncOptions, SyncPhase, SyncProgress, SyncReport,
    UploadReport,
};
use crate::error::{Error, Result};
use crate::store::Store;

/// A blocking HTTP client for one server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    protocol: Protocol,
    http: Http,
}

impl SyncClient {
    /// A client for the server at `base_url` (e.g. `https://xuncha.example.cn`).
    pub fn new(base_url: &str, options: SyncOptions) -> Result<SyncClient> {
        install_tls_provider();
        let client = Client::builder()
            .timeout(options.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("xuncha-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Network(format!("cannot set up HTTP: {e}")))?;
        Ok(SyncClient {
            protocol: Protocol::new(options),
            http: Http {
                client,
                base: base_url.trim_end_matches('/').to_owned(),
            },
        })
    }

    /// Enrolls this device with a user name and password; keeps the token in the store and
    /// signs the user in.
    pub fn enroll(
        &self,
        store: &mut Store,
        user: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<EnrollResponse> {
        let store = std::cell::RefCell::new(store);
        pollster::block_on(self.protocol.enroll(
            &self.transport(),
            &store,
            user,
            password,
            device_name,
        ))
    }

    /// The device token kept by [`SyncClient::enroll`].
    pub fn token(store: &Store) -> Result<String> {
        super::protocol::token(store)
    }

    /// Pushes the outbox, then pulls until caught up. `progress` is called after every request.
    pub fn sync(
        &self,
        store: &mut Store,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport> {
        self.sync_shared(&std::cell::RefCell::new(store), progress)
    }

    /// [`SyncClient::sync`] on a store shared with the app (a `Mutex<Store>`): the store is
    /// taken only for the local work between requests, never while waiting for the network,
    /// so the app can record an inspection while a slow sync runs.
    pub fn sync_shared(
        &self,
        store: &impl StoreAccess,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport> {
        pollster::block_on(self.protocol.sync(&self.transport(), store, progress))
    }

    /// Turns the signed-in user's morning reminder on or off.
    pub fn set_reminders(&self, store: &mut Store, on: bool) -> Result<()> {
        let store = std::cell::RefCell::new(store);
        pollster::block_on(self.protocol.set_reminders(&self.transport(), &store, on))
    }

    /// Uploads one photo (the stored JPEG at `file`), resuming an earlier attempt.
    pub fn upload_photo(
        &self,
        token: &str,
        sha256: &str,
        file: &Path,
        retries: &mut u32,
    ) -> Result<PhotoUpload> {
        let bytes = std::fs::read(file).ok();
        pollster::block_on(self.protocol.upload_photo(
            &self.transport(),
            token,
            sha256,
            bytes.as_deref(),
            retries,
        ))
    }

    /// Uploads every queued photo, oldest first; `file_of` says where a photo's stored JPEG
    /// is. Stops at the first network failure (the rest stay queued).
    pub fn upload_photos(
        &self,
        store: &mut Store,
        file_of: &dyn Fn(&str) -> PathBuf,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<UploadReport> {
        let bytes_of = |sha: &str| std::fs::read(file_of(sha)).ok();
        pollster::block_on(self.protocol.upload_photos(
            &self.transport(),
            &std::cell::RefCell::new(store),
            &bytes_of,
            progress,
        ))
    }

    /// Downloads a photo (or its thumbnail) someone else took, to show it on this phone.
    pub fn download_photo(&self, token: &str, sha256: &str, thumbnail: bool) -> Result<Vec<u8>> {
        pollster::block_on(self.protocol.download_photo(
            &self.transport(),
            token,
            sha256,
            thumbnail,
        ))
    }

    fn transport(&self) -> Blocking<'_> {
        Blocking {
            http: &self.http,
            prefetched: Mutex::new(None),
        }
    }
}

/// The HTTP client and the server's base address.
#[derive(Debug, Clone)]
struct Http {
    client: Client,
    base: String,
}

impl Http {
    fn send(&self, request: &Request) -> std::result::Result<Response, String> {
        let url = format!("{}{}", self.base, request.path);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
            Method::Put => reqwest::Method::PUT,
        };
        let mut builder = self.client.request(method, url);
        if let Some(token) = &request.bearer {
            builder = builder.bearer_auth(token);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        let response = builder.send().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        // A body cut off half-way is a failure to answer, retried like one.
        let body = response
            .bytes()
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The blocking transport of one call: every request completes before `send` returns; a
/// prefetched one runs on a thread of its own meanwhile.
struct Blocking<'a> {
    http: &'a Http,
    prefetched: Mutex<Option<Prefetched>>,
}

type Prefetched = (Request, JoinHandle<std::result::Result<Response, String>>);

impl Transport for Blocking<'_> {
    async fn send(&self, request: &Request) -> std::result::Result<Response, String> {
        let early = self
            .prefetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // An early request not wanted after all finishes on its own (a GET: harmless).
        if let Some((asked, thread)) = early
            && asked == *request
        {
            return thread
                .join()
                .unwrap_or_else(|_| Err("the request's thread failed".to_owned()));
        }
        self.http.send(request)
    }

    async fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn prefetch(&self, request: &Request) {
        let (http, asked) = (self.http.clone(), request.clone());
        let thread = std::thread::Builder::new()
            .name("xuncha-prefetch".into())
            .spawn(move || http.send(&asked));
        // No thread to spare: the request is sent when it is due.
        if let Ok(thread) = thread {
            *self.prefetched.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((request.clone(), thread));
        }
    }
}

/// Makes ring the process's TLS provider (reqwest is built without one, so that only ring is
/// linked). Any HTTP client built with this crate's reqwest needs it; calling it again, or
/// after the host app installed its own, changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
