//! Crash points for tests: `PANELCAM_FAULT=<name>` makes the process stop dead at the
//! named point (it announces the point on stderr and then waits to be killed), so a test can
//! `kill -9` it exactly between two steps of a write protocol. Without the variable a point
//! costs one relaxed load.

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT.get_or_init(|| std::env::var("PANELCAM_FAULT").ok().filter(|f| !f.is_empty())).as_deref()
}

/// Halts the calling thread forever when `PANELCAM_FAULT` names this point.
pub fn point(name: &str) {
    if armed() == Some(name) {
        eprintln!("PANELCAM_FAULT reached: {name}");
        loop {
            std::thread::park();
        }
    }
}
