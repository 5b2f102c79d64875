//! Just enough ISO-BMFF (MP4 box) handling to turn FFmpeg's HLS fMP4 segments into MP4 files
//! without re-encoding or even re-muxing: an MP4 segment is the init segment (`ftyp`+`moov`)
//! followed by the media fragments (`moof`+`mdat`) of consecutive HLS segments.
//!
//! Two fix-ups make such a file behave like a file of its own: per-segment `styp`/`sidx`
//! boxes are dropped (a `sidx` describes one HLS segment and would mislead players about the
//! whole file), and every `tfdt` (track fragment decode time) is shifted so the file starts
//! at time 0 (otherwise players report the camera's running time as the start).

/// One top-level box: its four-character type and byte range (header included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxRange {
    pub kind: [u8; 4],
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BoxError {
    /// The data ends inside a box (a half-written file): `complete` bytes are whole boxes.
    Truncated { complete: usize },
    /// A box header that cannot be right.
    Invalid { offset: usize, why: &'static str },
}

impl std::fmt::Display for BoxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BoxError::Truncated { complete } => write!(f, "truncated after {complete} bytes of complete boxes"),
            BoxError::Invalid { offset, why } => write!(f, "invalid box at byte {offset}: {why}"),
        }
    }
}

/// The boxes directly inside `data[from..to]`.
pub fn boxes_in(data: &[u8], from: usize, to: usize) -> Result<Vec<BoxRange>, BoxError> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        if to - at < 8 {
            return Err(BoxError::Truncated { complete: at });
        }
        let head = data.get(at..at + 8).ok_or(BoxError::Truncated { complete: at })?;
        let size32 = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        let (size, header) = match size32 {
            0 => ((to - at) as u64, 8), // extends to the end of the enclosing range
            1 => {
                if to - at < 16 {
                    return Err(BoxError::Truncated { complete: at });
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(data.get(at + 8..at + 16).ok_or(BoxError::Truncated { complete: at })?);
                (u64::from_be_bytes(b), 16)
            }
            n => (n, 8),
        };
        if size < header {
            return Err(BoxError::Invalid { offset: at, why: "box smaller than its header" });
        }
        if !kind.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            return Err(BoxError::Invalid { offset: at, why: "box type is not a four-character code" });
        }
        // A 64-bit size can be anything: an end past `to` (or past u64) is a truncated box.
        let end = (at as u64).saturating_add(size);
        if end > to as u64 {
            return Err(BoxError::Truncated { complete: at });
        }
        out.push(BoxRange { kind, start: at, end: end as usize });
        at = end as usize;
    }
    Ok(out)
}

pub fn top_level(data: &[u8]) -> Result<Vec<BoxRange>, BoxError> {
    boxes_in(data, 0, data.len())
}

/// The length of the longest prefix of whole top-level boxes that ends after a complete
/// `mdat` (or the init segment): what a half-written fragmented MP4 can be cut back to.
pub fn repairable_length(data: &[u8]) -> usize {
    let boxes = match top_level(data) {
        Ok(b) => b,
        Err(BoxError::Truncated { complete: n } | BoxError::Invalid { offset: n, .. }) => {
            top_level(data.get(..n).unwrap_or_default()).unwrap_or_default()
        }
    };
    // A moof without its mdat is useless: end after the last mdat or moov.
    boxes.iter().rev().find(|b| &b.kind == b"mdat" || &b.kind == b"moov").map(|b| b.end).unwrap_or(0)
}

/// Appends the media fragments of one HLS segment to `out`, dropping `styp`/`sidx` and
/// subtracting `base` from every `tfdt`. When `base` is `None` (the file's first segment) it
/// becomes this segment's first decode time, so the file starts at 0.
pub fn append_fragments(segment: &[u8], base: &mut Option<u64>, out: &mut Vec<u8>) -> Result<(), BoxError> {
    let mut moofs = 0;
    for b in top_level(segment)? {
        match &b.kind {
            b"styp" | b"sidx" | b"ftyp" | b"moov" => continue,
            b"moof" => {
                let mut moof = segment.get(b.start..b.end).unwrap_or_default().to_vec();
                if base.is_none() {
                    *base = Some(rewrite_tfdt(&mut moof, None)?);
                }
                rewrite_tfdt(&mut moof, *base)?;
                out.extend_from_slice(&moof);
                moofs += 1;
            }
            _ => out.extend_from_slice(segment.get(b.start..b.end).unwrap_or_default()),
        }
    }
    if moofs == 0 {
        return Err(BoxError::Invalid { offset: 0, why: "segment has no moof" });
    }
    Ok(())
}

/// Subtracts `base` from the `tfdt` boxes inside one `moof` (passed as its own byte range;
/// `None` only reads) and returns the first original decode time.
fn rewrite_tfdt(moof: &mut [u8], base: Option<u64>) -> Result<u64, BoxError> {
    let mut first = None;
    let header = 8;
    for traf in boxes_in(moof, header, moof.len())?.into_iter().filter(|b| &b.kind == b"traf") {
        for tfdt in boxes_in(moof, traf.start + 8, traf.end)?.into_iter().filter(|b| &b.kind == b"tfdt") {
            let body = tfdt.start + 8;
            let version = *moof.get(body).ok_or(BoxError::Invalid { offset: tfdt.start, why: "empty tfdt" })?;
            let at = body + 4;
            let time = if version == 1 {
                let mut b = [0u8; 8];
                b.copy_from_slice(moof.get(at..at + 8).ok_or(BoxError::Invalid { offset: at, why: "short tfdt" })?);
                u64::from_be_bytes(b)
            } else {
                let b = moof.get(at..at + 4).ok_or(BoxError::Invalid { offset: at, why: "short tfdt" })?;
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            first.get_or_insert(time);
            let Some(base) = base else { continue };
            let shifted = time.saturating_sub(base);
            let (bytes, len) = if version == 1 {
                (shifted.to_be_bytes().to_vec(), 8)
            } else {
                ((shifted as u32).to_be_bytes().to_vec(), 4)
            };
            if let Some(field) = moof.get_mut(at..at + len) {
                field.copy_from_slice(&bytes);
            }
        }
    }
    first.ok_or(BoxError::Invalid { offset: 0, why: "moof without tfdt" })
}

#[cfg(test)]
mod tests;
