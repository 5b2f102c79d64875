//! Issue 11 in the browser: the camera's own H.264 from `/<cam>/video` played by the stream
//! page in headless Chromium (`tests/support/chromium.rs`), measured inside the page.
//!
//! * `browser-webcodecs`: glass-to-glass latency through WebCodecs. A script injected with
//!   `Runtime.evaluate` reads the test camera's barcode back from the page's `<canvas>` on every
//!   `requestAnimationFrame` that follows a new picture (`getImageData` of the band's middle
//!   rows, decoded with the layout and check word of `tests/support/barcode.rs`) and records
//!   `Date.now() - capture time`. Also split: camera -> fragment arrival in the page, and
//!   arrival -> drawn (the player's own per-picture measure).
//! * `browser-mse`: the same through Media Source (`?mode=mse`): on each
//!   `requestVideoFrameCallback` the `<video>` is drawn into an `OffscreenCanvas` and decoded.
//!   Also the drift of that latency over the run (first vs last window's p50) and the MSE
//!   buffer (`buffered.end - currentTime`) per picture. `BENCH_MSE_SECONDS` (default 60),
//!   `BENCH_MSE_LATENCY` (the page's `?latency=`, the player's maxLatency in s).
//! * `browser-first-picture`: navigation start -> first decoded picture drawn (auto mode),
//!   measured in the page with `performance.now()` by a script installed before navigation.
//!
//! The camera's barcode is `time.time()` in ms and the page's `Date.now()` reads the same
//! machine clock, so the difference is the whole path: encoder, RTSP, panelcam, WebSocket,
//! JavaScript, decoder, drawing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::support::chromium::{Browser, Page};

pub const WEBCODECS_TARGET: Target = Target { p50: Some(40.0), p99: None };
pub const MSE_TARGET: Target = Target { p50: Some(150.0), p99: None };
pub const FIRST_PICTURE_TARGET: Target = Target { p50: Some(300.0), p99: None };
/// "No drift": the last window's p50 within one frame interval (25 fps) of the first one's.
const DRIFT_LIMIT_MS: f64 = 40.0;
/// Pictures of the first seconds are not counted (the first GOP arrives as a burst).
const WARMUP: Duration = Duration::from_secs(3);
const FIRST_PICTURE_ROUNDS: usize = 10;

/// The barcode decoder and sample store, installed into the page as `window.__pcBench`.
/// `decode(rgba, w, rows, y0)`: `rgba` holds rows `y0 .. y0 + rows` of a `w`-wide picture;
/// each cell is sampled at its centre on the band's middle row with a 3x3 window (1 px wide
/// for narrow cells), BT.601 luma, threshold 128; returns the 48-bit time or null when the
/// check word does not match.
const DECODER_JS: &str = r#"
window.__pcBench = window.__pcBench || (() => {
  const CELLS = 64;
  const band = (h) => Math.floor((h * 64 + 360) / 720);
  // The rows to read for a picture `h` high: the band's middle row and its neighbours.
  const rows = (h) => {
    const cy = Math.min(Math.floor(Math.max(band(h), 1) / 2), h - 1);
    return [Math.max(cy - 1, 0), Math.min(cy + 1, h - 1)];
  };
  function decode(px, w, h) {
    const [y0, y1] = rows(h);
    const dx = w >= 3 * CELLS ? 1 : 0;
    const bits = [];
    for (let i = 0; i < CELLS; i++) {
      const cx = (Math.floor((i * w) / CELLS) + Math.floor(((i + 1) * w) / CELLS)) >> 1;
      let sum = 0, n = 0;
      for (let y = 0; y <= y1 - y0; y++) {
        for (let x = Math.max(cx - dx, 0); x <= Math.min(cx + dx, w - 1); x++) {
          const o = (y * w + x) * 4;
          sum += (77 * px[o] + 150 * px[o + 1] + 29 * px[o + 2]) >> 8;
          n++;
        }
      }
      bits.push(sum >= 128 * n ? 1 : 0);
    }
    let ts = 0, check = 0;
    for (let i = 0; i < 48; i++) ts = ts * 2 + bits[i];
    for (let i = 48; i < 64; i++) check = check * 2 + bits[i];
    const w0 = Math.floor(ts / 4294967296) & 0xffff, w1 = Math.floor(ts / 65536) & 0xffff, w2 = ts & 0xffff;
    return (w0 ^ w1 ^ w2 ^ 0xa5a5) === check ? ts : null;
  }
  const state = { samples: [], pictures: 0, unreadable: 0, started: false };
  return {
    state, rows, decode,
    // Samples so far (each [Date.now(), latency, ...extra]), removed from the page.
    drain() {
      const out = { samples: state.samples, pictures: state.pictures, unreadable: state.unreadable };
      state.samples = [];
      state.pictures = 0;
      state.unreadable = 0;
      return out;
    },
  };
})();
"#;

