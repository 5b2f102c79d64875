//! Segments in the spool, and the names and directories of MP4 files.

use std::path::PathBuf;

use crate::util::iso_ms;

/// A complete HLS segment in the spool, as FFmpeg listed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolSegment {
    pub name: String,
    pub path: PathBuf,
    pub init_path: PathBuf,
    pub start_ms: i64,
    pub duration_ms: i64,
    pub size: u64,
}

impl SpoolSegment {
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.duration_ms
    }
}

/// The ASCII digits of a time: `YYYYMMDD` and `HHMMSS` in UTC.
fn date_time_digits(ms: i64) -> (String, String) {
    let iso = iso_ms(ms); // 2024-08-19T14:00:00.000Z, always ASCII
    let (date, time) = iso.split_once('T').unwrap_or((&iso, ""));
    let time = time.split('.').next().unwrap_or("");
    (date.replace('-', ""), time.replace(':', ""))
}

/// `<camera>_YYYYMMDD_HHMMSS.mp4` in UTC (the spec's naming; UTC because a panel's clock
/// zone is not reliable and names must sort by time).
pub fn mp4_name(camera: &str, start_ms: i64) -> String {
    let (date, time) = date_time_digits(start_ms);
    format!("{camera}_{date}_{time}.mp4")
}

/// `YYYYMMDD_HHMMSS` of a time, for export file names.
pub fn stamp(ms: i64) -> String {
    let (date, time) = date_time_digits(ms);
    format!("{date}_{time}")
}

/// `YYYY/MM/DD` of a time, for the MP4 directory tree.
pub fn day_dir(start_ms: i64) -> PathBuf {
    let (date, _) = date_time_digits(start_ms);
    let (y, md) = date.split_at_checked(4).unwrap_or((&date, ""));
    let (m, d) = md.split_at_checked(2).unwrap_or((md, ""));
    PathBuf::from(y).join(m).join(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dirs_follow_the_spec() {
        let t = crate::util::parse_time("2024-08-19T14:05:00.250Z").unwrap();
        assert_eq!(mp4_name("cam1", t), "cam1_20240819_140500.mp4");
        assert_eq!(stamp(t), "20240819_140500");
        assert_eq!(day_dir(t), PathBuf::from("2024/08/19"));
    }
}
