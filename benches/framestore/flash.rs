//! Scenario `flash`: bytes written to storage per byte recorded ("flash endurance"). A panel's
//! flash wears by the bytes written to it, so what matters is how many bytes a recorded byte
//! costs. Each case is a separate run of the real `panelcam` binary with 4 cameras on one RTSP
//! test camera (1280x720 H.264 at 25 fps, with the barcode), and measures over
//! `2 x BENCH_SECONDS` (60 s by default), after a ~3 s warm-up:
//!
//! - `frames-small`: frame storage only (no HLS or MP4 storage, `hls_live: false`, so FFmpeg
//!   writes no segments at all), the camera files (640 px MJPEG at 10 fps), a recording
//!   session on every camera. Recorded bytes = the growth of `frame_bytes_written` in
//!   `/api/status` (JPEG bytes committed, summed over the cameras).
//! - `frames-large`: the same without `scale`: full 1280x720 JPEGs at 10 fps.
//! - `video`, `video-hls`, `video-mp4`: frame storage off, `continuous` video recording with
//!   2 s HLS segments into SQLite (`segments.db`) and 30 s MP4 files, both or one of them. The
//!   spool is on tmpfs (`/dev/shm`, as on the panel), so FFmpeg's segment writes are RAM.
//!   Recorded bytes = the growth of `video.bytes_kept` (each kept segment once).
//!
//! Bytes written = the growth of `write_bytes` in `/proc/<pid>/io` of panelcam, and separately
//! the sum over its FFmpeg children. The kernel charges `write_bytes` to the process that
//! *dirties* a page cache page (when the page turns from clean to dirty), not to whoever writes
//! it back later; a page written again while still dirty is charged once, one written again
//! after an fsync or write-back is charged again. tmpfs pages are never charged. The ext4
//! journal and metadata are not in it either: the growth of the recordings device's "sectors
//! written" (`/proc/diskstats`, the whole machine, so other processes' writes too) is printed
//! beside it. `sync` runs before both readings, as the issue asks (it changes no counter of the
//! process but keeps the device numbers to the window). Also printed: `write_bytes` per panelcam
//! thread (`rec-*` the frame writers' WAL appends, `ckpt-*` the checkpointers copying the WAL
//! into the `.db` files, `vid-*` the video pipelines), `cancelled_write_bytes`, and how the
//! recording files grew in the window.
//!
//! panelcam checkpoints the frame databases once a second, but `segments.db` only when its WAL
//! reaches 1000 pages (64 MB), minutes apart. So the bench checkpoints each `segments.db`
//! itself right before the window (uncounted) and at its end, and reports the second
//! checkpoint's `write_bytes` (this thread's) in an extra row: the copy into the database the
//! window's commits will cost.
//!
//! Recordings go to a fresh directory under `BENCH_DIR` (a real disk; its filesystem type is
//! printed). panelcam logs at `info` (under systemd its log goes to journald, another process;
//! the `log` thread's bytes are shown apart). `BENCH_FLASH_CASES` picks cases
//! (comma-separated; default all five, ~6 min at the default `BENCH_SECONDS`, so the scenario
//! runs only by name). `BENCH_FLASH_CAMERA_ARGS` replaces the test camera's arguments
//! (`--barcode --width 1280 --height 720 --fps 25`): the barcode picture is mostly flat grey,
//! so its JPEGs are small (a few KB even at 1280x720) and its H.264 far below `--bitrate`
//! (~170 kbit/s); without `--barcode` the scrolling test pattern gives bigger frames and
//! segments. Every SQLite commit writes whole pages (the table's last leaf, its root, an index
//! leaf, page 1, the pointer-map page), so small frames and segments cost more per byte.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::support::harness::{Launch, Server, TestCamera, camera_json, eventually, ffmpeg_pids_for};

pub const CAMERAS: usize = 4;
/// Bytes written per JPEG byte recorded, for frame storage.
pub const FRAME_TARGET: f64 = 1.2;
/// Every case, in the order they run.
pub const CASES: &[&str] = &["frames-small", "frames-large", "video", "video-hls", "video-mp4"];

/// One panelcam run.
struct Case {
    name: &'static str,
    /// What is recorded, for the result lines.
    label: &'static str,
    /// Merged into config.json's `recording`.
    recording: Value,
    /// The camera files' `ffmpeg` section (replaces the harness's default).
    ffmpeg: Value,
    /// Frame storage (recorded bytes = JPEG bytes) or video (recorded bytes = video kept).
    frames: bool,
}

