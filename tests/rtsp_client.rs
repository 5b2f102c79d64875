//! panelcam's own RTSP client (`panelcam::rtsp::run`) against real peers.
//!
//! **The GStreamer test camera** (`scripts/test-camera.py`), over TCP and UDP. Byte-exactness
//! is checked against the camera itself rather than against a second client: two RTSP
//! sessions never see the same window of frames, so comparing with FFmpeg's copy of another
//! session would compare different pictures. Instead the camera runs with `--dump`, which tees
//! the encoder's output (what goes into `rtph264pay`) to a file. Then:
//! - every slice NAL unit panelcam handed out must be, byte for byte, the next slice of the
//!   dump (one contiguous run: nothing changed, lost, duplicated or reordered), and every other
//!   NAL unit (SPS, PPS, SEI) must be one the encoder produced;
//! - each unit must start with a picture's first slice and hold no other picture's first slice
//!   (the access unit boundaries are right);
//! - an independent decoder (FFmpeg) must decode the units, written out as Annex B after the
//!   parameter sets, without a single error, one frame per unit.
//!
//! The payloader may drop access unit delimiters and repeats SPS/PPS before keyframes, which is
//! why only slices are matched as a sequence.
//!
//! **A scripted RTSP server in this process** for what the test camera cannot be made to do:
//! offer only MJPEG, go silent after PLAY, never answer.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use panelcam::config::Transport;
use panelcam::media::{Event, nal_units};
use panelcam::rtsp::{Error, Options, run};
use support::harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const CAMERA: &[&str] = &["--width", "320", "--height", "240", "--fps", "25", "--bitrate", "500"];

struct Received {
    events: Vec<Event>,
    result: Result<(), Error>,
    /// From the stop signal to `run` returning.
    stop_latency: Option<Duration>,
}

impl Received {
    fn units(&self) -> Vec<&panelcam::media::AccessUnit> {
        self.events.iter().filter_map(|e| if let Event::Unit(u) = e { Some(u) } else { None }).collect()
    }
}

