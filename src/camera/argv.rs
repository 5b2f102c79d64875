//! The FFmpeg command line for one camera: a pure function of its config, unit-tested.
//!
//! Latency decisions (measured with `scripts/bench`, see docs/latency.md):
//! - `-flags low_delay` on the input disables the decoder's frame threading, which otherwise
//!   holds back one frame per thread.
//! - `-threads 1` on the MJPEG encoder for the same reason (frame-threaded encoders queue
//!   frames); one core encodes 640 px JPEGs far faster than real time.
//! - The frame-rate reduction is a `select` filter with a stateful expression instead of the
//!   `fps` filter: `fps` must see the *next* input frame before it emits the current one,
//!   which costs one camera frame interval (40 ms at 25 fps) on every frame.
//! - `-fps_mode vfr`: the raw MJPEG muxer would otherwise default to constant frame rate and
//!   duplicate frames to fill the camera's nominal rate. Not `passthrough`: after a stall of
//!   ~90 ms, backlogged frames arrive 1 ms apart and round to the same output timestamp, which
//!   `passthrough` hands to the encoder ("Invalid pts <= last") and FFmpeg exits, recording and
//!   all; `vfr` drops such a frame instead (benches/live.rs `ffmpeg-stall`, same latency).

use crate::cmdline::split_command;
use crate::config::{CameraConfig, SourceKind, Transcoding};
use crate::media::Codec;
use crate::video::camera::{RUN_PLACEHOLDER, SegmentOutput};

/// Maps the spec's JPEG quality 1-100 (100 best) onto FFmpeg's MJPEG `-q:v` 2-31 (2 best).
/// The system we replace passed 75 straight through, which FFmpeg clamps to 31: its worst.
pub fn jpeg_qscale(quality: u8) -> u8 {
    let q = f64::from(quality.clamp(1, 100));
    (31.0 - (q - 1.0) * 29.0 / 99.0).round() as u8
}

/// The `select` expression that passes frames at `fps` without waiting for the next frame.
/// `ld(0)` holds the time the next frame is due; a frame within a quarter interval of that is
/// taken and the schedule advances by one interval (so 25 → 10 fps alternates gaps of 2 and 3
/// frames); after a stall or a timestamp jump the schedule restarts at the current frame.
/// `ld(1)` holds the last frame taken: nothing closer than half an interval passes, so a burst
/// of backlogged frames after a stall is not encoded twice.
pub fn rate_select_filter(fps: f64) -> String {
    let p = 1.0 / fps;
    let (e, h, two_p) = (p / 4.0, p / 2.0, 2.0 * p);
    format!(
        "select='if((gte(t,ld(0)-{e:.4})+gt(ld(0)-t,{two_p:.4}))*(gte(t-ld(1),{h:.4})+lt(t,ld(1))+eq(ld(1),0)),\
         st(1,t)*0+st(0,if(gt(abs(t-ld(0)),{p:.4}),t,ld(0))+{p:.4})*0+1,0)'"
    )
}

/// Restamps preview frames with their arrival time (seconds since the filter started).
pub const PREVIEW_CLOCK: &str = "setpts=(RTCTIME-RTCSTART)/(TB*1000000)";

/// The effective JPEG quality: the camera's `ffmpeg.quality`, else the (overridden)
/// transcoding quality.
pub fn effective_quality(cam: &CameraConfig, tx: &Transcoding) -> u8 {
    cam.ffmpeg.quality.unwrap_or(tx.quality)
}

/// The frame rate FFmpeg produces: `ffmpeg.output_framerate`, else the transcoding
/// `capture_framerate`; `None` = every camera frame.
pub fn ffmpeg_framerate(cam: &CameraConfig, tx: &Transcoding) -> Option<f64> {
    cam.ffmpeg.output_framerate.or((tx.capture_framerate > 0.0).then_some(tx.capture_framerate))
}

fn segment_args(kind: SourceKind, out: &SegmentOutput) -> Vec<String> {
    let mut a: Vec<String> = vec!["-map".into(), "0:v:0".into()];
    if kind.copies_video() {
        a.extend(["-c:v".into(), "copy".into()]);
    } else {
        // Keyframes exactly on segment boundaries, so segments are cut where they should be.
        let gop = ((out.encode_fps * out.segment_seconds as f64).round() as u64).max(1).to_string();
        let encode = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"];
        a.extend(["-vf".into(), format!("fps={}", out.encode_fps)]);
        a.extend(encode.iter().map(|s| s.to_string()));
        a.extend(
            ["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0", "-threads", "1"].iter().map(|s| s.to_string()),
        );
    }
    let dir = out.dir.display();
    let hls = [
        "-f".to_string(),
        "hls".into(),
        "-hls_time".into(),
        out.segment_seconds.to_string(),
        "-hls_list_size".into(),
        out.list_size.to_string(),
        "-hls_segment_type".into(),
        "fmp4".into(),
        "-hls_fmp4_init_filename".into(),
        format!("init_{RUN_PLACEHOLDER}.mp4"),
        // Wall-clock start of each segment in the playlist; write-then-rename segments.
        "-hls_flags".into(),
        "program_date_time+temp_file".into(),
        // Segment numbers start at the Unix time: unique across FFmpeg restarts.
        "-hls_start_number_source".into(),
        "epoch".into(),
        "-hls_segment_filename".into(),
        format!("{dir}/seg_%d.m4s"),
        format!("{dir}/live.m3u8"),
    ];
    a.extend(hls);
    a
}

