//! The operators' log through the real process: one JSON line per request with its id (also
//! in `X-Request-Id`), route as routed, status, the signed-in user and device, latency and
//! bytes; the start-up line without secrets.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const SERVER: &str = env!("CARGO_BIN_EXE_xuncha-server");

fn http(addr: &str, raw: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn each_request_is_one_json_line_with_who_and_how_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(SERVER)
        .arg("--data")
        .arg(dir.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "off",
            "--log-format",
            "json",
        ])
        .env("XUNCHA_ADMIN_PASSWORD", "admin-password-log")
        .env("XUNCHA_WEBHOOK_SECRET", "secret-never-logged")
        .env_remove("XUNCHA_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = stdout
        .by_ref()
        .map(Result::unwrap)
        .find_map(|l| {
            l.find("http://")
                .map(|at| l[at + 7..].trim_end_matches('/').to_owned())
        })
        .unwrap();
    // Keep reading what it prints (a closed pipe would fail its next line).
    std::thread::spawn(move || for _ in stdout {});
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let health = http(
        &addr,
        // An id that is no id (a client writing into the log) is replaced by the server's own.
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\" forged=\"1\r\nConnection: close\r\n\r\n",
    );
    let id = health
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(!id.contains("forged") && id.split('-').count() == 2, "{id}");
    let body = r#"{"user":"admin","password":"admin-password-log"}"#;
    let login = http(
        &addr,
        &format!(
            "POST /dash/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // A proxy in front named the request: its id is kept and sent back.
    let shop_response = http(
        &addr,
        &format!(
            "GET /dash/api/premises/no-such-shop HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-Request-Id: proxy-req-42\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(
        shop_response.contains("x-request-id: proxy-req-42\r\n"),
        "{shop_response}"
    );

    let mut lines: Vec<serde_json::Value> = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        assert!(!line.contains("secret-never-logged"), "{line}");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        lines.push(v);
        if lines.iter().filter(|l| l["message"] == "request").count() == 3 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let starting = lines.iter().find(|l| l["message"] == "starting").unwrap();
    assert_eq!(starting["webhook"], false);
    let requests: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 3, "{lines:?}");
    assert_eq!(requests[0]["request_id"], id.as_str());
    assert_eq!(
        (
            requests[0]["route"].as_str(),
            requests[0]["status"].as_u64()
        ),
        (Some("/healthz"), Some(200))
    );
    assert_eq!(requests[0]["client"], "127.0.0.1");
    // The route as routed (the shop's id left out), who asked, and how it went.
    let shop = requests[2];
    assert_eq!(shop["route"], "/dash/api/premises/{id}");
    assert_eq!(shop["status"], 404);
    assert_eq!(shop["request_id"], "proxy-req-42");
    assert_eq!(shop["user"], "admin");
    assert!(
        shop["device"].as_str().unwrap().starts_with("web-"),
        "{shop}"
    );
    assert!(
        shop["ms"].as_f64().unwrap() >= 0.0 && shop["bytes"].as_u64().unwrap() > 0,
        "{shop}"
    );
}