fn case(name: &str) -> Case {
    let frames = json!({"hls_storage_enabled": false, "mp4_storage_type": "disabled", "hls_live": false});
    let video = |hls: bool, mp4: &str| {
        json!({"frame_storage_enabled": false, "hls_storage_enabled": hls, "mp4_storage_type": mp4,
               "continuous": true, "hls_segment_seconds": 2, "mp4_segment_minutes": 0.5})
    };
    let small = json!({"scale": "640:-1", "output_framerate": 10});
    match name {
        "frames-small" => Case {
            name: "frames-small",
            label: "frames, 640 px JPEGs at 10 fps",
            recording: frames,
            ffmpeg: small,
            frames: true,
        },
        "frames-large" => Case {
            name: "frames-large",
            label: "frames, 1280x720 JPEGs at 10 fps",
            recording: frames,
            ffmpeg: json!({"output_framerate": 10}),
            frames: true,
        },
        "video" => Case {
            name: "video",
            label: "video, HLS in SQLite + MP4 files",
            recording: video(true, "filesystem"),
            ffmpeg: small,
            frames: false,
        },
        "video-hls" => Case {
            name: "video-hls",
            label: "video, HLS in SQLite only",
            recording: video(true, "disabled"),
            ffmpeg: small,
            frames: false,
        },
        "video-mp4" => Case {
            name: "video-mp4",
            label: "video, MP4 files only",
            recording: video(false, "filesystem"),
            ffmpeg: small,
            frames: false,
        },
        _ => unreachable!("checked against CASES"),
    }
}

/// `BENCH_FLASH_CASES` (comma-separated), default every case.
fn selected_cases() -> Vec<&'static str> {
    let Ok(text) = std::env::var("BENCH_FLASH_CASES") else { return CASES.to_vec() };
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match CASES.iter().find(|c| **c == name) {
            Some(c) => out.push(*c),
            None => println!("BENCH_FLASH_CASES: ignoring {name:?}, not one of {}", CASES.join(", ")),
        }
    }
    out
}

/// The test camera's arguments; `BENCH_FLASH_CAMERA_ARGS` replaces them.
pub const CAMERA_ARGS: &str = "--barcode --width 1280 --height 720 --fps 25";

pub async fn flash() {
    let warmup = Duration::from_secs(3);
    let window = scaled(2.0, 10.0);
    let camera_args =
        std::env::var("BENCH_FLASH_CAMERA_ARGS").ok().filter(|s| !s.trim().is_empty()).unwrap_or(CAMERA_ARGS.into());
    let camera = TestCamera::start(&camera_args.split_whitespace().collect::<Vec<_>>()).await;
    println!(
        "{CAMERAS} cameras on one RTSP test camera (scripts/test-camera.py {camera_args}); per case: a fresh \
         panelcam, {:.0} s warm-up, {:.0} s measured; MB = 10^6 bytes",
        warmup.as_secs_f64(),
        window.as_secs_f64()
    );
    for name in selected_cases() {
        let c = case(name);
        println!("-- {}: {}", c.name, c.label);
        measure(&camera, &c, warmup, window).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Directories.

/// A fresh directory under `base`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(base: &Path, tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = base.join(format!("panelcam-flash-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The filesystem type of `path` as `df` names it (`ext4`, `tmpfs`, ...).
fn fs_type(path: &Path) -> String {
    std::process::Command::new("df")
        .arg("--output=fstype")
        .arg(path)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1).map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------
// Counters.

/// `write_bytes` and `cancelled_write_bytes` of a process or thread (`/proc/.../io`).
#[derive(Clone, Copy, Debug, Default)]
struct Io {
    write: u64,
    cancelled: u64,
}

fn read_io(path: &str) -> Option<Io> {
    let text = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    Some(Io { write: field("write_bytes:"), cancelled: field("cancelled_write_bytes:") })
}

/// (name, io) of each thread of `pid`, by thread id.
fn thread_io(pid: u32) -> HashMap<u32, (String, Io)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().trim().to_string();
        if let Some(io) = read_io(&format!("/proc/{pid}/task/{tid}/io")) {
            out.insert(tid, (name, io));
        }
    }
    out
}

/// What a panelcam thread's writes are, by its name.
fn thread_class(name: &str) -> &'static str {
    if name.starts_with("rec-") {
        "rec-* (frame writers: WAL appends)"
    } else if name.starts_with("ckpt-") {
        "ckpt-* (checkpointers: WAL -> .db)"
    } else if name.starts_with("vid-") {
        "vid-* (video pipelines)"
    } else if name == "log" {
        "log (panelcam.log)"
    } else {
        "other threads"
    }
}

