//! MP4 segments of `mp4_segment_minutes`, assembled from HLS segments without re-encoding:
//! the run's init segment followed by the fragments of each HLS segment (see fmp4.rs).
//!
//! A file grows as `<name>.mp4.part` beside a journal `<name>.mp4.part.log` that records,
//! after each appended segment, the file size and the recorded end time. After a crash the
//! file is cut back to the last journalled size (whole segments only), renamed and indexed,
//! so a half-written segment is repaired, never served broken.
//!
//! A finished file keeps its journal (renamed to `<name>.mp4.log`) until its store has it
//! (indexed, or queued for PostgreSQL): a crash between the two leaves a file that the next
//! start finds by its journal and delivers, instead of a file nobody knows about.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::fmp4;
use super::segment::{SpoolSegment, day_dir, mp4_name};
use crate::store::segment::Mp4Meta;

/// A pause longer than this starts a new file, so one file never spans a recording gap.
const GAP_MS: i64 = 2_000;
/// Files are closed before they reach this size, whatever `mp4_segment_minutes` says: a
/// file shipped to PostgreSQL must fit one `bytea` value (1 GiB).
pub const MAX_FILE_BYTES: u64 = 1000 << 20;

struct OpenFile {
    name: String,
    final_path: PathBuf,
    part: PathBuf,
    journal: File,
    file: File,
    start_ms: i64,
    end_ms: i64,
    window_end: i64,
    init_path: PathBuf,
    base: Option<u64>,
    size: u64,
    session_id: Option<i64>,
}

pub struct Mp4Assembler {
    camera: String,
    dir: PathBuf,
    window_ms: i64,
    open: Option<OpenFile>,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", p.display())
}

/// `<file>.log`: the journal of a part file, or of a finished file not yet delivered.
pub fn journal_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".log");
    PathBuf::from(s)
}

/// Call once a finished file is in its store: its journal is no longer needed.
pub fn delivered(file: &Path) {
    let _ = std::fs::remove_file(journal_path(file));
}

impl Mp4Assembler {
    /// `dir` is `<database_path>/<camera>`; files go to `dir/YYYY/MM/DD/`.
    pub fn new(camera: &str, dir: &Path, segment_minutes: f64) -> Mp4Assembler {
        let window_ms = ((segment_minutes * 60_000.0) as i64).max(1000);
        Mp4Assembler { camera: camera.to_string(), dir: dir.to_path_buf(), window_ms, open: None }
    }

    /// Appends one HLS segment. Returns the file this segment closed, if it started a new one.
    pub fn add(&mut self, seg: &SpoolSegment, session_id: Option<i64>) -> Result<Option<Mp4Meta>, String> {
        let closes = self.open.as_ref().is_some_and(|o| {
            seg.start_ms >= o.window_end
                || seg.init_path != o.init_path
                || seg.start_ms - o.end_ms > GAP_MS
                || session_id != o.session_id
                || o.size + seg.size > MAX_FILE_BYTES
        });
        let finished = if closes { self.finish()? } else { None };
        if self.open.is_none() {
            self.open = Some(self.create(seg, session_id)?);
        }
        let o = self.open.as_mut().expect("just opened");
        let data = std::fs::read(&seg.path).map_err(|e| io("cannot read segment", &seg.path, e))?;
        let mut buf = Vec::with_capacity(data.len());
        fmp4::append_fragments(&data, &mut o.base, &mut buf).map_err(|e| format!("segment {}: {e}", seg.name))?;
        o.file.write_all(&buf).map_err(|e| io("cannot write", &o.part, e))?;
        o.size += buf.len() as u64;
        o.end_ms = seg.end_ms();
        writeln!(o.journal, "{} {}", o.size, o.end_ms).map_err(|e| io("cannot write journal of", &o.part, e))?;
        Ok(finished)
    }

