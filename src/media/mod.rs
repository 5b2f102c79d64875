//! The media router (issue 11): a camera's own H.264/H.265, depayloaded by panelcam
//! (`crate::rtsp`), goes from here to every consumer without being decoded:
//!
//! ```text
//! rtsp::session ──AccessUnit──▶ Hub ──▶ H.264 viewers (fMP4 over WebSocket: MSE, WebCodecs)
//!                                  ├──▶ segmenter (HLS fMP4 segments in the spool: recording)
//!                                  └──▶ transcoder (FFmpeg → JPEG, only while JPEGs are wanted)
//! ```
//!
//! The types here are what the parts agree on; each part lives in its own file.

pub mod fmp4;
pub mod hub;
pub mod recording;
pub mod router;
pub mod segmenter;
pub mod sps;
#[cfg(test)]
mod tests;
pub mod transcoder;

use std::time::Instant;

use bytes::Bytes;

/// The video codecs panelcam can depayload and pass through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// A stream's parameter sets as the camera sent them: NAL units without start code or
/// length prefix (SDP `sprop-*`, or in-band before a keyframe).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub codec: Codec,
    /// H.265 only.
    pub vps: Option<Bytes>,
    pub sps: Bytes,
    pub pps: Bytes,
}

/// One coded picture, complete: it leaves the depayloader when the camera's last RTP packet
/// of the picture (the marker bit) arrives.
#[derive(Clone, Debug)]
pub struct AccessUnit {
    /// The picture's NAL units exactly as the camera sent them, each preceded by its length
    /// as 4 bytes big-endian: the form of an MP4 sample.
    pub data: Bytes,
    /// Starts with an IDR (H.264) or IRAP (H.265) picture: a decoder can start here.
    pub keyframe: bool,
    /// Presentation time in 90 kHz units: the RTP timestamp, extended past its wrap and
    /// counted from the session's first picture.
    pub pts: i64,
    /// Packets were lost since the previous unit: this unit (unless a keyframe) may refer to
    /// data a decoder never saw.
    pub after_loss: bool,
    /// Wall-clock time its last packet arrived, milliseconds since the Unix epoch.
    pub wall_ms: i64,
    /// Monotonic time its last packet arrived.
    pub arrived: Instant,
}

/// What an RTSP session reports, in order: `Params` before the first unit and again
/// whenever the parameter sets change (a new resolution, say).
#[derive(Clone, Debug)]
pub enum Event {
    Params(Params),
    Unit(AccessUnit),
}

/// The NAL units of an MP4-form sample (4-byte lengths); stops at the first length that
/// does not fit.
pub fn nal_units(sample: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = sample;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        let (nal, after) = tail.split_at_checked(len)?;
        rest = after;
        Some(nal)
    })
}
