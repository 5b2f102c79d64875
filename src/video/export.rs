//! MP4 export jobs: the stored segments of a time range joined into one MP4 in the
//! background, by stream copy only. Segments are whole (they start at keyframes), so an
//! export begins at the keyframe at or before `from`.
//!
//! Each run of consecutive segments sharing an init segment becomes one fragmented MP4 (the
//! init segment and the fragments, see fmp4.rs); FFmpeg then joins those with `-c copy` into
//! a regular MP4 with the index at the front (`+faststart`) that every player opens. Finished exports expire
//! after `export_retention`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::camera::VideoCamera;
use super::fmp4;
use super::segment::HlsMeta;
use crate::record::model::StoreError;
use crate::util::{iso_ms, now_ms};

/// Longest range one export may cover.
pub const MAX_EXPORT_MS: i64 = 24 * 3_600_000;

#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct Job {
    pub id: u64,
    pub camera: String,
    pub from: i64,
    pub to: i64,
    pub state: JobState,
    /// 0.0 to 1.0
    pub progress: f64,
    pub size: u64,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub path: PathBuf,
}

impl Job {
    pub fn file_name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let (state, error) = match &self.state {
            JobState::Queued => ("queued", None),
            JobState::Running => ("running", None),
            JobState::Done => ("done", None),
            JobState::Failed(e) => ("failed", Some(e.clone())),
        };
        json!({
            "job_id": self.id,
            "state": state,
            "progress": (self.progress * 100.0).round(),
            "from": iso_ms(self.from),
            "to": iso_ms(self.to),
            "size": self.size,
            "error": error,
            "created": iso_ms(self.created_ms),
            "finished": self.finished_ms.map(iso_ms),
            "filename": self.file_name(),
            "download_url": (self.state == JobState::Done).then(|| format!("../download/{}", self.id)),
        })
    }
}

pub struct Exports {
    dir: PathBuf,
    jobs: Mutex<BTreeMap<u64, Job>>,
    next: AtomicU64,
    retention: Duration,
    /// One export at a time: joining video is disk-bound and the panel's disk is shared.
    running: Arc<Semaphore>,
}

