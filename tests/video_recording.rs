//! Video recording on the panel (SQLite + filesystem): the camera's own H.264 in HLS and MP4
//! segments, playable, bit for bit, with sessions, pre-event buffer, ranges, export,
//! retention and crash repair.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use support::harness::*;

/// A 1280x720 camera (1 s GOP) recorded as 2 s HLS segments and 12 s MP4 files.
fn video_config(extra: Value) -> Value {
    let mut c = json!({"recording": {"hls_storage_enabled": true, "mp4_storage_type": "filesystem",
        "hls_segment_seconds": 2, "mp4_segment_minutes": 0.2, "pre_event_seconds": 4}});
    merge(&mut c, extra);
    c
}

async fn setup(config: Value, camera: Value) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "1280", "--height", "720", "--fps", "25"]).await;
    let server = Server::start(config, &[("cam", camera_json("/cam", &cam.url("/cam"), camera))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

/// Records `secs` seconds in one session; returns its JSON.
async fn record(server: &Server, secs: u64) -> Value {
    server.start_recording("cam", "video test").await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let s = server.stop_recording("cam").await["session"].clone();
    // The pipeline takes the last segments a moment after they are complete.
    tokio::time::sleep(Duration::from_secs(3)).await;
    s
}

fn files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_segments_are_playable_and_the_cameras_own_bytes() {
    let (cam, server) = setup(video_config(json!({})), json!({"ffmpeg": {"log_stderr": "console"}})).await;
    // A second RTSP client captures the same stream as a reference, copying packets.
    let reference = server.dir.0.join("reference.mp4");
    let mut capture = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &cam.url("/cam"), "-c", "copy", "-t", "40", "-y"])
        .arg(&reference)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let session = record(&server, 30).await;
    let _ = capture.wait().await;

    // MP4 segments: files of the spec's layout, 12 s each (first and last may be shorter).
    let list = server.get("/cam/control/recordings/mp4/segments").await.json();
    let segments = list["data"]["segments"].as_array().unwrap().clone();
    assert!(segments.len() >= 3, "{list}");
    let files = files_in(&server.dir.0.join("recordings/cam"));
    let mp4s: Vec<&PathBuf> = files.iter().filter(|p| p.extension().is_some_and(|e| e == "mp4")).collect();
    assert_eq!(mp4s.len(), segments.len());
    let day = &segments[0]["start_time"].as_str().unwrap()[..10].replace('-', "/");
    assert!(mp4s[0].to_string_lossy().contains(&format!("recordings/cam/{day}/cam_")), "{:?}", mp4s[0]);
    for seg in &segments[1..segments.len() - 1] {
        let name = seg["filename"].as_str().unwrap();
        let path = mp4s.iter().find(|p| p.ends_with(name)).unwrap();
        let probe = ffprobe(&path.to_string_lossy()).await;
        let stream = &probe["streams"][0];
        assert_eq!(
            (stream["codec_name"].as_str(), stream["width"].as_u64(), stream["height"].as_u64()),
            (Some("h264"), Some(1280), Some(720))
        );
        let d = probe_duration(&probe);
        assert!((10.8..=13.2).contains(&d), "{name}: {d} s for a 12 s segment");
        assert!((seg["duration"].as_f64().unwrap() - d).abs() < 0.5, "the index knows the duration: {seg} vs {d}");
    }

    // HLS segments through the timerange playlist: 2 s each.
    let (t1, t2) = (session["start_time"].as_str().unwrap(), session["end_time"].as_str().unwrap());
    let playlist = server.get(&format!("/cam/control/recordings/hls/timerange?t1={t1}&t2={t2}")).await;
    assert_eq!(playlist.status, 200);
    assert_eq!(playlist.header("content-type"), Some("application/vnd.apple.mpegurl"));
    let text = playlist.text();
    let durations: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().unwrap())
        .collect();
    assert!(durations.len() >= 12, "{text}");
    for d in &durations[1..durations.len() - 1] {
        assert!((1.8..=2.2).contains(d), "HLS segment of {d} s for 2 s configured:\n{text}");
    }
    let probe = ffprobe(&server.http_url(&format!("/cam/control/recordings/hls/timerange?t1={t1}&t2={t2}"))).await;
    assert_eq!(probe["streams"][0]["codec_name"], "h264");
    assert_eq!(probe["streams"][0]["profile"], "Constrained Baseline");
    let total = probe_duration(&probe);
    assert!((total - durations.iter().sum::<f64>()).abs() < 1.0, "the playlist plays for its length: {total}");

    // Bit for bit: the recorded packets are the camera's packets.
    let stored = packet_hashes(&mp4s[1].to_string_lossy()).await;
    let camera: std::collections::HashSet<String> =
        packet_hashes(&reference.to_string_lossy()).await.into_iter().collect();
    let same = stored.iter().filter(|h| camera.contains(*h)).count();
    assert!(
        stored.len() > 100 && same == stored.len(),
        "{same} of {} stored packets are byte-identical to the camera's",
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_do_not_touch_ffmpeg_or_viewers_and_keep_the_pre_event_buffer() {
    let (cam, server) = setup(video_config(json!({})), json!({})).await;
    let ffmpeg = ffmpeg_pids_for(cam.port);
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await; // fill the pre-event buffer
    // Frames queued while the test slept are not evidence; only fresh ones count.
    while next_binary(&mut ws, Duration::from_millis(50)).await.is_some() {}
    let id = server.start_recording("cam", "pre-event").await;
    let count_for = async |ws: &mut Ws, secs: u64| {
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        let mut n = 0;
        while std::time::Instant::now() < until {
            if next_binary(ws, Duration::from_millis(500)).await.is_some() {
                n += 1;
            }
        }
        n
    };
    let during = count_for(&mut ws, 6).await;
    let session = server.stop_recording("cam").await["session"].clone();
    let after = count_for(&mut ws, 3).await;
    assert!(
        during >= 45 && after >= 20,
        "the viewer kept its 10 fps through start and stop: {during} in 6 s, {after} in 3 s"
    );
    assert_eq!(ffmpeg_pids_for(cam.port), ffmpeg, "FFmpeg was not restarted");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let start = session["start_ms"].as_i64().unwrap();
    let spans = server
        .get(&format!("/cam/control/recordings/spans?from={}&to={}", start - 60_000, start + 60_000))
        .await
        .json();
    let first = spans["data"]["spans"][0]["start_ms"].as_i64().unwrap();
    assert!(
        start - first >= 3_000,
        "kept video starts ~4 s (pre_event_seconds) before the session ({} ms): {spans}",
        start - first
    );
    assert!(start - first <= 8_000, "but not much more: {} ms", start - first);
    let list = server.get("/cam/control/recordings/mp4/segments").await.json();
    assert_eq!(list["data"]["segments"][0]["session_id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_recording_needs_no_session() {
    let (_cam, server) = setup(video_config(json!({})), json!({"recording": {"continuous": true}})).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let spans = server.get("/cam/control/recordings/spans").await.json();
    let span = &spans["data"]["spans"][0];
    assert!(span["duration"].as_f64().unwrap() >= 4.0, "{spans}");
    let status = server.camera_status("cam").await;
    assert_eq!(status["video"]["keeping"], true, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests_are_exact_and_path_traversal_is_refused() {
    let (_cam, server) = setup(video_config(json!({})), json!({})).await;
    record(&server, 8).await;
    let list = server.get("/cam/control/recordings/mp4/segments").await.json();
    let seg = &list["data"]["segments"][0];
    let name = seg["filename"].as_str().unwrap_or_else(|| panic!("{list}"));
    let whole = server.get(&format!("/cam/control/recordings/mp4/segments/{name}")).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.body.len() as u64, seg["size"].as_u64().unwrap());
    let len = whole.body.len();
    for (range, from, to) in [
        ("bytes=100-199", 100, 199),
        ("bytes=-10", len - 10, len - 1),
        (&format!("bytes={}-", len - 5)[..], len - 5, len - 1),
    ] {
        let r = server
            .request("GET", &format!("/cam/control/recordings/mp4/segments/{name}"), &[("Range", range)], None)
            .await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, whole.body[from..=to], "{range}");
        assert_eq!(r.header("content-range"), Some(format!("bytes {from}-{to}/{len}").as_str()));
    }
    let r = server
        .request(
            "GET",
            &format!("/cam/control/recordings/mp4/segments/{name}"),
            &[("Range", &format!("bytes={len}-"))],
            None,
        )
        .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{len}").as_str()));
    for evil in ["..%2F..%2Fconfig.json", "..", "%2e%2e%2fcam.db", "cam.db", "a%00b.mp4"] {
        let r = server.get(&format!("/cam/control/recordings/mp4/segments/{evil}")).await;
        assert!(r.status == 400 || r.status == 404, "{evil}: {}", r.status);
        assert!(!r.text().contains("\"server\""), "{evil} leaked a file");
    }
    let r = server.get("/cam/hls/..%2F..%2Fconfig.json").await;
    assert!(r.status == 400 || r.status == 404);
    // Deleting one file, then a range.
    let del = server.admin("DELETE", &format!("/cam/control/recordings/mp4/segments/{name}"), None).await;
    assert_eq!(del.status, 200);
    assert_eq!(server.get(&format!("/cam/control/recordings/mp4/segments/{name}")).await.status, 404);
    let bulk = server
        .admin("DELETE", "/cam/control/recordings/mp4/segments?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z", None)
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.text());
    assert_eq!(server.get("/cam/control/recordings/mp4/segments").await.json()["data"]["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_export_of_three_segments_is_one_mp4() {
    let (_cam, server) = setup(video_config(json!({})), json!({})).await;
    record(&server, 42).await;
    let list = server.get("/cam/control/recordings/mp4/segments").await.json();
    let segs = list["data"]["segments"].as_array().unwrap();
    assert!(segs.len() >= 4, "{list}");
    let three = &segs[1..4];
    let sum: f64 = three.iter().map(|s| s["duration"].as_f64().unwrap()).sum();
    let from = three[0]["start_time"].as_str().unwrap();
    let to = three[2]["end_time"].as_str().unwrap();
    let body = json!({"from": from, "to": to}).to_string();
    let started = server.request("POST", "/cam/control/recordings/mp4/export", &[], Some(body.as_bytes())).await.json();
    let id = started["data"]["job_id"].as_u64().expect("a job id");
    let done = eventually(Duration::from_secs(60), async || {
        server.get(&format!("/cam/control/recordings/mp4/export/jobs/{id}")).await.json()["data"]["state"] == "done"
    })
    .await;
    assert!(done, "{}", server.get(&format!("/cam/control/recordings/mp4/export/jobs/{id}")).await.text());
    let jobs = server.get("/cam/control/recordings/mp4/export/jobs").await.json();
    assert_eq!(jobs["data"]["count"], 1);
    let file = server.get(&format!("/cam/control/recordings/mp4/export/download/{id}")).await;
    assert_eq!(file.status, 200);
    assert!(file.header("content-disposition").unwrap().contains(".mp4"));
    let path = server.dir.0.join("export.mp4");
    std::fs::write(&path, &file.body).unwrap();
    let probe = ffprobe(&path.to_string_lossy()).await;
    assert_eq!(probe["streams"][0]["codec_name"], "h264");
    assert_eq!(
        (probe["streams"][0]["width"].as_u64(), probe["streams"][0]["height"].as_u64()),
        (Some(1280), Some(720))
    );
    let d = probe_duration(&probe);
    assert!((d - sum).abs() <= 1.0, "export of three segments ({sum} s) lasts {d} s");
    let ranged = server
        .request("GET", &format!("/cam/control/recordings/mp4/export/download/{id}"), &[("Range", "bytes=0-99")], None)
        .await;
    assert_eq!((ranged.status, ranged.body.len()), (206, 100));
    let bad = server
        .request(
            "POST",
            "/cam/control/recordings/mp4/export",
            &[],
            Some(br#"{"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"}"#),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_in_every_local_store_but_keeps_protected_sessions() {
    let config = video_config(
        json!({"recording": {"cleanup_interval_hours": 0.0005, "hls_storage_retention": "8s", "mp4_storage_retention": "8s"}}),
    );
    let (_cam, server) = setup(config, json!({})).await;
    // Protected while it records, before retention can reach it.
    let kept_id = server.start_recording("cam", "kept").await;
    server.request("PUT", &format!("/cam/control/recordings/{kept_id}/keep"), &[], None).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let kept = server.stop_recording("cam").await["session"].clone();
    // Far enough apart that the second session's pre-event buffer is not the first one's video.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let old = record(&server, 6).await;
    let (old_from, old_to) = (old["start_ms"].as_i64().unwrap() + 1000, old["end_ms"].as_i64().unwrap());
    let gone = eventually(Duration::from_secs(20), async || {
        let hls = server.get(&format!("/cam/control/recordings/spans?from={old_from}&to={old_to}")).await.json();
        hls["data"]["spans"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(gone, "HLS segments of the unprotected session were deleted");
    let after = server.get("/cam/control/recordings/mp4/segments").await.json();
    let kept_from = kept["start_ms"].as_i64().unwrap();
    for seg in after["data"]["segments"].as_array().unwrap() {
        assert!(seg["start_ms"].as_i64().unwrap() < old_from, "only kept-session MP4s remain: {seg}");
        assert!(std::path::Path::new(&server.dir.0).exists());
    }
    let left = after["data"]["segments"].as_array().unwrap();
    assert!(!left.is_empty(), "the kept session's MP4 segments stay: {after}");
    assert!(left.iter().all(|m| m["session_id"] == kept_id), "only kept-session MP4s remain: {after}");
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("video retention deleted") && !l.contains("mp4_segments=0")),
        "MP4 retention ran: {log}"
    );
    let kept_spans =
        server.get(&format!("/cam/control/recordings/spans?from={kept_from}&to={}", kept["end_ms"])).await.json();
    assert!(!kept_spans["data"]["spans"].as_array().unwrap().is_empty(), "the kept session's video stays");
    let mp4_files = files_in(&server.dir.0.join("recordings/cam"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .count();
    assert_eq!(mp4_files, left.len(), "deleted segments left no files behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_file_is_repaired_at_startup() {
    let config = video_config(json!({"recording": {"mp4_segment_minutes": 5}}));
    let (_cam, mut server) = setup(config, json!({})).await;
    server.start_recording("cam", "crash").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let parts: Vec<PathBuf> = files_in(&server.dir.0.join("recordings/cam"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".mp4.part"))
        .collect();
    assert_eq!(parts.len(), 1, "a 5-minute file is being written");
    server.kill9();
    server.wait_exit(Duration::from_secs(5)).await;
    // A torn write at the end, as a power cut would leave it.
    let mut f = std::fs::OpenOptions::new().append(true).open(&parts[0]).unwrap();
    std::io::Write::write_all(&mut f, &[0, 0, 0x40, 0, b'm', b'o', b'o', b'f', 1, 2, 3]).unwrap();
    drop(f);
    server.spawn().await;
    let list = server.get("/cam/control/recordings/mp4/segments").await.json();
    let seg = &list["data"]["segments"][0];
    let name = seg["filename"].as_str().unwrap_or_else(|| panic!("{list}"));
    let path = server.dir.0.join("repaired.mp4");
    std::fs::write(&path, server.get(&format!("/cam/control/recordings/mp4/segments/{name}")).await.body).unwrap();
    let probe = ffprobe(&path.to_string_lossy()).await;
    let d = probe_duration(&probe);
    assert!(d >= 4.0, "the repaired file plays its whole segments: {d} s");
    let decode = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .await
        .unwrap();
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "decodes cleanly: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
    assert!(server.log().contains("repaired an MP4 segment"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_segments_are_deleted_by_session_and_by_time_range() {
    let (_cam, server) =
        setup(video_config(json!({"recording": {"mp4_storage_type": "disabled", "pre_event_seconds": 0}})), json!({}))
            .await;
    let first = record(&server, 6).await;
    let second = record(&server, 6).await;
    let spans =
        |s: &serde_json::Value| format!("/cam/control/recordings/spans?from={}&to={}", s["start_ms"], s["end_ms"]);
    assert!(!server.get(&spans(&first)).await.json()["data"]["spans"].as_array().unwrap().is_empty());

    let r =
        server.admin("DELETE", &format!("/cam/control/recordings/hls/sessions/{}", first["session_id"]), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["data"]["deleted_segments"].as_u64().unwrap() >= 2);
    assert!(
        server.get(&spans(&first)).await.json()["data"]["spans"].as_array().unwrap().is_empty(),
        "the session's video is gone"
    );
    assert!(
        !server.get(&spans(&second)).await.json()["data"]["spans"].as_array().unwrap().is_empty(),
        "the other session's is not"
    );

    let (t1, t2) = (second["start_time"].as_str().unwrap(), second["end_time"].as_str().unwrap());
    let r = server.admin("DELETE", &format!("/cam/control/recordings/hls/timerange?t1={t1}&t2={t2}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A range delete removes the segments that start inside it; one already running at t1 stays.
    let left = server.get(&format!("/cam/control/recordings/hls/timerange?t1={t1}&t2={t2}")).await;
    if left.status == 200 {
        let segments = left.text().lines().filter(|l| l.starts_with("segments/")).count();
        assert!(segments <= 1, "{}", left.text());
    }
    let t1_ms = second["start_ms"].as_i64().unwrap();
    let inside = server
        .get(&format!("/cam/control/recordings/spans?from={}&to={}", t1_ms + 2500, second["end_ms"]))
        .await
        .json();
    assert!(inside["data"]["spans"].as_array().unwrap().is_empty(), "{inside}");
    for bad in ["/cam/control/recordings/hls/timerange", "/cam/control/recordings/hls/timerange?t1=x&t2=y"] {
        assert_eq!(server.admin("DELETE", bad, None).await.status, 400, "{bad}");
    }
    assert_eq!(server.admin("DELETE", "/cam/control/recordings/hls/sessions/9999", None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_guard_deletes_the_oldest_recordings_when_the_disk_is_too_full() {
    // Any real disk is fuller than 0.001 %: the guard must remove every unprotected recording.
    let config = video_config(json!({"recording": {"disk_max_percent": 0.001, "cleanup_interval_hours": 0.0005}}));
    let (_cam, server) = setup(config, json!({})).await;
    let kept_id = server.start_recording("cam", "kept").await;
    server.request("PUT", &format!("/cam/control/recordings/{kept_id}/keep"), &[], None).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.stop_recording("cam").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let old = record(&server, 5).await;
    let gone = eventually(Duration::from_secs(20), async || {
        let spans = server
            .get(&format!(
                "/cam/control/recordings/spans?from={}&to={}",
                old["start_ms"].as_i64().unwrap() + 1000,
                old["end_ms"]
            ))
            .await;
        spans.json()["data"]["spans"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(gone, "the oldest unprotected recording was deleted");
    assert!(server.log().contains("disk guard"), "the guard logs what it does");
    let kept = server.get("/cam/control/recordings/mp4/segments").await.json();
    assert!(
        kept["data"]["segments"].as_array().unwrap().iter().any(|s| s["session_id"] == kept_id),
        "protected video stays: {kept}"
    );
}