fn parent_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|v| v.trim().parse().ok())
}

/// `/proc/diskstats` "sectors written" (512 bytes) of the block device holding `dev`.
fn device_sectors_written(dev: u64) -> Option<(String, u64)> {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let text = std::fs::read_to_string("/proc/diskstats").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 9 && f[0].parse::<u64>().ok()? == major && f[1].parse::<u64>().ok()? == minor)
            .then(|| Some((f[2].to_string(), f[9].parse().ok()?)))
            .flatten()
    })
}

/// The kind of a recording file, for the growth table.
fn file_kind(name: &str) -> &'static str {
    if name.ends_with(".db") {
        ".db"
    } else if name.ends_with(".db-wal") {
        ".db-wal"
    } else if name.ends_with(".db-shm") {
        ".db-shm"
    } else if name.ends_with(".mp4") || name.ends_with(".mp4.part") {
        ".mp4 (+ .part)"
    } else if name.ends_with(".mp4.log") || name.ends_with(".mp4.part.log") {
        "MP4 journals"
    } else {
        "other"
    }
}

/// Sizes of the files under `dir` by kind.
fn file_sizes(dir: &Path, out: &mut BTreeMap<&'static str, u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            file_sizes(&e.path(), out);
        } else {
            *out.entry(file_kind(&e.file_name().to_string_lossy())).or_default() += meta.len();
        }
    }
}

/// What `/api/status` says was recorded, summed over the cameras.
#[derive(Clone, Copy, Debug, Default)]
struct Recorded {
    frame_bytes: u64,
    frames: u64,
    frames_dropped: u64,
    video_bytes: u64,
    segments: u64,
    mp4_files: u64,
    restarts: u64,
}

async fn recorded(server: &Server) -> Recorded {
    let status = server.status().await;
    let mut r = Recorded::default();
    for cam in status["cameras"].as_array().expect("cameras in /api/status") {
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        r.frame_bytes += n(&cam["recording"]["frame_bytes_written"]);
        r.frames += n(&cam["recording"]["frames_written"]);
        r.frames_dropped += n(&cam["recording"]["frames_dropped"]);
        r.video_bytes += n(&cam["video"]["bytes_kept"]);
        r.segments += n(&cam["video"]["segments_kept"]);
        r.mp4_files += n(&cam["video"]["mp4_files"]);
        r.restarts += n(&cam["restarts"]);
    }
    r
}

/// Every counter at one moment, after a `sync`.
struct Snapshot {
    at: Instant,
    recorded: Recorded,
    panelcam: Io,
    threads: HashMap<u32, (String, Io)>,
    ffmpeg: HashMap<u32, Io>,
    files: BTreeMap<&'static str, u64>,
    device: Option<(String, u64)>,
}

async fn snapshot(server: &Server, camera_port: u16, recordings: &Path, dev: u64) -> Snapshot {
    tokio::task::spawn_blocking(sync_disk).await.expect("sync");
    let pid = server.pid();
    let recorded = recorded(server).await;
    let panelcam = read_io(&format!("/proc/{pid}/io")).expect("read panelcam's /proc/<pid>/io");
    let threads = thread_io(pid);
    let ffmpeg = ffmpeg_pids_for(camera_port)
        .into_iter()
        .filter(|p| parent_pid(*p) == Some(pid))
        .filter_map(|p| read_io(&format!("/proc/{p}/io")).map(|io| (p, io)))
        .collect();
    let mut files = BTreeMap::new();
    file_sizes(recordings, &mut files);
    Snapshot { at: Instant::now(), recorded, panelcam, threads, ffmpeg, files, device: device_sectors_written(dev) }
}