    fn create(&self, seg: &SpoolSegment, session_id: Option<i64>) -> Result<OpenFile, String> {
        let day = self.dir.join(day_dir(seg.start_ms));
        std::fs::create_dir_all(&day).map_err(|e| io("cannot create", &day, e))?;
        let mut name = mp4_name(&self.camera, seg.start_ms);
        if day.join(&name).exists() {
            // Two files starting in the same second (a session ended and another began).
            name = name.replace(".mp4", &format!("_{:03}.mp4", seg.start_ms.rem_euclid(1000)));
        }
        let final_path = day.join(&name);
        let part = day.join(format!("{name}.part"));
        let init = std::fs::read(&seg.init_path).map_err(|e| io("cannot read init segment", &seg.init_path, e))?;
        let mut file = File::create(&part).map_err(|e| io("cannot create", &part, e))?;
        file.write_all(&init).map_err(|e| io("cannot write", &part, e))?;
        let jp = journal_path(&part);
        let mut journal = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&jp)
            .map_err(|e| io("cannot create", &jp, e))?;
        let session = session_id.map_or("-".to_string(), |s| s.to_string());
        writeln!(journal, "{} {session}", seg.start_ms).map_err(|e| io("cannot write", &jp, e))?;
        let window_end = (seg.start_ms.div_euclid(self.window_ms) + 1) * self.window_ms;
        Ok(OpenFile {
            name,
            final_path,
            part,
            journal,
            file,
            start_ms: seg.start_ms,
            end_ms: seg.start_ms,
            window_end,
            init_path: seg.init_path.clone(),
            base: None,
            size: init.len() as u64,
            session_id,
        })
    }

    /// Closes the current file (end of window, of the session, or shutdown).
    pub fn finish(&mut self) -> Result<Option<Mp4Meta>, String> {
        let Some(o) = self.open.take() else { return Ok(None) };
        o.file.sync_all().map_err(|e| io("cannot sync", &o.part, e))?;
        drop(o.file);
        if o.end_ms <= o.start_ms {
            // Nothing but the init segment: not a recording.
            let _ = std::fs::remove_file(&o.part);
            let _ = std::fs::remove_file(journal_path(&o.part));
            return Ok(None);
        }
        drop(o.journal);
        // The journal goes first: a crash between the renames leaves a part file with its
        // journal under the final name, which `repair` still finds.
        std::fs::rename(journal_path(&o.part), journal_path(&o.final_path))
            .map_err(|e| io("cannot rename the journal of", &o.part, e))?;
        std::fs::rename(&o.part, &o.final_path).map_err(|e| io("cannot rename", &o.part, e))?;
        sync_dir(&o.final_path);
        Ok(Some(Mp4Meta {
            name: o.name,
            start_ms: o.start_ms,
            duration_ms: o.end_ms - o.start_ms,
            size: o.size as i64,
            session_id: o.session_id,
            path: Some(o.final_path),
        }))
    }

    /// Repairs every `.mp4.part` left under `dir` by a crash, and finds every finished file
    /// that was never delivered; returns them (each still has its journal until
    /// [`delivered`] is called).
    pub fn repair(dir: &Path) -> Vec<Result<Mp4Meta, String>> {
        let mut found = Vec::new();
        collect(dir, 0, &mut found);
        // Journals of finished files first: one whose data is still a part file is then left
        // to that part, and a part repaired below is not found a second time.
        found.sort_by_key(|p| p.to_string_lossy().ends_with(".mp4.part"));
        let mut out = Vec::new();
        for p in found {
            let name = p.to_string_lossy();
            if name.ends_with(".mp4.part") {
                out.extend(repair_one(&p).transpose());
            } else if name.ends_with(".mp4.log") {
                let file = PathBuf::from(name.trim_end_matches(".log"));
                let part = PathBuf::from(format!("{}.part", file.display()));
                if file.exists() {
                    out.extend(undelivered(&file).transpose());
                } else if !part.exists() {
                    // Delivered and removed (database storage), the journal outlived it.
                    let _ = std::fs::remove_file(&p);
                }
                // Otherwise the data is still the part file: `repair_one` takes this journal.
            }
        }
        out
    }
}

