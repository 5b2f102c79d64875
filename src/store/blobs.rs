//! The bytes of locally stored video segments, as files beside `segments.db`:
//! `<camera>/segments/YYYYMMDD/<name>`, indexed by rows in the database.
//!
//! Why files: a segment inside SQLite is written twice (WAL, then checkpoint) plus whole pages
//! of table and index around it; measured, 7.5 bytes reached the flash per byte of a small
//! HLS segment (docs/frame-storage.md). A file costs the segment once. Order of operations,
//! so that a crash leaves nothing a reader trips over: a new file is written under a
//! temporary name and renamed before its row is inserted (a crash in between leaves an
//! orphan in one of the newest day directories, swept at the next start); a delete removes
//! the file before the row (a crash in between leaves a row without bytes, which reads as
//! missing and is deleted with its time range). Whole day directories older than the oldest
//! row are removed, which also collects any orphan in them. Files are not fsynced one by
//! one (each fsync is an extra journal commit on the flash): after a power cut, the newest
//! rows are checked against their files at the next start.

use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::confine::open_within;

pub struct Blobs {
    root: PathBuf,
}

/// `YYYYMMDD` (UTC) of a time: the day directory of a segment starting then.
pub fn day(start_ms: i64) -> String {
    let (y, m, d) = crate::util::civil_from_days(start_ms.div_euclid(86_400_000));
    format!("{y:04}{m:02}{d:02}")
}

/// A stored name as the database holds it, checked: `YYYYMMDD/<plain file name>`. The
/// database is outside input too; a row must never name a path outside the directory.
fn checked(rel: &str) -> Option<(&str, &str)> {
    let (dir, name) = rel.split_once('/')?;
    let plain = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (dir.len() == 8 && dir.bytes().all(|b| b.is_ascii_digit()) && plain).then_some((dir, name))
}

impl Blobs {
    pub fn new(root: PathBuf) -> Blobs {
        Blobs { root }
    }

    /// The stored name of a segment's bytes.
    pub fn name(start_ms: i64, file_name: &str) -> String {
        format!("{}/{file_name}", day(start_ms))
    }

    pub fn path(&self, rel: &str) -> Option<PathBuf> {
        checked(rel).map(|(dir, name)| self.root.join(dir).join(name))
    }

