//! Harness for end-to-end tests: a real `xuncha-server` process on loopback with a temporary
//! data directory, simulated phones (each its own SQLite store and sync client), an admin
//! client, and a TCP proxy that can drop a response after the server has committed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use xuncha_core::clock::ManualClock;
use xuncha_core::model::DeviceId;
use xuncha_core::store::{Store, StoreOptions};
use xuncha_core::sync::client::{SyncClient, SyncOptions};

/// Password of the `admin` user created at first start.
pub const ADMIN_PASSWORD: &str = "admin-password-e2e";
/// Password given to every test user.
pub const USER_PASSWORD: &str = "worker-password";

/// With `XUNCHA_TEST_SERVER_DATABASE` set (a PostgreSQL server's URL): the database of the
/// server on `data`, made when first asked for. `None`: servers keep SQLite files.
pub fn server_database(data: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let base = std::env::var("XUNCHA_TEST_SERVER_DATABASE").ok()?;
    let mut h = std::hash::DefaultHasher::new();
    data.hash(&mut h);
    let name = format!("e2e_{:016x}", h.finish());
    let mut admin = xuncha_server::postgres::connect(&base, "e2e-admin").expect("PostgreSQL");
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .expect("PostgreSQL")
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
    }
    Some(xuncha_server::postgres::url_with_database(&base, &name))
}

/// The server's command line for the server on `data` (and its database, on PostgreSQL).
pub fn command_line(binary: &str, data: &Path) -> Command {
    let mut command = Command::new(binary);
    command.arg("--data").arg(data);
    if let Some(url) = server_database(data) {
        command.arg("--database").arg(url);
    }
    command
}

/// Whether the suite runs against PostgreSQL (what only SQLite servers do is skipped, said).
pub fn on_postgres(what: &str) -> bool {
    let on = std::env::var_os("XUNCHA_TEST_SERVER_DATABASE").is_some();
    if on {
        eprintln!("skipped on PostgreSQL: {what}");
    }
    on
}

/// Records, on `phone`, a shop in grid g1 and an inspection of it whose FE-03 answer carries
/// `photos`.
pub fn inspect_with(phone: &mut Phone, photos: Vec<xuncha_core::model::PhotoRef>) {
    use xuncha_core::model::{PremisesFields, PremisesKind};
    let mut f = PremisesFields::new("小卖部", "幸福路9号", PremisesKind::Catering);
    f.grid_id = Some("g1".into());
    let premises = phone.store.add_premises(f).expect("shop");
    let mut visit = xuncha_core::checklist::sample::sample_visit(
        phone.store.catalog(),
        &premises,
        xuncha_core::clock::china_date(now_ms()),
        &["FE-03"],
    );
    visit
        .answers
        .iter_mut()
        .find(|a| a.code == "FE-03")
        .expect("an FE-03 answer")
        .photos = photos;
    phone.store.record_inspection(visit).expect("inspection");
}

/// A load balancer in front of several servers: each new connection goes to the next server
/// in turn (one that refuses is skipped), as a round-robin proxy spreads phones over instances.
#[derive(Debug)]
pub struct RoundRobinProxy {
    /// Base URL of the proxy.
    pub url: String,
    /// Connections sent to each server so far.
    pub sent: Arc<Vec<AtomicUsize>>,
}

impl RoundRobinProxy {
    /// Starts a proxy to `upstreams`.
    pub fn start(upstreams: Vec<SocketAddr>) -> RoundRobinProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let sent: Arc<Vec<AtomicUsize>> =
            Arc::new(upstreams.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = sent.clone();
        std::thread::spawn(move || {
            for (next, client) in listener.incoming().map_while(Result::ok).enumerate() {
                let server = (0..upstreams.len()).find_map(|i| {
                    let at = (next + i) % upstreams.len();
                    TcpStream::connect(upstreams[at]).ok().map(|s| (at, s))
                });
                let Some((at, server)) = server else {
                    continue;
                };
                counts[at].fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || pipe(client, server));
            }
        });
        RoundRobinProxy { url, sent }
    }
}

/// Copies bytes both ways until either side closes.
fn pipe(client: TcpStream, server: TcpStream) {
    let Some((mut server_r, mut client_w)) = forward_requests(client, server) else {
        return;
    };
    let _ = std::io::copy(&mut server_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
}

/// Copies what the client sends to the server on a thread of its own; returns the server's
/// side to read answers from and the client's to write them to.
fn forward_requests(client: TcpStream, server: TcpStream) -> Option<(TcpStream, TcpStream)> {
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return None;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    Some((server, client))
}

/// A running server process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:43121`.
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
    /// The operations listener's base URL (status and metrics without signing in).
    pub ops_url: Option<String>,
}

impl ServerProcess {
    /// Starts `binary` on `data` at `listen` (port 0: any) and waits for its address line.
    pub fn start(binary: &str, data: &Path, listen: &str, extra_args: &[&str]) -> ServerProcess {
        let database = if extra_args.contains(&"--database") {
            None
        } else {
            server_database(data)
        };
        Self::start_with(binary, data, listen, extra_args, database.as_deref())
    }

