//! The control WebSocket `/<cam>/control`: replay of recorded frames and live view on one
//! socket, driven by JSON commands (`start`, `stop`, `speed`, `live`, `goto`, and the
//! extensions `pause`, `resume`, `step`), and PTZ (`ptz_move`, ...: see `crate::ptz`).
//! A PTZ command runs in its own task and answers when the camera has (up to
//! `ptz::CALL_TIMEOUT` later): a slow camera never pauses this socket's frames.
//!
//! Wire format (spec): frames are binary `[0x00][8-byte little-endian ms timestamp][JPEG]`,
//! command answers are binary `[0x01][JSON {"code","text","data"}]`.
//!
//! Replay is paced by the recorded timestamps: frame `ts` is due at
//! `anchor_wall + (ts - anchor_ts) / speed`. Anchoring (instead of sleeping frame-to-frame)
//! means delays never accumulate into drift. Gaps of more than [`GAP_MS`] between recorded
//! frames (time between sessions) are skipped instead of waited out.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::command::{self, Command};
use super::{Socket, close_code};
use crate::camera::Camera;
use crate::camera::stats::ClientGuard;
use crate::ptz::PtzError;
use crate::record::FrameStore;
use crate::store::StoreError;
use crate::util::iso_ms;

/// Recorded gaps longer than this are skipped during replay.
pub const GAP_MS: i64 = 2_000;
pub const MIN_SPEED: f64 = 0.5;
pub const MAX_SPEED: f64 = 8.0;
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

struct Replay {
    from: i64,
    to: i64,
    speed: f64,
    paused: bool,
    /// The last frame shown.
    current: Option<i64>,
    /// The next frame to show, already read from the database.
    next: Option<(i64, Bytes)>,
    /// Wall time at which recorded time `anchor.1` is (or was) shown.
    anchor: (Instant, i64),
    finished: bool,
}

impl Replay {
    fn due(&self) -> Option<Instant> {
        if self.paused || self.finished {
            return None;
        }
        let (ts, _) = self.next.as_ref()?;
        let offset = (*ts - self.anchor.1).max(0) as f64 / self.speed;
        Some(self.anchor.0 + Duration::from_secs_f64(offset / 1000.0))
    }

    /// Re-anchors so that playback continues from the current frame at the current speed.
    fn reanchor(&mut self) {
        self.anchor = (Instant::now(), self.current.or(self.next.as_ref().map(|n| n.0)).unwrap_or(self.from));
    }
}

enum Mode {
    Idle,
    Live,
    Replay(Replay),
}

struct Control {
    camera: Arc<Camera>,
    mode: Mode,
    speed: f64,
    /// Replies of PTZ commands, which finish in their own tasks.
    ptz_replies: tokio::sync::mpsc::Sender<Reply>,
}

/// A reply: `code`, `text`, optional `data`.
struct Reply(u16, String, Option<Value>);

fn ok(text: impl Into<String>, data: Value) -> Reply {
    Reply(200, text.into(), Some(data))
}

fn err(code: u16, text: impl Into<String>) -> Reply {
    Reply(code, text.into(), None)
}

/// A storage error as a reply; the codes are the HTTP API's, as the spec's control channel
/// uses them.
fn store_err(e: StoreError) -> Reply {
    let code = match &e {
        StoreError::NotFound(_) => 404,
        StoreError::Conflict(..) => 409,
        StoreError::Invalid(_) => 400,
        StoreError::TooLarge(_) => 413,
        StoreError::TimedOut(_) => 408,
        StoreError::Busy(_) => 429,
        StoreError::Unavailable(_) => 503,
        StoreError::Database(_) => 500,
    };
    err(code, e.message())
}

/// A PTZ error's code: the HTTP API's (`http::ptz::status`), as for storage errors.
fn ptz_code(e: &PtzError) -> u16 {
    match e {
        PtzError::Invalid(_) => 400,
        PtzError::NoPreset(_) => 404,
        PtzError::NotEnabled(_) | PtzError::Config(_) => 409,
        PtzError::Unreachable(_) | PtzError::Tls(_) | PtzError::Fault { .. } | PtzError::Protocol(_) => 502,
        PtzError::Timeout(_) => 504,
    }
}