    fn target(&self, rel: &str) -> io::Result<PathBuf> {
        let path = self.path(rel).ok_or_else(|| io::Error::other(format!("not a segment name: {rel:?}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(path)
    }

    /// Copies `src` (a spool file in RAM) to `rel`; returns its length.
    pub fn put_copy(&self, rel: &str, src: &Path) -> io::Result<u64> {
        let path = self.target(rel)?;
        let tmp = path.with_extension("tmp");
        let len = std::fs::copy(src, &tmp)?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(len)
    }

    /// Moves `src` (a finished file on the same disk: no bytes are written again) to `rel`,
    /// or copies it when it is on another filesystem.
    pub fn put_move(&self, rel: &str, src: &Path) -> io::Result<()> {
        let path = self.target(rel)?;
        match std::fs::rename(src, &path) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
                self.put_copy(rel, src)?;
                std::fs::remove_file(src)
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes of `rel`, which must be `size` long (a file a power cut shortened is missing).
    pub fn read(&self, rel: &str, size: u64) -> io::Result<Vec<u8>> {
        let path = self.path(rel).ok_or_else(|| io::Error::other(format!("not a segment name: {rel:?}")))?;
        let mut f = open_within(&self.root, &path)?;
        if f.metadata()?.len() != size {
            return Err(io::Error::new(io::ErrorKind::NotFound, "segment file incomplete"));
        }
        let mut buf = Vec::with_capacity(size as usize);
        f.read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// `len` bytes from `offset` of `rel`.
    pub fn read_range(&self, rel: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let path = self.path(rel).ok_or_else(|| io::Error::other(format!("not a segment name: {rel:?}")))?;
        let f = open_within(&self.root, &path)?;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let n = f.read_at(buf.get_mut(filled..).unwrap_or_default(), offset + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Whether `rel` is there with `size` bytes.
    pub fn is_whole(&self, rel: &str, size: u64) -> bool {
        self.path(rel).and_then(|p| std::fs::metadata(p).ok()).is_some_and(|m| m.len() == size)
    }

    pub fn remove(&self, rel: &str) {
        if let Some(p) = self.path(rel) {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Day directories, oldest first.
    fn days(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut days: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        days.sort();
        days
    }

    /// Removes files in the newest `n` day directories that `known` does not claim (orphans
    /// of a crash between a write and its row, and temporary files); returns how many.
    pub fn sweep_newest(&self, n: usize, known: impl Fn(&str) -> bool) -> usize {
        let days = self.days();
        let mut removed = 0;
        for d in days.iter().rev().take(n) {
            let Ok(entries) = std::fs::read_dir(self.root.join(d)) else { continue };
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                if !known(&format!("{d}/{name}")) && std::fs::remove_file(e.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Removes whole day directories before `day` (nothing in the index refers to them any
    /// more); returns how many.
    pub fn prune_before(&self, day: &str) -> usize {
        self.days()
            .into_iter()
            .filter(|d| d.as_str() < day)
            .filter(|d| std::fs::remove_dir_all(self.root.join(d)).is_ok())
            .count()
    }

    /// Bytes in all segment files.
    pub fn bytes(&self) -> u64 {
        self.days()
            .iter()
            .filter_map(|d| std::fs::read_dir(self.root.join(d)).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_stay_inside_the_directory() {
        let b = Blobs::new(PathBuf::from("/r"));
        assert_eq!(Blobs::name(1_724_076_300_000, "seg.m4s"), "20240819/seg.m4s");
        assert_eq!(b.path("20240819/seg.m4s"), Some(PathBuf::from("/r/20240819/seg.m4s")));
        for evil in
            ["../x", "20240819/../../etc/passwd", "20240819/.hidden", "/etc/passwd", "2024081/x", "20240819/", "x"]
        {
            assert_eq!(b.path(evil), None, "{evil}");
        }
    }

    proptest! {
        #[test]
        fn any_stored_name_is_refused_or_stays_inside(rel in ".{0,40}") {
            let b = Blobs::new(PathBuf::from("/r"));
            if let Some(p) = b.path(&rel) {
                prop_assert!(p.starts_with("/r/"));
                prop_assert!(!p.components().any(|c| matches!(c, std::path::Component::ParentDir)));
            }
        }
    }

    #[test]
    fn orphans_in_the_newest_days_and_old_days_are_cleaned_up() {
        let root = std::env::temp_dir().join(format!("panelcam-blobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let b = Blobs::new(root.clone());
        let src = root.join("src");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(&src, b"abc").unwrap();
        for rel in ["20240101/a", "20240102/b", "20240103/c", "20240103/orphan"] {
            assert_eq!(b.put_copy(rel, &src).unwrap(), 3);
        }
        std::fs::write(root.join("20240103/d.tmp"), b"half").unwrap();
        assert_eq!(b.read("20240103/c", 3).unwrap(), b"abc");
        assert!(b.read("20240103/c", 4).is_err(), "a short file reads as missing");
        assert_eq!(b.read_range("20240103/c", 1, 10).unwrap(), b"bc");
        let known = ["20240101/a", "20240102/b", "20240103/c"];
        assert_eq!(b.sweep_newest(1, |r| known.contains(&r)), 2, "the orphan and the temporary file");
        assert!(b.is_whole("20240103/c", 3));
        assert_eq!(b.prune_before("20240102"), 1);
        assert!(!b.is_whole("20240101/a", 3));
        assert!(b.is_whole("20240102/b", 3));
        b.put_move("20240104/moved", &src).unwrap();
        assert!(!src.exists() && b.is_whole("20240104/moved", 3));
        let _ = std::fs::remove_dir_all(&root);
    }
}
