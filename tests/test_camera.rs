//! The test camera's misbehaviour options, checked with real FFmpeg as the RTSP client: if
//! these fail, tests of panelcam's own RTSP client that rely on them prove nothing.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::barcode::decode_barcode;
use support::harness::*;

/// What an FFmpeg run left behind.
struct FfmpegRun {
    success: bool,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `ffmpeg -nostdin -nostats <args>` to completion; after 15 s it is killed and what it
/// wrote so far is returned as a failed run.
async fn ffmpeg(args: &[&str]) -> FfmpegRun {
    use tokio::io::AsyncReadExt;
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run ffmpeg");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf).await;
        buf
    });
    let stderr = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf).await;
        buf
    });
    let success = match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(status) => status.expect("wait for ffmpeg").success(),
        Err(_) => {
            let _ = child.kill().await;
            false
        }
    };
    let stderr = String::from_utf8_lossy(&stderr.await.unwrap()).into_owned();
    FfmpegRun { success, stdout: stdout.await.unwrap(), stderr }
}

/// Decodes `frames` frames over RTSP/TCP and discards them.
async fn read_frames(url: &str, frames: u32) -> FfmpegRun {
    ffmpeg(&["-rtsp_transport", "tcp", "-i", url, "-frames:v", &frames.to_string(), "-f", "null", "-"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_answers_401_without_credentials_and_streams_with_them() {
    let cam = TestCamera::builder(&["--width", "320", "--height", "240"]).auth("operator", "pw-7731").start().await;

    let anonymous = read_frames(&cam.url("/cam"), 5).await;
    assert!(!anonymous.success && anonymous.stderr.contains("401 Unauthorized"), "{}", anonymous.stderr);
    let wrong = format!("rtsp://operator:wrong@127.0.0.1:{}/cam", cam.port);
    let wrong = read_frames(&wrong, 5).await;
    assert!(!wrong.success && wrong.stderr.contains("401 Unauthorized"), "{}", wrong.stderr);
    // Offered both schemes, FFmpeg answers with Digest.
    let admitted = read_frames(&cam.url_with_credentials("/cam"), 10).await;
    assert!(admitted.success, "{}", admitted.stderr);

    let basic = TestCamera::builder(&["--width", "320", "--height", "240"])
        .auth("operator", "pw-7731")
        .auth_scheme(RtspAuth::Basic)
        .start()
        .await;
    let admitted = read_frames(&basic.url_with_credentials("/cam"), 10).await;
    assert!(admitted.success, "{}", admitted.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_loses_and_reorders_rtp_packets_over_udp() {
    let cam = TestCamera::builder(&["--width", "640", "--height", "360"]).lossy(5).start().await;
    let url = cam.url("/cam");
    let watch = |reorder_queue: &'static str| {
        let url = url.clone();
        async move {
            ffmpeg(&[
                "-rtsp_transport",
                "udp",
                "-reorder_queue_size",
                reorder_queue,
                "-i",
                &url,
                "-t",
                "6",
                "-f",
                "null",
                "-",
            ])
            .await
        }
    };
    // With FFmpeg's default jitter buffer (500 packets, 100 ms) delayed packets are put back
    // in order and only lost ones are reported missing. With a 2-packet buffer a delayed
    // packet finds its successors already passed on and is thrown away as "too late", which
    // only a reordered packet can be.
    let (default_buffer, tiny_buffer) = tokio::join!(watch("500"), watch("2"));

    assert!(default_buffer.success, "{}", default_buffer.stderr);
    let missed = default_buffer.stderr.matches("RTP: missed").count();
    // 6 s of 640x360 is about 1,400 packets: 5 % is about 70 losses, in bursts of one or two.
    assert!(missed >= 10, "only {missed} losses reported:\n{}", default_buffer.stderr);
    let late = tiny_buffer.stderr.matches("received too late").count();
    assert!(late >= 3, "only {late} reordered packets reported:\n{}", tiny_buffer.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_alternates_sizes_and_keeps_the_barcode_readable() {
    // 320x240 and the default second size, 640x360: small frames keep the test light when it
    // shares two cores with the others.
    let cam = TestCamera::builder(&["--barcode", "--width", "320", "--height", "240", "--fps", "10"])
        .resize_every(2)
        .start()
        .await;
    // showinfo logs each frame's size as decoded; scaling to one size afterwards gives a
    // stream of equal frames to read barcodes from (the band scales with the frame).
    let (w, h) = (640, 360);
    let run = ffmpeg(&[
        "-rtsp_transport",
        "udp",
        "-i",
        &cam.url("/cam"),
        "-t",
        "7",
        "-vf",
        &format!("showinfo,scale={w}:{h}"),
        "-pix_fmt",
        "gray",
        "-f",
        "rawvideo",
        "-",
    ])
    .await;
    assert!(run.success, "{}", run.stderr);

    let sizes: Vec<&str> = run.stderr.split(" s:").skip(1).filter_map(|rest| rest.split_whitespace().next()).collect();
    let switches = sizes.windows(2).filter(|p| p[0] != p[1]).count();
    assert!(sizes.contains(&"320x240") && sizes.contains(&"640x360"), "sizes seen: {sizes:?}");
    assert!(switches >= 2, "{switches} switches in {sizes:?}");

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let frames: Vec<&[u8]> = run.stdout.chunks_exact(w * h).collect();
    let unreadable =
        frames.iter().filter(|f| decode_barcode(f, w, h).is_none_or(|ts| now.abs_diff(ts) > 30_000)).count();
    assert!(frames.len() >= 50, "{} frames", frames.len());
    assert_eq!(unreadable, 0, "{unreadable} of {} frames without a recent barcode", frames.len());
}
