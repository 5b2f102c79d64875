//! Crashes during recording: `kill -9` at random moments, 20 times. After each one the index
//! database must pass `PRAGMA integrity_check`, and after the restart the recording must list
//! (and serve) every frame that was captured more than one second before the kill: frames
//! appended to a data file but not yet indexed are found and indexed by the startup repair.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::harness::*;

/// Cheap pseudo-random milliseconds in `lo..hi` (no rand crate for one test).
fn random_ms(lo: u64, hi: u64) -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    lo + nanos.wrapping_mul(6364136223846793005).rotate_right(17) % (hi - lo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_kill_9_during_recording_loses_nothing_older_than_a_second() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    let mut server = Server::start(json!({}), &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))]).await;
    let db_path = server.dir.0.join("recordings/cam.db");
    let mut checked = 0;
    for round in 0..20 {
        server.wait_streaming("cam", Duration::from_secs(20)).await;
        let session = server.start_recording("cam", &format!("round {round}")).await;
        let started = panelcam::util::now_ms();
        // Watch the live frames: each one carries the capture time the recorder stores.
        let mut ws = ws_connect(&server.ws_url("/cam/control")).await.unwrap();
        let (reply, _) = command(&mut ws, json!({"cmd": "live"})).await;
        assert_eq!(reply["code"], 200);
        let run_for = Duration::from_millis(random_ms(1200, 3000));
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + run_for;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(ControlMsg::Frame { ts, .. })) =
                tokio::time::timeout_at(deadline, next_control(&mut ws, Duration::from_secs(1))).await
            {
                seen.push(ts);
            }
        }
        let killed_at = panelcam::util::now_ms();
        server.kill9();
        server.wait_exit(Duration::from_secs(5)).await;
        drop(ws);

        // Before panelcam runs again: the index as the crash left it.
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(integrity, "ok", "round {round}");
        drop(conn);

        server.spawn().await;
        let session_now = server.get(&format!("/cam/control/recordings?from={started}")).await.json();
        let closed = &session_now["data"]["sessions"][0];
        assert_eq!(closed["session_id"], session, "round {round}");
        assert!(closed["end_time"].is_string(), "round {round}: the crashed session was closed at startup: {closed}");

        // Frames captured after the session started (plus the start's own latency) and more
        // than a second before the kill must all be listed.
        let listed = server.get(&format!("/cam/control/recordings/{session}/frames?limit=100000")).await.json();
        let stored: Vec<i64> =
            listed["data"]["frames"].as_array().unwrap().iter().map(|f| f["ts_ms"].as_i64().unwrap()).collect();
        let must_have: Vec<i64> =
            seen.iter().copied().filter(|&ts| ts >= started + 300 && ts < killed_at - 1000).collect();
        assert!(
            !must_have.is_empty() || run_for < Duration::from_millis(1500),
            "round {round}: saw {} frames",
            seen.len()
        );
        for ts in &must_have {
            // The store keeps capture times; a same-millisecond neighbour moves by a few ms.
            let n = stored.iter().filter(|&&s| s >= *ts && s <= ts + 5).count();
            assert_eq!(n, 1, "round {round}: frame {ts} ({} ms before the kill) missing", killed_at - ts);
        }
        // And the newest of them is served, bytes and all.
        if let Some(last) = must_have.last() {
            let r = server.get(&format!("/cam/control/recordings/frames/{last}?tolerance=5")).await;
            assert_eq!(r.status, 200, "round {round}");
        }
        checked += must_have.len();
    }
    assert!(checked > 100, "only {checked} frames verified over 20 crashes");
}
