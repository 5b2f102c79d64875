//! Per camera: watches the HLS spool FFmpeg writes, decides which segments are kept (active
//! session, pre-event buffer, continuous recording) and hands them to the stores: HLS
//! segments to SQLite or the outbox, MP4 files assembled beside. Runs on its own thread —
//! it is all file and SQLite I/O, one segment every few seconds.
//!
//! Starting or stopping a session changes only what this thread keeps; FFmpeg and the live
//! viewers never notice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::mp4file::{self, Mp4Assembler};
use super::playlist::parse_live;
use super::segment::SpoolSegment;
use crate::config::{Mp4Storage, RecordingConfig};
use crate::store::local::LocalIndex;
use crate::store::outbox::{Kind, NewItem, Outbox};
use crate::store::segment::{HlsMeta, Mp4Meta, sha256_hex};
use crate::util::now_ms;

const POLL: Duration = Duration::from_millis(250);

/// The active recording session, as whoever keeps sessions knows it (the frame store). A
/// trait, so that video recording does not depend on frame storage.
pub trait Sessions: Send + Sync {
    /// The session being recorded now: its id and start time.
    fn active_session(&self) -> Option<ActiveSession>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActiveSession {
    pub id: i64,
    pub start_ms: i64,
}

/// Where kept video goes.
#[derive(Clone)]
pub struct Stores {
    /// `<database_path>/<camera>/segments.db`: local HLS (sqlite) and the MP4 index.
    pub local: Option<Arc<LocalIndex>>,
    /// The store-and-forward outbox to PostgreSQL (database_type "postgresql").
    pub outbox: Option<Arc<Outbox>>,
}

#[derive(Default)]
pub struct VideoStats {
    pub segments_seen: AtomicU64,
    pub segments_kept: AtomicU64,
    /// Bytes of the camera's video kept (each kept segment once, however many stores).
    pub bytes_kept: AtomicU64,
    pub mp4_files: AtomicU64,
    pub last_segment_ms: AtomicI64,
    pub errors: AtomicU64,
    pub keeping: AtomicBool,
}

pub struct Pipeline {
    pub camera: String,
    pub spool: PathBuf,
    pub rec: RecordingConfig,
    pub sessions: Option<Arc<dyn Sessions>>,
    pub stores: Stores,
    pub mp4_dir: PathBuf,
    pub stats: Arc<VideoStats>,
}

struct State {
    seen: HashSet<String>,
    ring: VecDeque<SpoolSegment>,
    kept: HashSet<String>,
    keeping: bool,
    inits: HashMap<PathBuf, String>,
    mp4: Option<Mp4Assembler>,
    playlist_mtime: Option<SystemTime>,
}

impl Pipeline {
    /// Empties the spool (what an earlier process left there is unusable) and creates it.
    pub fn prepare_spool(spool: &Path) -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(spool);
        std::fs::create_dir_all(spool)
    }

    pub fn run(self, stop: Arc<AtomicBool>) {
        let mp4 = (self.rec.mp4_storage_type != Mp4Storage::Disabled)
            .then(|| Mp4Assembler::new(&self.camera, &self.mp4_dir, self.rec.mp4_segment_minutes));
        let mut st = State {
            seen: HashSet::new(),
            ring: VecDeque::new(),
            kept: HashSet::new(),
            keeping: false,
            inits: HashMap::new(),
            mp4,
            playlist_mtime: None,
        };
        while !stop.load(Relaxed) {
            std::thread::park_timeout(POLL);
            self.poll(&mut st);
        }
        // Shutdown (FFmpeg has already stopped): take its last segments, then close the MP4
        // being assembled so it is whole and indexed.
        self.poll(&mut st);
        self.close_mp4(&mut st);
    }

    fn poll(&self, st: &mut State) {
        let playlist = self.spool.join("live.m3u8");
        let mtime = std::fs::metadata(&playlist).and_then(|m| m.modified()).ok();
        if mtime.is_none() || mtime == st.playlist_mtime {
            return self.maybe_stop_keeping(st);
        }
        st.playlist_mtime = mtime;
        let Ok(text) = std::fs::read_to_string(&playlist) else { return };
        let live = parse_live(&text);
        for seg in &live {
            if st.seen.contains(&seg.uri) {
                continue;
            }
            let path = self.spool.join(&seg.uri);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let Some(init) = &seg.init else { continue };
            if size == 0 {
                continue;
            }
            st.seen.insert(seg.uri.clone());
            let spool_seg = SpoolSegment {
                name: seg.uri.clone(),
                path,
                init_path: self.spool.join(init),
                start_ms: seg.start_ms.unwrap_or_else(|| now_ms() - seg.duration_ms),
                duration_ms: seg.duration_ms,
                size,
            };
            self.stats.segments_seen.fetch_add(1, Relaxed);
            self.stats.last_segment_ms.store(spool_seg.start_ms, Relaxed);
            self.on_segment(st, spool_seg);
        }
        self.clean_spool(st, &live.iter().map(|s| s.uri.as_str()).collect());
    }

