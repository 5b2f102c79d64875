//! The part of a DESCRIBE answer (SDP, RFC 4566) panelcam needs: the first H.264 or H.265
//! video track, its payload type, the URL to SETUP it with, and the parameter sets the camera
//! announces (`sprop-*`), so the first picture can go out without waiting for in-band ones.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;

use crate::media::{Codec, Params};

/// Cameras differ on `=` padding in `sprop-*`; accept both, and stray bits in the last
/// character too: the NAL unit's bytes are what matters.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The video track panelcam will SETUP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Video {
    pub codec: Codec,
    pub payload_type: u8,
    /// Absolute URL for SETUP.
    pub control: String,
    /// Absolute URL for PLAY (aggregate control).
    pub play: String,
    /// From `sprop-*`, when the camera sent a complete set.
    pub params: Option<Params>,
}

/// Why the SDP gave no usable track.
#[derive(Debug, PartialEq, Eq)]
pub enum SdpError {
    /// No H.264/H.265 video; the text lists what was offered.
    Unsupported(String),
    Malformed(String),
}

/// Finds the first H.264/H.265 video track of `sdp`. `base` is the URL relative controls are
/// resolved against: Content-Base, else Content-Location, else the DESCRIBE URL (RFC 2326 C.1.1).
pub fn parse(sdp: &str, base: &str) -> Result<Video, SdpError> {
    let mut session_control = None;
    let mut offered = Vec::new();
    // One entry per m= section: its kind, payload types, and attributes.
    let mut media: Vec<(String, Vec<String>, Vec<&str>)> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_ascii_whitespace();
            let kind = parts.next().unwrap_or_default().to_string();
            let formats = parts.skip(2).map(str::to_string).collect();
            media.push((kind, formats, Vec::new()));
        } else if let Some(a) = line.strip_prefix("a=") {
            match media.last_mut() {
                Some((_, _, attrs)) => attrs.push(a),
                None => {
                    if let Some(c) = a.strip_prefix("control:") {
                        session_control = Some(c.trim());
                    }
                }
            }
        }
    }
    if media.is_empty() {
        return Err(SdpError::Malformed("an SDP without any m= line".into()));
    }
    let play = match session_control {
        Some(c) => resolve(base, c),
        None => base.to_string(),
    };
    for (kind, formats, attrs) in &media {
        for format in formats {
            let rtpmap = attr_for(attrs, "rtpmap:", format);
            let name = rtpmap.map(|r| r.split_ascii_whitespace().next().unwrap_or_default()).unwrap_or(format);
            offered.push(format!("{kind} {}", super::message::shown(name)));
            let codec = match name.to_ascii_uppercase().as_str() {
                "H264/90000" => Codec::H264,
                "H265/90000" => Codec::H265,
                _ => continue,
            };
            if kind != "video" {
                continue;
            }
            let Ok(payload_type) = format.parse::<u8>() else { continue };
            let fmtp = attr_for(attrs, "fmtp:", format).unwrap_or_default();
            let fmtp_value = |key: &str| {
                fmtp.split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            };
            if let Some((_, mode)) = fmtp_value("packetization-mode")
                && mode.trim() == "2"
            {
                return Err(SdpError::Unsupported("H.264 with packetization-mode=2 (interleaved)".into()));
            }
            if let Some((_, d)) = fmtp_value("sprop-max-don-diff")
                && d.trim() != "0"
            {
                return Err(SdpError::Unsupported("H.265 with decoding order numbers (sprop-max-don-diff)".into()));
            }
            let control = attrs.iter().find_map(|a| a.strip_prefix("control:")).map(str::trim);
            let control = match control {
                Some(c) => resolve(base, c),
                None => base.to_string(),
            };
            let sprop = |key: &str| fmtp_value(key).map(|(_, v)| v.trim()).unwrap_or_default();
            let params = match codec {
                Codec::H264 => h264_params(sprop("sprop-parameter-sets")),
                Codec::H265 => h265_params(sprop("sprop-vps"), sprop("sprop-sps"), sprop("sprop-pps")),
            };
            return Ok(Video { codec, payload_type, control, play, params });
        }
    }
    offered.dedup();
    let offered = if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") };
    Err(SdpError::Unsupported(format!("the camera offers {offered}: no H.264 or H.265 video")))
}

/// The value of `a=<prefix><format> <value>` in one media section.
fn attr_for<'a>(attrs: &[&'a str], prefix: &str, format: &str) -> Option<&'a str> {
    attrs.iter().find_map(|a| {
        let rest = a.strip_prefix(prefix)?;
        let (pt, value) = rest.split_once(' ').unwrap_or((rest, ""));
        (pt == format).then_some(value.trim())
    })
}

/// RFC 2326 C.1.1: `*` is the base itself, an absolute `rtsp://` URL stands alone, anything
/// else is appended to the base with one '/' between. That last rule is FFmpeg's, which
/// panelcam used before and which cameras are tested against, rather than RFC 3986's
/// replacement of the base's last segment.
pub fn resolve(base: &str, control: &str) -> String {
    let lower = control.get(..8).unwrap_or(control).to_ascii_lowercase();
    if control.is_empty() || control == "*" {
        base.to_string()
    } else if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
        control.to_string()
    } else if base.ends_with('/') {
        format!("{base}{}", control.trim_start_matches('/'))
    } else {
        format!("{base}/{}", control.trim_start_matches('/'))
    }
}

