//! Watches the camera directory with inotify and applies what changed, through the same
//! [`Registry::rescan`] as `SIGHUP`: creating, editing, renaming into place and deleting a
//! camera file adds, updates or removes that camera without a restart.
//!
//! - Bursts are merged: after a relevant event the watcher waits until the directory has been
//!   quiet for [`QUIET`] (at most [`MAX_DELAY`]), so an editor's temp-file-and-rename save or a
//!   script copying ten files is one rescan, and a half-written file is not read mid-write.
//! - Only `*.json` names that are not hidden are relevant (editor swap and backup files are
//!   not cameras); a queue overflow means events were lost, so it rescans too (a rescan always
//!   reads the whole directory).
//! - A directory that is removed or renamed away, or a watch the kernel drops, is reported in
//!   `/api/status` and the log; the cameras keep running as they were (an empty or missing
//!   directory is far more often a mistake than a wish to stop every camera), and the watcher
//!   looks for the directory again every [`RETRY`], rescanning once it is back.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::{info, warn};

use super::Registry;

/// How long the directory must be quiet before a change is applied.
const QUIET: Duration = Duration::from_millis(200);
/// A steady stream of changes is still applied this often.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// How often a missing directory (or a watch that cannot be set) is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// What one batch of events asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// A camera file may have changed, or events were lost: rescan.
    pub rescan: bool,
    /// The watch is gone (directory removed or moved, or the kernel dropped it).
    pub lost: bool,
}

/// Classifies inotify events (pure, for tests).
pub fn classify<'a>(events: impl IntoIterator<Item = (AddWatchFlags, Option<&'a OsStr>)>) -> Verdict {
    let mut v = Verdict::default();
    for (mask, name) in events {
        if mask.intersects(AddWatchFlags::IN_Q_OVERFLOW) {
            v.rescan = true;
        }
        if mask.intersects(AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) {
            v.lost = true;
        }
        if name.is_some_and(is_camera_name) {
            v.rescan = true;
        }
    }
    v
}

/// `cam1.json`, not `.cam1.json.swp`, `cam1.json~` or `4913`.
fn is_camera_name(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    !name.starts_with('.') && name.ends_with(".json")
}

const EVENTS: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// tokio polls raw descriptors; nix's `Inotify` offers only `AsFd`.
struct Watch(Inotify);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn watch_dir(dir: &Path) -> Result<AsyncFd<Watch>, String> {
    watch_with(dir, EVENTS)
}

fn watch_with(dir: &Path, events: AddWatchFlags) -> Result<AsyncFd<Watch>, String> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| format!("cannot start inotify ({e})"))?;
    inotify.add_watch(dir, events).map_err(|e| format!("cannot watch {} ({e})", dir.display()))?;
    // SAFETY: `Watch` owns the inotify descriptor, so it stays open for as long as the
    // `AsyncFd` that holds it, which is what registering requires.
    let registered = unsafe { AsyncFd::register_with_interest(Watch(inotify), Interest::READABLE) };
    registered.map_err(|e| format!("cannot poll inotify ({})", e.into_parts().1))
}

/// The next batch of events (waits for at least one).
async fn next_events(fd: &AsyncFd<Watch>) -> Result<Vec<InotifyEvent>, String> {
    loop {
        let mut ready = fd.readable().await.map_err(|e| format!("inotify failed ({e})"))?;
        match ready.get_inner().0.read_events() {
            Ok(events) => return Ok(events),
            Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
            Err(e) => return Err(format!("reading inotify events failed ({e})")),
        }
    }
}

fn verdict_of(events: &[InotifyEvent]) -> Verdict {
    classify(events.iter().map(|e| (e.mask, e.name.as_deref())))
}