/// `<recordings>/<camera>/segments.db` of every camera that has one.
fn segment_dbs(recordings: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(recordings) else { return Vec::new() };
    let mut out: Vec<PathBuf> =
        entries.flatten().map(|e| e.path().join("segments.db")).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

/// Copies the WAL of each database into the database from this process, as panelcam's next
/// checkpoint would (`wal_checkpoint(PASSIVE)`: never waits for panelcam's writer, retried
/// until every frame is copied). Returns what this thread wrote doing it (its `write_bytes`)
/// and whether every checkpoint completed. panelcam checkpoints segments.db only when its WAL
/// reaches 1000 pages (64 MB at 64 KiB pages), minutes apart: a window of a minute would
/// otherwise leave out the copy into the database.
async fn checkpoint_segment_dbs(recordings: &Path) -> (u64, bool) {
    let dbs = segment_dbs(recordings);
    tokio::task::spawn_blocking(move || {
        let start = read_io("/proc/thread-self/io").unwrap_or_default().write;
        let mut complete = true;
        for db in &dbs {
            let conn = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
            conn.busy_timeout(Duration::from_secs(2)).expect("busy_timeout");
            let mut done = false;
            for _ in 0..20 {
                let (busy, log, copied): (i64, i64, i64) = conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap_or_else(|e| panic!("checkpoint {}: {e}", db.display()));
                if busy == 0 && log == copied {
                    done = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            complete &= done;
        }
        let end = read_io("/proc/thread-self/io").unwrap_or_default().write;
        (end - start, complete)
    })
    .await
    .expect("checkpoint task")
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn signed_mb(bytes: i64) -> String {
    format!("{:+.2}", bytes as f64 / 1e6)
}

// ---------------------------------------------------------------------------------------------
// One case.

async fn measure(camera: &TestCamera, c: &Case, warmup: Duration, window: Duration) {
    let recordings = Scratch::new(&bench_dir(), c.name);
    let spool_base = Path::new("/dev/shm");
    let spool = Scratch::new(if spool_base.is_dir() { spool_base } else { Path::new("/tmp") }, "spool");
    let (rec_fs, spool_fs) = (fs_type(&recordings.0), fs_type(&spool.0));
    let mut recording = json!({"database_path": recordings.0, "spool_path": spool.0});
    crate::support::harness::merge(&mut recording, c.recording.clone());
    let ids: Vec<String> = (1..=CAMERAS).map(|i| format!("cam{i}")).collect();
    let files: Vec<(&str, Value)> = ids
        .iter()
        .map(|id| {
            let mut cam = camera_json(&format!("/{id}"), &camera.url("/cam"), json!({}));
            cam["ffmpeg"] = c.ffmpeg.clone();
            (id.as_str(), cam)
        })
        .collect();
    let launch = Launch { env: vec![("PANELCAM_LOG".into(), "info".into())], ..Launch::default() };
    let mut server = Server::start_with(json!({ "recording": recording }), &files, launch).await;
    for id in &ids {
        server.wait_streaming(id, Duration::from_secs(40)).await;
    }
    if c.frames {
        for id in &ids {
            server.start_recording(id, "flash").await;
        }
    } else {
        let kept = eventually(Duration::from_secs(30), async || {
            let status = server.status().await;
            status["cameras"].as_array().is_some_and(|cams| {
                cams.len() == CAMERAS && cams.iter().all(|c| c["video"]["segments_kept"].as_u64().unwrap_or(0) > 0)
            })
        })
        .await;
        assert!(kept, "not every camera kept a video segment within 30 s: {}", server.status().await);
    }
    tokio::time::sleep(warmup).await;

    let dev = std::fs::metadata(&recordings.0).expect("recordings directory").dev();
    // segments.db's WAL from before the window goes into the database now, uncounted; the
    // window's own is copied (and counted) at its end.
    checkpoint_segment_dbs(&recordings.0).await;
    let before = snapshot(&server, camera.port, &recordings.0, dev).await;
    tokio::time::sleep(window).await;
    let (deferred, deferred_complete) = checkpoint_segment_dbs(&recordings.0).await;
    let after = snapshot(&server, camera.port, &recordings.0, dev).await;
    let secs = (after.at - before.at).as_secs_f64();
    server.stop().await;

    // What was recorded.
    let rec = |f: fn(&Recorded) -> u64| f(&after.recorded) - f(&before.recorded);
    let (recorded_bytes, what_recorded) =
        if c.frames { (rec(|r| r.frame_bytes), "JPEG byte") } else { (rec(|r| r.video_bytes), "video byte kept") };
    assert!(recorded_bytes > 0, "{}: nothing was recorded in the window", c.name);
    let written = after.panelcam.write - before.panelcam.write;
    let cancelled = after.panelcam.cancelled - before.panelcam.cancelled;
    let ff_before: u64 = after.ffmpeg.keys().filter_map(|p| before.ffmpeg.get(p)).map(|io| io.write).sum();
    let ff_written: u64 = after.ffmpeg.values().map(|io| io.write).sum::<u64>() - ff_before;
    let ff_gone = before.ffmpeg.keys().filter(|p| !after.ffmpeg.contains_key(p)).count();
    let ratio = written as f64 / recorded_bytes as f64;
    let ff_ratio = ff_written as f64 / recorded_bytes as f64;

    let recorded_text = if c.frames {
        let frames = rec(|r| r.frames);
        format!(
            "{frames} frames of {:.1} KB on average, {} dropped",
            recorded_bytes as f64 / frames.max(1) as f64 / 1e3,
            rec(|r| r.frames_dropped)
        )
    } else {
        format!(
            "{} segments, {} MP4 files finished, {:.0} kbit/s of video per camera",
            rec(|r| r.segments),
            rec(|r| r.mp4_files),
            recorded_bytes as f64 * 8.0 / secs / CAMERAS as f64 / 1e3
        )
    };
    println!(
        "recordings in {} ({rec_fs}), spool in {} ({spool_fs}); {secs:.1} s measured: {recorded_text}",
        recordings.0.display(),
        spool.0.display()
    );
    let mut by_class: BTreeMap<&str, u64> = BTreeMap::new();
    for (tid, (name, io)) in &after.threads {
        let start = before.threads.get(tid).map_or(0, |(_, b)| b.write);
        *by_class.entry(thread_class(name)).or_default() += io.write - start;
    }
    let attributed: u64 = by_class.values().sum();
    let mut parts: Vec<String> = by_class
        .iter()
        .filter(|(_, b)| **b > 0)
        .map(|(k, b)| format!("{k} {:.2} MB ({:.2}/B)", mb(*b), *b as f64 / recorded_bytes as f64))
        .collect();
    if written > attributed {
        parts.push(format!("threads that ended {:.2} MB", mb(written - attributed)));
    }
    println!("  panelcam write_bytes by thread: {}", if parts.is_empty() { "none".into() } else { parts.join(", ") });
    println!(
        "  panelcam cancelled_write_bytes {:.2} MB; FFmpeg children: {} running{}",
        mb(cancelled),
        after.ffmpeg.len(),
        if ff_gone > 0 { format!(", {ff_gone} ended in the window (their writes are not counted)") } else { "".into() }
    );
    let kinds: std::collections::BTreeSet<&str> = before.files.keys().chain(after.files.keys()).copied().collect();
    let growth: Vec<String> = kinds
        .iter()
        .map(|k| {
            let (b, a) = (before.files.get(k).copied().unwrap_or(0), after.files.get(k).copied().unwrap_or(0));
            format!("{k} {} MB (now {:.2} MB)", signed_mb(a as i64 - b as i64), mb(a))
        })
        .collect();
    println!("  file growth in the window: {}", growth.join(", "));
    if let (Some((name, b)), Some((_, a))) = (&before.device, &after.device) {
        let dev_bytes = (a - b) * 512;
        println!(
            "  device {name} (whole machine: ext4 journal and metadata, and any other process): {:.2} MB written, {:.2} per {what_recorded}",
            mb(dev_bytes),
            dev_bytes as f64 / recorded_bytes as f64
        );
    }
    if !c.frames {
        println!(
            "  segments.db checkpoint panelcam defers (its WAL reaches 64 MB minutes later), run by the bench at the \
             window's end: {:.2} MB{}",
            mb(deferred),
            if deferred_complete { "" } else { " (INCOMPLETE: panelcam's writer kept it busy)" }
        );
    }
    if after.recorded.restarts > 0 {
        println!("  FFMPEG RESTARTED {}x during the run", after.recorded.restarts);
    }

    let amounts = format!(
        "({:.1} MB written / {:.1} MB recorded, {secs:.0} s, {})",
        mb(written),
        mb(recorded_bytes),
        if c.frames { format!("{} frames", rec(|r| r.frames)) } else { format!("{} segments", rec(|r| r.segments)) }
    );
    let what = format!("flash, {} ({CAMERAS} cameras)", c.label);
    if c.frames {
        result(
            &format!("{what}: panelcam bytes written per {what_recorded}"),
            format!("{ratio:.2}  {amounts}"),
            &format!("<= {FRAME_TARGET}"),
            Some(ratio <= FRAME_TARGET),
            "",
        );
    } else {
        result(
            &format!("{what}: panelcam bytes written per {what_recorded}"),
            format!("{ratio:.2}  {amounts}"),
            "",
            None,
            "",
        );
        let with_ckpt = (written + deferred) as f64 / recorded_bytes as f64;
        result(
            &format!("{what}: the same with segments.db's deferred checkpoint"),
            format!("{with_ckpt:.2}  ({:.1} MB + {:.1} MB checkpoint)", mb(written), mb(deferred)),
            "",
            None,
            "",
        );
    }
    result(
        &format!("{what}: FFmpeg children bytes written per {what_recorded}"),
        format!("{ff_ratio:.3}  ({:.2} MB)", mb(ff_written)),
        "",
        None,
        "",
    );
}
