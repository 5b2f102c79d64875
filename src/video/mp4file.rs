//! MP4 segments of `mp4_segment_minutes`, assembled from HLS segments without re-encoding:
//! the run's init segment followed by the fragments of each HLS segment (see fmp4.rs).
//!
//! A file grows as `<name>.mp4.part` beside a journal `<name>.mp4.part.log` that records,
//! after each appended segment, the file size and the recorded end time. After a crash the
//! file is cut back to the last journalled size (whole segments only), renamed and indexed,
//! so a half-written segment is repaired, never served broken.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::fmp4;
use super::segment::{Mp4Meta, SpoolSegment, day_dir, mp4_name};

/// A pause longer than this starts a new file, so one file never spans a recording gap.
const GAP_MS: i64 = 2_000;

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

fn journal_path(part: &Path) -> PathBuf {
    let mut s = part.as_os_str().to_owned();
    s.push(".log");
    PathBuf::from(s)
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
        std::fs::rename(&o.part, &o.final_path).map_err(|e| io("cannot rename", &o.part, e))?;
        let _ = std::fs::remove_file(journal_path(&o.part));
        Ok(Some(Mp4Meta {
            name: o.name,
            start_ms: o.start_ms,
            duration_ms: o.end_ms - o.start_ms,
            size: o.size as i64,
            session_id: o.session_id,
            path: Some(o.final_path),
        }))
    }

    /// Repairs every `.mp4.part` left under `dir` by a crash; returns the files made whole.
    pub fn repair(dir: &Path) -> Vec<Result<Mp4Meta, String>> {
        let mut parts = Vec::new();
        collect_parts(dir, 0, &mut parts);
        parts.into_iter().filter_map(|p| repair_one(&p).transpose()).collect()
    }
}

fn collect_parts(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 3 {
            collect_parts(&p, depth + 1, out);
        } else if p.to_string_lossy().ends_with(".mp4.part") {
            out.push(p);
        }
    }
}

/// Cuts a part file back to its last journalled size and renames it; `Ok(None)` when
/// nothing worth keeping was in it (then it is deleted).
fn repair_one(part: &Path) -> Result<Option<Mp4Meta>, String> {
    let jp = journal_path(part);
    let journal = std::fs::read_to_string(&jp).unwrap_or_default();
    let mut lines = journal.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let start_ms = header.first().and_then(|s| s.parse::<i64>().ok());
    let session_id = header.get(1).and_then(|s| s.parse::<i64>().ok());
    let len = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let last_whole = lines
        .filter_map(|l| l.split_once(' ').and_then(|(s, e)| Some((s.parse::<u64>().ok()?, e.parse::<i64>().ok()?))))
        .rfind(|(size, _)| *size <= len);
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
    let final_path = PathBuf::from(part.to_string_lossy().trim_end_matches(".part"));
    std::fs::rename(part, &final_path).map_err(|e| io("cannot rename", part, e))?;
    let _ = std::fs::remove_file(&jp);
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Some(Mp4Meta {
        name,
        start_ms,
        duration_ms: end_ms - start_ms,
        size: size as i64,
        session_id,
        path: Some(final_path),
    }))
}

#[cfg(test)]
mod tests;
