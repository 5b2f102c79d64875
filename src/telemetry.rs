//! Log output: human-readable lines on stderr; the level comes from `PANELCAM_LOG` (or
//! `RUST_LOG`): error, warn, info, debug or trace. A full env-filter is not worth its ~1 MiB of
//! regex on the panel.
//!
//! Lines are written by one background thread, never by the thread that logs: a write to a
//! file or pipe can block for tens of milliseconds when the disk is busy (the kernel throttles
//! writers of dirty pages; measured with `scripts/bench.sh video status-latency`: the `/api/status`
//! p99 went from 22 ms to 10 ms when the async workers stopped writing log lines themselves).
//! When the thread cannot keep up, lines are dropped and the count is logged, rather than
//! the gateway waiting for its own log.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread.
const QUEUE_LINES: usize = 4096;

pub fn init() {
    let level = std::env::var("PANELCAM_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let level = match level.trim().to_ascii_lowercase().as_str() {
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        "off" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    };
    tracing_subscriber::fmt().with_max_level(level).with_target(false).with_writer(BackgroundStderr::start()).init();
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
