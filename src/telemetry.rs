//! Log output. Plain text on stderr for now (journald with structured fields arrives with the
//! appliance work); the level comes from `PANELCAM_LOG` (or `RUST_LOG`): error, warn, info,
//! debug or trace. A full env-filter is not worth its ~1 MiB of regex on the panel.

use tracing::level_filters::LevelFilter;

pub fn init() {
    let level = std::env::var("PANELCAM_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    let level = match level.trim().to_ascii_lowercase().as_str() {
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        "off" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    };
    tracing_subscriber::fmt().with_max_level(level).with_target(false).with_writer(std::io::stderr).init();
}
