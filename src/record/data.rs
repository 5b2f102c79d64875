//! Frame data files: `<camera>.frames/<file id>.jpgs`, each JPEG appended as it is recorded,
//! behind a small header that makes the file readable without its index:
//!
//! ```text
//! magic "PCF1" | JPEG length u32 | capture time i64 ms | session id i64 | CRC-32 of the JPEG | 0 u32
//! ```
//!
//! (little endian, 32 bytes). The index in SQLite is written every few seconds; everything
//! appended after its last commit is found again by [`scan`] after a crash, and a record cut
//! short by a power cut fails its length or CRC and ends the scan there.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const HEADER: usize = 32;
const MAGIC: [u8; 4] = *b"PCF1";

/// One frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub ts_ms: i64,
    pub session_id: i64,
    pub crc: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..4].copy_from_slice(&MAGIC); // slice-ok: fixed positions in a fixed-size array
        h[4..8].copy_from_slice(&self.len.to_le_bytes()); // slice-ok: as above
        h[8..16].copy_from_slice(&self.ts_ms.to_le_bytes()); // slice-ok: as above
        h[16..24].copy_from_slice(&self.session_id.to_le_bytes()); // slice-ok: as above
        h[24..28].copy_from_slice(&self.crc.to_le_bytes()); // slice-ok: as above
        h
    }

    /// `None` unless `b` starts with a well-formed header.
    pub fn decode(b: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER] = b.get(..HEADER)?.try_into().ok()?;
        let (magic, rest) = b.split_first_chunk::<4>()?;
        if *magic != MAGIC {
            return None;
        }
        let (len, rest) = rest.split_first_chunk::<4>()?;
        let (ts, rest) = rest.split_first_chunk::<8>()?;
        let (session, rest) = rest.split_first_chunk::<8>()?;
        let (crc, _) = rest.split_first_chunk::<4>()?;
        Some(Header {
            len: u32::from_le_bytes(*len),
            ts_ms: i64::from_le_bytes(*ts),
            session_id: i64::from_le_bytes(*session),
            crc: u32::from_le_bytes(*crc),
        })
    }
}

/// CRC-32 (IEEE), slice-by-8: eight table lookups per 8 bytes instead of one per byte, about
/// 4x the byte-wise loop (~2 GB/s here), so checking a 100 KB frame costs ~50 µs of the writer's
/// time and of startup repair's scan (a panel's core is several times slower than this one).
pub fn crc32(data: &[u8]) -> u32 {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    let t = TABLES.get_or_init(|| {
        let mut t = [[0u32; 256]; 8];
        for (i, e) in t[0].iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        for i in 0..256 {
            for k in 1..8 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            }
        }
        t
    });
    let mut c = !0u32;
    let mut chunks = data.chunks_exact(8);
    for b in &mut chunks {
        let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]); // slice-ok: chunks_exact(8)
        let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]); // slice-ok: chunks_exact(8)
        c = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xFF) as usize]
            ^ t[2][((hi >> 8) & 0xFF) as usize]
            ^ t[1][((hi >> 16) & 0xFF) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Where a camera's data files live: `<database>.frames/` beside `<database>`.
pub fn dir_for(db: &Path) -> PathBuf {
    let mut d = db.as_os_str().to_owned();
    d.push(".frames");
    PathBuf::from(d)
}

pub fn file_path(dir: &Path, file_id: i64) -> PathBuf {
    dir.join(format!("{file_id}.jpgs"))
}

/// One record found by [`scan`]: where its JPEG starts and what its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Offset of the record (its header) in the file.
    pub offset: u64,
    pub header: Header,
}

