//! HTTPS in the binary, through the real process and real TLS on loopback: HSTS and a Secure
//! session cookie, a renewed certificate taken on SIGHUP (and a broken renewal refused while
//! the old one serves on), plain HTTP redirected, and a key that does not fit refused at start.
//! Certificates come from `openssl req -x509`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVER: &str = env!("CARGO_BIN_EXE_xuncha-server");

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test authority (`ca.pem`), as phones would trust an office's own CA.
fn authority(dir: &Path) -> CertificateDer<'static> {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=xuncha-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap()
}

/// A server certificate for 127.0.0.1 and localhost signed by the test authority, as
/// `name`.pem and `name`.key.
fn certificate(dir: &Path, name: &str) -> CertificateDer<'static> {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN=xuncha-test-{name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            &pem,
        ],
        dir,
    );
    CertificateDer::from_pem_file(dir.join(pem)).unwrap()
}

struct Running {
    child: Child,
    https: String,
    redirect: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, cert: &Path, key: &Path) -> Running {
    let mut child = Command::new(SERVER)
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "off"])
        .args(["--http-redirect-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .env("XUNCHA_ADMIN_PASSWORD", "admin-password-tls")
        .env_remove("XUNCHA_CONFIG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut https, mut redirect) = (None, None);
    while https.is_none() || redirect.is_none() {
        let line = lines.next().expect("the server's start-up lines").unwrap();
        if let Some(at) = line.find("https://") {
            https = Some(line[at + 8..].trim_end_matches('/').to_owned());
        }
        if line.contains("redirected to HTTPS") {
            redirect = Some(line.rsplit(' ').next().unwrap().to_owned());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        https: https.unwrap(),
        redirect: redirect.unwrap(),
    }
}

/// One HTTPS request; the answer's head and body, and the certificate the server showed.
async fn request(
    addr: &str,
    roots: &[CertificateDer<'static>],
    raw: &str,
) -> (String, CertificateDer<'static>) {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let shown = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    tls.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.ok();
    (String::from_utf8_lossy(&answer).into_owned(), shown)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn https_with_hsts_a_renewal_on_sighup_and_plain_http_redirected() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let a = certificate(dir.path(), "a");
    let b = certificate(dir.path(), "b");
    let (cert, key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(dir.path().join("a.pem"), &cert).unwrap();
    std::fs::copy(dir.path().join("a.key"), &key).unwrap();
    let server = start(dir.path(), &cert, &key);
    let roots = [ca];

    let (answer, shown) = request(&server.https, &roots, &get("/healthz")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );
    assert_eq!(shown, a);

    // Under HTTPS the dashboard's session cookie is Secure without being told.
    let body = r#"{"user":"admin","password":"admin-password-tls"}"#;
    let login = format!(
        "POST /dash/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = request(&server.https, &roots, &login).await;
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(cookie.contains("Secure"), "{cookie}");

    // Renewed: the new files, then SIGHUP; new connections get the new certificate.
    std::fs::copy(dir.path().join("b.key"), &key).unwrap();
    std::fs::copy(dir.path().join("b.pem"), &cert).unwrap();
    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    hup(server.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (answer, shown) = request(&server.https, &roots, &get("/healthz")).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        if shown == b {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken renewal is refused; the certificate in use goes on serving.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup(server.child.id());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answer, shown) = request(&server.https, &roots, &get("/healthz")).await;
    assert!(answer.starts_with("HTTP/1.1 200") && shown == b, "{answer}");

    // Plain HTTP: redirected to the same path on HTTPS, method kept (308).
    let mut plain = std::net::TcpStream::connect(&server.redirect).unwrap();
    plain
        .write_all(b"POST /v1/sync/push?x=1 HTTP/1.1\r\nHost: xuncha.example.org\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    let port = server.https.rsplit(':').next().unwrap();
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    assert!(
        answer.contains(&format!(
            "location: https://xuncha.example.org:{port}/v1/sync/push?x=1"
        )),
        "{answer}"
    );
}

#[test]
fn a_key_that_does_not_fit_the_certificate_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    authority(dir.path());
    certificate(dir.path(), "a");
    certificate(dir.path(), "b");
    let out = Command::new(SERVER)
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "off"])
        .arg("--tls-cert")
        .arg(dir.path().join("a.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("b.key"))
        .env_remove("XUNCHA_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("私钥与证书不匹配") && err.contains("does not match"),
        "{err}"
    );
}
