//! Cuts a byte stream of concatenated JPEGs (FFmpeg's `-f mjpeg` stdout, or an HTTP camera's
//! multipart body) into frames.
//!
//! Searching for `FF D9` alone is wrong: an EXIF thumbnail inside APP1 carries its own SOI/EOI.
//! So the splitter walks the marker segments by their lengths up to SOS, then scans the
//! entropy-coded data, where a literal 0xFF is always stuffed as `FF 00` and restart markers
//! (`FF D0`-`FF D7`) may appear; any other marker ends the scan. Works across arbitrary read
//! boundaries, skips garbage between frames and drops frames larger than `max_frame_size`.

use bytes::Bytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Looking for SOI (`FF D8`).
    Soi,
    /// At a marker inside the header segments (or after a scan).
    Marker,
    /// Inside entropy-coded data after SOS.
    Entropy,
}

/// Counters of what the splitter had to throw away, for stats and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitterDrops {
    /// Bytes before an SOI that belonged to no frame.
    pub garbage_bytes: u64,
    /// Frames abandoned because they grew beyond `max_frame_size`.
    pub oversize_frames: u64,
    /// Frames abandoned because their marker structure was broken.
    pub corrupt_frames: u64,
}

pub struct MjpegSplitter {
    buf: Vec<u8>,
    /// Start of the current frame (its SOI) in `buf`; only meaningful outside `State::Soi`.
    start: usize,
    /// Next byte to examine.
    pos: usize,
    state: State,
    max_frame_size: usize,
    drops: SplitterDrops,
}

impl MjpegSplitter {
    pub fn new(max_frame_size: usize) -> MjpegSplitter {
        MjpegSplitter {
            buf: Vec::new(),
            start: 0,
            pos: 0,
            state: State::Soi,
            max_frame_size,
            drops: SplitterDrops::default(),
        }
    }

    pub fn drops(&self) -> SplitterDrops {
        self.drops
    }

    /// Bytes currently held (a partial frame).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes read from the source.
    pub fn push(&mut self, data: &[u8]) {
        // Compact before growing so the buffer holds at most one partial frame plus one read.
        let keep_from = if self.state == State::Soi { self.pos } else { self.start };
        if keep_from > 0 && (keep_from >= self.buf.len() / 2 || self.buf.len() + data.len() > self.buf.capacity()) {
            self.buf.drain(..keep_from);
            self.pos -= keep_from;
            self.start = self.start.saturating_sub(keep_from);
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, or `None` when more input is needed. Each frame is one
    /// exactly-sized allocation, shared afterwards by every consumer.
    pub fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            match self.state {
                State::Soi => {
                    let Some(off) = memchr::memchr(0xFF, self.buf.get(self.pos..).unwrap_or_default()) else {
                        self.drops.garbage_bytes += (self.buf.len() - self.pos) as u64;
                        self.pos = self.buf.len();
                        return None;
                    };
                    let at = self.pos + off;
                    self.drops.garbage_bytes += off as u64;
                    self.pos = at;
                    let next = *self.buf.get(at + 1)?;
                    if next == 0xD8 {
                        self.start = at;
                        self.pos = at + 2;
                        self.state = State::Marker;
                    } else {
                        self.drops.garbage_bytes += 1;
                        self.pos = at + 1;
                    }
                }
                State::Marker => {
                    // Fill bytes (FF FF ...) may precede a marker.
                    while self.buf.get(self.pos) == Some(&0xFF) && self.buf.get(self.pos + 1) == Some(&0xFF) {
                        self.pos += 1;
                    }
                    let (&b0, &m) = (self.buf.get(self.pos)?, self.buf.get(self.pos + 1)?);
                    if b0 != 0xFF || m == 0x00 || m == 0xD8 {
                        self.abandon(true);
                        continue;
                    }
                    match m {
                        0xD9 if self.pos + 2 - self.start > self.max_frame_size => self.abandon(false),
                        0xD9 => return Some(self.emit(self.pos + 2)),
                        0x01 | 0xD0..=0xD7 => self.pos += 2,
                        _ => {
                            let len_bytes = self.buf.get(self.pos + 2..self.pos + 4)?;
                            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                            if len < 2 {
                                self.abandon(true);
                                continue;
                            }
                            let end = self.pos + 2 + len;
                            if end - self.start > self.max_frame_size {
                                self.abandon(false);
                                continue;
                            }
                            if end > self.buf.len() {
                                return None;
                            }
                            self.pos = end;
                            if m == 0xDA {
                                self.state = State::Entropy;
                            }
                        }
                    }
                }
                State::Entropy => {
                    let found = memchr::memchr(0xFF, self.buf.get(self.pos..).unwrap_or_default());
                    let Some(off) = found else {
                        self.pos = self.buf.len();
                        if self.pos - self.start > self.max_frame_size {
                            self.abandon(false);
                            continue;
                        }
                        return None;
                    };
                    let at = self.pos + off;
                    if at - self.start > self.max_frame_size {
                        self.abandon(false);
                        continue;
                    }
                    let Some(&next) = self.buf.get(at + 1) else {
                        // Keep the 0xFF; decide when the next byte arrives.
                        self.pos = at;
                        return None;
                    };
                    match next {
                        0x00 | 0xD0..=0xD7 => self.pos = at + 2,
                        0xFF => self.pos = at + 1,
                        _ => {
                            self.pos = at;
                            self.state = State::Marker;
                        }
                    }
                }
            }
        }
    }

    fn emit(&mut self, end: usize) -> Bytes {
        let frame = Bytes::copy_from_slice(self.buf.get(self.start..end).unwrap_or_default());
        self.pos = end;
        self.state = State::Soi;
        frame
    }

    /// Gives up on the current frame and resynchronises after its SOI.
    fn abandon(&mut self, corrupt: bool) {
        if corrupt {
            self.drops.corrupt_frames += 1;
        } else {
            self.drops.oversize_frames += 1;
        }
        self.pos = self.start + 2;
        self.state = State::Soi;
    }
}

#[cfg(test)]
mod tests;