/// Reads the records of `file` from `from` on, as long as they are whole and their CRCs
/// match; returns them and the offset just after the last good one (where the file should
/// be cut). `max_len` bounds a plausible JPEG.
pub fn scan(file: &File, from: u64, max_len: u32) -> io::Result<(Vec<Found>, u64)> {
    let end = file.metadata()?.len();
    let mut found = Vec::new();
    let mut at = from;
    let mut header = [0u8; HEADER];
    let mut data = Vec::new();
    while at + HEADER as u64 <= end {
        file.read_exact_at(&mut header, at)?;
        let Some(h) = Header::decode(&header) else { break };
        let next = at + HEADER as u64 + u64::from(h.len);
        if h.len == 0 || h.len > max_len || next > end {
            break;
        }
        data.resize(h.len as usize, 0);
        file.read_exact_at(&mut data, at + HEADER as u64)?;
        if crc32(&data) != h.crc {
            break;
        }
        found.push(Found { offset: at, header: h });
        at = next;
    }
    Ok((found, at))
}

/// The JPEG of the record at `offset` of data file `file_id` in `dir` (its header is checked;
/// a data file that resolves outside `dir` is not found, see `store::confine`).
pub fn read_frame(dir: &Path, file_id: i64, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut f = crate::store::confine::open_within(dir, &file_path(dir, file_id))?;
    let mut buf = vec![0u8; HEADER + len as usize];
    std::io::Seek::seek(&mut f, io::SeekFrom::Start(offset))?;
    f.read_exact(&mut buf)?;
    let h = Header::decode(&buf).ok_or_else(|| io::Error::other("not a frame record"))?;
    if h.len != len {
        return Err(io::Error::other("frame record does not match its index"));
    }
    buf.drain(..HEADER);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Every length around the 8-byte steps agrees with the plain bitwise definition.
        let bitwise = |d: &[u8]| {
            !d.iter().fold(!0u32, |mut c, &b| {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                }
                c
            })
        };
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(crc32(&data[..n]), bitwise(&data[..n]), "length {n}"); // slice-ok: n < len
        }
    }

    fn record(ts: i64, jpeg: &[u8]) -> Vec<u8> {
        let h = Header { len: jpeg.len() as u32, ts_ms: ts, session_id: 7, crc: crc32(jpeg) };
        [h.encode().as_slice(), jpeg].concat()
    }

    #[test]
    fn a_torn_tail_ends_the_scan() {
        let dir = std::env::temp_dir().join(format!("panelcam-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("1.jpgs");
        let mut f = File::create(&path).unwrap();
        f.write_all(&record(1000, &[1; 500])).unwrap();
        f.write_all(&record(1100, &[2; 700])).unwrap();
        let whole = f.metadata().unwrap().len();
        // A power cut: the third record's header made it, half its data did not.
        let mut torn = record(1200, &[3; 900]);
        torn.truncate(HEADER + 300);
        f.write_all(&torn).unwrap();
        f.write_all(&[0; 600]).unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        let (found, end) = scan(&f, 0, 1 << 20).unwrap();
        assert_eq!(found.iter().map(|r| r.header.ts_ms).collect::<Vec<_>>(), vec![1000, 1100]);
        assert_eq!(end, whole);
        assert_eq!(read_frame(&dir, 1, found[1].offset, 700).unwrap(), vec![2; 700]);
        assert!(read_frame(&dir, 1, found[1].offset, 701).is_err());
        // A data file that is a symlink out of the directory is not there, even when what it
        // points to holds valid records.
        let outside = dir.with_extension("outside");
        std::fs::copy(&path, &outside).unwrap();
        std::os::unix::fs::symlink(&outside, file_path(&dir, 2)).unwrap();
        let e = read_frame(&dir, 2, found[1].offset, 700).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_file(&outside);
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn any_bytes_scan_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..600), from in 0u64..700) {
            let dir = std::env::temp_dir().join(format!("panelcam-data-p-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("x.jpgs");
            std::fs::write(&path, &bytes).unwrap();
            let f = File::open(&path).unwrap();
            let (found, end) = scan(&f, from, 1 << 20).unwrap();
            prop_assert!(found.is_empty() || end <= bytes.len() as u64);
        }

        #[test]
        fn headers_round_trip(len in any::<u32>(), ts in any::<i64>(), session in any::<i64>(), crc in any::<u32>()) {
            let h = Header { len, ts_ms: ts, session_id: session, crc };
            prop_assert_eq!(Header::decode(&h.encode()), Some(h));
        }
    }
}
