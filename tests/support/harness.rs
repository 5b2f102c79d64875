//! End-to-end harness: the real `panelcam` binary in a temporary directory, the real RTSP
//! test camera, and small real clients (HTTP over a raw socket, WebSocket via tungstenite).
//! Every process is killed and reaped on drop, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("panelcam-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("cameras")).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("PANELCAM_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Sends SIGKILL to a child's process group and reaps it when dropped.
fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.start_kill();
}

// ---------------------------------------------------------------------------------------------
// The RTSP test camera.

pub struct TestCamera {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
}

impl TestCamera {
    /// `scripts/test-camera.py` with extra arguments (e.g. `--barcode`, `--width 1280`).
    pub async fn start(extra: &[&str]) -> TestCamera {
        let mut cam =
            TestCamera { child: None, port: free_port(), args: extra.iter().map(|s| s.to_string()).collect() };
        cam.spawn().await;
        cam
    }

    async fn spawn(&mut self) {
        let script = repo_path("scripts/test-camera.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start scripts/test-camera.py with /usr/bin/python3");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("READY ") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "test camera did not become ready on port {}", self.port);
        // Keep draining stdout so the camera never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
            let _ = child.wait().await;
        }
    }

    /// Stops the camera and starts it again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }
}

impl Drop for TestCamera {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_group(child);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// panelcam itself.

pub struct Server {
    pub port: u16,
    pub dir: TempDir,
    child: Option<Child>,
}

/// A camera file for the test camera: `cam(url)` plus overrides merged in.
pub fn camera_json(path: &str, url: &str, extra: Value) -> Value {
    let mut v = json!({"path": path, "url": url, "reconnect_interval": 1, "data_timeout": 5,
                       "ffmpeg": {"scale": "640:-1", "output_framerate": 10}});
    merge(&mut v, extra);
    v
}

pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

impl Server {
    /// Writes `config` (port filled in) and the camera files, starts panelcam and waits until
    /// `/api/status` answers.
    pub async fn start(config: Value, cameras: &[(&str, Value)]) -> Server {
        let dir = TempDir::new("srv");
        let port = free_port();
        // Each test server keeps its recordings and its spool in its own directory.
        let mut config_with_defaults = json!({"recording": {"database_path": "recordings", "spool_path": "spool"}});
        merge(&mut config_with_defaults, config);
        let mut config = config_with_defaults;
        merge(&mut config, json!({"server": {"host": "127.0.0.1", "port": port}}));
        dir.write("config.json", &config.to_string());
        for (name, cam) in cameras {
            dir.write(&format!("cameras/{name}.json"), &serde_json::to_string_pretty(cam).unwrap());
        }
        let mut server = Server { port, dir, child: None };
        server.spawn().await;
        server
    }

    /// Starts panelcam again in the same directory (after a stop or kill).
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.0.join("panelcam.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_panelcam"))
            .args(["--config", "config.json"])
            .current_dir(&self.dir.0)
            .env("PANELCAM_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start panelcam");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.try_request("GET", "/api/status", &[], None).await
                && r.status == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("panelcam did not answer /api/status within 20 s; log:\n{}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).expect("panelcam running")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("panelcam.log")).unwrap_or_default()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], None).await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        self.try_request(method, path, headers, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub async fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        http_request(self.port, method, path, headers, body).await
    }

    /// `data` of `/api/status`.
    pub async fn status(&self) -> Value {
        let r = self.get("/api/status").await;
        assert_eq!(r.status, 200);
        r.json()["data"].clone()
    }

