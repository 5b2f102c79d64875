//! FFmpeg's stderr: redacted, then to a size-capped per-camera file and/or the console as
//! `log_stderr` asks; the last lines are always kept for `last_error` in `/api/status`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStderr;

use crate::config::LogStderr;
use crate::redact::Redactor;

/// How many recent stderr lines are kept in memory for error reports.
const TAIL_LINES: usize = 8;

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

/// Reads stderr until FFmpeg closes it.
pub async fn pump(stderr: ChildStderr, log: StderrLog, tail: StderrTail) {
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::with_capacity(256);
    let mut file = log.mode.to_file().then(|| CappedFile::open(log.file.clone(), log.max_bytes)).flatten();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&raw);
        let line = log.redactor.apply(text.trim_end());
        if line.is_empty() {
            continue;
        }
        if log.mode.to_console() {
            tracing::warn!(camera = %log.camera, "ffmpeg: {line}");
        }
        if let Some(f) = file.as_mut() {
            f.write_line(&line);
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

    #[test]
    fn best_error_prefers_error_lines() {
        let tail = StderrTail::default();
        tail.push("rtsp://admin:***@h/s: Connection refused".into());
        tail.push("Exiting normally".into());
        assert_eq!(tail.best_error().unwrap(), "rtsp://admin:***@h/s: Connection refused");
    }
}