    /// When a session ends, close the MP4 at once instead of at the next segment.
    fn maybe_stop_keeping(&self, st: &mut State) {
        if st.keeping && !self.wants_keeping().0 {
            st.keeping = false;
            self.stats.keeping.store(false, Relaxed);
            self.close_mp4(st);
        }
    }

    /// (keep?, the session segments belong to)
    fn wants_keeping(&self) -> (bool, Option<ActiveSession>) {
        let active = self.sessions.as_ref().and_then(|s| s.active_session());
        (self.rec.continuous || active.is_some(), active)
    }

    fn on_segment(&self, st: &mut State, seg: SpoolSegment) {
        let pre_event_ms = self.rec.pre_event_seconds as i64 * 1000;
        st.ring.push_back(seg.clone());
        let horizon = seg.end_ms() - pre_event_ms.max(30_000);
        while st.ring.front().is_some_and(|s| s.end_ms() < horizon) {
            if let Some(old) = st.ring.pop_front() {
                st.kept.remove(&old.name);
            }
        }
        let (keep, session) = self.wants_keeping();
        let session_id = session.as_ref().map(|s| s.id);
        if keep {
            if !st.keeping {
                // Just started: the pre-event buffer goes first.
                let since = session.as_ref().map_or(seg.start_ms, |s| s.start_ms) - pre_event_ms;
                let earlier: Vec<SpoolSegment> = st
                    .ring
                    .iter()
                    .filter(|s| s.name != seg.name && s.end_ms() > since && !st.kept.contains(&s.name))
                    .cloned()
                    .collect();
                for s in earlier {
                    self.keep(st, &s, session_id);
                }
            }
            self.keep(st, &seg, session_id);
        } else if st.keeping {
            self.close_mp4(st);
        }
        st.keeping = keep;
        self.stats.keeping.store(keep, Relaxed);
    }

    fn init_sha(&self, st: &mut State, init: &Path) -> Option<String> {
        if let Some(sha) = st.inits.get(init) {
            return Some(sha.clone());
        }
        let data = std::fs::read(init).ok()?;
        let sha = sha256_hex(&data);
        st.inits.insert(init.to_path_buf(), sha.clone());
        Some(sha)
    }

    fn keep(&self, st: &mut State, seg: &SpoolSegment, session_id: Option<i64>) {
        st.kept.insert(seg.name.clone());
        self.stats.segments_kept.fetch_add(1, Relaxed);
        self.stats.bytes_kept.fetch_add(seg.size, Relaxed);
        if self.rec.hls_storage_enabled
            && let Err(e) = self.store_hls(st, seg, session_id)
        {
            self.failed(&format!("cannot store HLS segment {}: {e}", seg.name));
        }
        let added = st.mp4.as_mut().map(|m| m.add(seg, session_id));
        match added {
            Some(Ok(Some(file))) => self.deliver_mp4(file),
            Some(Err(e)) => self.failed(&format!("cannot extend the MP4 file: {e}")),
            _ => {}
        }
    }

