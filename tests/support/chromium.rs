#![allow(dead_code)]
//! Minimal Chrome DevTools Protocol driver for end-to-end page tests.
//!
//! One headless chromium per `Browser` and one WebSocket to its browser endpoint;
//! pages are flattened target sessions (`sessionId` on each command), so they all
//! share that socket. A background task owns the socket: it writes queued commands,
//! routes responses to per-request oneshots by `id`, and files the few events tests
//! care about (load, console, exceptions) under their `sessionId`.
//!
//! The socket is driven through tungstenite's sync `WebSocket` over a non-blocking
//! adapter (`try_read`/`try_write` + tokio readiness): tokio-tungstenite's async API
//! needs the `futures-util` Stream/Sink traits, which are not a direct dependency.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::handshake::HandshakeError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

pub const CHROMIUM: &str = "/usr/bin/chromium";
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
const LOAD_TIMEOUT: Duration = Duration::from_secs(15);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// The essentials (no sandbox as root, nothing phoning home on a closed network) plus:
/// the three throttling switches, without which a page that is not in front gets
/// 1 Hz timers (measured); a fixed window size keeps screenshots comparable.
const FLAGS: &str = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-background-timer-throttling --disable-renderer-backgrounding \
    --disable-backgrounding-occluded-windows --window-size=1280,800 \
    --disable-extensions --no-default-browser-check --mute-audio --remote-debugging-port=0";

/// True if the browser binary exists; tests skip themselves otherwise.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists()
}

type Reply = Result<Value, String>;

#[derive(Default)]
struct PageEvents {
    /// loaderIds whose document reached the `load` lifecycle event.
    loaded: Vec<String>,
    console: Vec<String>,
}

/// State shared by the browser, its pages and the socket task.
struct Conn {
    next_id: AtomicU64,
    out: mpsc::UnboundedSender<String>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    pages: Mutex<HashMap<String, PageEvents>>,
    closed: Mutex<Option<String>>,
}

impl Conn {
    /// Queues a command. The waiter is registered before sending so that a fast
    /// reply cannot arrive before it; without one the reply is simply dropped.
    fn send(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        waiter: Option<oneshot::Sender<Reply>>,
    ) -> Result<u64, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = waiter {
            self.pending.lock().unwrap().insert(id, tx);
        }
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        if self.out.send(msg.to_string()).is_err() {
            self.pending.lock().unwrap().remove(&id);
            return Err(format!("{method}: {}", self.closed_reason()));
        }
        Ok(id)
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Reply {
        let (tx, rx) = oneshot::channel();
        let id = self.send(session, method, params, Some(tx))?;
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(reply)) => reply.map_err(|e| format!("{method}: {e}")),
            Ok(Err(_)) => Err(format!("{method}: {}", self.closed_reason())),
            Err(_) => {
                self.pending.lock().unwrap().remove(&id);
                Err(format!("{method}: no response within {COMMAND_TIMEOUT:?}"))
            }
        }
    }

    fn closed_reason(&self) -> String {
        let reason = self.closed.lock().unwrap().clone();
        let reason = reason.as_deref().unwrap_or("browser dropped");
        format!("devtools connection closed ({reason})")
    }

    fn dispatch(&self, text: &str) {
        let mut msg: Value = serde_json::from_str(text).unwrap_or_default();
        if let Some(id) = msg["id"].as_u64() {
            let reply = match msg.get("error") {
                Some(e) => Err(format!("{} ({})", str_or(&e["message"], "?"), e["code"])),
                None => Ok(msg["result"].take()),
            };
            // No waiter (timed out, or a fire-and-forget close) is fine.
            if let Some(tx) = self.pending.lock().unwrap().remove(&id) {
                let _ = tx.send(reply);
            }
            return;
        }
        // Browser-level events (no sessionId) are not interesting to tests.
        let mut pages = self.pages.lock().unwrap();
        let Some(page) = msg["sessionId"].as_str().and_then(|s| pages.get_mut(s)) else {
            return;
        };
        let p = &msg["params"];
        let text = match msg["method"].as_str().unwrap_or_default() {
            "Page.lifecycleEvent" if p["name"] == "load" => {
                page.loaded.push(str_or(&p["loaderId"], "").into());
                return;
            }
            "Runtime.consoleAPICalled" => {
                let args = p["args"].as_array().map_or(&[][..], Vec::as_slice);
                let args: Vec<String> = args.iter().map(remote_object_text).collect();
                format!("[{}] {}", str_or(&p["type"], "log"), args.join(" "))
            }
            "Runtime.exceptionThrown" => {
                format!("[exception] {}", exception_text(&p["exceptionDetails"]))
            }
            // Network failures (a 404 for /favicon.ico, say) and browser-side errors.
            "Log.entryAdded" => {
                let e = &p["entry"];
                format!("[log-{}] {} {}", str_or(&e["level"], "info"), str_or(&e["text"], ""), str_or(&e["url"], ""))
            }
            "Inspector.targetCrashed" => "[crash] renderer crashed".to_string(),
            _ => return,
        };
        page.console.push(text);
    }
}