    /// [`ServerProcess::start`] keeping its state in `database` (PostgreSQL), or in the SQLite
    /// file of `data` with `None` whatever the suite runs on.
    pub fn start_with(
        binary: &str,
        data: &Path,
        listen: &str,
        extra_args: &[&str],
        database: Option<&str>,
    ) -> ServerProcess {
        let mut command = Command::new(binary);
        // The suite against object storage (scripts/s3-test, XUNCHA_TEST_PHOTOS=s3://BUCKET):
        // each data folder keeps its photos under a prefix of its own, the same at a restart,
        // another for a folder restored from a backup (as photos/ is another folder there).
        if let Ok(base) = std::env::var("XUNCHA_TEST_PHOTOS")
            && !extra_args.contains(&"--photos")
        {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            data.hash(&mut h);
            command.arg("--photos").arg(format!(
                "{}/{:016x}",
                base.trim_end_matches('/'),
                h.finish()
            ));
        }
        // The suite against PostgreSQL (scripts/pg-test, XUNCHA_TEST_SERVER_DATABASE names the
        // server): each data folder's server keeps its state in a database of its own, the
        // same at a restart.
        if let Some(url) = database {
            command.arg("--database").arg(url);
        }
        let mut child = command
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(listen)
            // Servers started side by side each take a free port for operations too.
            .arg("--ops-listen")
            .arg("127.0.0.1:0")
            .args(extra_args)
            .env("XUNCHA_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find("http://") {
                    // "http://host:port/" (the server) or "http://host:port/status, /metrics"
                    // (its operations listener).
                    let rest = &line[at..];
                    let end = rest[7..].find('/').map_or(rest.len(), |i| i + 7);
                    let _ = tx.send((line.contains("/status"), rest[..end].to_owned()));
                }
            }
        });
        let (_, url) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server printed its address");
        // The operations line follows at once (unless `--ops-listen off`).
        let ops_url = rx
            .recv_timeout(Duration::from_secs(5))
            .ok()
            .filter(|(ops, _)| *ops)
            .map(|(_, u)| u);
        let addr = url
            .trim_start_matches("http://")
            .parse()
            .expect("address in the start line");
        ServerProcess {
            child,
            url,
            addr,
            ops_url,
        }
    }

    /// The process's peak resident memory so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM line")
    }

    /// Kills the process at once (SIGKILL: no shutdown, no flush) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Quick sync options for tests: short backoff.
pub fn test_options() -> SyncOptions {
    SyncOptions {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(30),
        ..SyncOptions::default()
    }
}

/// A simulated phone: its own database file, clock and sync client.
#[derive(Debug)]
pub struct Phone {
    /// The phone's replica.
    pub store: Store,
    /// Its wall clock (skew it to test wrong phone clocks).
    pub clock: Arc<ManualClock>,
    /// Its client.
    pub client: SyncClient,
    /// Where its database lives.
    pub path: PathBuf,
}

impl Phone {
    /// A new phone with database in `dir`, talking to `url`, with wall clock `now_ms`.
    pub fn new(dir: &Path, name: &str, url: &str, now_ms: i64, options: SyncOptions) -> Phone {
        let clock = Arc::new(ManualClock::new(now_ms));
        let path = dir.join(format!("{name}.sqlite3"));
        let store = Store::open_with(
            &path,
            StoreOptions {
                wall: clock.clone(),
                device: Some(DeviceId::from(name)),
                ..StoreOptions::default()
            },
        )
        .expect("phone store opens");
        let client = SyncClient::new(url, options).expect("client");
        Phone {
            store,
            clock,
            client,
            path,
        }
    }

    /// Enrolls as `user` with [`USER_PASSWORD`] (or the admin password for `admin`).
    pub fn enroll(&mut self, user: &str) -> String {
        let password = if user == "admin" {
            ADMIN_PASSWORD
        } else {
            USER_PASSWORD
        };
        self.client
            .enroll(&mut self.store, user, password, Some("e2e"))
            .unwrap_or_else(|e| panic!("enroll {user}: {e}"))
            .token
    }

    /// Copies the phone's database as a backup of the app's data would (one snapshot).
    pub fn snapshot(&self, to: &Path) {
        self.store
            .conn()
            .execute("VACUUM INTO ?1", [to.to_str().expect("a UTF-8 path")])
            .expect("snapshot");
    }

    /// Replaces the phone's database with a snapshot, as restoring the app's data from an
    /// older backup would, and opens it again (same clock, same server).
    pub fn restore(&mut self, from: &Path) {
        let name = self.store.device_id().as_str().to_owned();
        let closed = std::mem::replace(
            &mut self.store,
            Store::open_in_memory().expect("a placeholder store"),
        );
        drop(closed);
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
        std::fs::copy(from, &self.path).expect("restore the snapshot");
        self.store = Store::open_with(
            &self.path,
            StoreOptions {
                wall: self.clock.clone(),
                device: Some(DeviceId::from(name.as_str())),
                ..StoreOptions::default()
            },
        )
        .expect("restored store opens");
    }

