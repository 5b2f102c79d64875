//! The control WebSocket: replay pacing at 1× and 4×, goto, live, and malformed commands.

mod support;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{Value, json};
use support::harness::*;
use tokio_tungstenite::tungstenite::Message;

/// Records ~`secs` seconds and returns the session's frame timestamps.
async fn recorded(secs: u64) -> (TestCamera, Server, Vec<i64>) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    let server = Server::start(json!({}), &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let id = server.start_recording("cam", "replay test").await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    server.stop_recording("cam").await;
    let frames = server.get(&format!("/cam/control/recordings/{id}/frames")).await.json();
    let ts = frames["data"]["frames"].as_array().unwrap().iter().map(|f| f["ts_ms"].as_i64().unwrap()).collect();
    (cam, server, ts)
}

fn iso(ms: i64) -> String {
    // The server accepts Unix milliseconds as well as ISO; ISO keeps the test honest about the
    // spec's format.
    panelcam::util::iso_ms(ms)
}

/// Replays `[from, to]` at `speed`; returns (recorded ts, arrival) of each frame.
async fn replay(server: &Server, from: i64, to: i64, speed: f64) -> Vec<(i64, Instant)> {
    let mut ws = ws_connect(&server.ws_url("/cam/control")).await.unwrap();
    let (reply, _) = command(&mut ws, json!({"cmd": "speed", "speed": speed})).await;
    assert_eq!(reply["code"], 200, "{reply}");
    let (reply, mut early) = command(&mut ws, json!({"cmd": "start", "from": iso(from), "to": iso(to)})).await;
    assert_eq!(reply["code"], 200, "{reply}");
    let mut got: Vec<(i64, Instant)> = early.drain(..).map(|(ts, _)| (ts, Instant::now())).collect();
    let mut last_jpeg = bytes::Bytes::new();
    loop {
        match next_control(&mut ws, Duration::from_secs(10)).await.expect("replay frames or end") {
            ControlMsg::Frame { ts, jpeg } => {
                got.push((ts, Instant::now()));
                // Decoding in the loop (debug build) would delay reading the next frame.
                last_jpeg = jpeg;
            }
            ControlMsg::Reply(r) => {
                assert_eq!(r["data"]["event"], "end", "{r}");
                assert_eq!(jpeg_size(&last_jpeg), (640, 360));
                return got;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_replay_is_paced_by_recorded_time_at_1x_and_4x() {
    let (_cam, server, ts) = recorded(4).await;
    assert!(ts.len() >= 30, "{} frames", ts.len());
    let (from, to) = (ts[0], *ts.last().unwrap());
    let span = Duration::from_millis((to - from) as u64);
    for speed in [1.0, 4.0] {
        let got = replay(&server, from, to, speed).await;
        let sent: Vec<i64> = got.iter().map(|g| g.0).collect();
        assert_eq!(sent, ts, "every recorded frame, in order, exactly once at {speed}x");
        let took = got.last().unwrap().1 - got[0].1;
        let expected = span.div_f64(speed);
        let err = took.as_secs_f64() - expected.as_secs_f64();
        assert!(
            err.abs() < 0.15 + expected.as_secs_f64() * 0.05,
            "{speed}x: took {took:?}, recorded span / speed = {expected:?}"
        );
        // Each frame arrives on schedule relative to the first, not just on average.
        for (ts, at) in &got {
            let due = Duration::from_millis((ts - from) as u64).div_f64(speed);
            let late = (*at - got[0].1).as_secs_f64() - due.as_secs_f64();
            assert!(late.abs() < 0.1, "{speed}x: frame {ts} off schedule by {late:.3} s");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goto_lands_on_the_nearest_frame_and_step_moves_one_frame() {
    let (_cam, server, ts) = recorded(2).await;
    let mut ws = ws_connect(&server.ws_url("/cam/control")).await.unwrap();
    for (i, probe) in [(5, ts[5] + (ts[6] - ts[5]) / 3), (6, ts[6] - (ts[6] - ts[5]) / 3), (0, ts[0] - 60_000)] {
        let (reply, frames) = command(&mut ws, json!({"cmd": "goto", "timestamp": iso(probe)})).await;
        assert_eq!(reply["code"], 200, "{reply}");
        assert_eq!(frames.len(), 1, "goto shows the frame at once");
        assert_eq!(frames[0].0, ts[i], "goto {probe} lands on the nearest frame");
        assert_eq!(reply["data"]["timestamp"], iso(ts[i]));
    }
    let (_, frames) = command(&mut ws, json!({"cmd": "goto", "timestamp": iso(ts[3])})).await;
    assert_eq!(frames[0].0, ts[3]);
    let (reply, frames) = command(&mut ws, json!({"cmd": "step", "direction": 1})).await;
    assert_eq!((reply["code"].as_u64(), frames[0].0), (Some(200), ts[4]));
    let (_, frames) = command(&mut ws, json!({"cmd": "step", "direction": -1})).await;
    assert_eq!(frames[0].0, ts[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_sends_timestamped_frames() {
    let (_cam, server, _) = recorded(1).await;
    let mut ws = ws_connect(&server.ws_url("/cam/control")).await.unwrap();
    let (reply, _) = command(&mut ws, json!({"cmd": "live"})).await;
    assert_eq!(reply["code"], 200);
    let mut last = 0;
    for _ in 0..5 {
        match next_control(&mut ws, Duration::from_secs(2)).await.unwrap() {
            ControlMsg::Frame { ts, jpeg } => {
                let age = panelcam::util::now_ms() - ts;
                assert!((0..2000).contains(&age), "live frame is {age} ms old");
                assert!(ts > last);
                last = ts;
                jpeg_size(&jpeg);
            }
            ControlMsg::Reply(r) => panic!("unexpected {r}"),
        }
    }
    let (reply, _) = command(&mut ws, json!({"cmd": "stop"})).await;
    assert_eq!(reply["code"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_commands_get_errors_and_the_connection_stays() {
    let (_cam, server, ts) = recorded(1).await;
    let mut ws = ws_connect(&server.ws_url("/cam/control")).await.unwrap();
    let cases: Vec<(Value, u64, &str)> = vec![
        (json!("not an object"), 400, "JSON objects"),
        (json!({"cmd": "fly"}), 400, "unknown command"),
        (json!({"nocmd": 1}), 400, "missing"),
        (json!({"cmd": "start"}), 400, "\"from\" is required"),
        (json!({"cmd": "start", "from": "last tuesday"}), 400, "not a valid time"),
        (json!({"cmd": "start", "from": iso(ts[5]), "to": iso(ts[1])}), 400, "before"),
        (
            json!({"cmd": "start", "from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00Z"}),
            404,
            "no recorded frames",
        ),
        (json!({"cmd": "speed", "speed": 20}), 400, "outside"),
        (json!({"cmd": "speed", "speed": "fast"}), 400, "number"),
        (json!({"cmd": "goto"}), 400, "\"timestamp\" is required"),
        (json!({"cmd": "goto", "timestamp": "2025-08-15T10:00:00+a€"}), 400, "not a valid time"),
        (json!({"cmd": "pause"}), 409, "no replay"),
    ];
    for (cmd, code, needle) in cases {
        let (reply, _) = command(&mut ws, cmd.clone()).await;
        assert_eq!(reply["code"], code, "{cmd}: {reply}");
        assert!(reply["text"].as_str().unwrap().contains(needle), "{cmd}: {reply}");
    }
    ws.send(Message::Text("{{{{".into())).await.unwrap();
    let reply = next_control(&mut ws, Duration::from_secs(2)).await;
    assert!(matches!(reply, Some(ControlMsg::Reply(r)) if r["code"] == 400));
    let (reply, _) = command(&mut ws, json!({"cmd": "live"})).await;
    assert_eq!(reply["code"], 200, "still connected and working");
}