fn remote_object_text(o: &Value) -> String {
    match (o.get("value"), o["description"].as_str()) {
        (Some(Value::String(s)), _) => s.clone(),
        (Some(v), _) => v.to_string(),
        (None, Some(d)) => d.to_string(),
        // undefined has neither; NaN, -0, ... have only unserializableValue.
        (None, None) => str_or(&o["unserializableValue"], "undefined").into(),
    }
}

/// Prefer the full description ("Error: boom\n    at ..."), then a thrown
/// non-Error value, then CDP's generic text ("Uncaught").
fn exception_text(details: &Value) -> String {
    let (ex, text) = (&details["exception"], str_or(&details["text"], "?"));
    match (ex["description"].as_str(), ex.get("value")) {
        (Some(d), _) => d.to_string(),
        (None, Some(v)) => format!("{text} {v}"),
        _ => text.to_string(),
    }
}

/// Blocking-style IO for tungstenite on top of a tokio socket: `WouldBlock` tells
/// the socket task to await readiness and then call tungstenite again.
struct NonBlocking(Arc<TcpStream>);

impl Read for NonBlocking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for NonBlocking {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

async fn handshake(sock: &Arc<TcpStream>, url: &str) -> Result<WebSocket<NonBlocking>, String> {
    // Screenshots arrive as one base64 text message (1280x800 PNG ~ 1 MiB, a big
    // full-page capture far more); tungstenite's 16 MiB frame default is too tight.
    let limit = Some(256 << 20);
    let config = WebSocketConfig::default().max_message_size(limit).max_frame_size(limit);
    let io = NonBlocking(sock.clone());
    let mut hs = tungstenite::client::client_with_config(url, io, Some(config));
    loop {
        match hs {
            Ok((ws, _)) => return Ok(ws),
            Err(HandshakeError::Interrupted(mid)) => {
                let _ = sock.readable().await;
                hs = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(format!("websocket handshake: {e}")),
        }
    }
}

/// Owned by the socket task; dropping it (task end *or* abort) fails every waiter
/// at once instead of leaving them to run into their timeouts.
struct TaskGuard(Arc<Conn>, mpsc::UnboundedReceiver<String>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        // Close first so no command can be queued after the drain below.
        self.1.close();
        let reason = self.0.closed_reason();
        for (_, tx) in self.0.pending.lock().unwrap().drain() {
            let _ = tx.send(Err(reason.clone()));
        }
    }
}

async fn socket_task(sock: Arc<TcpStream>, mut ws: WebSocket<NonBlocking>, mut guard: TaskGuard) {
    let reason = loop {
        tokio::select! {
            out = guard.1.recv() => {
                let Some(text) = out else { break "all handles dropped".to_string() };
                // On WouldBlock the frame stays buffered in tungstenite; flush retries it.
                match ws.write(Message::text(text)) {
                    Err(e) if !would_block(&e) => break format!("websocket write: {e}"),
                    _ => {}
                }
                let flushed = loop {
                    match ws.flush() {
                        Ok(()) => break Ok(()),
                        Err(e) if would_block(&e) => { let _ = sock.writable().await; }
                        Err(e) => break Err(format!("websocket flush: {e}")),
                    }
                };
                if let Err(e) = flushed { break e }
            }
            ready = sock.readable() => {
                if let Err(e) = ready { break format!("socket: {e}") }
                // Drain everything; tokio only re-arms readiness after a WouldBlock.
                let end = loop {
                    match ws.read() {
                        Ok(Message::Text(t)) => guard.0.dispatch(t.as_str()),
                        Ok(Message::Close(f)) => break Some(format!("closed by browser: {f:?}")),
                        Ok(_) => {}
                        Err(e) if would_block(&e) => break None,
                        Err(e) => break Some(format!("websocket read: {e}")),
                    }
                };
                if let Some(e) = end { break e }
            }
        }
    };
    *guard.0.closed.lock().unwrap() = Some(reason);
}

/// The browser process and its temp dir. Drop kills the whole process group
/// (renderers, zygote, utility processes), reaps the leader, removes the profile.
struct Proc {
    child: Child,
    dir: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // The child leads its own process group (process_group(0) at spawn).
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Other group members may still be dying while we delete; retry briefly.
        for _ in 0..10 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Last lines of chromium's stderr, for launch failure messages.
fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("chromium.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn read_port_file(path: &Path) -> Option<(u16, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let port = lines.next()?.trim().parse().ok()?;
    Some((port, lines.next()?.to_string()))
}

pub struct Browser {
    conn: Arc<Conn>,
    task: tokio::task::JoinHandle<()>,
    proc: Proc,
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.task.abort(); // `proc` drops (and is killed) right after this.
    }
}

impl Browser {
    pub async fn launch() -> Result<Browser, String> {
        Browser::launch_with(None).await
    }

