//! Chunks: the index of a few seconds of one session's frames, one SQLite row each. A row
//! holds where the chunk's records start in its data file and a packed list of its frames
//! (12 bytes each: time since the chunk's first frame, offset from the chunk's start, JPEG
//! length), so the index costs one small row per chunk instead of a row (and its B-tree
//! pages) per frame. Within a chunk times only increase; a clock that steps back starts a
//! new chunk.

use rusqlite::{Connection, params};

use super::data::HEADER;

/// Where one recorded frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef {
    pub ts_ms: i64,
    pub session_id: i64,
    pub file_id: i64,
    /// Offset of the frame's record (header) in its data file.
    pub offset: u64,
    pub len: u32,
}

/// A chunk never holds more frames than this, nor spans more time than [`MAX_CHUNK_SPAN_MS`]
/// (which bounds every range query on the index).
pub const MAX_CHUNK_FRAMES: usize = 1000;
pub const MAX_CHUNK_SPAN_MS: i64 = 60_000;

const ENTRY: usize = 12;

/// Packs frames that share a session and file, in order, into an index blob.
pub fn encode(frames: &[FrameRef]) -> Option<(i64, u64, Vec<u8>)> {
    let first = frames.first()?;
    let mut blob = Vec::with_capacity(frames.len() * ENTRY);
    for f in frames {
        let dt = u32::try_from(f.ts_ms - first.ts_ms).ok()?;
        let doff = u32::try_from(f.offset.checked_sub(first.offset)?).ok()?;
        blob.extend_from_slice(&dt.to_le_bytes());
        blob.extend_from_slice(&doff.to_le_bytes());
        blob.extend_from_slice(&f.len.to_le_bytes());
    }
    Some((first.ts_ms, first.offset, blob))
}

/// The frames of a stored chunk; `None` when the blob is malformed (the database is outside
/// input too).
pub fn decode(session_id: i64, file_id: i64, first_ts: i64, offset: u64, blob: &[u8]) -> Option<Vec<FrameRef>> {
    if !blob.len().is_multiple_of(ENTRY) {
        return None;
    }
    blob.chunks_exact(ENTRY)
        .map(|e| {
            let (dt, rest) = e.split_first_chunk::<4>()?;
            let (doff, rest) = rest.split_first_chunk::<4>()?;
            let (len, _) = rest.split_first_chunk::<4>()?;
            Some(FrameRef {
                ts_ms: first_ts.checked_add(i64::from(u32::from_le_bytes(*dt)))?,
                session_id,
                file_id,
                offset: offset.checked_add(u64::from(u32::from_le_bytes(*doff)))?,
                len: u32::from_le_bytes(*len),
            })
        })
        .collect()
}

/// Splits frames of one file, in file order, into runs a chunk can hold: times increasing,
/// at most [`MAX_CHUNK_FRAMES`] frames over at most [`MAX_CHUNK_SPAN_MS`].
pub fn split(frames: &[FrameRef]) -> Vec<&[FrameRef]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, f) in frames.iter().enumerate() {
        let Some(first) = frames.get(start) else { break };
        let prev = i.checked_sub(1).and_then(|p| frames.get(p));
        let breaks = i > start
            && (prev.is_some_and(|p| f.ts_ms <= p.ts_ms)
                || f.ts_ms.saturating_sub(first.ts_ms) > MAX_CHUNK_SPAN_MS
                || i - start >= MAX_CHUNK_FRAMES);
        if breaks {
            out.push(frames.get(start..i).unwrap_or_default());
            start = i;
        }
    }
    if start < frames.len() {
        out.push(frames.get(start..).unwrap_or_default());
    }
    out
}

/// Inserts one chunk's index row and counts its frames into the session.
pub fn insert(c: &Connection, frames: &[FrameRef]) -> rusqlite::Result<()> {
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else { return Ok(()) };
    let Some((first_ts, offset, blob)) = encode(frames) else {
        return Err(rusqlite::Error::ToSqlConversionFailure("a chunk's frames must be in time order".into()));
    };
    let end_offset = last.offset + HEADER as u64 + u64::from(last.len);
    let bytes: i64 = frames.iter().map(|f| i64::from(f.len)).sum();
    c.prepare_cached(
        "INSERT INTO chunks (session_id, file_id, first_ts, last_ts, offset, end_offset, frames, bytes, idx)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        first.session_id,
        first.file_id,
        first_ts,
        last.ts_ms,
        offset as i64,
        end_offset as i64,
        frames.len() as i64,
        bytes,
        blob
    ])?;
    c.prepare_cached(
        "UPDATE sessions SET frame_count = frame_count + ?2, byte_count = byte_count + ?3,
         last_frame_ms = max(coalesce(last_frame_ms, 0), ?4) WHERE id = ?1",
    )?
    .execute(params![first.session_id, frames.len() as i64, bytes, last.ts_ms])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(ts: i64, offset: u64, len: u32) -> FrameRef {
        FrameRef { ts_ms: ts, session_id: 3, file_id: 9, offset, len }
    }

    #[test]
    fn round_trip() {
        let frames = vec![frame(1000, 64, 500), frame(1100, 596, 700), frame(1250, 1328, 10)];
        let (first, offset, blob) = encode(&frames).unwrap();
        assert_eq!((first, offset, blob.len()), (1000, 64, 36));
        assert_eq!(decode(3, 9, first, offset, &blob).unwrap(), frames);
        assert!(encode(&[]).is_none());
        assert!(encode(&[frame(1000, 64, 1), frame(999, 100, 1)]).is_none(), "times only increase");
    }

    proptest! {
        #[test]
        fn any_blob_decodes_without_panicking(blob in prop::collection::vec(any::<u8>(), 0..100), first in any::<i64>(), off in any::<u64>()) {
            if let Some(frames) = decode(1, 1, first, off, &blob) {
                prop_assert_eq!(frames.len(), blob.len() / ENTRY);
            }
        }
    }

    #[test]
    fn runs_break_where_time_goes_back_or_a_chunk_is_full() {
        let frames = vec![
            frame(100, 0, 10),
            frame(200, 42, 10),
            frame(150, 84, 10),
            frame(300, 126, 10),
            frame(300 + MAX_CHUNK_SPAN_MS + 1, 168, 10),
        ];
        let runs: Vec<usize> = split(&frames).iter().map(|r| r.len()).collect();
        assert_eq!(runs, vec![2, 2, 1]);
        let many: Vec<FrameRef> = (0..MAX_CHUNK_FRAMES as i64 + 5).map(|i| frame(i, i as u64 * 42, 10)).collect();
        let runs: Vec<usize> = split(&many).iter().map(|r| r.len()).collect();
        assert_eq!(runs, vec![MAX_CHUNK_FRAMES, 5]);
        assert!(split(&[]).is_empty());
    }
}
