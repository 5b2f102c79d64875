//! How many connections panelcam serves at once, derived from the process's open-file limit
//! so that a flood of clients can never take the descriptors FFmpeg's pipes, the databases
//! and the segment files need.

/// Descriptors kept for the process itself: listener, stdio, log files, PostgreSQL, the
/// outbox, the blocking pool's transient files.
const RESERVED_BASE: u64 = 96;
/// Per camera: FFmpeg's three pipes, the frame database with its WAL and shared memory
/// for the writer, checkpointer and up to four readers, the segment index, spool and MP4
/// files being written.
const RESERVED_PER_CAMERA: u64 = 40;
/// Room for cameras added while running (SIGHUP, the watcher, the admin API).
const MIN_CAMERAS: u64 = 8;

/// Connections allowed with an open-file limit of `nofile` and `cameras` cameras.
pub fn max_connections(nofile: u64, cameras: usize) -> usize {
    let reserved = RESERVED_BASE + RESERVED_PER_CAMERA * (cameras as u64).max(MIN_CAMERAS);
    nofile.saturating_sub(reserved).clamp(16, 1 << 20) as usize
}

/// Raises the soft open-file limit to the hard one (systemd starts services with a soft
/// limit of 1024) and returns the limit that applies.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_room_for_the_cameras() {
        assert_eq!(max_connections(1024, 4), 1024 - 96 - 40 * 8);
        assert_eq!(max_connections(1024, 20), 1024 - 96 - 40 * 20);
        assert_eq!(max_connections(100, 4), 16, "never less than a few");
        assert!(max_connections(1 << 20, 4) > 100_000);
    }
}