    /// Syncs, panicking on failure.
    pub fn sync(&mut self) -> xuncha_core::sync::client::SyncReport {
        self.client
            .sync(&mut self.store, &mut |_| {})
            .unwrap_or_else(|e| panic!("sync of {}: {e}", self.store.device_id()))
    }
}

/// An administrator's HTTP client for setting up grids and users.
#[derive(Debug)]
pub struct Admin {
    http: Client,
    url: String,
    token: String,
}

impl Admin {
    /// Enrolls the admin through a throwaway phone store.
    pub fn connect(url: &str, dir: &Path) -> Admin {
        let mut phone = Phone::new(dir, "admin-desk", url, now_ms(), test_options());
        let token = phone.enroll("admin");
        xuncha_core::sync::client::install_tls_provider();
        Admin {
            http: Client::new(),
            url: url.to_owned(),
            token,
        }
    }

    /// The same admin (same token) talking to another server of one shared database.
    pub fn at(&self, url: &str) -> Admin {
        Admin {
            http: self.http.clone(),
            url: url.to_owned(),
            token: self.token.clone(),
        }
    }

    /// Sends a JSON request; returns status and body.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().expect("admin request");
        let status = res.status().as_u16();
        let text = res.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Adds a grid.
    pub fn grid(&self, id: &str, community: &str) {
        let (status, body) = self.call(
            "PUT",
            &format!("/v1/admin/grids/{id}"),
            Some(json!({ "name": format!("网格 {id}"), "community": community, "subdistrict": "幸福街道" })),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Adds a worker covering `grids`.
    pub fn worker(&self, id: &str, grids: &[&str]) {
        let (status, body) = self.call(
            "POST",
            "/v1/admin/users",
            Some(json!({ "id": id, "role": "worker", "password": USER_PASSWORD, "areas": { "grids": grids } })),
        );
        assert_eq!(status, 201, "{body}");
    }

    /// The server replica's digest and op count.
    /// Gets `path`; returns status and body bytes.
    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .expect("admin request");
        let status = res.status().as_u16();
        (status, res.bytes().expect("body").to_vec())
    }

    pub fn digest(&self) -> (String, u64) {
        let (status, body) = self.call("GET", "/v1/admin/digest", None);
        assert_eq!(status, 200, "{body}");
        (
            body["digest"].as_str().expect("digest").to_owned(),
            body["ops"].as_u64().expect("ops"),
        )
    }
}

/// Copies a directory tree (a server's data directory while the server is stopped).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("target directory");
    for entry in std::fs::read_dir(from).expect("source directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

/// Wall-clock now in ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A TCP proxy in front of the server that can swallow responses: the request reaches the
/// server, the server commits and answers, and the client sees the connection drop.
#[derive(Debug)]
pub struct DropProxy {
    /// Base URL of the proxy.
    pub url: String,
    drop_next: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    hold: Arc<Hold>,
}

/// Answers held back on their way to the client, and how many are waiting.
#[derive(Debug, Default)]
struct Hold {
    state: Mutex<(bool, usize)>,
    changed: Condvar,
}

impl Hold {
    /// Waits while answers are held (counting itself as waiting).
    fn pass(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !s.0 {
            return;
        }
        s.1 += 1;
        self.changed.notify_all();
        while s.0 {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.1 -= 1;
    }
}

impl DropProxy {
    /// Starts a proxy to `upstream`.
    pub fn start(upstream: SocketAddr) -> DropProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let drop_next = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let hold = Arc::new(Hold::default());
        let (d, n, h) = (drop_next.clone(), dropped.clone(), hold.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (d, n, h) = (d.clone(), n.clone(), h.clone());
                std::thread::spawn(move || relay(client, server, &d, &n, &h));
            }
        });
        DropProxy {
            url,
            drop_next,
            dropped,
            hold,
        }
    }

    /// Holds answers back (the client keeps waiting) until [`DropProxy::release`].
    pub fn hold_responses(&self) {
        self.hold.state.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
    }

    /// Waits until `n` answers are being held.
    pub fn wait_until_holding(&self, n: usize) {
        let mut s = self.hold.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.1 < n {
            s = self.hold.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Lets held answers (and later ones) through.
    pub fn release(&self) {
        self.hold.state.lock().unwrap_or_else(|p| p.into_inner()).0 = false;
        self.hold.changed.notify_all();
    }

    /// Swallows the next `n` responses.
    pub fn drop_responses(&self, n: usize) {
        self.drop_next.store(n, Ordering::SeqCst);
    }

    /// How many responses were swallowed.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

fn relay(
    client: TcpStream,
    server: TcpStream,
    drop_next: &AtomicUsize,
    dropped: &AtomicUsize,
    hold: &Hold,
) {
    let Some((mut server_r, mut client_w)) = forward_requests(client, server) else {
        return;
    };
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match server_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        hold.pass();
        // The server has answered, so it has committed: lose the answer on the way back.
        let swallow = drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
            .is_ok();
        if swallow {
            dropped.fetch_add(1, Ordering::SeqCst);
            let _ = client_w.shutdown(Shutdown::Both);
            let _ = server_r.shutdown(Shutdown::Both);
            return;
        }
        if client_w.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client_w.shutdown(Shutdown::Both);
}