pub async fn serve_control(camera: Arc<Camera>, _viewer: ClientGuard, mut socket: Socket) {
    let mut live = camera.bus.watch();
    let mut stopped = camera.stopped();
    // A few PTZ replies in flight are plenty: an operator presses buttons, not scripts.
    let (ptz_replies, mut ptz_done) = tokio::sync::mpsc::channel(8);
    let mut ctl = Control { camera, mode: Mode::Idle, speed: 1.0, ptz_replies };
    let mut close = None;
    let mut live_jpegs = None;
    loop {
        let due = match &ctl.mode {
            Mode::Replay(r) => r.due(),
            _ => None,
        };
        let is_live = matches!(ctl.mode, Mode::Live);
        // The live view needs JPEGs; replay reads stored frames and needs none.
        if is_live != live_jpegs.is_some() {
            live_jpegs = is_live.then(|| ctl.camera.bus.want_jpegs());
        }
        let sent = tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => match ctl.command(text.as_bytes(), &mut live).await {
                    Some(reply) => ctl.flush(&mut socket, reply).await,
                    None => Ok(()),
                },
                Some(Ok(Message::Binary(bin))) => match ctl.command(&bin, &mut live).await {
                    Some(reply) => ctl.flush(&mut socket, reply).await,
                    None => Ok(()),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Ok(()),
            },
            changed = live.changed(), if is_live => {
                if changed.is_err() {
                    break;
                }
                let frame = live.borrow_and_update().clone();
                match frame {
                    Some(f) => send(&mut socket, frame_message(f.captured_ms, &f.jpeg)).await,
                    None => Ok(()),
                }
            },
            _ = sleep_until_opt(due), if due.is_some() => ctl.play_due(&mut socket).await,
            Some(reply) = ptz_done.recv() => send(&mut socket, reply_message(&reply)).await,
            _ = super::until_stopped(&mut stopped) => {
                close = Some(ctl.camera.stop_reason());
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    let frame = close.map(|reason| CloseFrame { code: close_code(&reason).into(), reason: reason.into() });
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(frame)).await;
}

async fn sleep_until_opt(due: Option<Instant>) {
    if let Some(at) = due {
        tokio::time::sleep_until(at).await;
    }
}

fn frame_message(ts: i64, jpeg: &[u8]) -> Message {
    let mut buf = Vec::with_capacity(9 + jpeg.len());
    buf.push(0x00);
    buf.extend_from_slice(&ts.to_le_bytes());
    buf.extend_from_slice(jpeg);
    Message::Binary(buf.into())
}

fn reply_message(r: &Reply) -> Message {
    let mut v = json!({"code": r.0, "text": r.1});
    if let Some(data) = &r.2 {
        v["data"] = data.clone();
    }
    let mut buf = vec![0x01];
    buf.extend_from_slice(v.to_string().as_bytes());
    Message::Binary(buf.into())
}

async fn send(socket: &mut Socket, m: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(m)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

impl Control {
    fn store(&self) -> Result<Arc<FrameStore>, Reply> {
        self.camera.frames.clone().ok_or_else(|| {
            let why = self.camera.frames_unavailable.clone().unwrap_or_else(|| "frame storage is not available".into());
            err(404, why)
        })
    }

    /// Sends the reply and, for commands that show a frame at once (goto, step), that frame.
    async fn flush(&mut self, socket: &mut Socket, reply: (Reply, Option<(i64, Bytes)>)) -> Result<(), ()> {
        if let Some((ts, jpeg)) = &reply.1 {
            send(socket, frame_message(*ts, jpeg)).await?;
        }
        send(socket, reply_message(&reply.0)).await
    }

    /// The reply to a command, or `None` when it comes later (PTZ).
    async fn command(
        &mut self,
        raw: &[u8],
        live: &mut tokio::sync::watch::Receiver<Option<crate::bus::Frame>>,
    ) -> Option<(Reply, Option<(i64, Bytes)>)> {
        let cmd = match command::parse(raw) {
            Ok(c) => c,
            Err(e) => return Some((err(400, e), None)),
        };
        let result = match cmd {
            Command::Start { from, to } => self.start(from.0, to.map(|t| t.0)).await.map(|r| (r, None)),
            Command::Stop => {
                self.mode = Mode::Idle;
                Ok((ok("Stopped", json!({})), None))
            }
            Command::Speed { speed } => self.set_speed(speed),
            Command::Live => {
                self.mode = Mode::Live;
                // Show the newest frame at once, then every new one.
                live.mark_changed();
                Ok((ok("Live", json!({})), None))
            }
            Command::Goto { timestamp } => self.goto(timestamp.0).await,
            Command::Pause => self.pause(true),
            Command::Resume => self.pause(false),
            Command::Step { direction } => self.step(direction.unwrap_or(1) >= 0).await,
            Command::PtzMove(_)
            | Command::PtzStop
            | Command::PtzGotoPreset(_)
            | Command::PtzSetPreset(_)
            | Command::PtzPresets => {
                return self.ptz(cmd).map(|r| (r, None));
            }
        };
        Some(result.unwrap_or_else(|e| (e, None)))
    }

    /// Runs a PTZ command in its own task; its reply goes through `ptz_replies`. A reply slot
    /// is taken first, so a client cannot pile up tasks faster than the camera answers.
    fn ptz(&self, cmd: Command) -> Option<Reply> {
        let camera = self.camera.clone();
        let Ok(slot) = self.ptz_replies.clone().try_reserve_owned() else {
            return Some(err(429, "too many PTZ commands waiting for the camera; wait for their replies"));
        };
        tokio::spawn(async move {
            let config = camera.config().ptz.clone();
            let ptz = &camera.ptz;
            let result = match &cmd {
                Command::PtzMove(m) => {
                    ptz.continuous_move(&config, m).await.map(|()| ("Moving", json!({"cmd": "ptz_move"})))
                }
                Command::PtzStop => ptz.stop(&config).await.map(|()| ("Stopped", json!({"cmd": "ptz_stop"}))),
                Command::PtzGotoPreset(g) => ptz
                    .goto_preset(&config, g)
                    .await
                    .map(|t| ("Moving to preset", json!({"cmd": "ptz_goto_preset", "preset_token": t}))),
                Command::PtzSetPreset(s) => ptz
                    .set_preset(&config, s)
                    .await
                    .map(|t| ("Preset saved", json!({"cmd": "ptz_set_preset", "preset_token": t}))),
                _ => ptz.presets(&config).await.map(|list| {
                    let presets: Vec<Value> = list.iter().map(|p| json!({"token": p.token, "name": p.name})).collect();
                    ("Presets", json!({"cmd": "ptz_presets", "count": presets.len(), "presets": presets}))
                }),
            };
            let reply = match result {
                Ok((text, data)) => ok(text, data),
                Err(e) => err(ptz_code(&e), e.to_string()),
            };
            // The socket may have closed meanwhile; the command has run all the same.
            slot.send(reply);
        });
        None
    }

    async fn start(&mut self, from: i64, to: Option<i64>) -> Result<Reply, Reply> {
        if to.is_some_and(|t| t < from) {
            return Err(err(400, "\"to\" is before \"from\""));
        }
        let to = to.unwrap_or(i64::MAX);
        let store = self.store()?;
        let first = store.frame_after(from - 1, to).await.map_err(store_err)?;
        let Some(first) = first else {
            let until = if to == i64::MAX { "the end".to_string() } else { iso_ms(to) };
            return Err(err(404, format!("no recorded frames between {} and {until}", iso_ms(from))));
        };
        let data = json!({"from": iso_ms(from), "to": (to != i64::MAX).then(|| iso_ms(to)), "first_frame": iso_ms(first.0), "speed": self.speed});
        self.mode = Mode::Replay(Replay {
            from,
            to,
            speed: self.speed,
            paused: false,
            current: None,
            anchor: (Instant::now(), first.0),
            next: Some(first),
            finished: false,
        });
        Ok(ok("Replay started", data))
    }

    fn set_speed(&mut self, speed: f64) -> Result<(Reply, Option<(i64, Bytes)>), Reply> {
        if !(MIN_SPEED..=MAX_SPEED).contains(&speed) {
            return Err(err(400, format!("speed {speed} is outside {MIN_SPEED} to {MAX_SPEED}")));
        }
        self.speed = speed;
        if let Mode::Replay(r) = &mut self.mode {
            r.reanchor();
            r.speed = speed;
        }
        Ok((ok(format!("Speed set to {speed}x"), json!({"speed": speed})), None))
    }

    fn pause(&mut self, pause: bool) -> Result<(Reply, Option<(i64, Bytes)>), Reply> {
        let Mode::Replay(r) = &mut self.mode else {
            return Err(err(409, "no replay to pause or resume; send start or goto first"));
        };
        r.paused = pause;
        r.reanchor();
        let text = if pause { "Paused" } else { "Resumed" };
        Ok((ok(text, json!({"position": r.current.map(iso_ms)})), None))
    }

    async fn goto(&mut self, ts: i64) -> Result<(Reply, Option<(i64, Bytes)>), Reply> {
        let store = self.store()?;
        let found = store.frame_near(ts, i64::MAX / 4).await.map_err(store_err)?;
        let Some((at, jpeg)) = found else {
            return Err(err(404, "no recorded frames"));
        };
        let (from, to, speed, paused) = match &self.mode {
            Mode::Replay(r) => (r.from.min(at), r.to.max(at), r.speed, r.paused),
            // Outside a replay, goto shows the frame and waits (paused) for play or step.
            _ => (at, i64::MAX, self.speed, true),
        };
        let next = store.frame_after(at, to).await.map_err(store_err)?;
        self.mode = Mode::Replay(Replay {
            from,
            to,
            speed,
            paused,
            current: Some(at),
            finished: next.is_none(),
            next,
            anchor: (Instant::now(), at),
        });
        Ok((ok("Moved", json!({"timestamp": iso_ms(at), "requested": iso_ms(ts)})), Some((at, jpeg))))
    }

    async fn step(&mut self, forward: bool) -> Result<(Reply, Option<(i64, Bytes)>), Reply> {
        let store = self.store()?;
        let Mode::Replay(r) = &mut self.mode else {
            return Err(err(409, "no replay position; send start or goto first"));
        };
        let here = r.current.unwrap_or(r.from);
        let found =
            if forward { store.frame_after(here, r.to).await } else { store.frame_before(here, i64::MIN).await };
        let found = found.map_err(store_err)?;
        let Some((at, jpeg)) = found else {
            return Err(err(404, if forward { "no later frame" } else { "no earlier frame" }));
        };
        r.paused = true;
        r.current = Some(at);
        r.next = store.frame_after(at, r.to).await.map_err(store_err)?;
        r.finished = r.next.is_none();
        r.reanchor();
        Ok((ok("Stepped", json!({"timestamp": iso_ms(at)})), Some((at, jpeg))))
    }

    /// Sends the frame that is due and reads the one after it.
    async fn play_due(&mut self, socket: &mut Socket) -> Result<(), ()> {
        let Ok(store) = self.store() else { return Ok(()) };
        let Mode::Replay(r) = &mut self.mode else { return Ok(()) };
        let Some((ts, jpeg)) = r.next.take() else { return Ok(()) };
        send(socket, frame_message(ts, &jpeg)).await?;
        r.current = Some(ts);
        match store.frame_after(ts, r.to).await {
            Ok(Some(next)) => {
                if next.0 - ts > GAP_MS {
                    // Skip the gap: show the next recording one nominal frame later.
                    r.anchor = (Instant::now() + Duration::from_millis(100), next.0);
                }
                r.next = Some(next);
            }
            Ok(None) | Err(_) => {
                r.finished = true;
                let reply = ok("Replay finished", json!({"event": "end", "last_frame": iso_ms(ts)}));
                send(socket, reply_message(&reply)).await?;
            }
        }
        Ok(())
    }
}