fn decode(b64: &str) -> Option<Bytes> {
    B64.decode(b64.trim()).ok().filter(|v| !v.is_empty()).map(Bytes::from)
}

/// `sprop-parameter-sets=<SPS>,<PPS>[,...]`: picked by NAL type, so an SEI or a second PPS
/// in the list does no harm.
fn h264_params(sprop: &str) -> Option<Params> {
    let nals: Vec<Bytes> = sprop.split(',').filter_map(decode).collect();
    let find = |t: u8| nals.iter().find(|n| n.first().is_some_and(|b| b & 0x1f == t)).cloned();
    Some(Params { codec: Codec::H264, vps: None, sps: find(7)?, pps: find(8)? })
}

fn h265_params(vps: &str, sps: &str, pps: &str) -> Option<Params> {
    // Each may list several; the first is the one in use at the start.
    let first = |s: &str| s.split(',').find_map(decode);
    Some(Params { codec: Codec::H265, vps: Some(first(vps)?), sps: first(sps)?, pps: first(pps)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GST: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Session\r\nt=0 0\r\na=control:*\r\n\
        a=range:npt=now-\r\nm=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n\
        a=framerate:25\r\na=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAH9kAUAW7ARAAAAMAEAAAAwPI8YMkgA==,aMuDyyA=;profile-level-id=42c01f;level-asymmetry-allowed=1\r\n\
        a=control:stream=0\r\n";

    #[test]
    fn finds_h264_track_and_parameter_sets() {
        let v = parse(GST, "rtsp://127.0.0.1:8554/cam/").unwrap();
        assert_eq!((v.codec, v.payload_type), (Codec::H264, 96));
        assert_eq!(v.control, "rtsp://127.0.0.1:8554/cam/stream=0");
        assert_eq!(v.play, "rtsp://127.0.0.1:8554/cam/");
        let p = v.params.unwrap();
        assert_eq!((p.sps[0], p.pps[0], p.sps.len(), p.pps.len()), (0x67, 0x68, 25, 5));
    }

    #[test]
    fn finds_h265_after_other_media() {
        let sdp = "v=0\nm=audio 0 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=control:track0\n\
            m=video 0 RTP/AVP 26 97\na=rtpmap:97 h265/90000\n\
            a=fmtp:97 sprop-vps=QAEMAf//;sprop-sps=QgEBAWAAAAM;sprop-pps=RAHBcg\n\
            a=control:rtsp://cam/ch1/track1\n";
        let v = parse(sdp, "rtsp://cam/ch1").unwrap();
        assert_eq!((v.codec, v.payload_type, v.control.as_str()), (Codec::H265, 97, "rtsp://cam/ch1/track1"));
        let p = v.params.unwrap();
        assert_eq!((p.vps.unwrap()[0] >> 1, p.sps[0] >> 1, p.pps[0] >> 1), (32, 33, 34));
    }

    #[test]
    fn says_what_was_offered_instead() {
        let sdp = "v=0\nm=video 0 RTP/AVP 26\nm=video 0 RTP/AVP 96\na=rtpmap:96 JPEG/90000\nm=audio 0 RTP/AVP 0\n";
        assert_eq!(
            parse(sdp, "rtsp://h/"),
            Err(SdpError::Unsupported(
                "the camera offers video 26, video JPEG/90000, audio 0: no H.264 or H.265 video".into()
            ))
        );
        assert!(matches!(parse("v=0\n", "rtsp://h/"), Err(SdpError::Malformed(_))));
        let dons = "m=video 0 RTP/AVP 96\na=rtpmap:96 H265/90000\na=fmtp:96 sprop-max-don-diff=2\n";
        assert!(matches!(parse(dons, "rtsp://h/"), Err(SdpError::Unsupported(_))));
        // Without sprop (or with garbage in it), parameter sets come in-band.
        let bare = "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 sprop-parameter-sets=!!,Zw\n";
        assert_eq!(parse(bare, "rtsp://h/s").unwrap().params, None);
    }

    #[test]
    fn resolves_controls() {
        assert_eq!(resolve("rtsp://h/a/", "trackID=1"), "rtsp://h/a/trackID=1");
        assert_eq!(resolve("rtsp://h/a", "trackID=1"), "rtsp://h/a/trackID=1");
        assert_eq!(resolve("rtsp://h/a?ch=1/", "t1"), "rtsp://h/a?ch=1/t1");
        assert_eq!(resolve("rtsp://h/a/", "*"), "rtsp://h/a/");
        assert_eq!(resolve("rtsp://h/a/", "RTSP://x/y"), "RTSP://x/y");
        assert_eq!(resolve("rtsp://h/a/", "/t"), "rtsp://h/a/t");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "(?s).{0,400}", lines in proptest::collection::vec(
            "(m=video 0 RTP/AVP [0-9]{1,3}|a=rtpmap:[0-9]{1,3} [Hh]26[45]/90000|a=fmtp:[0-9]{1,3} [a-z-]{0,20}=[A-Za-z0-9+/=,]{0,30}|a=control:.{0,10}|.{0,20})", 0..12)) {
            let _ = parse(&s, "rtsp://h/");
            let _ = parse(&lines.join("\r\n"), "rtsp://h/");
        }
    }
}