fn sync_dir(file: &Path) {
    if let Some(dir) = file.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 3 {
            collect(&p, depth + 1, out);
        } else if p.to_string_lossy().ends_with(".mp4.part") || p.to_string_lossy().ends_with(".mp4.log") {
            out.push(p);
        }
    }
}

/// The journal's header (start, session) and its last whole segment (size, end) that fits
/// a file of `len` bytes.
fn read_journal(journal: &Path, len: u64) -> (Option<i64>, Option<i64>, Option<(u64, i64)>) {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let start_ms = header.first().and_then(|s| s.parse::<i64>().ok());
    let session_id = header.get(1).and_then(|s| s.parse::<i64>().ok());
    let last_whole = lines
        .filter_map(|l| l.split_once(' ').and_then(|(s, e)| Some((s.parse::<u64>().ok()?, e.parse::<i64>().ok()?))))
        .rfind(|(size, _)| *size <= len);
    (start_ms, session_id, last_whole)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A finished file whose journal says it was never delivered.
fn undelivered(file: &Path) -> Result<Option<Mp4Meta>, String> {
    let len = std::fs::metadata(file).map(|m| m.len()).map_err(|e| io("cannot read", file, e))?;
    match read_journal(&journal_path(file), len) {
        (Some(start_ms), session_id, Some((size, end_ms))) if size == len => Ok(Some(Mp4Meta {
            name: file_name(file),
            start_ms,
            duration_ms: end_ms - start_ms,
            size: size as i64,
            session_id,
            path: Some(file.to_path_buf()),
        })),
        _ => Err(format!("{}: its journal does not describe it; left as it is", file.display())),
    }
}

/// Cuts a part file back to its last journalled size and renames it; `Ok(None)` when
/// nothing worth keeping was in it (then it is deleted).
fn repair_one(part: &Path) -> Result<Option<Mp4Meta>, String> {
    let jp = journal_path(part);
    let final_path = PathBuf::from(part.to_string_lossy().trim_end_matches(".part"));
    if !jp.exists() {
        // `finish` renames the journal first: a crash before the data's rename leaves it
        // under the final name.
        let moved = journal_path(&final_path);
        if !moved.exists() {
            return Err(format!("{}: no journal says what it holds; left as it is", part.display()));
        }
        std::fs::rename(&moved, &jp).map_err(|e| io("cannot rename", &moved, e))?;
    }
    let len = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let (start_ms, session_id, last_whole) = read_journal(&jp, len);
    let remove = || {
        let _ = std::fs::remove_file(part);
        let _ = std::fs::remove_file(&jp);
    };
    let (Some(start_ms), Some((size, end_ms))) = (start_ms, last_whole) else {
        remove();
        return Ok(None);
    };
    let f = OpenOptions::new().write(true).open(part).map_err(|e| io("cannot open", part, e))?;
    f.set_len(size).map_err(|e| io("cannot truncate", part, e))?;
    f.sync_all().map_err(|e| io("cannot sync", part, e))?;
    // The journal, cut to the whole segments, stays with the file until it is delivered.
    std::fs::write(&jp, format!("{start_ms} {}\n{size} {end_ms}\n", session_id.map_or("-".into(), |s| s.to_string())))
        .map_err(|e| io("cannot write", &jp, e))?;
    std::fs::rename(&jp, journal_path(&final_path)).map_err(|e| io("cannot rename", &jp, e))?;
    std::fs::rename(part, &final_path).map_err(|e| io("cannot rename", part, e))?;
    sync_dir(&final_path);
    Ok(Some(Mp4Meta {
        name: file_name(&final_path),
        start_ms,
        duration_ms: end_ms - start_ms,
        size: size as i64,
        session_id,
        path: Some(final_path),
    }))
}

#[cfg(test)]
mod tests;
