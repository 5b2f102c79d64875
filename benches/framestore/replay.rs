//! Scenario `replay`: replay pacing at 1x through the real server. panelcam records the RTSP
//! test camera (1280x720 H.264 at 25 fps, the camera file: 640 px MJPEG at 10 fps) for
//! `2 x BENCH_SECONDS + 5` s (65 s by default), then replays the session at 1x on the control
//! WebSocket. For every frame, deviation = (arrival - first arrival) - (ts - first ts); the
//! drift is the deviation of the last frame, and the largest |deviation| shows jitter. The
//! receive loop only reads the 9-byte header; nothing is decoded.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;
use crate::support::harness::{Server, TestCamera, camera_json, command, ws_connect};

pub const DRIFT_TARGET_MS: f64 = 50.0;

pub async fn replay() {
    let record = scaled(2.0, 5.0) + Duration::from_secs(5);
    let camera = TestCamera::start(&["--width", "1280", "--height", "720", "--fps", "25"]).await;
    let server = Server::start(json!({}), &[("cam", camera_json("/cam", &camera.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    server.start_recording("cam", "replay benchmark").await;
    println!("recording {:.0} s of the test camera at 10 fps", record.as_secs_f64());
    tokio::time::sleep(record).await;
    let stopped = server.stop_recording("cam").await;
    let session = &stopped["session"];
    let (from, to) = (session["start_ms"].as_i64().unwrap(), session["end_ms"].as_i64().unwrap());
    let recorded = session["frame_count"].as_i64().unwrap_or(0);

    let mut ws = ws_connect(&server.ws_url("/cam/control")).await.expect("connect the control WebSocket");
    let (reply, _) = command(&mut ws, json!({"cmd": "speed", "speed": 1.0})).await;
    assert_eq!(reply["code"], 200, "{reply}");
    ws.send(Message::Text(json!({"cmd": "start", "from": from, "to": to}).to_string().into())).await.unwrap();
    // (recorded ts, arrival) per frame
    let mut got: Vec<(i64, Instant)> = Vec::with_capacity(recorded.max(0) as usize);
    let deadline = Duration::from_secs_f64(record.as_secs_f64() * 1.5 + 30.0);
    let started = Instant::now();
    loop {
        let left = deadline.saturating_sub(started.elapsed());
        let msg = tokio::time::timeout(left, ws.next()).await.expect("replay did not end in time");
        let Some(Ok(Message::Binary(b))) = msg else {
            assert!(matches!(msg, Some(Ok(_))), "control WebSocket closed: {msg:?}");
            continue;
        };
        let at = Instant::now();
        match b.first() {
            Some(0x00) if b.len() > 9 => got.push((i64::from_le_bytes(b[1..9].try_into().unwrap()), at)),
            Some(0x01) => {
                let r: Value = serde_json::from_slice(&b[1..]).expect("JSON reply");
                assert_eq!(r["code"], 200, "{r}");
                if r["data"]["event"] == "end" {
                    break;
                }
            }
            _ => panic!("unexpected control message {:?}", &b[..b.len().min(16)]),
        }
    }
    drop(ws);

    let (ts0, at0) = *got.first().expect("replayed frames");
    let deviation: Vec<f64> = got.iter().map(|(ts, at)| (*at - at0).as_secs_f64() * 1e3 - (ts - ts0) as f64).collect();
    let gaps = got.windows(2).filter(|w| w[1].0 - w[0].0 > panelcam::live::control::GAP_MS).count();
    let span = (got.last().unwrap().0 - ts0) as f64 / 1e3;
    let drift = *deviation.last().unwrap();
    let abs: Vec<f64> = deviation.iter().map(|d| d.abs()).collect();
    let worst = abs.iter().copied().fold(0.0, f64::max);
    let s = Summary::of(&abs).unwrap();
    println!(
        "replayed {} of {recorded} recorded frames over {span:.1} s of recorded time ({} gaps > {} ms skipped by design)",
        got.len(),
        gaps,
        panelcam::live::control::GAP_MS
    );
    let what = format!("replay 1x over {span:.0} s");
    result(
        &format!("{what}: drift at the last frame"),
        format!("{drift:+.1} ms"),
        &format!("|drift| <= {DRIFT_TARGET_MS} ms"),
        Some(drift.abs() <= DRIFT_TARGET_MS && gaps == 0),
        "",
    );
    result(
        &format!("{what}: |deviation| of each frame from its schedule"),
        format!("p50 {} ms  p99 {} ms  max {} ms", ms(s.p50), ms(s.p99), ms(worst)),
        &format!("max <= {DRIFT_TARGET_MS} ms"),
        Some(worst <= DRIFT_TARGET_MS && gaps == 0),
        &format!("n={}", got.len()),
    );
}