/// Watches until `shutdown` turns true.
pub async fn run(registry: Arc<Registry>, mut shutdown: watch::Receiver<bool>) {
    tokio::select! {
        _ = watch_forever(&registry) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

async fn watch_forever(registry: &Registry) {
    let dir = registry.camera_dir.clone();
    let mut lost_before = false;
    loop {
        let fd = match watch_dir(&dir) {
            Ok(fd) => fd,
            Err(problem) => {
                let problem = if dir.is_dir() {
                    problem
                } else {
                    format!("camera directory {} is missing; cameras keep running as they were", dir.display())
                };
                if registry.status.set_camera_dir_problem(Some(problem.clone())) {
                    warn!("{problem}; trying again every {} s", RETRY.as_secs());
                }
                lost_before = true;
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if registry.status.set_camera_dir_problem(None) || lost_before {
            info!("watching the camera directory {} again", dir.display());
            // Whatever changed while it was not watched.
            registry.rescan().await;
        }
        lost_before = false;
        loop {
            let events = match next_events(&fd).await {
                Ok(events) => events,
                Err(problem) => {
                    registry.status.set_camera_dir_problem(Some(problem.clone()));
                    warn!("{problem}; watching again");
                    break;
                }
            };
            let mut verdict = verdict_of(&events);
            if verdict.rescan && !verdict.lost {
                // Merge the burst: until quiet for QUIET, at most MAX_DELAY.
                let deadline = tokio::time::Instant::now() + MAX_DELAY;
                loop {
                    let wait = QUIET.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    match tokio::time::timeout(wait, next_events(&fd)).await {
                        Ok(Ok(more)) => {
                            let v = verdict_of(&more);
                            verdict.lost |= v.lost;
                            if v.lost || tokio::time::Instant::now() >= deadline {
                                break;
                            }
                        }
                        Ok(Err(_)) | Err(_) => break,
                    }
                }
            }
            if verdict.lost {
                let problem = format!("the watch on {} was lost (directory removed or moved)", dir.display());
                registry.status.set_camera_dir_problem(Some(problem.clone()));
                warn!("{problem}; cameras keep running as they were");
                lost_before = true;
                break;
            }
            if verdict.rescan {
                registry.rescan().await;
            }
        }
    }
}

/// Watches `config.json` (its directory, for saves by rename) until `shutdown`. Nothing in it
/// applies while running yet, so a change is reported, never half-applied: `/api/status`
/// (`config_file`) and the log name the sections that differ from the running configuration
/// and say a restart applies them; a broken file is reported with its problems.
pub async fn run_config(registry: Arc<Registry>, mut shutdown: watch::Receiver<bool>) {
    let Some(path) = registry.config_path.clone() else { return };
    let running = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let running = running.unwrap_or_else(|| serde_json::json!({}));
    tokio::select! {
        _ = watch_config(&registry, &path, &running) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

async fn watch_config(registry: &Registry, path: &Path, running: &serde_json::Value) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let Some(name) = path.file_name().map(|n| n.to_os_string()) else { return };
    let events = AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR;
    loop {
        let fd = match watch_with(&dir, events) {
            Ok(fd) => fd,
            Err(problem) => {
                warn!("{problem}; changes to {} are not noticed", path.display());
                tokio::time::sleep(RETRY * 15).await;
                continue;
            }
        };
        while let Ok(batch) = next_events(&fd).await {
            if !batch.iter().any(|e| e.name.as_deref() == Some(name.as_os_str())) {
                continue;
            }
            // Merge the burst of one save.
            while let Ok(Ok(_)) = tokio::time::timeout(QUIET, next_events(&fd)).await {}
            let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
            let report = config_change(path, &text, running);
            match &report["problem"] {
                serde_json::Value::String(p) => warn!("{} changed but is not valid: {p}", path.display()),
                _ if report["restart_required"].as_array().is_some_and(|a| !a.is_empty()) => warn!(
                    "{} changed (sections {}); restart panelcam to apply it",
                    path.display(),
                    report["restart_required"]
                ),
                _ => info!("{} is back to the running configuration", path.display()),
            }
            registry.status.set_config_file(Some(report));
        }
    }
}

/// What a changed `config.json` means for the running gateway (pure, for tests).
pub fn config_change(path: &Path, text: &str, running: &serde_json::Value) -> serde_json::Value {
    if let Err(problems) = crate::config::parse_config(path, text) {
        let errors: Vec<String> =
            problems.iter().filter(|p| p.severity == crate::config::Severity::Error).map(|p| p.to_string()).collect();
        return serde_json::json!({"problem": errors.join("; "), "restart_required": []});
    }
    let new: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let keys = |v: &serde_json::Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let mut sections = keys(running);
    sections.extend(keys(&new));
    sections.sort();
    sections.dedup();
    let changed: Vec<String> = sections.into_iter().filter(|k| running.get(k) != new.get(k)).collect();
    serde_json::json!({"problem": null, "restart_required": changed})
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(mask: AddWatchFlags, name: &str) -> (AddWatchFlags, Option<&OsStr>) {
        (mask, Some(OsStr::new(name)))
    }

    #[test]
    fn camera_files_count_and_editor_files_do_not() {
        assert!(classify([ev(AddWatchFlags::IN_CLOSE_WRITE, "cam1.json")]).rescan);
        assert!(classify([ev(AddWatchFlags::IN_MOVED_TO, "cam1.json")]).rescan);
        assert!(classify([ev(AddWatchFlags::IN_DELETE, "cam1.json")]).rescan);
        for name in [".cam1.json.swp", "cam1.json~", "4913", ".cam1.json", "notes.txt"] {
            assert_eq!(classify([ev(AddWatchFlags::IN_CLOSE_WRITE, name)]), Verdict::default(), "{name}");
        }
    }

    #[test]
    fn overflow_rescans_and_a_lost_watch_is_noticed() {
        assert!(classify([(AddWatchFlags::IN_Q_OVERFLOW, None)]).rescan);
        for mask in [AddWatchFlags::IN_IGNORED, AddWatchFlags::IN_DELETE_SELF, AddWatchFlags::IN_MOVE_SELF] {
            assert!(classify([(mask, None)]).lost);
        }
    }

    #[test]
    fn a_changed_config_names_its_sections_and_a_broken_one_its_problem() {
        let path = Path::new("config.json");
        let running = serde_json::json!({"server": {"port": 8080}, "mqtt": {"enabled": false}});
        let same = config_change(path, r#"{"server": {"port": 8080}, "mqtt": {"enabled": false}}"#, &running);
        assert_eq!(same["restart_required"], serde_json::json!([]));
        let changed = config_change(path, r#"{"server": {"port": 9090}, "recording": {"enabled": true}}"#, &running);
        assert_eq!(changed["restart_required"], serde_json::json!(["mqtt", "recording", "server"]));
        let broken = config_change(path, r#"{"server": {"port": "x"}}"#, &running);
        assert!(broken["problem"].as_str().unwrap().contains("server.port"), "{broken}");
        let garbage = config_change(path, "{ nope", &running);
        assert!(garbage["problem"].is_string());
    }

    proptest! {
        #[test]
        fn any_event_classifies_without_panicking(bits in any::<u32>(), name in proptest::collection::vec(any::<u8>(), 0..300)) {
            use std::os::unix::ffi::OsStrExt;
            let mask = AddWatchFlags::from_bits_retain(bits);
            let _ = classify([(mask, Some(OsStr::from_bytes(&name))), (mask, None)]);
        }
    }
}
