//! Recording without FFmpeg: the camera's access units as HLS fMP4 segments in the spool,
//! in exactly the files FFmpeg's `-f hls -hls_segment_type fmp4` wrote there
//! (`crate::camera::argv::segment_args`), so `crate::video::pipeline` keeps working as it
//! is: `init_<run>.mp4`, `seg_<n>.m4s` with `n` from the Unix time in seconds (unique across
//! restarts), and `live.m3u8` listing the last `list_size` segments with their wall-clock
//! start. Every file is written under a temporary name and renamed, so a reader never sees
//! half of one.
//!
//! A segment starts at a keyframe and ends at the first keyframe after `segment_seconds`
//! of presentation time, so it is written when that keyframe arrives (each sample's duration
//! is the time to the next picture). New parameter sets (a new resolution) end the segment
//! and start a new init file. Units after packet loss are kept, as FFmpeg kept them: a
//! recording should not lose what a decoder may still show.
//!
//! Blocking file I/O (the spool is tmpfs): run it on a thread of its own. Memory is one
//! segment's units, and a segment is cut early at `MAX_SEGMENT_BYTES`.

mod playlist;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::fmp4::{self, Sample, TIMESCALE};
use super::{AccessUnit, Params};
use crate::video::camera::SegmentOutput;
use playlist::{Listed, LivePlaylist};

/// A segment this large is cut even without a keyframe (a camera with a GOP of minutes at a
/// high bit rate): the segmenter's memory stays bounded, at the price of a segment that
/// needs its predecessor to decode.
pub const MAX_SEGMENT_BYTES: usize = 64 << 20;
/// A picture-to-picture gap beyond this is a jump of the camera's clock, not time that
/// passed: the sample gets the previous duration instead.
const MAX_SAMPLE_DURATION: i64 = 60 * TIMESCALE as i64;
/// Duration of a sample before any delta was seen (a segment of one picture): 25 fps.
const DEFAULT_DURATION: u32 = TIMESCALE / 25;

/// The parameter sets being recorded and the init file that describes them.
struct Current {
    params: Params,
    init: String,
}

/// A unit held until its segment is written.
struct Held {
    data: Bytes,
    pts: i64,
    keyframe: bool,
    /// Known once the next unit arrives.
    duration: u32,
}

/// The segment being gathered.
struct Pending {
    init: String,
    start_ms: i64,
    units: Vec<Held>,
    bytes: usize,
    /// Sum of the durations known so far (all but the last unit's).
    ticks: u64,
}

pub struct Segmenter {
    dir: PathBuf,
    run: String,
    segment_ticks: u64,
    current: Option<Current>,
    /// Init files written by this segmenter: the first is `init_<run>.mp4`, then
    /// `init_<run>-<n>.mp4`.
    inits: u32,
    pending: Option<Pending>,
    playlist: LivePlaylist,
    next_number: u64,
    fragment_sequence: u32,
    /// Decode time of the next segment's first sample: the durations written so far, so
    /// `tfdt` never goes back, whatever the camera's clock does.
    decode_time: u64,
    last_duration: u32,
    /// `MAX_SEGMENT_BYTES`; smaller in tests.
    max_segment_bytes: usize,
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The largest `n` of the `seg_<n>.m4s` files in `dir`.
fn highest_segment(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_prefix("seg_")?.split('.').next()?.parse::<u64>().ok()
        })
        .max()
}

/// Writes `name` in `dir` under a temporary name, then renames it.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let context = |e: io::Error, what: &str, p: &Path| io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()));
    std::fs::write(&temp, data).map_err(|e| context(e, "cannot write", &temp))?;
    std::fs::rename(&temp, &path).map_err(|e| context(e, "cannot rename", &temp))
}

impl Segmenter {
    /// `run` names this run's init files (`camera::RUN_PLACEHOLDER`'s role). Segment numbers
    /// start at the Unix time, or after the highest already in the directory.
    pub fn new(output: &SegmentOutput, run: &str) -> Segmenter {
        let first = unix_seconds().max(highest_segment(&output.dir).map_or(0, |n| n + 1));
        Segmenter {
            dir: output.dir.clone(),
            run: run.to_string(),
            segment_ticks: output.segment_seconds.max(1) * u64::from(TIMESCALE),
            current: None,
            inits: 0,
            pending: None,
            playlist: LivePlaylist::new(output.list_size as usize),
            next_number: first,
            fragment_sequence: 1,
            decode_time: 0,
            last_duration: DEFAULT_DURATION,
            max_segment_bytes: MAX_SEGMENT_BYTES,
        }
    }

