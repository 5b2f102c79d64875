//! Log output. Under systemd (`$JOURNAL_STREAM` set) events go to journald with structured
//! fields: `CAMERA` (every camera line), `SESSION` (recording sessions), `COMPONENT` (camera,
//! record, video, shipper, http, housekeeping, registry), `PRIORITY` from the level; so
//! `journalctl -u panelcam CAMERA=cam1` shows one camera. Otherwise human-readable lines go to
//! stderr.
//!
//! Filters are `RUST_LOG`-style in both cases: `PANELCAM_LOG` (or `RUST_LOG`) is a level
//! (`debug`) or a list of `target=level` (`info,panelcam::http=debug`). A full env-filter is
//! not worth its ~1 MiB of regex on the panel: `Targets` parses these without one.
//!
//! Lines on stderr are written by one background thread, never by the thread that logs: a
//! write to a file or pipe can block for tens of milliseconds when the disk is busy (the kernel
//! throttles writers of dirty pages; measured with `scripts/bench.sh video status-latency`:
//! the `/api/status` p99 went from 22 ms to 10 ms when the async workers stopped writing log
//! lines themselves). When the thread cannot keep up, lines are dropped and the count is
//! logged, rather than the gateway waiting for its own log.

use std::io::Write;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Lines waiting for the writer thread.
const QUEUE_LINES: usize = 4096;

/// True once events go to journald.
static JOURNALD: AtomicBool = AtomicBool::new(false);

/// The filter from `PANELCAM_LOG` / `RUST_LOG`; `info` when unset or unreadable.
pub fn filter_from(text: &str) -> Targets {
    let text = text.trim();
    if text.is_empty() {
        return Targets::new().with_default(LevelFilter::INFO);
    }
    let text = if text.eq_ignore_ascii_case("warning") { "warn" } else { text };
    Targets::from_str(text).unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO))
}

pub fn init() {
    let spec = std::env::var("PANELCAM_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let filter = filter_from(&spec);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => {
                let journald = journald.with_field_prefix(None).with_syslog_identifier("panelcam".into());
                tracing_subscriber::registry().with(journald).with(filter).init();
                JOURNALD.store(true, Relaxed);
                return;
            }
            Err(e) => eprintln!("panelcam: journald is not reachable ({e}); logging to stderr"),
        }
    }
    let stderr = tracing_subscriber::fmt::layer().with_target(false).with_writer(BackgroundStderr::start());
    tracing_subscriber::registry().with(stderr).with(filter).init();
}

/// A span naming the part of panelcam that logs inside it (journald's `COMPONENT`). Only
/// under journald: on stderr the component is clear from the message and would only make
/// every line longer.
///
/// A root span (`parent: None`): tracing-journald writes the fields of every span in scope, so a
/// camera's span created inside the registry's (a camera added at start or by a rescan) would
/// give its lines two COMPONENT values, `registry` and `camera`.
pub fn component(name: &'static str) -> tracing::Span {
    if JOURNALD.load(Relaxed) {
        tracing::info_span!(parent: None, "component", component = name)
    } else {
        tracing::Span::none()
    }
}

/// Hands each formatted line to the writer thread.
#[derive(Clone)]
struct BackgroundStderr {
    queue: SyncSender<Vec<u8>>,
}

static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines handed to the thread and not written yet (for [`flush`]).
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Waits (up to a second) until every line logged so far is written: call before exiting.
pub fn flush() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while PENDING.load(Relaxed) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl BackgroundStderr {
    fn start() -> BackgroundStderr {
        static QUEUE: OnceLock<SyncSender<Vec<u8>>> = OnceLock::new();
        let queue = QUEUE
            .get_or_init(|| {
                let (tx, rx) = sync_channel(QUEUE_LINES);
                let spawned = std::thread::Builder::new().name("log".into()).spawn(move || write_lines(rx));
                if spawned.is_err() {
                    // No thread: lines are dropped (counted) rather than written by the caller.
                    eprintln!("panelcam: cannot start the log thread; logging is off");
                }
                tx
            })
            .clone();
        BackgroundStderr { queue }
    }
}

fn write_lines(rx: Receiver<Vec<u8>>) {
    let mut reported = 0;
    while let Ok(line) = rx.recv() {
        // Locked per line, never held while waiting: `eprintln!` elsewhere must not block.
        let mut err = std::io::stderr().lock();
        let dropped = DROPPED.load(Relaxed);
        if dropped > reported {
            let _ = writeln!(err, "(panelcam: {} log lines dropped: the log could not keep up)", dropped - reported);
            reported = dropped;
        }
        let _ = err.write_all(&line);
        drop(err);
        PENDING.fetch_sub(1, Relaxed);
    }
}

/// One event's text, sent when the formatter is done with it.
struct Line {
    buf: Vec<u8>,
    queue: SyncSender<Vec<u8>>,
}

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        PENDING.fetch_add(1, Relaxed);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(std::mem::take(&mut self.buf))
        {
            PENDING.fetch_sub(1, Relaxed);
            DROPPED.fetch_add(1, Relaxed);
        }
    }
}

impl<'a> MakeWriter<'a> for BackgroundStderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { buf: Vec::with_capacity(256), queue: self.queue.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn filters_read_like_rust_log() {
        let f = filter_from("");
        assert!(f.would_enable("panelcam::http", &Level::INFO) && !f.would_enable("panelcam::http", &Level::DEBUG));
        let f = filter_from("warning");
        assert!(!f.would_enable("panelcam::camera", &Level::INFO) && f.would_enable("x", &Level::WARN));
        let f = filter_from("info,panelcam::http=debug");
        assert!(f.would_enable("panelcam::http::handler", &Level::DEBUG));
        assert!(!f.would_enable("panelcam::camera", &Level::DEBUG));
        let f = filter_from("this is not a filter ===");
        assert!(f.would_enable("panelcam", &Level::INFO), "nonsense falls back to info");
    }
}