    /// A browser that trusts the CA certificate in `ca_pem` as the system's store would: it is
    /// added to the NSS database of a HOME of its own (certutil, Debian's libnss3-tools), which
    /// is where Chromium on Linux looks. No flag that ignores certificate errors.
    pub async fn launch_trusting(ca_pem: &std::path::Path) -> Result<Browser, String> {
        Browser::launch_with(Some(ca_pem)).await
    }

    async fn launch_with(ca_pem: Option<&std::path::Path>) -> Result<Browser, String> {
        // No tempfile crate: pid + counter + clock make the profile dir unique.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
        let nanos = since_epoch.map_or(0, |d| d.subsec_nanos());
        let name = format!("panelcam-chromium-{}-{n}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let profile = dir.join("profile");
        let io_err = |e: io::Error| format!("chromium temp dir {}: {e}", dir.display());
        std::fs::create_dir_all(&profile).map_err(io_err)?;
        let log = std::fs::File::create(dir.join("chromium.log")).map_err(io_err)?;
        let mut cmd = Command::new(CHROMIUM);
        if let Some(ca) = ca_pem {
            let home = dir.join("home");
            trust_ca(&home, ca)?;
            cmd.env("HOME", &home);
        }
        cmd.args(FLAGS.split_whitespace());
        cmd.arg(format!("--user-data-dir={}", profile.display()));
        cmd.arg("about:blank");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| format!("spawn {CHROMIUM}: {e}"))?;
        let mut proc = Proc { child, dir };

        // Port 0 makes chromium pick a free port and publish it in this file.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        let (port, path) = loop {
            if let Some(found) = read_port_file(&port_file) {
                break found;
            }
            let exited = proc.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let why = match exited {
                    Some(status) => format!("chromium exited ({status})"),
                    None => format!("timed out after {LAUNCH_TIMEOUT:?}"),
                };
                let (file, log) = (port_file.display(), log_tail(&proc.dir));
                return Err(format!("waiting for {file}: {why}; stderr:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };

        let connected = TcpStream::connect(("127.0.0.1", port)).await;
        let sock = Arc::new(connected.map_err(|e| format!("connect devtools :{port}: {e}"))?);
        let _ = sock.set_nodelay(true);
        let url = format!("ws://127.0.0.1:{port}{path}");
        let ws = tokio::time::timeout(Duration::from_secs(10), handshake(&sock, &url)).await;
        let ws = ws.map_err(|_| "timed out".to_string()).and_then(|r| r);
        let ws = ws.map_err(|e| format!("connecting to {url}: {e}"))?;

        let (out, rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Conn {
            next_id: AtomicU64::new(1),
            out,
            pending: Mutex::default(),
            pages: Mutex::default(),
            closed: Mutex::default(),
        });
        let task = tokio::spawn(socket_task(sock, ws, TaskGuard(conn.clone(), rx)));
        Ok(Browser { conn, task, proc })
    }

    /// Opens a window on about:blank, enables events, then navigates, so this load and
    /// every console message logged while loading are observed. Completion is matched
    /// by the navigation's loaderId, which a late about:blank load cannot fake.
    pub async fn new_page(&self, url: &str) -> Result<Page, String> {
        let conn = self.conn.clone();
        // Own window per page: tabs sharing a window are hidden behind the newest
        // one, and a hidden tab stops painting, so captureScreenshot on it hangs.
        let blank = json!({ "url": "about:blank", "newWindow": true });
        let created = conn.call(None, "Target.createTarget", blank).await?;
        let target = created["targetId"].as_str().unwrap_or_default().to_string();
        let attach = json!({ "targetId": target, "flatten": true });
        let session = match conn.call(None, "Target.attachToTarget", attach).await {
            Ok(r) => r["sessionId"].as_str().unwrap_or_default().to_string(),
            Err(e) => {
                let close = json!({ "targetId": target });
                let _ = conn.send(None, "Target.closeTarget", close, None);
                return Err(e);
            }
        };
        let events = PageEvents::default();
        conn.pages.lock().unwrap().insert(session.clone(), events);
        // From here on, dropping `page` on an error path closes its window.
        let page = Page { conn, session, target };
        page.call("Page.enable", json!({})).await?;
        // Lifecycle "load" carries a loaderId, unlike Page.loadEventFired.
        let lifecycle = json!({ "enabled": true });
        page.call("Page.setLifecycleEventsEnabled", lifecycle).await?;
        page.call("Runtime.enable", json!({})).await?;
        page.call("Log.enable", json!({})).await?;
        let nav = page.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(err) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(format!("navigate to {url}: {err}"));
        }
        let loader = nav["loaderId"].as_str().unwrap_or_default();
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while page.events(|p| p.loaded.iter().any(|l| l == loader)) != Some(true) {
            if Instant::now() > deadline {
                let state = page.eval("document.readyState").await;
                let why = format!("timed out after {LOAD_TIMEOUT:?}, readyState {state:?}");
                return Err(format!("waiting for load event of {url}: {why}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(page)
    }
}

pub struct Page {
    conn: Arc<Conn>,
    session: String,
    target: String,
}

impl Drop for Page {
    fn drop(&mut self) {
        self.conn.pages.lock().unwrap().remove(&self.session);
        // Fire and forget: the dispatcher ignores replies nobody waits for.
        let params = json!({ "targetId": self.target });
        let _ = self.conn.send(None, "Target.closeTarget", params, None);
    }
}

impl Page {
    async fn call(&self, method: &str, params: Value) -> Reply {
        self.conn.call(Some(&self.session), method, params).await
    }

    /// A raw CDP command in this page's session, for what the helpers here do not cover
    /// (e.g. `Page.addScriptToEvaluateOnNewDocument` before a `Page.navigate`).
    pub async fn command(&self, method: &str, params: Value) -> Result<Value, String> {
        self.call(method, params).await
    }

    fn events<T>(&self, read: impl FnOnce(&PageEvents) -> T) -> Option<T> {
        self.conn.pages.lock().unwrap().get(&self.session).map(read)
    }

    /// Evaluates `js` in the page's main world, awaiting a returned promise.
    /// undefined becomes `Null`; NaN/Infinity/-0/BigInt come back as strings.
    pub async fn eval(&self, js: &str) -> Result<Value, String> {
        let params = json!({ "expression": js, "awaitPromise": true, "returnByValue": true });
        let mut r = self.call("Runtime.evaluate", params).await?;
        if let Some(details) = r.get("exceptionDetails") {
            let snippet: String = js.chars().take(80).collect();
            let text = exception_text(details);
            return Err(format!("JS exception in `{snippet}`: {text}"));
        }
        let res = &mut r["result"];
        Ok(match res.get_mut("value") {
            Some(v) => v.take(),
            None => res["unserializableValue"].take(), // Null when undefined
        })
    }

    /// Polls `js_condition` until it yields a JS-truthy value and returns that value.
    /// Exceptions count as "not yet" (e.g. the element does not exist yet).
    pub async fn wait_for(&self, js_condition: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.eval(js_condition).await {
                Ok(v) if truthy(&v) => return Ok(v),
                Ok(v) => v.to_string(),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                let why = format!("timed out after {timeout:?}, last value: {last}");
                return Err(format!("waiting for `{js_condition}`: {why}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" })).await?;
        base64_decode(r["data"].as_str().ok_or("captureScreenshot: no data")?)
    }

    /// Console API calls and uncaught exceptions since the page was created.
    /// Errors the page showed in its console: `console.error`, exceptions, failed requests,
    /// a crash. Any one fails a page test.
    pub async fn console_errors(&self) -> Vec<String> {
        let errors = ["[error]", "[exception]", "[log-error]", "[crash]"];
        let all = self.console_messages().await;
        all.into_iter().filter(|m| errors.iter().any(|e| m.starts_with(e))).collect()
    }

    pub async fn assert_no_console_errors(&self) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "the page logged errors: {errors:?}");
    }

    pub async fn console_messages(&self) -> Vec<String> {
        self.events(|p| p.console.clone()).unwrap_or_default()
    }

    pub async fn click(&self, css_selector: &str) -> Result<(), String> {
        // A JSON string literal is a valid JS string literal, so this quotes safely.
        let sel = Value::from(css_selector).to_string();
        let js = format!("(el => el ? (el.click(), true) : false)(document.querySelector({sel}))");
        match self.eval(&js).await? {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("click: no element matches {sel}")),
        }
    }

    /// A real mouse event over the middle of the element (scrolled into view): `kind` is CDP's
    /// `mouseMoved`, `mousePressed` or `mouseReleased` (left button). Unlike `click`, the page
    /// sees what a hand on a mouse makes: pointer down, up, enter and leave, each when it happens.
    pub async fn mouse(&self, kind: &str, css_selector: &str) -> Result<(), String> {
        let sel = Value::from(css_selector).to_string();
        let js = format!(
            "(el => {{ if (!el) return null; el.scrollIntoView({{block: 'center'}});
                const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})(document.querySelector({sel}))"
        );
        let at = self.eval(&js).await?;
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            return Err(format!("mouse: no element matches {sel}"));
        };
        let pressed = kind != "mouseMoved";
        let params = json!({"type": kind, "x": x, "y": y, "button": if pressed { "left" } else { "none" },
                            "clickCount": i32::from(pressed)});
        self.call("Input.dispatchMouseEvent", params).await.map(|_| ())
    }

