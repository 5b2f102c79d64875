//! Stored video as metadata: HLS segments and MP4 files, and which sessions' video must stay.

use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::util::iso_ms;

/// A stored HLS segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsMeta {
    pub start_ms: i64,
    pub duration_ms: i64,
    pub init_sha256: String,
    pub session_id: Option<i64>,
    pub size: i64,
}

/// A stored MP4 segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4Meta {
    pub name: String,
    pub start_ms: i64,
    pub duration_ms: i64,
    pub size: i64,
    pub session_id: Option<i64>,
    /// Where the bytes are: a local file, or inside a database.
    pub path: Option<PathBuf>,
}

impl Mp4Meta {
    pub fn to_json(&self, url: &str) -> Value {
        json!({
            "filename": self.name,
            "start_time": iso_ms(self.start_ms),
            "end_time": iso_ms(self.start_ms + self.duration_ms),
            "start_ms": self.start_ms,
            "duration": self.duration_ms as f64 / 1000.0,
            "size": self.size,
            "session_id": self.session_id,
            "url": url,
        })
    }
}

/// The sessions whose video deletes must leave alone: kept ones and the active one. Every
/// stored segment remembers the session it was kept for (pre-event buffer included), so
/// protection is exact; segments of continuous recording outside sessions have none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    Sessions(Vec<i64>),
    /// The sessions could not be read: delete nothing rather than guess.
    Everything,
}

impl Kept {
    pub fn none() -> Kept {
        Kept::Sessions(Vec::new())
    }

    /// An SQL condition (ANDed to a DELETE) sparing the kept sessions' rows. Ids are integers,
    /// so building the list into the statement is safe.
    pub fn sql(&self) -> String {
        match self {
            Kept::Everything => " AND 0 = 1".into(),
            Kept::Sessions(ids) if ids.is_empty() => String::new(),
            Kept::Sessions(ids) => {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!(" AND (session_id IS NULL OR session_id NOT IN ({}))", list.join(","))
            }
        }
    }

    pub fn protects(&self, session_id: Option<i64>) -> bool {
        match (self, session_id) {
            (Kept::Everything, _) => true,
            (Kept::Sessions(ids), Some(id)) => ids.contains(&id),
            (Kept::Sessions(_), None) => false,
        }
    }
}

/// A name a client may ask for: `<camera>_YYYYMMDD_HHMMSS.mp4` and nothing that could walk
/// the filesystem.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.contains("..")
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_safe() {
        assert!(is_safe_name("cam1_20240819_140500.mp4"));
        for bad in ["", "../etc/passwd", "a/b.mp4", ".hidden", "a..mp4", "x%2F..", "a b.mp4", "c:\\x"] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }

    #[test]
    fn kept_sessions_become_a_safe_sql_filter() {
        assert_eq!(Kept::none().sql(), "");
        assert_eq!(Kept::Sessions(vec![3, 7]).sql(), " AND (session_id IS NULL OR session_id NOT IN (3,7))");
        assert_eq!(Kept::Everything.sql(), " AND 0 = 1");
        assert!(Kept::Sessions(vec![3]).protects(Some(3)) && !Kept::Sessions(vec![3]).protects(None));
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
