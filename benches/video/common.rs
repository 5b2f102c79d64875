//! Shared pieces of the video benchmarks that the live and framestore benches' helpers do
//! not have: scratch directories on disk, the 1080p camera, and process lookups.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::framestore_common::bench_dir;
use crate::support::harness::{TestCamera, ffmpeg_pids_for};

/// A fresh directory under `BENCH_DIR` (a real disk, like the panel's flash), removed on drop.
pub struct DiskDir(pub PathBuf);

impl DiskDir {
    pub fn new(tag: &str) -> DiskDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = bench_dir().join(format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DiskDir(dir)
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for DiskDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The camera: 1920x1080 H.264 at 25 fps with a keyframe every second, at 4 Mbit/s
/// (what a 1080p IP camera typically sends; the test camera's default of 2 Mbit/s would make
/// copying look cheaper), plus `BENCH_CAMERA_ARGS`.
pub async fn camera_1080p() -> TestCamera {
    let mut args = vec!["--width", "1920", "--height", "1080", "--fps", "25", "--bitrate", "4000"];
    let env = std::env::var("BENCH_CAMERA_ARGS").unwrap_or_default();
    args.extend(env.split_whitespace());
    TestCamera::start(&args).await
}

pub fn camera_note() -> String {
    let extra = std::env::var("BENCH_CAMERA_ARGS").unwrap_or_default();
    let extra = if extra.trim().is_empty() { String::new() } else { format!(" + {extra}") };
    format!("camera 1920x1080 25 fps H.264 4 Mbit/s, GOP 1 s{extra}")
}

// ---------------------------------------------------------------------------------------------
// Processes.

fn parent_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|v| v.trim().parse().ok())
}

/// The FFmpeg that the panelcam `parent` runs for the camera on `camera_port`. Several
/// panelcams read the same camera here, so the camera port alone is ambiguous.
pub fn ffmpeg_child(parent: u32, camera_port: u16) -> u32 {
    let pids: Vec<u32> = ffmpeg_pids_for(camera_port).into_iter().filter(|p| parent_pid(*p) == Some(parent)).collect();
    assert_eq!(pids.len(), 1, "expected one FFmpeg of panelcam {parent} on camera port {camera_port}, found {pids:?}");
    pids[0]
}

/// A process's arguments (without the program), read from `/proc`: what really runs.
pub fn process_args(pid: u32) -> Vec<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("read a cmdline");
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    cmdline.split(|b| *b == 0).skip(1).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// Megabytes (10^6 bytes), as network and disk throughput is usually quoted.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
