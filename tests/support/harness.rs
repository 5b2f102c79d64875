//! End-to-end harness: the real `panelcam` binary in a temporary directory, the real RTSP
//! test camera, and small real clients (HTTP over a raw socket, WebSocket via tungstenite).
//! Every process is killed and reaped on drop, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

// One import for the tests: clients and video helpers live in their own files.
#[allow(unused_imports)]
pub use super::client::*;
#[allow(unused_imports)]
pub use super::video::*;

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
    child: std::sync::Arc<std::sync::Mutex<Option<Child>>>,
    pub port: u16,
    args: Vec<String>,
    /// `(user, password)` when the camera requires RTSP authentication.
    credentials: Option<(String, String)>,
    /// Starts the camera again should it die on its own (see [`TestCamera::spawn`]).
    watchdog: Option<tokio::task::JoinHandle<()>>,
}

/// The RTSP authentication schemes a camera offers and accepts (`--auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtspAuth {
    Basic,
    Digest,
    /// Both challenges in every 401, like many real cameras (the script's default).
    Both,
}

/// A test camera that misbehaves like a plant camera, for tests of panelcam's RTSP client.
/// `TestCamera::builder(&["--width", "640"]).auth("op", "pw").lossy(5).start()`; options not
/// set keep the camera's default behaviour.
#[derive(Clone, Debug)]
pub struct TestCameraBuilder {
    args: Vec<String>,
    credentials: Option<(String, String)>,
}

impl TestCameraBuilder {
    /// Requires RTSP authentication (`--user`, `--password`); see [`TestCamera::url_with_credentials`].
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.args.extend(["--user".into(), user.into(), "--password".into(), password.into()]);
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Which schemes [`TestCameraBuilder::auth`] offers; without this call, both.
    pub fn auth_scheme(mut self, scheme: RtspAuth) -> Self {
        let name = match scheme {
            RtspAuth::Basic => "basic",
            RtspAuth::Digest => "digest",
            RtspAuth::Both => "both",
        };
        self.args.extend(["--auth".into(), name.into()]);
        self
    }

    /// Drops `percent` % of the RTP packets and delays another `percent` / 2 % past later ones.
    pub fn lossy(mut self, percent: u32) -> Self {
        self.args.extend(["--lossy".into(), percent.to_string()]);
        self
    }

    /// Alternates between the configured size and 640x360 every `seconds`, in one RTSP session.
    pub fn resize_every(mut self, seconds: u32) -> Self {
        self.args.extend(["--resize-every".into(), seconds.to_string()]);
        self
    }

    pub async fn start(self) -> TestCamera {
        let mut cam = TestCamera {
            child: Default::default(),
            port: free_port(),
            args: self.args,
            credentials: self.credentials,
            watchdog: None,
        };
        cam.spawn().await;
        cam
    }
}

impl TestCamera {
    /// `scripts/test-camera.py` with extra arguments (e.g. `--barcode`, `--width 1280`).
    pub async fn start(extra: &[&str]) -> TestCamera {
        TestCamera::builder(extra).start().await
    }

    /// Like [`TestCamera::start`], with the misbehaviour options of [`TestCameraBuilder`].
    pub fn builder(extra: &[&str]) -> TestCameraBuilder {
        TestCameraBuilder { args: extra.iter().map(|s| s.to_string()).collect(), credentials: None }
    }