/// WebCodecs: on each animation frame after the player drew a new picture, read the canvas.
/// A sample: [now, latency at this animation frame, latency at the decoder's output (the
/// player's lastFrameTime), the player's own arrival -> drawn of that picture].
const WEBCODECS_JS: &str = r#"
(() => {
  const B = window.__pcBench;
  if (B.state.started) return true;
  B.state.started = true;
  let last = -1;
  const tick = () => {
    requestAnimationFrame(tick);
    const p = window.panelcamPlayer;
    const canvas = document.querySelector('#video canvas.h264');
    if (!p || p.mode !== 'webcodecs' || !canvas || p.frames === last || !canvas.width) return;
    last = p.frames;
    const now = Date.now();
    const drawnAgo = performance.now() - p.lastFrameTime;
    const sink = p.inner && p.inner.sink;
    const [y0, y1] = B.rows(canvas.height);
    const ctx = canvas.getContext('2d');
    const px = ctx.getImageData(0, y0, canvas.width, y1 - y0 + 1).data;
    const ts = B.decode(px, canvas.width, canvas.height);
    B.state.pictures++;
    if (ts === null) { B.state.unreadable++; return; }
    B.state.samples.push([now, now - ts, now - drawnAgo - ts, sink ? sink.latency : -1]);
  };
  requestAnimationFrame(tick);
  return true;
})()
"#;

/// Media Source: on each requestVideoFrameCallback draw the `<video>`'s band into an
/// OffscreenCanvas. A sample: [now, latency at the callback, latency at the frame's expected
/// display time, MSE buffer ahead of the playhead (ms), dropped frames so far].
const MSE_JS: &str = r#"
(() => {
  const B = window.__pcBench;
  if (B.state.started) return true;
  B.state.started = true;
  let watched = null, ctx = null;
  const onFrame = (video) => (_, meta) => {
    if (video !== watched) return;
    video.requestVideoFrameCallback(onFrame(video));
    const now = Date.now();
    const [w, h] = [video.videoWidth, video.videoHeight];
    if (!w || !h) return;
    const [y0, y1] = B.rows(h);
    if (!ctx || ctx.canvas.width !== w || ctx.canvas.height !== y1 + 1) {
      ctx = new OffscreenCanvas(w, y1 + 1).getContext('2d', { willReadFrequently: true });
    }
    ctx.drawImage(video, 0, 0, w, y1 + 1, 0, 0, w, y1 + 1);
    const px = ctx.getImageData(0, y0, w, y1 - y0 + 1).data;
    const ts = B.decode(px, w, h);
    B.state.pictures++;
    if (ts === null) { B.state.unreadable++; return; }
    const b = video.buffered;
    const ahead = b.length ? (b.end(b.length - 1) - video.currentTime) * 1000 : -1;
    const display = now + (meta.expectedDisplayTime - performance.now());
    const q = video.getVideoPlaybackQuality();
    B.state.samples.push([now, now - ts, display - ts, ahead, q.droppedVideoFrames]);
  };
  // The player may replace its <video> (a decode error): follow it.
  const watch = () => {
    const video = document.querySelector('#video video.h264');
    if (video && video !== watched) {
      watched = video;
      video.requestVideoFrameCallback(onFrame(video));
    }
  };
  watch();
  setInterval(watch, 500);
  return true;
})()
"#;

