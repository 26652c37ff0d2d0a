//! HTTPS in the binary: phones need it for the camera, positions, offline storage and service
//! workers. The certificate and key (PEM) are read at start and again on SIGHUP or when
//! either file changes, so a renewal (certbot, acme.sh, an office's own CA) needs no
//! restart; a renewal that cannot be read keeps the certificate in use and says why.
//! Handshakes run beside the accept loop, so a slow or silent client holds up no one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A handshake not done by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the files are looked at for a renewal.
pub const POLL_EVERY: Duration = Duration::from_secs(10);

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{zh} / {en}")]
pub struct TlsError {
    zh: String,
    en: String,
}

fn error(path: &Path, zh: &str, en: &str, why: impl std::fmt::Display) -> TlsError {
    TlsError {
        zh: format!("{}：{zh}（{why}）", path.display()),
        en: format!("{}: {en} ({why})", path.display()),
    }
}

/// Reads a PEM certificate chain and private key into a server configuration.
pub fn load(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| error(cert, "无法读取证书", "cannot read the certificate", e))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            error(
                cert,
                "证书不是有效的 PEM",
                "the certificate is not valid PEM",
                e,
            )
        })?;
    if chain.is_empty() {
        return Err(error(
            cert,
            "文件中没有证书",
            "holds no certificate",
            "BEGIN CERTIFICATE",
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| error(key, "无法读取私钥", "cannot read the private key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(cert, "TLS 设置失败", "TLS set-up failed", e))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            error(
                key,
                "私钥与证书不匹配或无法使用",
                "the key does not match the certificate or cannot be used",
                e,
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificate in use, replaced when its files change.
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
    /// Modification times of the files when last read.
    seen: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Certificates {
    /// Reads the files (an error here stops the server: it would serve nothing).
    pub fn open(cert: &Path, key: &Path) -> Result<Certificates, TlsError> {
        let config = load(cert, key)?;
        Ok(Certificates {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(config)),
            seen: Mutex::new((modified(cert), modified(key))),
        })
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the files again if they changed (or always, when `force`: SIGHUP). `Ok(true)`:
    /// a new certificate is in use. On error the one in use stays.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let now = (modified(&self.cert), modified(&self.key));
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !force && *seen == now {
            return Ok(false);
        }
        // A renewal writes two files: read once both are there and stop moving.
        *seen = now;
        let config = load(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(true)
    }

    /// Reloads on SIGHUP and when the files change, for as long as the server runs.
    pub fn watch(self: &Arc<Self>) {
        let certs = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let force = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = async {
                        match hangup.as_mut() {
                            Some(h) => h.recv().await,
                            None => std::future::pending().await,
                        }
                    } => true,
                };
                match certs.reload(force) {
                    Ok(true) => {
                        tracing::info!(cert = %certs.cert.display(), "certificate reloaded")
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!(
                        error = %e,
                        "certificate kept: the new one cannot be used (证书未更换)"
                    ),
                }
            }
        });
    }
}

/// A TCP listener whose connections come out as finished TLS sessions.
#[derive(Debug)]
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and shakes hands with each connection on its own task.
    pub fn new(tcp: TcpListener, certs: Arc<Certificates>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(_) => {
                        // Out of file descriptors and the like: wait, then go on.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let acceptor = TlsAcceptor::from(certs.current());
                let done = tx.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let _ = done.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop ended (it never does while the listener lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Adds `Strict-Transport-Security` to every answer served over HTTPS: browsers then use
/// HTTPS for this host for a year, even when a link says `http://`.
pub async fn hsts(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    response
}

/// The plain-HTTP listener's answer: the same path on HTTPS (308 keeps the method).
pub fn redirect_app(https_port: u16) -> axum::Router {
    axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            // The host without its port (an IPv6 literal keeps its brackets).
            let name = match host.rfind(':') {
                Some(i) if !host[i..].contains(']') => &host[..i],
                _ => host,
            };
            let port = if https_port == 443 {
                String::new()
            } else {
                format!(":{https_port}")
            };
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            axum::response::Redirect::permanent(&format!("https://{name}{port}{path}"))
        },
    )
}
