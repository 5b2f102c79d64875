//! Crash points for tests: `PANELCAM_FAULT=<name>` (or `<name>@<n>`, the n-th time it is
//! reached) makes the process stop dead at the named point: it announces the point on
//! stderr and the thread then waits to be killed, so a test can `kill -9` it exactly between
//! two steps of a write protocol. Without the variable a point costs one relaxed load.
//!
//! Hangs for the watchdog tests (`runtime.stall`, `supervisor.stall`) start when the process
//! receives SIGUSR1 ([`trigger`]); without `PANELCAM_FAULT` SIGUSR1 is not even handled.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

struct Armed {
    name: String,
    nth: u64,
    hits: AtomicU64,
    triggered: AtomicBool,
}

fn armed() -> Option<&'static Armed> {
    static FAULT: OnceLock<Option<Armed>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let spec = std::env::var("PANELCAM_FAULT").ok().filter(|f| !f.is_empty())?;
            let (name, nth) = match spec.split_once('@') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some(Armed { name, nth, hits: AtomicU64::new(0), triggered: AtomicBool::new(false) })
        })
        .as_ref()
}

/// Whether a fault is armed at all (then SIGUSR1 triggers it).
pub fn is_armed() -> bool {
    armed().is_some()
}

/// Starts the armed hang (on SIGUSR1).
pub fn trigger() {
    if let Some(a) = armed() {
        eprintln!("PANELCAM_FAULT triggered: {}", a.name);
        a.triggered.store(true, Relaxed);
    }
}

/// True once the fault of this name was triggered.
pub fn active(name: &str) -> bool {
    armed().is_some_and(|a| a.name == name && a.triggered.load(Relaxed))
}

/// Halts the calling thread forever when `PANELCAM_FAULT` names this point (and its count).
pub fn point(name: &str) {
    let Some(a) = armed() else { return };
    if a.name == name && a.hits.fetch_add(1, Relaxed) + 1 == a.nth {
        eprintln!("PANELCAM_FAULT reached: {name}");
        loop {
            std::thread::park();
        }
    }
}
