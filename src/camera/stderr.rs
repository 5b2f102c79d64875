//! FFmpeg's stderr: redacted, then to a size-capped per-camera file and/or the console as
//! `log_stderr` asks; the last lines are always kept for `last_error` in `/api/status`.
//!
//! FFmpeg's output is outside input: lines are cut at [`MAX_LINE`] bytes (a binary blob on
//! stderr cannot grow memory), and file writes happen on one background thread for all
//! cameras, never on the async workers.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStderr;

use crate::config::LogStderr;
use crate::redact::Redactor;

/// How many recent stderr lines are kept in memory for error reports.
const TAIL_LINES: usize = 8;
/// Longer lines are cut (and marked with `…`).
pub const MAX_LINE: usize = 2048;
/// Lines waiting for the log-file thread; beyond this they are dropped, not queued.
const FILE_QUEUE: usize = 1024;

#[derive(Clone)]
pub struct StderrLog {
    pub camera: String,
    pub mode: LogStderr,
    pub file: PathBuf,
    pub max_bytes: u64,
    pub redactor: Redactor,
}

/// Recent (already redacted) stderr lines.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == TAIL_LINES {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// The most telling recent line: the last one mentioning an error, else the last one.
    pub fn best_error(&self) -> Option<String> {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let is_error = |l: &&String| {
            let l = l.to_ascii_lowercase();
            ["error", "failed", "refused", "invalid", "not found", "unauthorized", "timed out", "denied"]
                .iter()
                .any(|w| l.contains(w))
        };
        q.iter().rev().find(is_error).or(q.back()).cloned()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes; the rest of a longer line is skipped.
/// `Ok(false)` at the end of the stream.
async fn read_line_capped<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, out: &mut Vec<u8>) -> std::io::Result<bool> {
    out.clear();
    let mut cut = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(!out.is_empty() || cut);
        }
        let (chunk, found) = match memchr::memchr(b'\n', buf) {
            Some(i) => (buf.get(..i).unwrap_or_default(), true),
            None => (buf, false),
        };
        let room = MAX_LINE.saturating_sub(out.len());
        if chunk.len() > room {
            cut = true;
        }
        out.extend_from_slice(chunk.get(..chunk.len().min(room)).unwrap_or_default());
        let used = if found { chunk.len() + 1 } else { chunk.len() };
        r.consume(used);
        if found {
            if cut {
                out.extend_from_slice("…".as_bytes());
            }
            return Ok(true);
        }
    }
}

/// One line for a log file, written by the log-file thread.
struct FileLine {
    path: PathBuf,
    max_bytes: u64,
    line: String,
}

/// The queue to the one thread that writes every camera's FFmpeg log file.
fn file_writer() -> Option<&'static SyncSender<FileLine>> {
    static WRITER: OnceLock<Option<SyncSender<FileLine>>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<FileLine>(FILE_QUEUE);
            let spawned = std::thread::Builder::new().name("ffmpeg-logs".into()).spawn(move || {
                let mut files: HashMap<PathBuf, Option<CappedFile>> = HashMap::new();
                while let Ok(l) = rx.recv() {
                    let file = files.entry(l.path.clone()).or_insert_with(|| CappedFile::open(l.path, l.max_bytes));
                    if let Some(f) = file.as_mut() {
                        f.write_line(&l.line);
                    }
                }
            });
            spawned.ok().map(|_| tx)
        })
        .as_ref()
}

/// Reads stderr until FFmpeg closes it.
pub async fn pump(stderr: ChildStderr, log: StderrLog, tail: StderrTail) {
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::with_capacity(256);
    let writer = log.mode.to_file().then(file_writer).flatten();
    let mut dropped = 0u64;
    while let Ok(true) = read_line_capped(&mut reader, &mut raw).await {
        let text = String::from_utf8_lossy(&raw);
        let line = log.redactor.apply(text.trim_end());
        if line.is_empty() {
            continue;
        }
        if log.mode.to_console() {
            tracing::warn!(camera = %log.camera, "ffmpeg: {line}");
        }
        if let Some(w) = writer {
            let entry = FileLine { path: log.file.clone(), max_bytes: log.max_bytes, line: line.clone() };
            if let Err(TrySendError::Full(_)) = w.try_send(entry) {
                dropped += 1;
                if dropped == 1 || dropped.is_multiple_of(1000) {
                    tracing::warn!(camera = %log.camera, dropped, "FFmpeg log file cannot keep up; lines dropped");
                }
            }
        }
        tail.push(line);
    }
}

/// An append-only log file that rotates to `<name>.1` when it passes its cap, so a camera
/// that fails every few seconds for months cannot fill the panel's flash.
struct CappedFile {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    size: u64,
}

impl CappedFile {
    fn open(path: PathBuf, max_bytes: u64) -> Option<CappedFile> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new().create(true).append(true).open(&path);
        match file {
            Ok(file) => {
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                Some(CappedFile { path, max_bytes, file, size })
            }
            Err(e) => {
                tracing::warn!("cannot open FFmpeg log {}: {e}; logging to file disabled", path.display());
                None
            }
        }
    }

    fn write_line(&mut self, line: &str) {
        if self.size + line.len() as u64 + 32 > self.max_bytes {
            let rotated = self.path.with_extension("log.1");
            let _ = std::fs::rename(&self.path, rotated);
            match OpenOptions::new().create(true).write(true).truncate(true).open(&self.path) {
                Ok(f) => {
                    self.file = f;
                    self.size = 0;
                }
                Err(_) => return,
            }
        }
        let stamped = format!("{} {line}\n", crate::util::iso_ms(crate::util::now_ms()));
        if self.file.write_all(stamped.as_bytes()).is_ok() {
            self.size += stamped.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_file_rotates_and_stays_bounded() {
        let dir = std::env::temp_dir().join(format!("panelcam-stderr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("cam1.ffmpeg.log");
        let mut f = CappedFile::open(path.clone(), 4096).unwrap();
        for i in 0..500 {
            f.write_line(&format!("line {i} with some padding to fill the file quickly"));
        }
        let size = std::fs::metadata(&path).unwrap().len();
        let rotated = std::fs::metadata(path.with_extension("log.1")).unwrap().len();
        assert!(size <= 4096 && rotated <= 4096, "{size} {rotated}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("line 499"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_next_line_survives() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nnext\nlast without newline");
        let mut r = BufReader::with_capacity(512, &input[..]);
        let mut line = Vec::new();
        assert!(read_line_capped(&mut r, &mut line).await.unwrap());
        assert_eq!(line.len(), MAX_LINE + "…".len());
        assert!(read_line_capped(&mut r, &mut line).await.unwrap());
        assert_eq!(line, b"next");
        assert!(read_line_capped(&mut r, &mut line).await.unwrap());
        assert_eq!(line, b"last without newline");
        assert!(!read_line_capped(&mut r, &mut line).await.unwrap());
    }

    #[test]
    fn best_error_prefers_error_lines() {
        let tail = StderrTail::default();
        tail.push("rtsp://admin:***@h/s: Connection refused".into());
        tail.push("Exiting normally".into());
        assert_eq!(tail.best_error().unwrap(), "rtsp://admin:***@h/s: Connection refused");
    }
}