    /// The stream's parameter sets, before its first unit and whenever they change. A
    /// change ends the current segment and writes a new init file; the next segment starts
    /// at the next keyframe. Parameter sets that cannot be described stop recording until
    /// usable ones come (`Err` says why).
    pub fn params(&mut self, params: &Params) -> io::Result<()> {
        if self.current.as_ref().is_some_and(|c| c.params == *params) {
            return Ok(());
        }
        self.flush()?;
        self.current = None;
        let track = fmp4::track(params).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let init = match self.inits {
            0 => format!("init_{}.mp4", self.run),
            n => format!("init_{}-{n}.mp4", self.run),
        };
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.dir, &init, &fmp4::init_segment(&track))?;
        self.inits += 1;
        self.current = Some(Current { params: params.clone(), init });
        Ok(())
    }

    /// One access unit, in decode order. Units before the first parameter sets, and before
    /// the first keyframe after them, are dropped: nothing could decode them.
    pub fn push(&mut self, au: &AccessUnit) -> io::Result<()> {
        let Some(current) = &self.current else { return Ok(()) };
        let Some(pending) = &mut self.pending else {
            if au.keyframe {
                self.pending = Some(Pending::start(current.init.clone(), au));
            }
            return Ok(());
        };
        if let Some(last) = pending.units.last_mut() {
            let delta = au.pts.saturating_sub(last.pts);
            if delta > 0 && delta <= MAX_SAMPLE_DURATION {
                self.last_duration = delta as u32;
            }
            last.duration = self.last_duration;
            pending.ticks += u64::from(self.last_duration);
        }
        let due = au.keyframe && pending.ticks >= self.segment_ticks;
        let full = pending.bytes + au.data.len() > self.max_segment_bytes;
        if due || full {
            let init = pending.init.clone();
            self.write_pending()?;
            self.pending = Some(Pending::start(init, au));
        } else {
            pending.push(au);
        }
        Ok(())
    }

    /// Writes the segment being gathered (its last picture lasts as long as the one before)
    /// and marks the playlist ended: call when the stream stops.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        self.write_playlist(true)
    }

    /// Ends the pending segment now, without waiting for its next keyframe.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(pending) = &mut self.pending
            && let Some(last) = pending.units.last_mut()
        {
            last.duration = self.last_duration;
            pending.ticks += u64::from(self.last_duration);
        }
        self.write_pending()
    }

    /// Writes the pending segment (every duration known) and the playlist that lists it.
    fn write_pending(&mut self) -> io::Result<()> {
        let Some(pending) = self.pending.take() else { return Ok(()) };
        let samples: Vec<Sample<'_>> = pending
            .units
            .iter()
            .map(|u| Sample { data: &u.data, duration: u.duration, keyframe: u.keyframe })
            .collect();
        let data = fmp4::fragment(self.fragment_sequence, self.decode_time, &samples);
        let entry = Listed {
            number: self.next_number,
            init: pending.init,
            duration: pending.ticks,
            start_ms: pending.start_ms,
        };
        write_atomic(&self.dir, &entry.file_name(), &data)?;
        self.next_number += 1;
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        self.decode_time += pending.ticks;
        self.playlist.push(entry);
        self.write_playlist(false)
    }

    fn write_playlist(&self, ended: bool) -> io::Result<()> {
        if self.playlist.entries().next().is_none() {
            return Ok(());
        }
        write_atomic(&self.dir, "live.m3u8", self.playlist.render(ended).as_bytes())
    }
}

impl Pending {
    fn start(init: String, au: &AccessUnit) -> Pending {
        let mut p = Pending { init, start_ms: au.wall_ms, units: Vec::with_capacity(256), bytes: 0, ticks: 0 };
        p.push(au);
        p
    }

    fn push(&mut self, au: &AccessUnit) {
        self.bytes += au.data.len();
        self.units.push(Held { data: au.data.clone(), pts: au.pts, keyframe: au.keyframe, duration: 0 });
    }
}

#[cfg(test)]
mod tests;
