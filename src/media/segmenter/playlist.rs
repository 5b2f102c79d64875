//! The live playlist as FFmpeg's HLS muxer writes it (`-hls_segment_type fmp4
//! -hls_flags program_date_time`), so `crate::video::playlist::parse_live` and hls.js read
//! ours exactly as they read FFmpeg's.

use std::collections::VecDeque;
use std::fmt::Write;

use crate::media::fmp4::TIMESCALE;
use crate::util::iso_ms;

/// A finished segment while it is listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `n` of `seg_<n>.m4s`.
    pub number: u64,
    /// The init segment (`#EXT-X-MAP`) its fragments need.
    pub init: String,
    /// In 90 kHz units.
    pub duration: u64,
    /// Wall clock of its first picture, ms since the Unix epoch.
    pub start_ms: i64,
}

impl Listed {
    pub fn file_name(&self) -> String {
        format!("seg_{}.m4s", self.number)
    }
}

/// The last `list_size` segments and what the playlist's header must say about them.
#[derive(Debug, Default)]
pub struct LivePlaylist {
    list_size: usize,
    entries: VecDeque<Listed>,
    /// Discontinuities (init changes) that slid out of the list: HLS counts them so a player
    /// keeps its timelines apart across reloads.
    discontinuity_sequence: u64,
    /// Whole seconds, never lowered: HLS forbids the target duration to change.
    target: u64,
}

impl LivePlaylist {
    pub fn new(list_size: usize) -> LivePlaylist {
        LivePlaylist { list_size: list_size.max(1), ..LivePlaylist::default() }
    }

    pub fn push(&mut self, entry: Listed) {
        self.target = self.target.max(entry.duration.div_ceil(u64::from(TIMESCALE))).max(1);
        self.entries.push_back(entry);
        while self.entries.len() > self.list_size {
            let Some(gone) = self.entries.pop_front() else { break };
            if self.entries.front().is_some_and(|next| next.init != gone.init) {
                self.discontinuity_sequence += 1;
            }
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &Listed> {
        self.entries.iter()
    }

    /// The playlist text; `ended` adds `#EXT-X-ENDLIST` (the stream stopped).
    pub fn render(&self, ended: bool) -> String {
        let mut p = String::with_capacity(160 + self.entries.len() * 120);
        let first = self.entries.front().map_or(0, |e| e.number);
        let _ = write!(
            p,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{first}\n",
            self.target.max(1)
        );
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(p, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        let mut init: Option<&str> = None;
        for e in &self.entries {
            if init != Some(e.init.as_str()) {
                if init.is_some() {
                    p.push_str("#EXT-X-DISCONTINUITY\n");
                }
                let _ = writeln!(p, "#EXT-X-MAP:URI=\"{}\"", e.init);
                init = Some(&e.init);
            }
            let seconds = e.duration as f64 / f64::from(TIMESCALE);
            let _ = writeln!(p, "#EXTINF:{seconds:.6},");
            let _ = writeln!(p, "#EXT-X-PROGRAM-DATE-TIME:{}", program_date_time(e.start_ms));
            let _ = writeln!(p, "{}", e.file_name());
        }
        if ended {
            p.push_str("#EXT-X-ENDLIST\n");
        }
        p
    }
}

/// FFmpeg's form: `2026-11-21T10:09:02.859+0000`.
fn program_date_time(ms: i64) -> String {
    let iso = iso_ms(ms);
    match iso.strip_suffix('Z') {
        Some(local) => format!("{local}+0000"),
        None => iso,
    }
}