    pub async fn camera_status(&self, id: &str) -> Value {
        let status = self.status().await;
        status["cameras"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap_or(Value::Null)
    }

    /// Waits until the camera reports `streaming`; panics with its status otherwise.
    pub async fn wait_streaming(&self, id: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let cam = self.camera_status(id).await;
            if cam["state"] == "streaming" {
                return;
            }
            if Instant::now() > deadline {
                panic!("camera {id} not streaming after {timeout:?}: {cam}\nlog:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill9(&mut self) {
        let pid = self.pid();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }

    /// Waits for the process to end; returns its exit code (None = killed by a signal).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("panelcam was started");
        let status = tokio::time::timeout(timeout, child.wait()).await.expect("panelcam did not exit in time").unwrap();
        status.code()
    }

    /// SIGTERM and wait: a clean shutdown.
    pub async fn stop(&mut self) -> Option<i32> {
        let pid = self.pid();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(15)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("---- panelcam log ----\n{}", self.log());
        }
    }
}

/// Runs panelcam to completion with arguments in `dir` (for `check` and startup failures).
pub async fn run_panelcam(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_panelcam")).args(args).current_dir(dir).output().await.expect("run panelcam");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

// ---------------------------------------------------------------------------------------------
// Clients.

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A one-shot HTTP/1.1 request over a fresh connection (`Connection: close`).
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .map_err(|_| "response timed out".to_string())?
        .map_err(|e| e.to_string())?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line_end]).map_err(|e| e.to_string())?.trim(), 16)
            .map_err(|e| e.to_string())?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub async fn ws_connect(url: &str) -> Result<Ws, String> {
    tokio_tungstenite::connect_async(url).await.map(|(ws, _)| ws).map_err(|e| e.to_string())
}

/// The next binary message, skipping anything else; `None` on close or timeout.
pub async fn next_binary(ws: &mut Ws, timeout: Duration) -> Option<Bytes> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => return Some(b),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Width and height of a JPEG; panics if it is not a decodable JPEG.
pub fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    d.decode().unwrap_or_else(|e| panic!("not a valid JPEG ({} bytes): {e}", jpeg.len()));
    let info = d.info().unwrap();
    (info.width, info.height)
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// Pids of processes whose command line contains `needle` (e.g. a test camera's port).
pub fn pids_with_arg(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && !is_zombie(pid) {
            out.push(pid);
        }
    }
    out
}

pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(false))
        .unwrap_or(false)
}

/// FFmpeg processes reading from the given test camera port.
pub fn ffmpeg_pids_for(camera_port: u16) -> Vec<u32> {
    pids_with_arg(&format!("127.0.0.1:{camera_port}")).into_iter().filter(|p| comm(*p) == "ffmpeg").collect()
}

pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Polls `f` until it returns true or the timeout passes.
pub async fn eventually(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The control WebSocket.

/// One message of the control WebSocket.
#[derive(Debug)]
pub enum ControlMsg {
    Frame { ts: i64, jpeg: Bytes },
    Reply(Value),
}

/// Parses `[0x00][i64 LE][JPEG]` or `[0x01][JSON]`; panics on anything else.
pub fn parse_control(b: &[u8]) -> ControlMsg {
    match b.first() {
        Some(0x00) if b.len() > 9 => ControlMsg::Frame {
            ts: i64::from_le_bytes(b[1..9].try_into().unwrap()),
            jpeg: Bytes::copy_from_slice(&b[9..]),
        },
        Some(0x01) => ControlMsg::Reply(serde_json::from_slice(&b[1..]).expect("reply is JSON")),
        _ => panic!("unexpected control message {:?}", &b[..b.len().min(16)]),
    }
}

pub async fn next_control(ws: &mut Ws, timeout: Duration) -> Option<ControlMsg> {
    next_binary(ws, timeout).await.map(|b| parse_control(&b))
}

/// Sends a command and returns its reply, collecting the frames that arrive meanwhile.
pub async fn command(ws: &mut Ws, cmd: Value) -> (Value, Vec<(i64, Bytes)>) {
    use futures_util::SinkExt;
    ws.send(Message::Text(cmd.to_string().into())).await.unwrap();
    let mut frames = Vec::new();
    loop {
        match next_control(ws, Duration::from_secs(10)).await {
            Some(ControlMsg::Reply(r)) => return (r, frames),
            Some(ControlMsg::Frame { ts, jpeg }) => frames.push((ts, jpeg)),
            None => panic!("no reply to {cmd}"),
        }
    }
}

impl Server {
    /// POST `/<cam>/control/recording/start` and return the session id.
    pub async fn start_recording(&self, cam: &str, reason: &str) -> i64 {
        let body = json!({"reason": reason}).to_string();
        let r = self.request("POST", &format!("/{cam}/control/recording/start"), &[], Some(body.as_bytes())).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["data"]["session_id"].as_i64().unwrap()
    }

    pub async fn stop_recording(&self, cam: &str) -> Value {
        let r = self.request("POST", &format!("/{cam}/control/recording/stop"), &[], None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["data"].clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Video: ffprobe and PostgreSQL.

/// `ffprobe -show_format -show_streams` as JSON.
pub async fn ffprobe(input: &str) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams", input])
        .output()
        .await
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe {input}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Duration in seconds as ffprobe reports it.
pub fn probe_duration(p: &Value) -> f64 {
    p["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0)
}

/// SHA-256 of every video packet's payload (`ffprobe -show_packets -show_data_hash`): equal
/// hashes mean equal coded bytes, i.e. no re-encode.
pub async fn packet_hashes(input: &str) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_packets",
            "-show_data_hash",
            "sha256",
            "-show_entries",
            "packet=data_hash",
            "-of",
            "csv=p=0",
            input,
        ])
        .output()
        .await
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// A fresh database on the machine's PostgreSQL (127.0.0.1:5432, trust), dropped on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

pub const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

pub async fn pg_connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conninfo}: {e}"));
    tokio::spawn(conn);
    client
}

impl TestDb {
    pub async fn create(tag: &str) -> TestDb {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("panelcam_test_{tag}_{}_{n}", std::process::id());
        let admin = pg_connect(PG_ADMIN).await;
        // Two calls: one multi-statement string runs as a transaction, which DROP DATABASE refuses.
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        TestDb { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), name }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        pg_connect(&format!("host=127.0.0.1 port=5432 user=postgres dbname={}", self.name)).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Best effort, outside the (possibly finished) test runtime.
        let _ = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .output();
    }
}

/// A private PostgreSQL server in a temp directory, for tests that stop and start it.
pub struct PrivatePg {
    pub dir: TempDir,
    pub port: u16,
    bin: PathBuf,
}

impl PrivatePg {
    pub async fn start() -> PrivatePg {
        let version = std::fs::read_dir("/usr/lib/postgresql").unwrap().flatten().map(|e| e.file_name()).max().unwrap();
        let bin = Path::new("/usr/lib/postgresql").join(version).join("bin");
        let dir = TempDir::new("pg");
        let data = dir.0.join("data");
        std::fs::create_dir_all(&data).unwrap();
        // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
        let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir.0).status().await.unwrap();
        assert!(chown.success());
        let initdb = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .await
            .unwrap();
        assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
        let pg = PrivatePg { dir, port: free_port(), bin };
        pg.up().await;
        pg
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    async fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.0.join("data");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.0.display());
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(self.dir.0.join("pg.log"))
            .args(args)
            .output()
            .await
            .unwrap()
    }

    pub async fn up(&self) {
        let out = self.pg_ctl(&["-w", "start"]).await;
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub async fn down(&self) {
        let out = self.pg_ctl(&["-w", "-m", "fast", "stop"]).await;
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        pg_connect(&format!("host=127.0.0.1 port={} user=postgres dbname={db}", self.port)).await
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.0.join("data");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Copies every segment FFmpeg lists in a spool playlist into `keep`, as it appears, so a
/// test can compare what was recorded with what arrived elsewhere.
pub fn collect_spool(spool: PathBuf, keep: PathBuf) -> tokio::task::JoinHandle<()> {
    std::fs::create_dir_all(&keep).unwrap();
    tokio::spawn(async move {
        loop {
            if let Ok(text) = tokio::fs::read_to_string(spool.join("live.m3u8")).await {
                for line in text.lines().filter(|l| l.starts_with("seg_")) {
                    let dest = keep.join(line);
                    if !dest.exists() {
                        let _ = tokio::fs::copy(spool.join(line), &dest).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}
