//! The media router end to end (issue 11): the RTSP test camera read by panelcam's own RTSP
//! client, its H.264 passed to WebSocket viewers as fMP4 without decoding, and JPEGs made
//! only while something wants them.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use support::client::{next_binary, ws_connect};
use support::h264::*;
use support::harness::*;

async fn setup(
    camera_args: &[&str],
    extra_camera: serde_json::Value,
    config: serde_json::Value,
) -> (TestCamera, Server) {
    let cam = TestCamera::start(camera_args).await;
    let camera = camera_json("/cam", &cam.url("/cam"), extra_camera);
    let server = Server::start(config, &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

/// Reads the socket until `n` fragments arrived; returns the init info and the fragments.
/// `started`: this socket already had its init segment.
async fn collect_more(
    ws: &mut support::client::Ws,
    n: usize,
    started: bool,
) -> (Vec<serde_json::Value>, Vec<Fragment>) {
    let (mut inits, mut fragments) = (Vec::new(), Vec::new());
    while fragments.len() < n {
        match next_video(ws, Duration::from_secs(10)).await.expect("the video socket keeps delivering") {
            VideoMsg::Init { info, segment } => {
                assert_eq!(&segment[4..8], b"ftyp", "an init segment starts with ftyp");
                inits.push(info);
            }
            VideoMsg::Fragment(f) => {
                assert!(started || !inits.is_empty(), "a fragment before any init segment");
                fragments.push(f);
            }
            VideoMsg::Unavailable { reason, .. } => panic!("no passthrough: {reason}"),
        }
    }
    (inits, fragments)
}

async fn collect(ws: &mut support::client::Ws, n: usize) -> (Vec<serde_json::Value>, Vec<Fragment>) {
    collect_more(ws, n, false).await
}

/// A NAL unit without trailing zero bytes (which FFmpeg's Annex B output adds after some).
fn trim_zeros(nal: &[u8]) -> &[u8] {
    let end = nal.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    &nal[..end]
}

/// As `ffprobe -show_data_hash sha256` writes it.
fn sha256_hex(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_viewers_get_the_cameras_own_samples_and_nothing_is_decoded() {
    let (cam, server) = setup(&["--width", "1280", "--height", "720", "--fps", "25"], json!({}), json!({})).await;
    // An independent reader of the same (shared) camera stream: FFmpeg, copying into MP4.
    let reference = server.dir.0.join("reference.mp4");
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &cam.url("/cam"), "-c", "copy", "-t", "6", "-y"])
        .arg(&reference)
        .spawn()
        .unwrap();
    // Past one GOP (1 s), so everything the viewer gets (its start GOP included) is also FFmpeg's.
    tokio::time::sleep(Duration::from_millis(2000)).await;

    let mut ws = ws_connect(&server.ws_url("/cam/video")).await.unwrap();
    let (inits, fragments) = collect(&mut ws, 50).await;
    let info = &inits[0];
    assert!(info["codec"].as_str().unwrap().starts_with("avc1.42"), "the test camera's Baseline profile: {info}");
    assert_eq!((info["width"].as_u64(), info["height"].as_u64()), (Some(1280), Some(720)));
    assert!(!info["description"].as_str().unwrap().is_empty(), "the avcC for WebCodecs");
    assert!(fragments[0].keyframe, "a viewer starts at a keyframe");
    for pair in fragments.windows(2) {
        assert_eq!(pair[1].decode_time - pair[0].decode_time, 3600, "25 fps, nothing skipped");
    }

    // Nothing decodes: the camera's only reader is panelcam, and no FFmpeg runs for it.
    let status = server.camera_status("cam").await;
    assert_eq!(status["passthrough"]["available"], true, "{status}");
    assert_eq!(status["jpeg"]["transcoding"], false, "{status}");
    assert!(children_named(server.pid(), "ffmpeg").is_empty(), "no FFmpeg while only H.264 is watched");

    // Bit for bit: every sample is one of the camera's pictures as FFmpeg received them.
    assert!(ffmpeg.wait().await.unwrap().success());
    let camera: HashSet<String> =
        support::video::packet_hashes(&reference.to_string_lossy()).await.into_iter().collect();
    assert!(camera.len() > 100, "the reference holds {} packets", camera.len());
    let same = fragments.iter().filter(|f| camera.contains(&sha256_hex(&f.sample))).count();
    assert_eq!(same, fragments.len(), "{same} of {} samples equal the camera's", fragments.len());
    for f in &fragments {
        for nal in nal_units(&f.sample) {
            assert!(!nal.is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcoder_runs_only_while_jpegs_are_wanted() {
    let config = json!({"transcoding": {"jpeg_idle_seconds": 1}});
    let (_cam, server) = setup(&["--width", "640", "--height", "360", "--fps", "25"], json!({}), config).await;
    let mut h264 = ws_connect(&server.ws_url("/cam/video")).await.unwrap();
    let (_, before) = collect(&mut h264, 10).await;
    assert!(children_named(server.pid(), "ffmpeg").is_empty(), "nobody wants JPEGs yet");

    // The first MJPEG viewer starts the transcoder; its first picture is the current one.
    let mut mjpeg = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    let jpeg = next_binary(&mut mjpeg, Duration::from_secs(5)).await.expect("a JPEG once a viewer asks");
    assert_eq!(support::client::jpeg_size(&jpeg), (640, 360));
    assert_eq!(children_named(server.pid(), "ffmpeg").len(), 1, "one transcoder");
    assert_eq!(server.camera_status("cam").await["jpeg"]["transcoding"], true);
    for _ in 0..10 {
        next_binary(&mut mjpeg, Duration::from_secs(2)).await.expect("JPEGs keep coming");
    }

    // The last one leaves: the transcoder stops after the grace period.
    drop(mjpeg);
    let stopped = eventually(Duration::from_secs(10), async || children_named(server.pid(), "ffmpeg").is_empty()).await;
    assert!(stopped, "the transcoder still runs with nobody wanting JPEGs");
    assert_eq!(server.camera_status("cam").await["jpeg"]["transcoding"], false);

    // The H.264 viewer never noticed: no unit skipped through all of it.
    let (_, after) = collect_more(&mut h264, 25, true).await;
    let all: Vec<&Fragment> = before.iter().chain(after.iter()).collect();
    let last_before = before.last().unwrap().decode_time;
    assert!(after[0].decode_time > last_before);
    let (mut got, mut expected) =
        (all.len() as u64, (after.last().unwrap().decode_time - before[0].decode_time) / 3600 + 1);
    // The socket was not read while the MJPEG part ran: units in between were buffered, not lost.
    let mut rest = 0;
    while let Some(VideoMsg::Fragment(_)) = next_video(&mut h264, Duration::from_millis(50)).await {
        rest += 1;
    }
    got += rest;
    expected += rest;
    assert!(got >= expected.saturating_sub(1), "{got} of {expected} units reached the H.264 viewer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_wakes_an_idle_transcoder() {
    let config = json!({"transcoding": {"jpeg_idle_seconds": 1}});
    let (_cam, server) = setup(&["--width", "640", "--height", "360"], json!({}), config).await;
    assert!(children_named(server.pid(), "ffmpeg").is_empty());
    let r = server.get("/cam/snapshot").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(support::client::jpeg_size(&r.body), (640, 360));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_restart_resumes_the_h264_viewer_without_a_new_connection() {
    let (mut cam, server) = setup(&["--width", "640", "--height", "360"], json!({}), json!({})).await;
    let mut ws = ws_connect(&server.ws_url("/cam/video")).await.unwrap();
    let (_, before) = collect(&mut ws, 10).await;
    cam.restart().await;
    // Read past what was buffered before the restart, then the camera's new session.
    let (_, after) = collect_more(&mut ws, 80, true).await;
    let last = after.last().unwrap();
    assert!(last.decode_time > before.last().unwrap().decode_time, "time never goes back for a viewer");
    for pair in after.windows(2) {
        assert!(pair[1].decode_time > pair[0].decode_time, "decode times only increase");
    }
    let status = server.camera_status("cam").await;
    assert!(status["restarts"].as_u64().unwrap() >= 1, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_panelcam_cannot_pass_through_says_so_and_mjpeg_still_works() {
    let camera = json!({"path": "/demo", "url": "lavfi:testsrc2=size=320x240:rate=10", "reconnect_interval": 1});
    let server = Server::start(json!({}), &[("demo", camera)]).await;
    server.wait_streaming("demo", Duration::from_secs(20)).await;
    let mut ws = ws_connect(&server.ws_url("/demo/video")).await.unwrap();
    match next_video(&mut ws, Duration::from_secs(5)).await {
        Some(VideoMsg::Unavailable { reason, code }) => {
            assert_eq!(code, Some(4415));
            assert!(reason.contains("not an RTSP source"), "{reason}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    let status = server.camera_status("demo").await;
    assert_eq!(status["passthrough"]["available"], false);
    let mut mjpeg = ws_connect(&server.ws_url("/demo/live")).await.unwrap();
    assert!(next_binary(&mut mjpeg, Duration::from_secs(5)).await.is_some(), "MJPEG from FFmpeg as before");
}

/// Reads JPEGs from an MJPEG socket until `n` arrived; their sizes.
async fn jpeg_sizes(ws: &mut support::client::Ws, n: usize) -> Vec<(u16, u16)> {
    let mut sizes = Vec::new();
    while sizes.len() < n {
        let jpeg = next_binary(ws, Duration::from_secs(10)).await.expect("JPEGs keep coming");
        sizes.push(support::client::jpeg_size(&jpeg));
    }
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_with_packet_loss_and_reordering_keeps_every_mode_going() {
    let cam = TestCamera::builder(&["--width", "640", "--height", "360", "--fps", "25"]).lossy(3).start().await;
    let camera = camera_json("/cam", &cam.url("/cam"), json!({"transport": "udp"}));
    let config = json!({"recording": {"enabled": true, "hls_live": true}});
    let server = Server::start(config, &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;

    let mut h264 = ws_connect(&server.ws_url("/cam/video")).await.unwrap();
    let mut mjpeg = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    let (_, fragments) = collect(&mut h264, 100).await;
    for pair in fragments.windows(2) {
        assert!(pair[1].decode_time > pair[0].decode_time, "decode times only increase");
    }
    assert!(jpeg_sizes(&mut mjpeg, 20).await.iter().all(|s| *s == (640, 360)));
    let status = server.camera_status("cam").await;
    assert!(status["passthrough"]["units_after_loss"].as_u64().unwrap() > 0, "the camera did lose packets: {status}");
    assert_eq!(status["state"], "streaming");
    // The live HLS (the recording's segments) goes on too.
    let listed = eventually(Duration::from_secs(15), async || {
        let r = server.get("/cam/hls/live.m3u8").await;
        r.status == 200 && r.text().contains(".m4s")
    })
    .await;
    assert!(listed, "segments are written despite the loss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_change_reaches_h264_viewers_and_the_transcoder() {
    let cam = TestCamera::builder(&["--width", "640", "--height", "360", "--alt-size", "320x240"])
        .resize_every(2)
        .start()
        .await;
    let camera = camera_json("/cam", &cam.url("/cam"), json!({"ffmpeg": {"scale": null, "output_framerate": null}}));
    let server = Server::start(json!({}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;

    let mut h264 = ws_connect(&server.ws_url("/cam/video")).await.unwrap();
    let mut mjpeg = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    // 6 s of video: at least two switches.
    let (inits, fragments) = collect(&mut h264, 150).await;
    let widths: HashSet<u64> = inits.iter().filter_map(|i| i["width"].as_u64()).collect();
    assert_eq!(widths, HashSet::from([640, 320]), "a new init segment for each size: {inits:?}");
    assert!(inits.len() >= 3, "{} init segments", inits.len());
    for pair in fragments.windows(2) {
        assert!(pair[1].decode_time > pair[0].decode_time);
    }
    let sizes: HashSet<(u16, u16)> = jpeg_sizes(&mut mjpeg, 120).await.into_iter().collect();
    assert_eq!(sizes, HashSet::from([(640, 360), (320, 240)]), "the transcoder follows the new size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_transcoder_comes_back_and_none_outlives_panelcam() {
    let (_cam, mut server) = setup(&["--width", "640", "--height", "360"], json!({}), json!({})).await;
    let mut mjpeg = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    next_binary(&mut mjpeg, Duration::from_secs(5)).await.expect("a JPEG");
    let first = children_named(server.pid(), "ffmpeg");
    assert_eq!(first.len(), 1, "one transcoder");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first[0] as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let killed = std::time::Instant::now();
    // JPEGs resume from a new FFmpeg; the RTSP session was never touched.
    let mut resumed = false;
    while killed.elapsed() < Duration::from_secs(10) {
        if next_binary(&mut mjpeg, Duration::from_secs(10)).await.is_some()
            && killed.elapsed() > Duration::from_millis(800)
        {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "JPEGs came back after the transcoder was killed");
    let again = children_named(server.pid(), "ffmpeg");
    assert_eq!(again.len(), 1);
    assert_ne!(again, first);
    assert!(!std::path::Path::new(&format!("/proc/{}", first[0])).exists(), "the killed one was reaped");
    let status = server.camera_status("cam").await;
    assert_eq!(status["restarts"], 0, "the camera's session went on: {status}");
    assert!(status["last_error"].as_str().unwrap_or_default().contains("JPEG transcoder"), "{status}");

    // kill -9 of panelcam: the kernel ends the transcoder too (parent-death signal).
    server.kill9();
    assert_eq!(server.wait_exit(Duration::from_secs(5)).await, None);
    let gone =
        eventually(Duration::from_secs(3), async || !std::path::Path::new(&format!("/proc/{}", again[0])).exists())
            .await;
    assert!(gone, "the transcoder outlived panelcam");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_passes_through_and_its_jpegs_come_from_the_transcoder() {
    let (cam, server) = setup(&["--codec", "h265", "--width", "640", "--height", "360"], json!({}), json!({})).await;
    let reference = server.dir.0.join("reference.mp4");
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &cam.url("/cam"), "-c", "copy", "-t", "5", "-y"])
        .arg(&reference)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut ws = ws_connect(&server.ws_url("/cam/video")).await.unwrap();
    let (inits, fragments) = collect(&mut ws, 30).await;
    assert!(inits[0]["codec"].as_str().unwrap().starts_with("hvc1.1."), "H.265 Main: {}", inits[0]);
    assert_eq!((inits[0]["width"].as_u64(), inits[0]["height"].as_u64()), (Some(640), Some(360)));
    assert!(fragments[0].keyframe);
    let mut mjpeg = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    let jpeg = next_binary(&mut mjpeg, Duration::from_secs(5)).await.expect("a JPEG from the H.265 stream");
    assert_eq!(support::client::jpeg_size(&jpeg), (640, 360));
    assert!(ffmpeg.wait().await.unwrap().success());
    // FFmpeg's MP4 muxer moves H.265 parameter sets out of the samples, so the pictures are
    // compared slice by slice: every coded slice a viewer got is one of FFmpeg's, byte for byte.
    let annex_b = server.dir.0.join("reference.hevc");
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&reference)
        .args(["-c", "copy", "-bsf:v", "hevc_mp4toannexb", "-f", "hevc", "-y"])
        .arg(&annex_b)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let stream = std::fs::read(&annex_b).unwrap();
    let starts: Vec<usize> =
        stream.windows(3).enumerate().filter(|(_, w)| *w == [0, 0, 1]).map(|(i, _)| i + 3).collect();
    let camera_slices: HashSet<&[u8]> = starts
        .iter()
        .enumerate()
        .map(|(k, &at)| {
            let end = starts.get(k + 1).map_or(stream.len(), |next| next - 3);
            trim_zeros(&stream[at..end])
        })
        .filter(|nal| (nal[0] >> 1) & 0x3f < 32)
        .collect();
    let slices: Vec<&[u8]> = fragments
        .iter()
        .flat_map(|f| nal_units(&f.sample))
        .filter(|nal| (nal[0] >> 1) & 0x3f < 32)
        .map(trim_zeros)
        .collect();
    assert!(slices.len() >= fragments.len());
    let same = slices.iter().filter(|s| camera_slices.contains(*s)).count();
    assert_eq!(same, slices.len(), "{same} of {} H.265 slices equal the camera's", slices.len());
}