impl Exports {
    pub fn new(dir: &Path, retention: Duration) -> Arc<Exports> {
        // Exports of an earlier run are gone with its job list.
        let _ = std::fs::remove_dir_all(dir);
        Arc::new(Exports {
            dir: dir.to_path_buf(),
            jobs: Mutex::default(),
            next: AtomicU64::new(1),
            retention,
            running: Arc::new(Semaphore::new(1)),
        })
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&id) {
            f(j);
        }
    }

    pub fn get(&self, camera: &str, id: u64) -> Option<Job> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).get(&id).filter(|j| j.camera == camera).cloned()
    }

    pub fn list(&self, camera: &str) -> Vec<Job> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|j| j.camera == camera).cloned().collect()
    }

    /// Queues an export of `[from, to]` and returns the job at once.
    pub fn start(self: &Arc<Self>, video: Arc<VideoCamera>, from: i64, to: i64) -> Result<Job, StoreError> {
        if to <= from {
            return Err(StoreError::BadRequest("`to` must be after `from`".into()));
        }
        if to - from > MAX_EXPORT_MS {
            return Err(StoreError::BadRequest(format!(
                "an export covers at most 24 h; asked for {} h",
                (to - from) / 3_600_000
            )));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", self.dir.display())))?;
        let id = self.next.fetch_add(1, Relaxed);
        let name = format!("{}_{}_{}.mp4", video.camera, &super::segment::mp4_name("", from)[1..16], id);
        let job = Job {
            id,
            camera: video.camera.clone(),
            from,
            to,
            state: JobState::Queued,
            progress: 0.0,
            size: 0,
            created_ms: now_ms(),
            finished_ms: None,
            path: self.dir.join(name),
        };
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).insert(id, job.clone());
        let me = self.clone();
        let path = job.path.clone();
        tokio::spawn(async move {
            let _permit = me.running.clone().acquire_owned().await;
            me.update(id, |j| j.state = JobState::Running);
            let result = me.run(&video, id, from, to).await;
            let size = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
            match &result {
                Ok(()) => info!(camera = %video.camera, job = id, bytes = size, "export finished"),
                Err(e) => warn!(camera = %video.camera, job = id, "export failed: {e}"),
            }
            me.update(id, |j| {
                j.state = match result {
                    Ok(()) => JobState::Done,
                    Err(e) => JobState::Failed(e),
                };
                j.progress = 1.0;
                j.size = size;
                j.finished_ms = Some(now_ms());
            });
        });
        Ok(job)
    }

    async fn run(&self, video: &VideoCamera, id: u64, from: i64, to: i64) -> Result<(), String> {
        let segments = video.list_hls(from, to).await.map_err(|e| e.to_string())?;
        let out = self.get(&video.camera, id).map(|j| j.path).ok_or("job vanished")?;
        let work = self.dir.join(format!("job-{id}"));
        tokio::fs::create_dir_all(&work).await.map_err(|e| e.to_string())?;
        let result = async {
            let parts = if segments.is_empty() {
                self.parts_from_mp4(video, from, to).await?
            } else {
                self.parts_from_hls(video, id, &segments, &work).await?
            };
            if parts.is_empty() {
                return Err(format!("no recordings between {} and {}", iso_ms(from), iso_ms(to)));
            }
            join(&parts, &work, &out).await
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        result
    }

    /// One fragmented MP4 per run of segments that share an init segment.
    async fn parts_from_hls(
        &self,
        video: &VideoCamera,
        id: u64,
        segments: &[HlsMeta],
        work: &Path,
    ) -> Result<Vec<PathBuf>, String> {
        let mut parts: Vec<PathBuf> = Vec::new();
        let mut current: Option<(String, Vec<u8>, Option<u64>)> = None;
        for (i, seg) in segments.iter().enumerate() {
            if current.as_ref().is_none_or(|(sha, _, _)| *sha != seg.init_sha256) {
                if let Some((_, buf, _)) = current.take() {
                    parts.push(write_part(work, parts.len(), buf).await?);
                }
                let init = video
                    .init_bytes(&seg.init_sha256)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("init segment missing")?;
                current = Some((seg.init_sha256.clone(), init.to_vec(), None));
            }
            let data = video
                .hls_bytes(seg.start_ms)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("segment vanished during export")?;
            let (_, buf, base) = current.as_mut().expect("set above");
            fmp4::append_fragments(&data, base, buf).map_err(|e| e.to_string())?;
            let progress = 0.8 * (i + 1) as f64 / segments.len() as f64;
            self.update(id, |j| j.progress = progress);
        }
        if let Some((_, buf, _)) = current {
            parts.push(write_part(work, parts.len(), buf).await?);
        }
        Ok(parts)
    }

    /// Without HLS storage: the MP4 segments overlapping the range (local files only).
    async fn parts_from_mp4(&self, video: &VideoCamera, from: i64, to: i64) -> Result<Vec<PathBuf>, String> {
        let files = video.list_mp4(from, to).await.map_err(|e| e.to_string())?;
        Ok(files.into_iter().filter_map(|m| m.path).collect())
    }

    /// Deletes finished exports older than the retention.
    pub fn expire(&self) {
        let cutoff = now_ms() - self.retention.as_millis() as i64;
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let old: Vec<u64> = jobs.values().filter(|j| j.finished_ms.is_some_and(|f| f < cutoff)).map(|j| j.id).collect();
        for id in old {
            if let Some(j) = jobs.remove(&id) {
                let _ = std::fs::remove_file(&j.path);
            }
        }
    }
}

async fn write_part(work: &Path, n: usize, data: Vec<u8>) -> Result<PathBuf, String> {
    let p = work.join(format!("part{n}.mp4"));
    tokio::fs::write(&p, data).await.map_err(|e| e.to_string())?;
    Ok(p)
}

/// Joins the parts into `out` by stream copy.
async fn join(parts: &[PathBuf], work: &Path, out: &Path) -> Result<(), String> {
    let list = work.join("parts.txt");
    // The concat demuxer resolves relative names against the list's directory: use absolute ones.
    let text: String = parts
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .map(|p| format!("file '{}'\n", p.display()))
        .collect();
    tokio::fs::write(&list, text).await.map_err(|e| e.to_string())?;
    let tmp = out.with_extension("tmp.mp4");
    let output = tokio::process::Command::new(crate::camera::ffmpeg_program())
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i"])
        .arg(&list)
        .args(["-map", "0", "-c", "copy", "-movflags", "+faststart"])
        .arg(&tmp)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run FFmpeg: {e}"))?;
    if !output.status.success() {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(format!("FFmpeg could not join the segments: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    tokio::fs::rename(&tmp, out).await.map_err(|e| e.to_string())
}
