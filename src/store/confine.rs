//! Files given to clients must lie where panelcam keeps them.
//!
//! Names from requests are checked before they reach the filesystem (plain file names, numeric
//! ids), but the data directories are outside input too: a symlink planted in the spool or the
//! recordings, or a database row naming another path, must not turn a segment request into a
//! read of `/etc/shadow`. So a served file is opened only once its real path (every symlink
//! resolved) lies inside the real path of the directory it belongs in, and then without
//! following a symlink. A directory that is itself a symlink (one camera's recordings moved to
//! another disk) still works: both sides are resolved.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading if it resolves to a file inside `dir`. Anything else is
/// `NotFound` (to a client it is not there; the log says what was refused and why, the
/// error does not: it may reach an answer).
pub fn open_within(dir: &Path, path: &Path) -> io::Result<File> {
    let root = dir.canonicalize()?;
    let real = path.canonicalize()?;
    if !real.starts_with(&root) || real == root {
        tracing::warn!(
            file = %path.display(),
            resolves_to = %real.display(),
            "refused to serve a file outside {}: a symlink or a stored path leads out of the data directory",
            root.display()
        );
        return Err(io::Error::new(io::ErrorKind::NotFound, "file is not inside its data directory"));
    }
    // O_NOFOLLOW: a symlink swapped in after the check is refused, not followed.
    let file = OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(&real)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "not a file"));
    }
    Ok(file)
}

/// The whole file, as [`open_within`] allows it.
pub fn read_within(dir: &Path, path: &Path) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    io::Read::read_to_end(&mut open_within(dir, path)?, &mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn temp(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("panelcam-confine-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data/day")).unwrap();
        dir
    }

    #[test]
    fn files_inside_are_read_and_symlinks_out_are_not_there() {
        let dir = temp("out");
        let data = dir.join("data");
        std::fs::write(data.join("day/seg.m4s"), b"video").unwrap();
        std::fs::write(dir.join("secret"), b"password").unwrap();
        symlink(dir.join("secret"), data.join("day/evil.m4s")).unwrap();
        symlink(&dir, data.join("up")).unwrap();
        symlink("/etc/passwd", data.join("passwd.mp4")).unwrap();
        assert_eq!(read_within(&data, &data.join("day/seg.m4s")).unwrap(), b"video");
        for refused in [
            data.join("day/evil.m4s"),
            data.join("up/secret"),
            data.join("passwd.mp4"),
            data.join("../secret"),
            data.join("day/../../secret"),
            "/etc/passwd".into(),
        ] {
            let e = read_within(&data, &refused).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{}", refused.display());
        }
        // Directories are no files to serve.
        assert!(open_within(&data, &data).is_err());
        assert_eq!(open_within(&data, &data.join("day")).unwrap_err().kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_data_directory_that_is_a_symlink_still_serves_its_own_files() {
        let dir = temp("moved");
        std::fs::write(dir.join("data/day/seg.m4s"), b"video").unwrap();
        symlink(dir.join("data"), dir.join("elsewhere")).unwrap();
        let moved = dir.join("elsewhere");
        assert_eq!(read_within(&moved, &moved.join("day/seg.m4s")).unwrap(), b"video");
        // A symlink inside that stays inside is fine too (a day directory moved within).
        symlink(dir.join("data/day"), dir.join("data/today")).unwrap();
        assert_eq!(read_within(&moved, &moved.join("today/seg.m4s")).unwrap(), b"video");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