    fn store_hls(&self, st: &mut State, seg: &SpoolSegment, session_id: Option<i64>) -> Result<(), String> {
        let sha = self.init_sha(st, &seg.init_path).ok_or("init segment missing")?;
        if let Some(outbox) = &self.stores.outbox {
            if outbox.init_is_new(&self.camera, &sha) {
                let init = NewItem {
                    camera: self.camera.clone(),
                    kind: Kind::Init,
                    start_ms: 0,
                    duration_ms: 0,
                    name: None,
                    init_sha256: None,
                    session_id: None,
                };
                outbox.enqueue(init, &seg.init_path).map_err(|e| e.to_string())?;
            }
            let item = NewItem {
                camera: self.camera.clone(),
                kind: Kind::Hls,
                start_ms: seg.start_ms,
                duration_ms: seg.duration_ms,
                name: None,
                init_sha256: Some(sha),
                session_id,
            };
            outbox.enqueue(item, &seg.path).map_err(|e| e.to_string())?;
        } else if let Some(local) = &self.stores.local {
            let init = std::fs::read(&seg.init_path).map_err(|e| e.to_string())?;
            local.put_init(&sha, &init).map_err(|e| e.to_string())?;
            let meta = HlsMeta {
                start_ms: seg.start_ms,
                duration_ms: seg.duration_ms,
                init_sha256: sha,
                session_id,
                size: 0, // measured as it is stored
            };
            local.put_hls(&meta, &seg.path).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn close_mp4(&self, st: &mut State) {
        match st.mp4.as_mut().map(|m| m.finish()) {
            Some(Ok(Some(file))) => self.deliver_mp4(file),
            Some(Err(e)) => self.failed(&format!("cannot close the MP4 file: {e}")),
            _ => {}
        }
    }

    /// A finished MP4 file goes to its store: indexed where it lies (filesystem), into the
    /// local database, or into the outbox for PostgreSQL.
    pub fn deliver_mp4(&self, file: Mp4Meta) {
        let result = deliver_mp4(&self.camera, &self.rec, &self.stores, file.clone());
        match result {
            Ok(()) => {
                self.stats.mp4_files.fetch_add(1, Relaxed);
                info!(camera = %self.camera, file = %file.name, duration_s = file.duration_ms / 1000, bytes = file.size, "MP4 segment stored");
            }
            Err(e) => self.failed(&format!("cannot store MP4 segment {}: {e}", file.name)),
        }
    }

    fn failed(&self, what: &str) {
        self.stats.errors.fetch_add(1, Relaxed);
        warn!(camera = %self.camera, "{what}");
    }

    /// Deletes spool files nobody needs: not in the live playlist, not in the pre-event
    /// ring, and old enough that FFmpeg is not about to list them.
    fn clean_spool(&self, st: &mut State, listed: &HashSet<&str>) {
        let ring: HashSet<&str> = st.ring.iter().map(|s| s.name.as_str()).collect();
        let grace = Duration::from_secs(self.rec.hls_segment_seconds * 2 + 5);
        let Ok(entries) = std::fs::read_dir(&self.spool) else { return };
        let mut referenced_inits: HashSet<PathBuf> = st.ring.iter().map(|s| s.init_path.clone()).collect();
        if let Ok(text) = std::fs::read_to_string(self.spool.join("live.m3u8")) {
            referenced_inits.extend(parse_live(&text).into_iter().filter_map(|s| s.init).map(|i| self.spool.join(i)));
        }
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > grace);
            let unused = if name.starts_with("seg_") {
                !listed.contains(name.as_str()) && !ring.contains(name.as_str())
            } else if name.starts_with("init_") {
                !referenced_inits.contains(&e.path())
            } else {
                false
            };
            if unused && old {
                let _ = std::fs::remove_file(e.path());
                st.seen.remove(&name);
                st.inits.remove(&e.path());
            }
        }
    }
}

/// Hands a finished MP4 file to its store: indexed where it lies (filesystem), streamed into
/// the local database, or queued for PostgreSQL. Safe to repeat after a crash (a file already
/// indexed or queued is not stored twice); the file's journal goes once the store has it.
pub fn deliver_mp4(camera: &str, rec: &RecordingConfig, stores: &Stores, file: Mp4Meta) -> Result<(), String> {
    let path = file.path.clone().ok_or("MP4 without a file")?;
    let e = |e: crate::store::StoreError| e.to_string();
    match (rec.mp4_storage_type, &stores.outbox, &stores.local) {
        (Mp4Storage::Filesystem, _, Some(local)) => {
            if !local.has_mp4(&file.name).map_err(e)? {
                local.put_mp4(&file, None).map_err(e)?;
            }
        }
        (Mp4Storage::Database, Some(outbox), _) => {
            if outbox.pending_named(camera, &file.name).map_err(e)?.is_none() {
                let item = NewItem {
                    camera: camera.to_string(),
                    kind: Kind::Mp4,
                    start_ms: file.start_ms,
                    duration_ms: file.duration_ms,
                    name: Some(file.name.clone()),
                    init_sha256: None,
                    session_id: file.session_id,
                };
                // `None`: the outbox was full of more important recordings (counted, logged).
                outbox.enqueue(item, &path).map_err(e)?;
            }
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        }
        (Mp4Storage::Database, None, Some(local)) => {
            // Moved into the store; after a crash between the two steps it is moved again.
            if path.exists() {
                local.put_mp4_file(&Mp4Meta { path: None, ..file }, &path).map_err(e)?;
            }
        }
        _ => return Err("no store configured for MP4 segments".into()),
    }
    mp4file::delivered(&path);
    Ok(())
}
