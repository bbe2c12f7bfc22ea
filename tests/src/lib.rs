//! Test support: the real `revisit-host` binary serving the real components
//! over real HTTP on loopback, a local sender that records what it is handed,
//! and helpers that sign events with the host's (shiftable) clock.
//!
//! The components and the host must be built first (`./run test` does it).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789abcdef";
pub const LINK_SECRET: &str = "test-link-secret-0123456789abcdef0123";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123";

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn host_binary() -> PathBuf {
    if let Ok(p) = std::env::var("REVISIT_HOST_BIN") {
        return PathBuf::from(p);
    }
    let p = project_root().join("target/release/revisit-host");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build --release -p revisit-host` (./run test does)",
        p.display()
    );
    p
}

/// Numbers the log files of hosts sharing one data directory.
static HOST_LOGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The address a host started with `--listen 127.0.0.1:0` bound, read from
/// the `Serving http://ADDR` line it writes to `log` (its stderr). Fails
/// if the host exits first or says nothing within `wait`.
pub fn serving_address(
    log: &Path,
    child: &mut Child,
    wait: Duration,
) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + wait;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .find_map(|l| l.strip_prefix("Serving http://"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
        {
            return Ok(addr);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited: {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("no `Serving` line within {wait:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free a moment ago. Only for tests that expect the host
/// to fail before it listens, or that must reuse one port (a restarted
/// Redis); anything that serves should bind port 0 itself.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A unique scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("revisit-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the host is started with.
#[derive(Clone)]
pub struct HostConfig {
    pub manifest: PathBuf,
    pub env: Vec<(String, String)>,
    /// More `revisit-host up` arguments (e.g. `--runtime-config-file`).
    pub args: Vec<String>,
}

impl HostConfig {
    /// The Revisit app (`spin.toml`) with test secrets and the given sender.
    pub fn revisit(sender_port: u16) -> HostConfig {
        let origin = format!("http://127.0.0.1:{sender_port}");
        HostConfig {
            manifest: project_root().join("spin.toml"),
            env: vec![
                ("SPIN_VARIABLE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
                ("SPIN_VARIABLE_LINK_SECRET".into(), LINK_SECRET.into()),
                ("SPIN_VARIABLE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
                (
                    "SPIN_VARIABLE_SENDER_URL".into(),
                    format!("{origin}/messages"),
                ),
                ("SPIN_VARIABLE_SENDER_ORIGIN".into(), origin),
                (
                    "SPIN_VARIABLE_MERCHANT_NAME".into(),
                    "Acme Appliances".into(),
                ),
            ],
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> HostConfig {
        self.args.push(arg.into());
        self
    }

    pub fn set(mut self, name: &str, value: &str) -> HostConfig {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.into(), value.into()));
        self
    }
}

/// A throwaway `redis-server` on a free loopback port, nothing persisted;
/// killed on drop. (Debian's `redis-server`: `./run test` installs it.)
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        // redis-server cannot pick its own port (`--port 0` turns TCP off),
        // so a port taken between choosing and binding means: try another.
        let mut last = String::new();
        for _ in 0..5 {
            match RedisServer::try_start_on(free_port()) {
                Ok(server) => return server,
                Err(why) => last = why,
            }
        }
        panic!("{last}")
    }

    /// On a given port (e.g. to bring back one that was stopped).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::try_start_on(port).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_start_on(port: u16) -> Result<RedisServer, String> {
        let dir = TempDir::new("redis");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is missing: install Debian's `redis-server` (./run test does, as root)");
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Exited: the port was taken meanwhile (whoever answers on it is
            // not ours, so this is checked before connecting).
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server exited on port {port}: {status}"));
            }
            if server.connection().is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server did not start on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection()
    }

    /// A runtime config (in `dir`) putting the `default` store on this server.
    pub fn runtime_config(&self, dir: &TempDir) -> PathBuf {
        let path = dir.0.join("runtime-config.toml");
        std::fs::write(
            &path,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
                self.url()
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which host serves the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// `revisit-host`, with its test clock and store inspection.
    Embedded,
    /// Real Spin (`spin up`): the wall clock, and only the app's own HTTP API.
    Spin,
}

/// The real Spin CLI, where there is one: `SPIN_BIN`, the project's
/// `../shared/tools/spin`, or `spin` on `PATH`.
pub fn spin_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SPIN_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let beside = project_root().join("../shared/tools/spin");
    if beside.exists() {
        return Some(beside);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("spin"))
            .find(|p| p.is_file())
    })
}

/// A running host; killed on drop.
pub struct Host {
    pub kind: HostKind,
    child: Option<Child>,
    pub port: u16,
    pub base: String,
    pub config: HostConfig,
    pub data: Arc<TempDir>,
    pub http: reqwest::blocking::Client,
    log: PathBuf,
}

impl Host {
    pub fn start(config: HostConfig) -> Host {
        Host::start_in(config, Arc::new(TempDir::new("host")))
    }

    pub fn start_in(config: HostConfig, data: Arc<TempDir>) -> Host {
        // The host picks its own port (`--listen 127.0.0.1:0`) and we read
        // it from its "Serving" line: a port chosen here and bound there
        // could be taken in between by any other test's outgoing connection.
        let log = data.0.join(format!(
            "host-{}.log",
            HOST_LOGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(host_binary());
        cmd.arg("up")
            .arg("--from")
            .arg(&config.manifest)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data.0.join("store"))
            .arg("--test-clock")
            .args(&config.args)
            .current_dir(project_root())
            .stdout(Stdio::null())
            .stderr(log_file);
        let host = Host::come_up(HostKind::Embedded, cmd, config, data, log);
        host.wait_ready();
        host
    }

    /// Start `cmd` (with `config`'s environment), wait for its `Serving` line
    /// in `log`, and make the [`Host`]; fail with the log when it does not come up.
    fn come_up(
        kind: HostKind,
        mut cmd: Command,
        config: HostConfig,
        data: Arc<TempDir>,
        log: PathBuf,
    ) -> Host {
        for (k, v) in &config.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {kind:?}: {e}"));
        // Spin prepares every component before it serves; allow it longer.
        let (wait, timeout) = match kind {
            HostKind::Embedded => (Duration::from_secs(60), Duration::from_secs(120)),
            HostKind::Spin => (Duration::from_secs(120), Duration::from_secs(300)),
        };
        let addr = match serving_address(&log, &mut child, wait) {
            Ok(addr) => addr,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{kind:?} did not come up ({why}); its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Host {
            kind,
            child: Some(child),
            port: addr.port(),
            base: format!("http://{addr}"),
            config,
            data,
            http: reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap(),
            log,
        }
    }

    /// Real Spin (`spin`, see [`spin_binary`]) serving `config`'s manifest
    /// with its own state directory in `data` (Spin's default SQLite store),
    /// or the stores of a runtime config given in `config.args`
    /// (`--runtime-config-file …`). Spin prints its `Serving` line once the
    /// components are ready.
    pub fn spin_in(spin: &Path, config: HostConfig, data: Arc<TempDir>) -> Host {
        let n = HOST_LOGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = data.0.join(format!("spin-{n}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(spin);
        cmd.arg("up")
            .arg("--from")
            .arg(&config.manifest)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(data.0.join(format!("spin-state-{n}")))
            .args(&config.args)
            .current_dir(project_root())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        // `spin up` serves from a child (`spin trigger http`): in a process
        // group of their own, both are killed together (see `kill`).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        Host::come_up(HostKind::Spin, cmd, config, data, log)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self
                .http
                .get(format!("{}/.well-known/revisit-host/clock", self.base))
                .send()
                .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the host did not come up; its log:\n{}", self.log());
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The host's log; for Spin, with what the components wrote to stderr
    /// (Spin keeps that in files of its state directory).
    pub fn log(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if self.kind == HostKind::Spin {
            for entry in std::fs::read_dir(&self.data.0)
                .into_iter()
                .flatten()
                .flatten()
            {
                let logs = entry.path().join("logs");
                for file in std::fs::read_dir(logs).into_iter().flatten().flatten() {
                    if file.path().to_string_lossy().ends_with("stderr.txt") {
                        text.push_str(&format!("--- {}\n", file.path().display()));
                        text.push_str(&std::fs::read_to_string(file.path()).unwrap_or_default());
                    }
                }
            }
        }
        text
    }

    /// Kill the host (SIGKILL) and start it again on the same data.
    pub fn restart(mut self) -> Host {
        self.kill();
        Host::start_in(self.config.clone(), self.data.clone())
    }

    /// Kill the host (SIGKILL); real Spin with the trigger process it
    /// started, which would otherwise outlive it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.kind == HostKind::Spin {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", c.id())])
                    .status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Make the components' wall clock read `now` (RFC 3339).
    pub fn set_clock(&self, now: &str) {
        let r = self
            .http
            .put(self.url("/.well-known/revisit-host/clock"))
            .body(format!("{{\"now\":\"{now}\"}}"))
            .send()
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "set clock: {}",
            r.text().unwrap_or_default()
        );
    }

    pub fn clock(&self) -> DateTime<Utc> {
        if self.kind == HostKind::Spin {
            return Utc::now();
        }
        let v: Value = self
            .http
            .get(self.url("/.well-known/revisit-host/clock"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["now"].as_str().unwrap().parse().unwrap()
    }

    /// POST an event signed now (by the host's clock).
    pub fn post_event(&self, body: &str) -> reqwest::blocking::Response {
        let t = self.clock().timestamp();
        self.post_signed(body, t, WEBHOOK_SECRET)
    }

    pub fn post_signed(&self, body: &str, t: i64, secret: &str) -> reqwest::blocking::Response {
        self.http
            .post(self.url("/events"))
            .header("x-revisit-signature", sign(secret, t, body.as_bytes()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    }

    pub fn admin_get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap()
    }

    /// A report, read as a supervisor would after the escalator's next tick:
    /// answers reach the reports when the tick folds the answer log.
    pub fn report(&self, path: &str) -> reqwest::blocking::Response {
        let tick = self.admin_post("/escalator/tick", "");
        assert_eq!(tick.status(), 200, "the escalator's tick before {path}");
        self.admin_get(path)
    }

    pub fn admin_post(&self, path: &str, body: &str) -> reqwest::blocking::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    }

    /// Read the key-value store directly (tests that inspect the layout).
    pub fn store_value(&self, key: &str) -> Option<Vec<u8>> {
        let conn =
            rusqlite::Connection::open(self.data.0.join("store/sqlite_key_value.db")).unwrap();
        conn.query_row(
            "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1",
            [key],
            |r| r.get(0),
        )
        .ok()
    }

    pub fn store_keys(&self) -> Vec<String> {
        let conn =
            rusqlite::Connection::open(self.data.0.join("store/sqlite_key_value.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT key FROM spin_key_value WHERE store = 'default'")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- host log (last {} lines) ---", tail.len());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// `X-Revisit-Signature` for a body signed at `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A local stand-in for the seller's message sender (and for a webhook
/// receiver): records every request it is handed, and can be told to fail.
pub struct Sender {
    pub port: u16,
    /// The JSON body of every request answered 2xx.
    pub received: Arc<Mutex<Vec<Value>>>,
    /// Every request as `{"method", "path", "headers": {lower-case name: value},
    /// "body", "answered": status}`.
    pub requests: Arc<Mutex<Vec<Value>>>,
    pub fail: Arc<Mutex<bool>>,
    /// Fail (503) only requests whose path starts with this.
    pub fail_path: Arc<Mutex<Option<String>>>,
    /// Fail (500) the first n requests whose path starts with the prefix.
    fail_first: Arc<Mutex<Option<(String, usize)>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sender {
    pub fn start() -> Sender {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(Mutex::new(false));
        let fail_path: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let fail_first: Arc<Mutex<Option<(String, usize)>>> = Arc::new(Mutex::new(None));
        let (s, r, f, all, fp, ff) = (
            server.clone(),
            received.clone(),
            fail.clone(),
            requests.clone(),
            fail_path.clone(),
            fail_first.clone(),
        );
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            Value::String(h.value.as_str().to_string()),
                        )
                    })
                    .collect();
                let path = req.url().to_string();
                let path_fails = fp
                    .lock()
                    .unwrap()
                    .as_deref()
                    .is_some_and(|p| path.starts_with(p));
                let failing_first = match &mut *ff.lock().unwrap() {
                    Some((prefix, left)) if *left > 0 && path.starts_with(prefix.as_str()) => {
                        *left -= 1;
                        true
                    }
                    _ => false,
                };
                let status = match () {
                    _ if *f.lock().unwrap() || path_fails => 503,
                    _ if failing_first => 500,
                    _ => 202,
                };
                all.lock().unwrap().push(serde_json::json!({
                    "method": req.method().as_str(), "path": path, "headers": headers,
                    "body": body.clone(), "answered": status,
                }));
                if status != 202 {
                    let _ = req
                        .respond(tiny_http::Response::from_string("down").with_status_code(status));
                    continue;
                }
                let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                r.lock().unwrap().push(value);
                let _ = req.respond(
                    tiny_http::Response::from_string("{\"ok\":true}").with_status_code(202),
                );
            }
        });
        Sender {
            port,
            received,
            requests,
            fail,
            fail_path,
            fail_first,
            server,
            thread: Some(thread),
        }
    }

    /// Answer 500 to the first `n` requests whose path starts with `prefix`.
    pub fn fail_first(&self, prefix: &str, n: usize) {
        *self.fail_first.lock().unwrap() = Some((prefix.to_string(), n));
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// Every request on `path` (exactly), in arrival order.
    pub fn on(&self, path: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == path)
            .cloned()
            .collect()
    }
}

/// A Standard Webhooks secret, as `openssl rand -base64 32` prints one.
pub const STANDARD_WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Check a delivery recorded by [`Sender`] the way Standard Webhooks'
/// libraries do (HMAC-SHA256 of `id.timestamp.body` under the secret's
/// base64 key), and return its JSON payload.
pub fn verify_standard_webhook(request: &Value) -> Value {
    use base64::Engine;
    let header = |n: &str| {
        request["headers"][n]
            .as_str()
            .unwrap_or_else(|| panic!("no {n}: {request}"))
            .to_string()
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(&STANDARD_WEBHOOK_SECRET["whsec_".len()..])
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", request["body"].as_str().unwrap()).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert!(
        sig.split(' ').any(|s| s == format!("v1,{expected}")),
        "bad signature on {request}"
    );
    serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A signed-event body for a customer in `time_zone`.
pub fn delivery_event(event_id: &str, occurred_at: &str, time_zone: &str) -> String {
    serde_json::json!({
        "event_id": event_id,
        "type": "order.delivered",
        "occurred_at": occurred_at,
        "order_id": format!("order-{event_id}"),
        "category": "high_value",
        "agent_id": "agent-7",
        "customer": {
            "id": format!("cust-{event_id}"),
            "name": "Anna Schmidt",
            "email": "anna@example.de",
            "locale": "de-DE",
            "time_zone": time_zone
        }
    })
    .to_string()
}

/// The path part of a link (`/s/<token>`).
pub fn link_path(link: &str) -> String {
    let i = link.find("/s/").expect("a survey link");
    link[i..].to_string()
}

/// An event body: `kind` for `customer`, with extra top-level fields merged in.
pub fn event_body(
    event_id: &str,
    kind: &str,
    occurred_at: &str,
    customer: Value,
    extra: Value,
) -> String {
    let mut v = serde_json::json!({
        "event_id": event_id,
        "type": kind,
        "occurred_at": occurred_at,
        "order_id": format!("order-{event_id}"),
        "customer": customer,
    });
    if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in more {
            obj.insert(k.clone(), val.clone());
        }
    }
    v.to_string()
}

/// The sum of `field` over a report's `rows` (a total split by some dimension).
pub fn sum_of_rows(report: &Value, field: &str) -> i64 {
    report["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {report}"))
        .iter()
        .map(|r| {
            r[field]
                .as_i64()
                .unwrap_or_else(|| panic!("no `{field}`: {r}"))
        })
        .sum()
}

/// Delivery `n` of a load run: event `{tag}{n}`, a customer of its own
/// (Berlin, email), a high-value order served by one of `agents` agents.
pub fn numbered_delivery(tag: &str, n: usize, agents: usize, occurred_at: &str) -> String {
    event_body(
        &format!("{tag}{n}"),
        "order.delivered",
        occurred_at,
        serde_json::json!({"id": format!("{tag}c{n}"), "email": format!("{tag}{n}@example.com"),
            "locale": "en", "time_zone": "Europe/Berlin"}),
        serde_json::json!({"category": "high_value", "agent_id": format!("agent-{}", n % agents)}),
    )
}

/// A customer record for events.
pub fn customer(id: &str, time_zone: &str) -> Value {
    serde_json::json!({"id": id, "name": format!("Customer {id}"), "email": format!("{id}@example.com"),
        "locale": "en-GB", "time_zone": time_zone})
}

impl Host {
    /// JSON of a response, with its status.
    pub fn json(r: reqwest::blocking::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
        )
    }

    /// Post an event (signed now) and return the id of the first survey it planned.
    pub fn planned_survey(&self, body: &str) -> String {
        let (status, planned) = Host::json(self.post_event(body));
        assert_eq!(status, 202, "{planned}");
        planned["surveys"][0]["survey_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no survey planned: {planned}"))
            .to_string()
    }

    /// `POST /issuer/tick` until a tick leaves nothing due behind (each sends
    /// for a bounded time: `issuer_tick::TICK_BUDGET`): the ticks' counts
    /// summed, `behind` as the last left it.
    pub fn issuer_tick_all(&self) -> Value {
        let mut total = serde_json::Map::new();
        for _ in 0..100 {
            let (status, tick) = Host::json(self.admin_post("/issuer/tick", ""));
            assert_eq!(status, 200, "{tick}");
            for (k, v) in tick.as_object().into_iter().flatten() {
                let sum = total.get(k).and_then(Value::as_i64).unwrap_or(0);
                total.insert(k.clone(), (sum + v.as_i64().unwrap_or(0)).into());
            }
            total.insert("behind".into(), tick["behind"].clone());
            if tick["behind"].as_i64().unwrap_or(0) == 0 {
                break;
            }
        }
        Value::Object(total)
    }

    /// Run the issuer's tick and return the links it handed to `sender` since `seen` messages.
    pub fn tick_links(&self, sender: &Sender, seen: usize) -> Vec<(String, Value)> {
        let r = self.admin_post("/issuer/tick", "");
        assert_eq!(r.status(), 200);
        sender.messages()[seen..]
            .iter()
            .filter_map(|m| Some((link_path(m["link"].as_str()?), m.clone())))
            .collect()
    }

    /// Answer a survey link with JSON.
    pub fn answer(&self, link: &str, score: u8, comment: Option<&str>) -> (u16, Value) {
        let body = serde_json::json!({"score": score, "comment": comment});
        Host::json(
            self.http
                .post(self.url(link))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .unwrap(),
        )
    }

    /// The escalator's tick, as a scheduler calls it: among other things it
    /// makes the callbacks the answers since the last tick ask for.
    pub fn escalator_tick(&self) -> Value {
        let (status, v) = Host::json(self.admin_post("/escalator/tick", ""));
        assert_eq!(status, 200, "{v}");
        v
    }

    /// The callbacks of one owner (as supervisor).
    pub fn callbacks(&self, query: &str) -> Vec<Value> {
        let (status, v) = Host::json(self.admin_get(&format!("/callbacks?{query}")));
        assert_eq!(status, 200, "{v}");
        v["callbacks"].as_array().unwrap().clone()
    }
}

/// An IANA zone where it is about 13:00 now (`Etc/GMT-1` is UTC+1): for
/// hosts without a test clock (real Spin), where quiet hours are real.
pub fn afternoon_zone() -> String {
    use chrono::Timelike;
    let offset = 13 - Utc::now().hour() as i32;
    match offset {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

/// Delivery `n` of run `tag` for a host without a test clock: its own
/// customer (e-mail) in `zone`, a high-value order delivered 73 hours ago,
/// so that its product survey is due now.
pub fn delivery_due_now(tag: &str, n: usize, zone: &str) -> String {
    let occurred = (Utc::now() - chrono::Duration::hours(73)).to_rfc3339();
    event_body(
        &format!("{tag}-ev{n}"),
        "order.delivered",
        &occurred,
        serde_json::json!({"id": format!("{tag}-c{n}"), "name": format!("Customer {n}"),
            "email": format!("{tag}{n}@example.com"), "locale": "en", "time_zone": zone}),
        serde_json::json!({"category": "high_value", "agent_id": format!("agent-{}", n % 3)}),
    )
}

/// Run a browser script of `tests/browser/` (Debian's Chromium through
/// playwright-core) with `args`; the JSON lines it printed, one per step.
pub fn browser_steps(script: &str, args: &[&std::ffi::OsStr]) -> Vec<Value> {
    let out = Command::new("node")
        .arg(project_root().join("tests/browser").join(script))
        .args(args)
        .output()
        .expect("node is needed for the browser tests (./run test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser test {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON step: {l}")))
        .collect()
}