    /// Starts the camera and a watchdog that restarts it on the same port if it dies by itself:
    /// GStreamer's RTSP server occasionally crashes when two clients set up the first session
    /// at the same instant (seen once in three runs of tests/reload.rs). To panelcam that is a
    /// camera rebooting, which it handles; to the test it would be a failure unrelated to what it
    /// checks. A camera stopped by the test ([`TestCamera::stop`]) stays stopped.
    async fn spawn(&mut self) {
        let child = launch_camera(self.port, &self.args).await;
        *self.child.lock().unwrap() = Some(child);
        let (slot, port, args) = (self.child.clone(), self.port, self.args.clone());
        self.watchdog = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let died = slot.lock().unwrap().as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
                if died {
                    eprintln!("test camera on port {port} died; starting it again");
                    let child = launch_camera(port, &args).await;
                    *slot.lock().unwrap() = Some(child);
                }
            }
        }));
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }

    /// The URL with the camera's user and password in it (tests choose URL-safe ones);
    /// the plain URL when the camera has no authentication.
    pub fn url_with_credentials(&self, path: &str) -> String {
        match &self.credentials {
            Some((user, password)) => format!("rtsp://{user}:{password}@127.0.0.1:{}{path}", self.port),
            None => self.url(path),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.abort();
            let _ = w.await;
        }
        let child = self.child.lock().unwrap().take();
        if let Some(mut child) = child {
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

/// Runs `scripts/test-camera.py` on `port` and waits for its READY line.
async fn launch_camera(port: u16, args: &[String]) -> Child {
    let script = repo_path("scripts/test-camera.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args(["--port", &port.to_string()])
        .args(args)
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
    assert_eq!(ready, Ok(true), "test camera did not become ready on port {port}");
    // Keep draining stdout so the camera never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

impl Drop for TestCamera {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        if let Ok(mut slot) = self.child.lock()
            && let Some(child) = slot.as_mut()
        {
            kill_group(child);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// panelcam itself.

/// The admin token every test server is configured with (`server.admin_token`).
pub const ADMIN_TOKEN: &str = "panelcam-test-admin-0123456789";

pub struct Server {
    pub port: u16,
    pub dir: TempDir,
    /// How the next `spawn` starts panelcam (environment, open-file limit).
    pub launch: Launch,
    child: Option<Child>,
}

/// Extra conditions for starting panelcam.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub env: Vec<(String, String)>,
    /// The open-file limit (soft and hard) of the process.
    pub nofile: Option<u64>,
    /// The command that runs panelcam, arguments follow (e.g. `qemu-aarch64-static
    /// <unpacked binary>`); empty = the panelcam binary of this test build.
    pub program: Vec<String>,
    /// Reach it over TLS with this client configuration (`server.tls.enabled` in its config).
    pub client_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
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
        Server::start_with(config, cameras, Launch::default()).await
    }

    pub async fn start_with(config: Value, cameras: &[(&str, Value)], launch: Launch) -> Server {
        let dir = TempDir::new("srv");
        let port = free_port();
        // Each test server keeps its recordings and its spool in its own directory.
        // The disk guard watches the machine's real disk: without this, a CI machine that is
        // more than 90 % full would delete the recordings a test is checking. The guard's own
        // tests set a limit.
        let mut config_with_defaults = json!({"recording": {"database_path": "recordings", "spool_path": "spool",
                                                            "disk_max_percent": 100},
                                              "server": {"admin_token": ADMIN_TOKEN}});
        merge(&mut config_with_defaults, config);
        let mut config = config_with_defaults;
        merge(&mut config, json!({"server": {"host": "127.0.0.1", "port": port}}));
        dir.write("config.json", &config.to_string());
        for (name, cam) in cameras {
            dir.write(&format!("cameras/{name}.json"), &serde_json::to_string_pretty(cam).unwrap());
        }
        let mut server = Server { port, dir, launch, child: None };
        server.spawn().await;
        server
    }

    /// Starts panelcam again in the same directory (after a stop or kill).
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.0.join("panelcam.log")).unwrap();
        let mut cmd = match self.launch.program.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_panelcam")),
        };
        cmd.args(["--config", "config.json"])
            .current_dir(&self.dir.0)
            .env("PANELCAM_LOG", "debug")
            .envs(self.launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(n) = self.launch.nofile {
            // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let child = cmd.spawn().expect("start panelcam");
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
        match &self.launch.client_tls {
            None => http_request(self.port, method, path, headers, body).await,
            Some(tls) => https_request(tls, self.port, method, path, headers, body).await,
        }
    }

    /// A request with the admin token (`Authorization: Bearer`).
    pub async fn admin(&self, method: &str, path: &str, body: Option<&[u8]>) -> HttpResponse {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        self.request(method, path, &[("Authorization", &bearer)], body).await
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
