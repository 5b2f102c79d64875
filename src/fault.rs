//! Crash points for tests: `PANELCAM_FAULT=<name>` (or `<name>@<n>`, the n-th time it is
//! reached) makes the process stop dead at the named point: it announces the point on
//! stderr and the thread then waits to be killed, so a test can `kill -9` it exactly between
//! two steps of a write protocol. Without the variable a point costs one relaxed load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Armed {
    name: String,
    nth: u64,
    hits: AtomicU64,
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
            Some(Armed { name, nth, hits: AtomicU64::new(0) })
        })
        .as_ref()
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
