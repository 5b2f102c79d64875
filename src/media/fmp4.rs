//! Writing fragmented MP4 (ISO 14496-12) for one video track: the init segment (`ftyp` +
//! `moov`) a player needs once, and fragments (`moof` + `mdat`) of any number of samples.
//! The same bytes serve browsers live (one access unit per fragment: MSE and WebCodecs) and
//! the recording (one fragment per HLS segment, see `segmenter.rs`). Reading is
//! `crate::video::fmp4`'s.
//!
//! Timescale is 90 kHz, the RTP clock, so presentation times pass through unscaled. Samples
//! are in decode order with no composition offsets: the depayloader gives one time per
//! picture, and cameras' streams have no B-frames.

mod config;

use bytes::Bytes;

use super::sps::{parse_h264, parse_h265};
use super::{Codec, Params};

/// The 90 kHz RTP clock: the timescale of the track.
pub const TIMESCALE: u32 = 90_000;
const TRACK_ID: u32 = 1;

/// What a player must know about the stream before the first fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub codec: Codec,
    /// RFC 6381 (`avc1.64001F`, `hvc1.1.6.L93.B0`): MSE's `codecs=` and WebCodecs' `codec`.
    pub codec_string: String,
    /// Displayed size (cropping applied); at most 65535 each, what a sample entry can hold.
    pub width: u32,
    pub height: u32,
    /// The `avcC`/`hvcC` box payload: WebCodecs' `VideoDecoderConfig.description`.
    pub description: Bytes,
}

/// The track a stream's parameter sets describe; `Err` says what is wrong with them.
pub fn track(params: &Params) -> Result<Track, String> {
    let (codec_string, width, height, description) = match params.codec {
        Codec::H264 => {
            let info = parse_h264(&params.sps)?;
            let avcc = config::avcc(&info, &params.sps, &params.pps)?;
            (info.codec_string(), info.width, info.height, avcc)
        }
        Codec::H265 => {
            let vps = params.vps.as_ref().ok_or("H.265 parameters without a VPS")?;
            let info = parse_h265(&params.sps)?;
            let hvcc = config::hvcc(&info, vps, &params.sps, &params.pps)?;
            (info.codec_string(), info.width, info.height, hvcc)
        }
    };
    if width > u32::from(u16::MAX) || height > u32::from(u16::MAX) {
        return Err(format!("picture size {width}x{height} is larger than MP4 can say"));
    }
    Ok(Track { codec: params.codec, codec_string, width, height, description: Bytes::from(description) })
}

/// One sample of a fragment.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The coded picture in MP4 form (NAL units with 4-byte lengths): `AccessUnit::data`.
    pub data: &'a [u8],
    /// Until the next sample, in 90 kHz units.
    pub duration: u32,
    pub keyframe: bool,
}

/// Builds boxes in one buffer: a box is opened with a placeholder size that `close` fills.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn open(&mut self, kind: &[u8; 4]) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(kind);
        at
    }

    fn close(&mut self, at: usize) {
        let size = u32::try_from(self.buf.len() - at).unwrap_or(u32::MAX);
        if let Some(field) = self.buf.get_mut(at..at + 4) {
            field.copy_from_slice(&size.to_be_bytes());
        }
    }

    fn boxed(&mut self, kind: &[u8; 4], body: impl FnOnce(&mut Writer)) {
        let at = self.open(kind);
        body(self);
        self.close(at);
    }

    /// A "full box": version and 24 bits of flags before the body.
    fn full(&mut self, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Writer)) {
        self.boxed(kind, |w| {
            w.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
            body(w)
        });
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// The identity transformation matrix of `mvhd` and `tkhd`.
    fn unity_matrix(&mut self) {
        for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000u32] {
            self.u32(v);
        }
    }
}