/// Installed before navigation: timestamps (performance.now(), ms since navigation start) of
/// the page's milestones, in `window.__pcFirst`.
const FIRST_PICTURE_JS: &str = r#"
(() => {
  const m = (window.__pcFirst = { binaries: 0 });
  const at = (k) => { if (m[k] === undefined) m[k] = performance.now(); };
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      at('wsCreated');
      this.addEventListener('open', () => at('wsOpen'));
      this.addEventListener('message', (e) => {
        if (typeof e.data === 'string') return at('initMessage');
        m.binaries++;
        if (m.binaries === 1) at('initSegment');
        if (m.binaries === 2) at('firstFragment');
      });
    }
  };
  const draw = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    if (this.canvas && this.canvas.classList && this.canvas.classList.contains('h264')) at('drawn');
    return draw.apply(this, args);
  };
  const poll = () => {
    const p = window.panelcamPlayer;
    if (p && p.framesDecoded > 0) {
      at('framesDecoded');
      m.mode = p.mode;
      m.navigationStartVsTimeOrigin = performance.timing.navigationStart - performance.timeOrigin;
      m.domContentLoaded = performance.timing.domContentLoadedEventEnd - performance.timing.navigationStart;
      return;
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
})();
"#;

/// The samples of one measurement, as the page recorded them.
#[derive(Default)]
struct Collected {
    samples: Vec<Vec<f64>>,
    pictures: u64,
    unreadable: u64,
}

impl Collected {
    fn column(&self, i: usize) -> Vec<f64> {
        self.samples.iter().filter_map(|s| s.get(i).copied()).filter(|v| v.is_finite()).collect()
    }

    fn add(&mut self, drained: &Value) {
        self.pictures += drained["pictures"].as_u64().unwrap_or(0);
        self.unreadable += drained["unreadable"].as_u64().unwrap_or(0);
        for s in drained["samples"].as_array().into_iter().flatten() {
            let row: Vec<f64> = s.as_array().into_iter().flatten().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
            self.samples.push(row);
        }
    }

    /// Pictures read per second, unreadable ones, `extra`, then the load average.
    fn note(&self, seconds: f64, extra: &str) -> String {
        let mut note = format!("{:.1} pictures/s read", self.pictures as f64 / seconds.max(1e-9));
        if self.unreadable > 0 {
            note.push_str(&format!(", {} without a valid barcode", self.unreadable));
        }
        note + extra + &format!("  (load {})", loadavg())
    }
}

/// Camera, panelcam and Chromium playing `/cam/stream<query>` in `mode`, with `collector_js`
/// installed once the first pictures are shown; samples for `measure` after [`WARMUP`].
async fn measure(query: &str, mode: &str, collector_js: &str, measure: Duration) -> (Collected, String) {
    let camera = reference_camera(&["--barcode"]).await;
    let server = reference_server(&camera).await;
    let browser = Browser::launch().await.unwrap_or_else(|e| panic!("launch chromium: {e}"));
    let page = browser.new_page(&server.http_url(&format!("/cam/stream{query}"))).await.expect("open the stream page");
    let playing = format!(
        "(p => p && p.mode === '{mode}' && p.state === 'connected' && p.framesDecoded > 0)(window.panelcamPlayer)"
    );
    if let Err(e) = page.wait_for(&playing, Duration::from_secs(20)).await {
        panic!("{e}; console: {:?}", page.console_messages().await);
    }
    page.eval(DECODER_JS).await.expect("install the barcode decoder");
    page.eval(collector_js).await.expect("install the collector");
    tokio::time::sleep(WARMUP).await;
    drain(&page).await;
    let mut got = Collected::default();
    let start = Instant::now();
    while start.elapsed() < measure {
        tokio::time::sleep(Duration::from_secs(2).min(measure.saturating_sub(start.elapsed()))).await;
        got.add(&drain(&page).await);
    }
    let mut note = restarts_note(&server, &["cam"]).await;
    let errors = page.console_errors().await;
    if !errors.is_empty() {
        note.push_str(&format!("  PAGE ERRORS: {errors:?}"));
    }
    (got, note)
}

