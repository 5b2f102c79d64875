//! Talking to the service manager (systemd, `Type=notify`): readiness, status, stopping, and
//! the watchdog. The protocol is one datagram per message to `$NOTIFY_SOCKET` (a path, or an
//! abstract socket when it starts with `@`), so no library is needed.
//!
//! The watchdog is fed by a thread of its own, and only while the async runtime answers and
//! every running camera's supervisor has been seen alive recently: a hung runtime or a stuck
//! supervisor stops the pings, and systemd restarts the service after `WatchdogSec`.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::registry::Registry;
use crate::util::now_ms;

/// Where notifications go; `None` when not started by a service manager.
pub struct Notifier {
    socket: UnixDatagram,
    target: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let path = path.to_string_lossy().into_owned();
        let target = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()?
            }
            None => std::os::unix::net::SocketAddr::from_pathname(&path).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notifier { socket, target })
    }

    /// Sends one notification (`READY=1`, `STATUS=…`); failures are logged, never fatal.
    pub fn notify(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.target) {
            warn!("cannot notify the service manager ({message:?}): {e}");
        }
    }
}

/// `$WATCHDOG_USEC`, when the service manager wants watchdog pings from this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The time the async runtime last ran its heartbeat task.
pub static RUNTIME_BEAT_MS: AtomicI64 = AtomicI64::new(0);

/// Runs on the async runtime: proves to the watchdog thread that the runtime is not hung.
pub async fn runtime_heartbeat() {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        RUNTIME_BEAT_MS.store(now_ms(), Relaxed);
    }
}

/// How long without a beat counts as hung: the runtime beats every 500 ms; a supervisor
/// every second, but stopping an FFmpeg that ignores SIGTERM takes it a few seconds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub runtime: Duration,
    pub supervisor: Duration,
}

impl Limits {
    /// Half the watchdog interval (systemd's own margin), but never less than the beats need.
    pub fn for_interval(interval: Option<Duration>) -> Limits {
        let half = interval.map_or(Duration::from_secs(30), |i| i / 2);
        Limits { runtime: half.max(Duration::from_secs(2)), supervisor: half.max(Duration::from_secs(5)) }
    }
}

/// What is not alive, if anything: the runtime or a camera supervisor. Pure, for the tests.
pub fn stalled(now: i64, runtime_beat_ms: i64, supervisors: &[(String, i64)], limits: Limits) -> Option<String> {
    if now - runtime_beat_ms > limits.runtime.as_millis() as i64 {
        return Some(format!("the async runtime has not run for {} ms", now - runtime_beat_ms));
    }
    let max = limits.supervisor.as_millis() as i64;
    supervisors
        .iter()
        .find(|(_, beat)| now - beat > max)
        .map(|(id, beat)| format!("the supervisor of camera {id} has not run for {} ms", now - beat))
}

/// A short summary for `systemctl status`: "3 cameras: 2 streaming, 1 reconnecting".
pub fn status_line(registry: &Registry) -> String {
    let cameras = registry.cameras();
    let mut states: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for c in &cameras {
        *states.entry(c.stats.state().as_str()).or_default() += 1;
    }
    let parts: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let noun = if cameras.len() == 1 { "camera" } else { "cameras" };
    if parts.is_empty() { format!("0 {noun}") } else { format!("{} {noun}: {}", cameras.len(), parts.join(", ")) }
}

/// Feeds the watchdog (every half interval) and refreshes `STATUS=` while everything is
/// alive; stops feeding, loudly, when something hangs.
pub fn start_watchdog(notifier: Arc<Notifier>, registry: Arc<Registry>, interval: Option<Duration>) {
    let every = interval.map_or(Duration::from_secs(5), |i| (i / 2).max(Duration::from_millis(100)));
    let limits = Limits::for_interval(interval);
    let spawned = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let mut reported = false;
        loop {
            std::thread::sleep(every);
            let supervisors: Vec<(String, i64)> = registry
                .cameras()
                .iter()
                .filter(|c| c.stats.supervised())
                .map(|c| (c.id(), c.stats.heartbeat_ms()))
                .collect();
            match stalled(now_ms(), RUNTIME_BEAT_MS.load(Relaxed), &supervisors, limits) {
                None => {
                    if interval.is_some() {
                        notifier.notify("WATCHDOG=1");
                    }
                    notifier.notify(&format!("STATUS={}", status_line(&registry)));
                    if reported {
                        info!("watchdog: everything answers again");
                        reported = false;
                    }
                }
                Some(why) => {
                    if !reported {
                        error!("watchdog: {why}; no longer telling the service manager that all is well");
                        reported = true;
                    }
                }
            }
        }
    });
    if let Err(e) = spawned {
        error!("cannot start the watchdog thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_named() {
        let limits = Limits::for_interval(Some(Duration::from_secs(1)));
        assert_eq!((limits.runtime, limits.supervisor), (Duration::from_secs(2), Duration::from_secs(5)));
        assert_eq!(stalled(10_000, 9_000, &[("a".into(), 6_000)], limits), None);
        assert!(stalled(20_000, 17_000, &[], limits).unwrap().contains("runtime"));
        let s = stalled(20_000, 19_500, &[("a".into(), 19_000), ("b".into(), 1_000)], limits).unwrap();
        assert!(s.contains("camera b"), "{s}");
        let unit = Limits::for_interval(Some(Duration::from_secs(20)));
        assert_eq!(unit.runtime, Duration::from_secs(10));
    }

    #[test]
    fn notifications_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("panelcam-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            target: std::os::unix::net::SocketAddr::from_pathname(&path).unwrap(),
        };
        n.notify("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }
}