/// `ftyp` + `moov` for one video track; the brands are FFmpeg's for HLS fMP4.
pub fn init_segment(track: &Track) -> Bytes {
    let mut w = Writer { buf: Vec::with_capacity(720 + track.description.len()) };
    let (width, height) = (track.width.min(65535) as u16, track.height.min(65535) as u16);
    w.boxed(b"ftyp", |w| {
        w.bytes(b"iso5");
        w.u32(512);
        w.bytes(b"iso5iso6mp41");
    });
    w.boxed(b"moov", |w| {
        w.full(b"mvhd", 0, 0, |w| {
            w.zeros(8); // creation and modification time
            w.u32(1000); // movie timescale: only durations in `mvhd`/`tkhd` use it, all 0
            w.u32(0); // duration: not known, the fragments say it
            w.u32(0x0001_0000); // rate 1.0
            w.u16(0x0100); // volume 1.0
            w.zeros(10);
            w.unity_matrix();
            w.zeros(24);
            w.u32(TRACK_ID + 1); // next_track_ID
        });
        w.boxed(b"trak", |w| {
            w.full(b"tkhd", 0, 0x3, |w| {
                // enabled, in movie
                w.zeros(8);
                w.u32(TRACK_ID);
                w.zeros(4);
                w.u32(0); // duration
                w.zeros(8);
                w.zeros(8); // layer, alternate_group, volume (0: video), reserved
                w.unity_matrix();
                w.u32(u32::from(width) << 16); // 16.16 fixed point
                w.u32(u32::from(height) << 16);
            });
            w.boxed(b"mdia", |w| {
                w.full(b"mdhd", 0, 0, |w| {
                    w.zeros(8);
                    w.u32(TIMESCALE);
                    w.u32(0);
                    w.u16(0x55c4); // language "und"
                    w.u16(0);
                });
                w.full(b"hdlr", 0, 0, |w| {
                    w.u32(0);
                    w.bytes(b"vide");
                    w.zeros(12);
                    w.bytes(b"VideoHandler\0");
                });
                w.boxed(b"minf", |w| {
                    w.full(b"vmhd", 0, 1, |w| w.zeros(8));
                    w.boxed(b"dinf", |w| {
                        w.full(b"dref", 0, 0, |w| {
                            w.u32(1);
                            w.full(b"url ", 0, 1, |_| {}); // flag 1: media in this file
                        });
                    });
                    w.boxed(b"stbl", |w| {
                        w.full(b"stsd", 0, 0, |w| {
                            w.u32(1);
                            sample_entry(w, track, width, height);
                        });
                        // Empty: every sample is in a fragment.
                        w.full(b"stts", 0, 0, |w| w.u32(0));
                        w.full(b"stsc", 0, 0, |w| w.u32(0));
                        w.full(b"stsz", 0, 0, |w| w.zeros(8));
                        w.full(b"stco", 0, 0, |w| w.u32(0));
                    });
                });
            });
        });
        w.boxed(b"mvex", |w| {
            w.full(b"trex", 0, 0, |w| {
                w.u32(TRACK_ID);
                w.u32(1); // sample description 1
                w.zeros(12); // default duration, size, flags: every trun says its own
            });
        });
    });
    Bytes::from(w.buf)
}

/// VisualSampleEntry (ISO 14496-12 12.1.3) with its decoder configuration.
fn sample_entry(w: &mut Writer, track: &Track, width: u16, height: u16) {
    let (entry, config) = match track.codec {
        Codec::H264 => (b"avc1", b"avcC"),
        Codec::H265 => (b"hvc1", b"hvcC"),
    };
    w.boxed(entry, |w| {
        w.zeros(6);
        w.u16(1); // data_reference_index
        w.zeros(16);
        w.u16(width);
        w.u16(height);
        w.u32(0x0048_0000); // 72 dpi
        w.u32(0x0048_0000);
        w.u32(0);
        w.u16(1); // frame_count
        w.zeros(32); // compressorname
        w.u16(0x0018); // depth: colour, no alpha
        w.u16(0xffff); // pre_defined -1
        w.boxed(config, |w| w.bytes(&track.description));
    });
}

/// `sample_depends_on` 2 (an I picture); not a non-sync sample.
const SYNC: u32 = 0x0200_0000;
/// `sample_depends_on` 1 and `sample_is_non_sync_sample`.
const NON_SYNC: u32 = 0x0101_0000;
/// `trun` flags: data-offset, sample-duration, sample-size and sample-flags present.
const TRUN_FLAGS: u32 = 0x0701;
/// `tfhd` flag: offsets count from the `moof`, so a fragment stands alone.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// `moof` + `mdat` holding `samples` in order. `sequence` counts fragments (`mfhd`, from 1);
/// `base_decode_time` is the first sample's time in 90 kHz units (`tfdt`). One allocation,
/// of the exact size.
pub fn fragment(sequence: u32, base_decode_time: u64, samples: &[Sample<'_>]) -> Bytes {
    Bytes::from(fragment_vec(sequence, base_decode_time, samples))
}

fn fragment_vec(sequence: u32, base_decode_time: u64, samples: &[Sample<'_>]) -> Vec<u8> {
    let data_len: usize = samples.iter().map(|s| s.data.len()).sum();
    // moof 8, mfhd 16, traf 8, tfhd 16, tfdt (version 1) 20, trun 20 + 12 per sample.
    let moof_len = 88 + 12 * samples.len();
    // A 64-bit `mdat` size only past 4 GiB, which the segmenter's cap never reaches.
    let mdat_header = if data_len + 8 > u32::MAX as usize { 16 } else { 8 };
    let mut w = Writer { buf: Vec::with_capacity(moof_len + mdat_header + data_len) };
    w.boxed(b"moof", |w| {
        w.full(b"mfhd", 0, 0, |w| w.u32(sequence));
        w.boxed(b"traf", |w| {
            w.full(b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |w| w.u32(TRACK_ID));
            w.full(b"tfdt", 1, 0, |w| w.u64(base_decode_time));
            w.full(b"trun", 0, TRUN_FLAGS, |w| {
                w.u32(u32::try_from(samples.len()).unwrap_or(u32::MAX));
                // The first sample's data, right after the mdat header.
                w.u32(u32::try_from(moof_len + mdat_header).unwrap_or(u32::MAX));
                for s in samples {
                    w.u32(s.duration);
                    w.u32(u32::try_from(s.data.len()).unwrap_or(u32::MAX));
                    w.u32(if s.keyframe { SYNC } else { NON_SYNC });
                }
            });
        });
    });
    if mdat_header == 16 {
        w.u32(1);
        w.bytes(b"mdat");
        w.u64((data_len + 16) as u64);
    } else {
        w.u32((data_len + 8) as u32);
        w.bytes(b"mdat");
    }
    for s in samples {
        w.bytes(s.data);
    }
    w.buf
}

#[cfg(test)]
mod tests;
