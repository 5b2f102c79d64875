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
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| format!("cannot start inotify ({e})"))?;
    inotify.add_watch(dir, EVENTS).map_err(|e| format!("cannot watch {} ({e})", dir.display()))?;
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

    proptest! {
        #[test]
        fn any_event_classifies_without_panicking(bits in any::<u32>(), name in proptest::collection::vec(any::<u8>(), 0..300)) {
            use std::os::unix::ffi::OsStrExt;
            let mask = AddWatchFlags::from_bits_retain(bits);
            let _ = classify([(mask, Some(OsStr::from_bytes(&name))), (mask, None)]);
        }
    }
}