async fn drain(page: &Page) -> Value {
    page.eval("window.__pcBench.drain()").await.unwrap_or_else(|e| panic!("read the page's samples: {e}"))
}

/// `browser-webcodecs`: ~20 s (two thirds of `BENCH_SECONDS`) through WebCodecs.
pub async fn webcodecs() {
    let seconds = scaled(2.0 / 3.0, 5.0);
    let (got, note) = measure("?mode=webcodecs", "webcodecs", WEBCODECS_JS, seconds).await;
    let secs = seconds.as_secs_f64();
    print_latency(
        "glass-to-glass, Chromium WebCodecs <canvas> (read at the next animation frame)",
        &got.column(1),
        Some(WEBCODECS_TARGET),
        &(got.note(secs, "") + &note),
    );
    print_latency("  of which: camera -> drawn by the decoder's output callback", &got.column(2), None, "");
    let arrival: Vec<f64> = got.samples.iter().filter(|s| s.len() > 3 && s[3] >= 0.0).map(|s| s[2] - s[3]).collect();
    print_latency("  of which: camera -> fragment arrived in the page", &arrival, None, "");
    let decode: Vec<f64> = got.column(3).into_iter().filter(|v| *v >= 0.0).collect();
    print_latency("  of which: arrival -> drawn (WebCodecs decode + drawImage)", &decode, None, "");
}