    /// A real key press (`down`) or release on the focused element, for keys without text:
    /// `key` and `code` as in `KeyboardEvent` (`"Enter"`), `key_code` the Windows virtual key.
    pub async fn key(&self, key: &str, code: &str, key_code: u32, down: bool) -> Result<(), String> {
        let kind = if down { "rawKeyDown" } else { "keyUp" };
        let params = json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code});
        self.call("Input.dispatchKeyEvent", params).await.map(|_| ())
    }
}

fn str_or<'a>(v: &'a Value, default: &'a str) -> &'a str {
    v.as_str().unwrap_or(default)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        // Unserializable falsy values (NaN, -0, 0n) arrive from `eval` as these strings.
        Value::String(s) => !matches!(s.as_str(), "" | "NaN" | "-0" | "0n"),
        _ => true,
    }
}

/// Standard-alphabet base64 (what CDP uses); whitespace is skipped, `=` ends input.
/// An NSS database under `home` holding `ca` as a trusted certificate authority.
fn trust_ca(home: &std::path::Path, ca: &std::path::Path) -> Result<(), String> {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    let db_arg = format!("sql:{}", db.display());
    let ca_arg = ca.display().to_string();
    let steps: [&[&str]; 2] = [
        &["-N", "--empty-password", "-d", &db_arg],
        &["-A", "-t", "C,,", "-n", "panelcam-test-ca", "-i", &ca_arg, "-d", &db_arg],
    ];
    for args in steps {
        let out = std::process::Command::new("certutil")
            .args(args)
            .output()
            .map_err(|e| format!("certutil (scripts/deps.sh test installs libnss3-tools): {e}"))?;
        if !out.status.success() {
            return Err(format!("certutil {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    Ok(())
}

pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [u8::MAX; 256];
    for (i, &c) in ALPHABET.iter().enumerate() {
        table[c as usize] = i as u8;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        match table[c as usize] {
            _ if c == b'=' => break,
            u8::MAX => return Err(format!("invalid base64 byte {c:#04x}")),
            v => acc = (acc << 6) | u32::from(v), // bits shifted out were already emitted
        }
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
