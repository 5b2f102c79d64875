//! Test material shared by the media modules, from the real encoders: FFmpeg's
//! libx264/libx265 write an Annex B stream with an access unit delimiter before every
//! picture, which is cut here into `Params` and MP4-form access units as the depayloader
//! would deliver them.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;

use super::{AccessUnit, Codec, Params};

pub struct Clip {
    pub params: Params,
    /// Each picture's NAL units (parameter sets and delimiters left out), 4-byte lengths.
    pub units: Vec<(Bytes, bool)>,
}

/// Runs FFmpeg (failing the test if it cannot) and returns its stdout.
pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed for these tests");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `ffprobe -of json` output for `input` with `args`.
pub fn ffprobe(args: &[&str], input: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(input)
        .output()
        .expect("ffprobe must be installed for these tests");
    assert!(out.status.success(), "ffprobe {args:?} {}: {}", input.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A raw Annex B stream of `frames` test pictures at 25 fps with a keyframe every `gop`;
/// `encoder` is appended to the encoder's own options (`-x264-params`), `extra` to FFmpeg's
/// (a later `-pix_fmt` wins over the default yuv420p).
pub fn annexb(codec: Codec, size: &str, frames: u32, gop: u32, encoder: &str, extra: &[&str]) -> Vec<u8> {
    let src = format!("testsrc=size={size}:rate=25");
    let (frames, gop) = (frames.to_string(), gop.to_string());
    let mut args = vec!["-f", "lavfi", "-i", &src, "-frames:v", &frames, "-pix_fmt", "yuv420p"];
    let x264 = format!("aud=1{encoder}");
    let x265 = format!("aud=1:log-level=error{encoder}");
    match codec {
        Codec::H264 => args.extend(["-c:v", "libx264", "-bf", "0", "-g", &gop, "-x264-params", &x264]),
        Codec::H265 => args.extend(["-c:v", "libx265", "-bf", "0", "-g", &gop, "-x265-params", &x265]),
    }
    args.extend(extra);
    args.extend(["-f", if codec == Codec::H264 { "h264" } else { "hevc" }, "-"]);
    ffmpeg(&args)
}

/// The NAL units of an Annex B stream (start codes and trailing zero bytes removed).
pub fn nal_units_annexb(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        let mut nal = &stream[s..end];
        while let Some((0, rest)) = nal.split_last() {
            nal = rest;
        }
        out.push(nal);
    }
    out
}

/// Cuts an Annex B stream with delimiters into parameter sets and access units.
pub fn split(codec: Codec, stream: &[u8]) -> Clip {
    let kind = |nal: &[u8]| match codec {
        Codec::H264 => nal[0] & 0x1f,
        Codec::H265 => (nal[0] >> 1) & 0x3f,
    };
    // (delimiter, VPS, SPS, PPS, first keyframe type, last keyframe type)
    let (aud, vps, sps, pps, key) = match codec {
        Codec::H264 => (9, 255, 7, 8, 5..=5),
        Codec::H265 => (35, 32, 33, 34, 16..=21),
    };
    let (mut v, mut s, mut p) = (None, None, None);
    let mut units: Vec<(Vec<u8>, bool)> = Vec::new();
    for nal in nal_units_annexb(stream) {
        let t = kind(nal);
        if t == aud {
            units.push((Vec::new(), false));
        } else if t == vps {
            v.get_or_insert_with(|| Bytes::copy_from_slice(nal));
        } else if t == sps {
            s.get_or_insert_with(|| Bytes::copy_from_slice(nal));
        } else if t == pps {
            p.get_or_insert_with(|| Bytes::copy_from_slice(nal));
        } else {
            let unit = units.last_mut().expect("a delimiter before every picture");
            unit.0.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            unit.0.extend_from_slice(nal);
            unit.1 |= key.contains(&t);
        }
    }
    Clip {
        params: Params { codec, vps: v, sps: s.expect("an SPS"), pps: p.expect("a PPS") },
        units: units.into_iter().map(|(d, k)| (Bytes::from(d), k)).collect(),
    }
}

/// The clip's units as the depayloader delivers them: 25 fps from `first_pts`, arriving at
/// `wall_ms` plus their presentation time.
pub fn access_units(clip: &Clip, first_pts: i64, wall_ms: i64) -> Vec<AccessUnit> {
    let now = Instant::now();
    clip.units
        .iter()
        .enumerate()
        .map(|(i, (data, keyframe))| {
            let pts = first_pts + i as i64 * 3600;
            AccessUnit {
                data: data.clone(),
                keyframe: *keyframe,
                pts,
                after_loss: false,
                wall_ms: wall_ms + pts / 90,
                arrived: now,
            }
        })
        .collect()
}

/// (duration, size, sha256) of each packet in FFmpeg's `framehash` output (`-c copy`: the
/// packets are the MP4 samples as stored).
pub fn framehash_packets(text: &[u8]) -> Vec<(u64, usize, String)> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[3].parse().unwrap(), f[4].parse().unwrap(), f[5].to_string())
        })
        .collect()
}