/// `browser-mse`: `BENCH_MSE_SECONDS` (default twice `BENCH_SECONDS`, 60 s) through Media Source.
pub async fn mse() {
    let seconds = std::env::var("BENCH_MSE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or_else(|| scaled(2.0, 10.0), Duration::from_secs_f64);
    // BENCH_MSE_LATENCY=<s>: the page's `?latency=` (the player's maxLatency, default 0.5 s).
    let query = match std::env::var("BENCH_MSE_LATENCY") {
        Ok(s) if !s.trim().is_empty() => format!("?mode=mse&latency={}", s.trim()),
        _ => "?mode=mse".to_string(),
    };
    let (got, note) = measure(&query, "mse", MSE_JS, seconds).await;
    let secs = seconds.as_secs_f64();
    let dropped = got.samples.last().and_then(|s| s.get(4).copied()).unwrap_or(0.0);
    let note = got.note(secs, &format!(", {dropped} frames dropped by the <video> since it started")) + &note;
    print_latency(
        "glass-to-glass, Chromium Media Source <video> (at requestVideoFrameCallback)",
        &got.column(1),
        Some(MSE_TARGET),
        &note,
    );
    print_latency("  at the frame's expected display time", &got.column(2), None, "");
    let ahead: Vec<f64> = got.column(3).into_iter().filter(|v| *v >= 0.0).collect();
    print_latency("  MSE buffer ahead of the playhead (buffered.end - currentTime)", &ahead, None, "");
    drift(&got, secs);
}

/// First window's p50 against the last window's: windows of 60 s when the run is at least
/// 3 minutes long, else thirds of the run. Per-minute p50s for long runs.
fn drift(got: &Collected, secs: f64) {
    let Some(t0) = got.samples.first().map(|s| s[0]) else { return };
    let window = if secs >= 180.0 { 60.0 } else { secs / 3.0 } * 1000.0;
    let end = t0 + secs * 1000.0;
    // p50 of column `i` over the samples taken in [from, to).
    let p50_of = |i: usize, from: f64, to: f64| {
        let v: Vec<f64> = got
            .samples
            .iter()
            .filter(|s| s[0] >= from && s[0] < to)
            .filter_map(|s| s.get(i).copied())
            .filter(|v| *v >= 0.0)
            .collect();
        Summary::of(&v).map(|s| (s.p50, s.n))
    };
    let p50_between = |from: f64, to: f64| p50_of(1, from, to);
    let (Some((first, n1)), Some((last, n2))) = (p50_between(t0, t0 + window), p50_between(end - window, end + 5000.0))
    else {
        println!("latency drift: NOT ENOUGH SAMPLES");
        return;
    };
    let d = last - first;
    println!(
        "latency drift over {secs:.0} s: first {:.0} s p50 {} ms (n={n1}) -> last {:.0} s p50 {} ms (n={n2}): {d:+.1} ms  \
         (target |drift| <= {DRIFT_LIMIT_MS} ms)  {}",
        window / 1000.0,
        ms(first),
        window / 1000.0,
        ms(last),
        verdict(d.abs() <= DRIFT_LIMIT_MS)
    );
    if secs >= 120.0 {
        // The latency and the MSE buffer ahead of the playhead, minute by minute.
        for (i, what) in [(1, "latency"), (3, "MSE buffer ahead of the playhead")] {
            let minutes: Vec<String> = (0..(secs / 60.0).ceil() as usize)
                .filter_map(|m| p50_of(i, t0 + m as f64 * 60_000.0, t0 + (m + 1) as f64 * 60_000.0))
                .map(|(p, _)| format!("{p:.0}"))
                .collect();
            println!("  {what}, p50 per minute (ms): {}", minutes.join(" "));
        }
    }
}

/// `browser-first-picture`: 10 fresh windows on the stream page (auto mode) in one Chromium.
pub async fn first_picture() {
    let camera = reference_camera(&["--barcode"]).await;
    let server = reference_server(&camera).await;
    let browser = Browser::launch().await.unwrap_or_else(|e| panic!("launch chromium: {e}"));
    let url = server.http_url("/cam/stream");
    let keys = ["domContentLoaded", "wsCreated", "wsOpen", "initMessage", "initSegment", "firstFragment", "drawn"];
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); keys.len()];
    let mut modes = Vec::new();
    for round in 0..FIRST_PICTURE_ROUNDS {
        let page = browser.new_page("about:blank").await.expect("open a window");
        page.command("Page.addScriptToEvaluateOnNewDocument", json!({ "source": FIRST_PICTURE_JS }))
            .await
            .expect("install the first-picture script");
        page.command("Page.navigate", json!({ "url": url })).await.expect("navigate to the stream page");
        let m = match page
            .wait_for("window.__pcFirst && window.__pcFirst.framesDecoded && window.__pcFirst", Duration::from_secs(15))
            .await
        {
            Ok(m) => m,
            Err(e) => panic!("round {round}: {e}; console: {:?}", page.console_messages().await),
        };
        modes.push(m["mode"].as_str().unwrap_or("?").to_string());
        for (k, col) in keys.iter().zip(&mut columns) {
            if let Some(v) = m[*k].as_f64() {
                col.push(v);
            }
        }
        drop(page);
        // Spread the rounds over the GOP (1 s) instead of locking onto one phase.
        tokio::time::sleep(Duration::from_millis(300 + 137 * round as u64)).await;
    }
    modes.dedup();
    let drawn = columns.last().unwrap().clone();
    print_latency(
        "first picture, navigation start -> first decoded picture drawn",
        &drawn,
        Some(FIRST_PICTURE_TARGET),
        &format!(
            "mode {}  first round {} ms  (load {})",
            modes.join("/"),
            drawn.first().map_or("-".into(), |v| ms(*v)),
            loadavg()
        ),
    );
    for (k, col) in keys.iter().zip(&columns).take(keys.len() - 1) {
        print_latency(&format!("  navigation start -> {k}"), col, None, "");
    }
}