/// FFmpeg's arguments (without the program name). Contains the camera URL with its
/// credentials: never log it, log [`crate::redact::redact_url`] of it.
pub fn ffmpeg_args(
    cam: &CameraConfig,
    tx: &Transcoding,
    segments: Option<&SegmentOutput>,
) -> Result<Vec<String>, String> {
    let f = &cam.ffmpeg;
    if let Some(command) = &f.command {
        let args = split_command(command)?;
        return Ok(args.into_iter().map(|a| a.replace("$url", cam.url.expose())).collect());
    }
    let mut a: Vec<String> = Vec::with_capacity(48);
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning"]);

    // Input.
    let kind = cam.source_kind();
    let wallclock = f.use_wallclock_as_timestamps.unwrap_or(segments.is_none());
    if wallclock {
        push(&["-use_wallclock_as_timestamps", "1"]);
    }
    match kind {
        SourceKind::Rtsp => push(&["-rtsp_transport", cam.transport.as_str()]),
        SourceKind::Lavfi => push(&["-re", "-f", "lavfi"]),
        SourceKind::File => push(&["-re", "-stream_loop", "-1"]),
        SourceKind::Http => {}
    }
    if let Some(size) = f.rtbufsize {
        push(&["-rtbufsize", &size.to_string()]);
    }
    push(&["-fflags", f.fflags.as_deref().unwrap_or("+nobuffer+discardcorrupt")]);
    push(&["-flags", f.flags.as_deref().unwrap_or("low_delay")]);
    if let Some(avio) = &f.avioflags {
        push(&["-avioflags", avio]);
    }
    a.extend(f.extra_input_args.iter().cloned());
    let input = match kind {
        SourceKind::Lavfi => cam.url.expose().trim_start_matches("lavfi:").to_string(),
        _ => cam.url.expose().to_string(),
    };
    a.extend(["-i".to_string(), input]);
    preview_output(&mut a, cam, tx, wallclock, 0);
    if let Some(out) = segments {
        a.extend(segment_args(kind, out));
    }
    Ok(a)
}

/// The live MJPEG preview on stdout. `skip` frames are decoded but not encoded: the
/// transcoder's backlog, decoded only to reach the current picture.
fn preview_output(a: &mut Vec<String>, cam: &CameraConfig, tx: &Transcoding, wallclock: bool, skip: usize) {
    let f = &cam.ffmpeg;
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-map", "0:v:0"]);
    let mut filters = Vec::new();
    if skip > 0 {
        filters.push(format!("select='gte(n,{skip})'"));
    }
    if !wallclock {
        // The recording keeps the camera's timestamps, but the preview must not depend on
        // them: a camera (or an RTSP server) that jumps back in time would make the MJPEG
        // encoder refuse frames ("Invalid pts") and take the whole process down. Arrival
        // time is what the preview needs anyway.
        filters.push(PREVIEW_CLOCK.to_string());
    }
    if let Some(fps) = ffmpeg_framerate(cam, tx) {
        filters.push(rate_select_filter(fps));
    }
    if let Some(scale) = &f.scale {
        filters.push(format!("scale={scale}"));
    }
    if !filters.is_empty() {
        push(&["-vf", &filters.join(",")]);
    }
    let codec = f.video_codec.as_deref().unwrap_or("mjpeg");
    push(&["-c:v", codec]);
    if codec == "mjpeg" {
        push(&["-q:v", &jpeg_qscale(effective_quality(cam, tx)).to_string()]);
    }
    if let Some(bitrate) = &f.video_bitrate {
        push(&["-b:v", bitrate]);
    }
    push(&["-threads", "1"]);
    push(&["-fps_mode", f.fps_mode.as_deref().unwrap_or("vfr")]);
    push(&["-flush_packets", f.flush_packets.as_deref().unwrap_or("1")]);
    if let Some(movflags) = &f.movflags {
        push(&["-movflags", movflags]);
    }
    a.extend(f.extra_output_args.iter().cloned());
    let format = f.output_format.as_deref().unwrap_or(&tx.output_format);
    a.extend(["-f".to_string(), format.to_string(), "pipe:1".to_string()]);
}

/// The on-demand JPEG transcoder's arguments: the camera's H.264/H.265 as panelcam
/// depayloaded it, on stdin (each access unit followed by an access unit delimiter, so
/// FFmpeg's parser knows the picture is complete without waiting for the next one), and
/// the same preview output as [`ffmpeg_args`]. The first `backlog - 1` pictures (the GOP
/// before the current picture) are decoded, not encoded.
pub fn transcoder_args(cam: &CameraConfig, tx: &Transcoding, codec: Codec, backlog: usize) -> Vec<String> {
    let mut a: Vec<String> = Vec::with_capacity(40);
    let format = match codec {
        Codec::H264 => "h264",
        Codec::H265 => "hevc",
    };
    // The smallest probe: the stream's format is known, and probing would hold back the
    // first picture. No `+nobuffer`: it drops the packets read while probing, which are the
    // backlog's keyframe (measured: the whole first GOP then failed to decode). With the
    // delimiter after each unit, decode + encode took 2.8 ms (p50) for 1280x720 → 640 px.
    let input = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "warning",
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-fflags",
        "+discardcorrupt",
        "-flags",
        "low_delay",
        "-f",
        format,
        "-i",
        "pipe:0",
    ];
    a.extend(input.iter().map(|s| s.to_string()));
    preview_output(&mut a, cam, tx, false, backlog.saturating_sub(1));
    a
}

#[cfg(test)]
mod tests;
