//! MP4 export jobs: the stored segments of a time range joined into one MP4 in the
//! background, by stream copy only. Segments are whole (they start at keyframes), so an
//! export begins at the keyframe at or before `from`.
//!
//! Exports are bounded: at most [`MAX_JOBS`] queued or running, each written to disk one
//! segment at a time (never assembled in RAM), and finished exports are local data the disk
//! guard may delete.
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

use super::fmp4;
use crate::store::StoreError;
use crate::store::segment::HlsMeta;
use crate::store::video::VideoStore;
use crate::util::{iso_ms, now_ms};

/// Longest range one export may cover.
pub const MAX_EXPORT_MS: i64 = 24 * 3_600_000;
/// Export jobs queued or running at once (they run one at a time).
pub const MAX_JOBS: usize = 4;

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

    /// Where finished exports are (a download must resolve inside it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.jobs().get_mut(&id) {
            f(j);
        }
    }

    pub fn get(&self, camera: &str, id: u64) -> Option<Job> {
        self.jobs().get(&id).filter(|j| j.camera == camera).cloned()
    }

    pub fn list(&self, camera: &str) -> Vec<Job> {
        self.jobs().values().filter(|j| j.camera == camera).cloned().collect()
    }

    /// Queues an export of `[from, to]` and returns the job at once.
    pub async fn start(self: &Arc<Self>, video: Arc<VideoStore>, from: i64, to: i64) -> Result<Job, StoreError> {
        let span = to.checked_sub(from).unwrap_or(i64::MAX);
        if span <= 0 {
            return Err(StoreError::Invalid("`to` must be after `from`".into()));
        }
        if span > MAX_EXPORT_MS {
            return Err(StoreError::Invalid(format!(
                "an export covers at most 24 h; asked for {} h",
                span / 3_600_000
            )));
        }
        let active = self.jobs().values().filter(|j| matches!(j.state, JobState::Queued | JobState::Running)).count();
        if active >= MAX_JOBS {
            return Err(StoreError::Busy(format!(
                "{active} exports are queued or running (at most {MAX_JOBS}); try again when one has finished"
            )));
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", self.dir.display())))?;
        let id = self.next.fetch_add(1, Relaxed);
        let name = format!("{}_{}_{}.mp4", video.camera, super::segment::stamp(from), id);
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
        self.jobs().insert(id, job.clone());
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

    async fn run(&self, video: &VideoStore, id: u64, from: i64, to: i64) -> Result<(), String> {
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

    /// One fragmented MP4 per run of segments that share an init segment, each written to
    /// disk one segment at a time.
    async fn parts_from_hls(
        &self,
        video: &VideoStore,
        id: u64,
        segments: &[HlsMeta],
        work: &Path,
    ) -> Result<Vec<PathBuf>, String> {
        use tokio::io::AsyncWriteExt;
        let mut parts: Vec<PathBuf> = Vec::new();
        // The open part: its init segment's hash, its file and the fragments' time base.
        let mut current: Option<(String, tokio::fs::File, Option<u64>)> = None;
        let mut buf = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            if current.as_ref().is_none_or(|(sha, _, _)| *sha != seg.init_sha256) {
                if let Some((_, mut file, _)) = current.take() {
                    file.flush().await.map_err(|e| e.to_string())?;
                }
                let init = video
                    .init_bytes(&seg.init_sha256)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("init segment missing")?;
                let path = work.join(format!("part{}.mp4", parts.len()));
                let mut file = tokio::fs::File::create(&path).await.map_err(|e| e.to_string())?;
                file.write_all(&init).await.map_err(|e| e.to_string())?;
                parts.push(path);
                current = Some((seg.init_sha256.clone(), file, None));
            }
            let data = video
                .hls_bytes(seg.start_ms)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("segment vanished during export")?;
            let Some((_, file, base)) = current.as_mut() else { return Err("no open part".into()) };
            buf.clear();
            fmp4::append_fragments(&data, base, &mut buf).map_err(|e| e.to_string())?;
            file.write_all(&buf).await.map_err(|e| e.to_string())?;
            let progress = 0.8 * (i + 1) as f64 / segments.len() as f64;
            self.update(id, |j| j.progress = progress);
        }
        if let Some((_, mut file, _)) = current {
            file.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(parts)
    }

    /// Without HLS storage: the MP4 segments overlapping the range (local files only).
    async fn parts_from_mp4(&self, video: &VideoStore, from: i64, to: i64) -> Result<Vec<PathBuf>, String> {
        let files = video.list_mp4(from, to).await.map_err(|e| e.to_string())?;
        Ok(files.into_iter().filter_map(|m| m.path).collect())
    }

    /// Deletes finished exports older than the retention.
    pub async fn expire(&self) {
        let cutoff = now_ms() - self.retention.as_millis() as i64;
        let old: Vec<Job> = {
            let mut jobs = self.jobs();
            let ids: Vec<u64> =
                jobs.values().filter(|j| j.finished_ms.is_some_and(|f| f < cutoff)).map(|j| j.id).collect();
            ids.iter().filter_map(|id| jobs.remove(id)).collect()
        };
        for j in old {
            let _ = tokio::fs::remove_file(&j.path).await;
        }
    }

    /// Deletes a finished (or failed) export of a camera.
    pub async fn remove(&self, camera: &str, id: u64) -> Result<(), StoreError> {
        let job = {
            let mut jobs = self.jobs();
            match jobs.get(&id) {
                Some(j) if j.camera == camera && j.finished_ms.is_some() => jobs.remove(&id),
                Some(j) if j.camera == camera => {
                    return Err(StoreError::Conflict(format!("export job {id} is still running"), None));
                }
                _ => None,
            }
        };
        let job = job.ok_or_else(|| StoreError::NotFound(format!("no export job {id}")))?;
        let _ = tokio::fs::remove_file(&job.path).await;
        Ok(())
    }

    /// Deletes the oldest finished export (the disk guard frees these first); returns its size.
    pub async fn evict_oldest(&self) -> Option<u64> {
        let job = {
            let mut jobs = self.jobs();
            let id = jobs.values().filter(|j| j.finished_ms.is_some()).min_by_key(|j| j.finished_ms).map(|j| j.id)?;
            jobs.remove(&id)?
        };
        let _ = tokio::fs::remove_file(&job.path).await;
        warn!(camera = %job.camera, job = job.id, "disk guard: deleted a finished export");
        Some(job.size)
    }
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
    let output = tokio::process::Command::new(crate::config::ffmpeg_program())
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
