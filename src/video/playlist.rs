//! HLS playlists: reading the live playlist FFmpeg writes into the spool (to learn which
//! segments are complete, when each started and how long it is), and writing VOD playlists
//! for stored time ranges.

use std::fmt::Write;

use crate::util::{iso_ms, parse_time};

/// A complete segment as listed by FFmpeg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSegment {
    /// File name relative to the playlist (`seg_1795255742.m4s`).
    pub uri: String,
    /// The init segment (`#EXT-X-MAP`) it belongs to.
    pub init: Option<String>,
    pub duration_ms: i64,
    /// Wall-clock start (`#EXT-X-PROGRAM-DATE-TIME`).
    pub start_ms: Option<i64>,
}

/// Parses FFmpeg's live playlist. Tolerates partial files (FFmpeg rewrites it in place):
/// a segment only counts once its URI line has been read.
pub fn parse_live(text: &str) -> Vec<LiveSegment> {
    let mut out = Vec::new();
    let (mut init, mut duration, mut start) = (None, None, None);
    // A last line without its newline may be cut mid-name.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i], // slice-ok: `i` is the position of '\n', a character boundary
        None => "",
    };
    for line in complete.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            init = attribute(rest, "URI");
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration =
                rest.split(',').next().and_then(|d| d.trim().parse::<f64>().ok()).map(|s| (s * 1000.0).round() as i64);
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            start = parse_time(rest).ok();
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some(duration_ms) = duration.take()
        {
            out.push(LiveSegment { uri: line.to_string(), init: init.clone(), duration_ms, start_ms: start.take() });
        }
    }
    out
}

/// `KEY="value"` or `KEY=value` from an attribute list.
fn attribute(list: &str, key: &str) -> Option<String> {
    list.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// One stored segment in a VOD playlist.
#[derive(Clone, Debug)]
pub struct VodEntry {
    pub start_ms: i64,
    pub duration_ms: i64,
    /// URI of its init segment.
    pub init_uri: String,
    pub uri: String,
}

/// A VOD playlist. A discontinuity is marked where the init segment changes (FFmpeg was
/// restarted) or recording paused for more than `gap_ms`, so players reset their timeline
/// instead of stalling; each discontinuity carries the wall-clock time of what follows.
pub fn vod_playlist(entries: &[VodEntry], gap_ms: i64) -> String {
    let target = entries.iter().map(|e| (e.duration_ms + 999) / 1000).max().unwrap_or(1).max(1);
    let mut p = String::with_capacity(128 + entries.len() * 96);
    let _ = write!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    let mut previous: Option<&VodEntry> = None;
    for e in entries {
        let new_init = previous.is_none_or(|prev| prev.init_uri != e.init_uri);
        let gap = previous.is_some_and(|prev| e.start_ms - (prev.start_ms + prev.duration_ms) > gap_ms);
        if previous.is_some() && (new_init || gap) {
            p.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if new_init {
            let _ = writeln!(p, "#EXT-X-MAP:URI=\"{}\"", e.init_uri);
        }
        if previous.is_none() || new_init || gap {
            let _ = writeln!(p, "#EXT-X-PROGRAM-DATE-TIME:{}", iso_ms(e.start_ms));
        }
        let _ = writeln!(p, "#EXTINF:{:.3},\n{}", e.duration_ms as f64 / 1000.0, e.uri);
        previous = Some(e);
    }
    p.push_str("#EXT-X-ENDLIST\n");
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// FFmpeg's playlist is outside input too (and it rewrites the file in place).
        #[test]
        fn any_playlist_text_parses_without_panicking(
            lines in prop::collection::vec(
                "#EXTINF:[0-9.e+-]{0,12},|#EXT-X-MAP:URI=\"\\PC{0,12}\"|#EXT-X-PROGRAM-DATE-TIME:\\PC{0,30}|seg_[0-9]{1,12}\\.m4s|\\PC{0,40}",
                0..20,
            ),
        ) {
            let text = lines.join("\n");
            prop_assert!(parse_live(&text).len() <= lines.len());
        }
    }

    const FFMPEG: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:3
#EXT-X-MEDIA-SEQUENCE:1795255742
#EXT-X-MAP:URI=\"init_42.mp4\"
#EXTINF:2.959844,
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:09:02.859+0000
seg_1795255742.m4s
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:09:05.818+0000
seg_1795255743.m4s
#EXTINF:2.000156,
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:09:07.818+0000
seg_17952";

    #[test]
    fn reads_ffmpegs_live_playlist_and_ignores_a_torn_tail() {
        let segs = parse_live(FFMPEG);
        assert_eq!(segs.len(), 2, "the torn last line is not a segment yet");
        assert_eq!(segs[0].uri, "seg_1795255742.m4s");
        assert_eq!(segs[0].init.as_deref(), Some("init_42.mp4"));
        assert_eq!(segs[0].duration_ms, 2960);
        assert_eq!(segs[1].start_ms, parse_time("2026-11-21T10:09:05.818Z").ok());
        let cut = &FFMPEG[..FFMPEG.find("seg_1795255743").unwrap()];
        assert_eq!(parse_live(cut).len(), 1, "a segment without its URI line is not complete");
    }

    #[test]
    fn vod_playlist_marks_gaps_and_init_changes() {
        let e = |start: i64, init: &str| VodEntry {
            start_ms: start,
            duration_ms: 6000,
            init_uri: init.into(),
            uri: format!("segments/{start}.m4s"),
        };
        let list =
            vod_playlist(&[e(0, "i/a.mp4"), e(6000, "i/a.mp4"), e(60_000, "i/a.mp4"), e(66_000, "i/b.mp4")], 1000);
        assert_eq!(list.matches("#EXT-X-DISCONTINUITY").count(), 2);
        assert_eq!(list.matches("#EXT-X-MAP").count(), 2);
        assert_eq!(list.matches("#EXTINF:6.000,").count(), 4);
        assert!(list.contains("#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:01:00.000Z"));
        assert!(list.starts_with("#EXTM3U") && list.ends_with("#EXT-X-ENDLIST\n"));
        assert!(list.contains("#EXT-X-TARGETDURATION:6"));
    }
}