/// Runs a session until `units` access units came (then stops it), it ends, or 20 s pass.
async fn receive(url: &str, transport: Transport, units: usize) -> Received {
    let options = Options { url: url.to_string(), transport, data_timeout: Duration::from_secs(5) };
    let (tx, mut rx) = watch::channel(false);
    let mut events = Vec::new();
    let mut stopped_at = None;
    let mut count = 0;
    let mut on_event = |e: Event| {
        if matches!(e, Event::Unit(_)) {
            count += 1;
        }
        events.push(e);
        if count >= units && stopped_at.is_none() {
            stopped_at = Some(Instant::now());
            let _ = tx.send(true);
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(20), run(&options, &mut on_event, &mut rx))
        .await
        .unwrap_or_else(|_| Err(Error::Failed("the test's 20 s ran out".into())));
    let stop_latency = stopped_at.map(|t| t.elapsed());
    Received { events, result, stop_latency }
}

/// The NAL units of the camera's dump: the payloader negotiates the encoder's output format,
/// 4-byte lengths ("avc") or start codes (Annex B, where trailing zero bytes belong to the next
/// start code).
fn camera_nal_units(data: &[u8]) -> Vec<&[u8]> {
    if !data.starts_with(&[0, 0, 1]) && !data.starts_with(&[0, 0, 0, 1]) {
        return nal_units(data).collect();
    }
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        let mut nal = &data[s..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        nals.push(nal);
    }
    nals
}

fn is_slice(nal: &[u8]) -> bool {
    matches!(nal[0] & 0x1f, 1 | 5)
}

/// `first_mb_in_slice == 0`: its ue(v) code is the single bit 1.
fn is_first_slice(nal: &[u8]) -> bool {
    is_slice(nal) && nal.get(1).is_some_and(|b| b & 0x80 != 0)
}

/// The checks in the module comment.
async fn check_against_camera(got: &Received, dump: &std::path::Path) {
    let units = got.units();
    assert!(units.len() >= 25, "{} units, result {:?}", units.len(), got.result);
    let Some(Event::Params(params)) = got.events.first() else { panic!("the first event is not Params") };
    assert_eq!((params.sps[0] & 0x1f, params.pps[0] & 0x1f), (7, 8));
    assert_eq!(params.sps[1], 66, "profile_idc of the camera's baseline profile");
    assert!(units[0].keyframe, "the first unit is not a keyframe");
    assert_eq!(units[0].pts, 0);
    for pair in units.windows(2) {
        assert!(pair[1].pts > pair[0].pts, "pts {} then {}", pair[0].pts, pair[1].pts);
    }
    let step = (units.last().unwrap().pts - units[0].pts) / (units.len() as i64 - 1);
    assert!((2400..=5400).contains(&step), "mean pts step {step} for 25 fps (3600)");
    assert!(units.iter().all(|u| !u.after_loss), "loss reported on a loopback connection");

    let mut got_slices = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let nals: Vec<&[u8]> = nal_units(&u.data).collect();
        assert_eq!(nals.iter().map(|n| n.len() + 4).sum::<usize>(), u.data.len(), "unit {i} has a torn length");
        let slices: Vec<&[u8]> = nals.iter().copied().filter(|n| is_slice(n)).collect();
        assert!(!slices.is_empty() && is_first_slice(slices[0]), "unit {i} does not start a picture");
        assert!(slices[1..].iter().all(|s| !is_first_slice(s)), "unit {i} holds two pictures");
        assert_eq!(u.keyframe, slices.iter().any(|s| s[0] & 0x1f == 5), "unit {i} keyframe flag");
        got_slices.push((i, nals));
    }

    // The dump is written as the encoder goes: wait until it holds the last slice we got.
    let last_slice = *got_slices.last().unwrap().1.iter().rev().find(|n| is_slice(n)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let dump_bytes = loop {
        let bytes = std::fs::read(dump).unwrap_or_default();
        if camera_nal_units(&bytes).contains(&last_slice) || Instant::now() > deadline {
            break bytes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let camera_nals = camera_nal_units(&dump_bytes);
    let camera_slices: Vec<&[u8]> = camera_nals.iter().copied().filter(|n| is_slice(n)).collect();
    let ours: Vec<&[u8]> = got_slices.iter().flat_map(|(_, n)| n.iter().copied().filter(|n| is_slice(n))).collect();
    let Some(start) = camera_slices.iter().position(|s| *s == ours[0]) else {
        panic!(
            "our first slice ({} bytes, {:02x?}) is not among the camera's {} slices ({} bytes of dump; sizes {:?})",
            ours[0].len(),
            &ours[0][..8],
            camera_slices.len(),
            dump_bytes.len(),
            camera_slices.iter().take(5).map(|s| s.len()).collect::<Vec<_>>()
        )
    };
    assert!(camera_slices.len() >= start + ours.len(), "the camera's output ends before ours");
    for (k, s) in ours.iter().enumerate() {
        assert!(
            camera_slices[start + k] == *s,
            "slice {k} differs from the camera's ({} vs {} bytes)",
            s.len(),
            camera_slices[start + k].len()
        );
    }
    for (i, nals) in &got_slices {
        for n in nals.iter().filter(|n| !is_slice(n)) {
            assert!(camera_nals.contains(n), "unit {i}: NAL unit type {} is not the camera's", n[0] & 0x1f);
        }
    }
    assert!(camera_nals.contains(&&params.sps[..]) && camera_nals.contains(&&params.pps[..]));

    // An independent decoder: FFmpeg decodes every unit, without complaint.
    let mut stream = Vec::new();
    for nal in [&params.sps[..], &params.pps[..]] {
        stream.extend_from_slice(&[0, 0, 0, 1]);
        stream.extend_from_slice(nal);
    }
    for u in &units {
        for nal in nal_units(&u.data) {
            stream.extend_from_slice(&[0, 0, 0, 1]);
            stream.extend_from_slice(nal);
        }
    }
    let file = dump.with_extension("ours.h264");
    std::fs::write(&file, &stream).unwrap();
    let out = tokio::process::Command::new("/usr/bin/ffmpeg")
        .args(["-v", "error", "-f", "h264", "-i"])
        .arg(&file)
        .args(["-f", "framecrc", "-"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "FFmpeg: {stderr}");
    let frames = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(frames, units.len(), "FFmpeg decoded {frames} frames of {} units", units.len());
}

async fn heavy_receives_the_cameras_exact_bytes(transport: Transport) {
    let dir = TempDir::new("rtsp-client");
    let dump = dir.0.join("camera.h264");
    let mut args = CAMERA.to_vec();
    let dump_arg = dump.to_string_lossy().to_string();
    args.extend(["--dump", &dump_arg]);
    let cam = TestCamera::start(&args).await;
    let got = receive(&cam.url("/cam"), transport, 40).await;
    assert!(got.result.is_ok(), "{:?}", got.result);
    let latency = got.stop_latency.unwrap();
    assert!(latency < Duration::from_millis(1100), "stopping took {latency:?} (TEARDOWN is bounded by 1 s)");
    eprintln!("{transport:?}: {} units, stopped in {latency:?}", got.units().len());
    check_against_camera(&got, &dump).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_rtsp_tcp_gives_the_cameras_exact_pictures() {
    heavy_receives_the_cameras_exact_bytes(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_rtsp_udp_gives_the_cameras_exact_pictures() {
    heavy_receives_the_cameras_exact_bytes(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_rtsp_authenticates_with_digest_and_basic() {
    let password = "s3cr%t pw";
    let mut args = CAMERA.to_vec();
    args.extend(["--user", "viewer", "--password", password, "--auth", "digest"]);
    let digest = TestCamera::start(&args).await;
    let good = format!("rtsp://viewer:s3cr%25t%20pw@127.0.0.1:{}/cam", digest.port);
    let got = receive(&good, Transport::Tcp, 3).await;
    assert!(got.result.is_ok() && got.units().len() >= 3, "{:?}", got.result);

    let wrong = format!("rtsp://viewer:s3cr%25t%20pw2@127.0.0.1:{}/cam", digest.port);
    let Err(Error::Failed(e)) = receive(&wrong, Transport::Tcp, 1).await.result else {
        panic!("a wrong password worked")
    };
    assert!(e.contains("401") && e.contains("refused") && !e.contains("s3cr"), "{e}");
    let Err(Error::Failed(e)) = receive(&digest.url("/cam"), Transport::Tcp, 1).await.result else { panic!() };
    assert!(e.contains("401") && e.contains("needs a user name"), "{e}");
    drop(digest);

    let mut args = CAMERA.to_vec();
    args.extend(["--user", "viewer", "--password", password, "--auth", "basic"]);
    let basic = TestCamera::start(&args).await;
    let good = format!("rtsp://viewer:s3cr%25t%20pw@127.0.0.1:{}/cam", basic.port);
    let got = receive(&good, Transport::Udp, 3).await;
    assert!(got.result.is_ok() && got.units().len() >= 3, "{:?}", got.result);
}

// ---------------------------------------------------------------------------------------------
// A scripted server.

/// Answers each request by `answer(method)` → (status line, extra headers, body), and records
/// the requests it got. `None` leaves a request unanswered.
async fn scripted(
    answer: fn(&str) -> Option<(&'static str, &'static str, &'static str)>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("rtsp://127.0.0.1:{}/live", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let Ok(n) = sock.read(&mut chunk).await else { return };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                buf.drain(..end + 4);
                let method = head.split(' ').next().unwrap_or_default().to_string();
                let cseq = head.lines().find_map(|l| l.strip_prefix("CSeq: ")).unwrap_or("0").to_string();
                log.lock().unwrap().push(head);
                if let Some((status, headers, body)) = answer(&method) {
                    let reply = format!(
                        "RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                }
            }
        }
    });
    (url, seen)
}

const H264_SDP: &str = "v=0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n";

#[tokio::test]
async fn rtsp_says_what_a_camera_without_h264_offers() {
    let (url, _) = scripted(|m| match m {
        "DESCRIBE" => Some((
            "200 OK",
            "Content-Type: application/sdp\r\n",
            "v=0\r\nm=video 0 RTP/AVP 26\r\nm=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n",
        )),
        _ => Some(("200 OK", "", "")),
    })
    .await;
    let got = receive(&url, Transport::Tcp, 1).await;
    let Err(Error::Unsupported(e)) = got.result else { panic!("{:?}", got.result) };
    assert_eq!(e, "the camera offers video 26, audio PCMA/8000: no H.264 or H.265 video");
}

#[tokio::test]
async fn rtsp_keeps_the_session_alive_and_gives_up_without_video() {
    let (url, seen) = scripted(|m| match m {
        "OPTIONS" => Some(("200 OK", "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n", "")),
        "DESCRIBE" => Some(("200 OK", "Content-Type: application/sdp\r\n", H264_SDP)),
        "SETUP" => {
            Some(("200 OK", "Session: 12345678;timeout=2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n", ""))
        }
        _ => Some(("200 OK", "", "")),
    })
    .await;
    let options = Options {
        url: url.replace("rtsp://", "rtsp://admin:pw@"),
        transport: Transport::Tcp,
        data_timeout: Duration::from_millis(2500),
    };
    let (_tx, mut rx) = watch::channel(false);
    let started = Instant::now();
    let result = run(&options, &mut |_| {}, &mut rx).await;
    let took = started.elapsed();
    let Err(Error::Failed(e)) = result else { panic!("{result:?}") };
    assert_eq!(e, "no video for 2.5 s");
    assert!(took >= Duration::from_millis(2400) && took < Duration::from_secs(4), "{took:?}");
    let seen = seen.lock().unwrap();
    let methods: Vec<&str> = seen.iter().map(|h| h.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER", "GET_PARAMETER"], "{seen:#?}");
    // Relative control against the request URL, credentials never on the wire, the session
    // id without its timeout on every request after SETUP.
    assert!(seen[2].starts_with(&format!("SETUP {url}/track1 RTSP/1.0")), "{}", seen[2]);
    assert!(seen.iter().all(|h| !h.contains("admin") && !h.contains("pw@")));
    assert!(seen[3..].iter().all(|h| h.contains("\r\nSession: 12345678\r\n") || h.ends_with("Session: 12345678")));
}

#[tokio::test]
async fn rtsp_stops_at_once_while_the_camera_is_silent() {
    let (url, _) = scripted(|m| if m == "DESCRIBE" { None } else { Some(("200 OK", "", "")) }).await;
    let options = Options { url, transport: Transport::Tcp, data_timeout: Duration::from_secs(5) };
    let (tx, mut rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(true);
    });
    let started = Instant::now();
    let result = run(&options, &mut |_| {}, &mut rx).await;
    assert!(result.is_ok(), "{result:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(400), "{took:?}");
}
