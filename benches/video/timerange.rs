//! Scenario `timerange`: the time from a timerange request to the first byte of the first
//! segment is <= 100 ms with local storage.
//!
//! A real panelcam with local storage (`hls_storage_enabled`, `database_type: "sqlite"`)
//! whose segments.db holds a day of 6 s segments (14 400 rows, written with panelcam's own
//! `LocalIndex` before it starts). The first 70 minutes are real 1080p segments (the
//! fixture's, repeated; ~3 MB each, ~2.1 GB): a segment's size decides how much of it SQLite
//! keeps in the table's leaf pages (8-64 KB with 64 KB pages), and so how many pages a
//! playlist query touches. The rest of the day is 4 KB stand-ins, so the database fits the
//! disk (~2.2 GB instead of ~43 GB) while a 24 h playlist still lists every row; the 24 h
//! numbers are therefore optimistic. Meanwhile the 1080p test camera records continuously
//! into the same database, as on a panel where someone plays back while the camera records.
//!
//! One repetition is what a player does: GET the timerange playlist (starting at a random
//! time in the first ten minutes, so a 1 h playlist lists only real segments), parse it, GET
//! the first segment URI; timed on the client from sending the first request to the first
//! body byte of the segment. Every request uses a fresh connection, like the harness's
//! client. The playlist and segment times are reported on their own too; then the same with
//! segments.db evicted from the page cache before every repetition (footage nobody looked at
//! lately comes from the disk; panelcam's disk reads are shown), and for a 24 h range (the
//! largest panelcam serves).

use std::path::Path;
use std::time::{Duration, Instant};

use panelcam::store::local::LocalIndex;
use panelcam::store::segment::{HlsMeta, sha256_hex};
use panelcam::util::now_ms;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{DiskDir, camera_1080p, camera_note, mb};
use crate::fixture::{SEGMENT_MS, ten_minutes_1080p};
use crate::framestore_common::{Rng, Summary, bench_seconds, evict_from_page_cache, loadavg, result};
use crate::live_common::ScratchDir;
use crate::support::harness::{Server, camera_json, eventually};

pub const TARGET_MS: f64 = 100.0;
const DAY_MS: i64 = 24 * 3_600_000;
const FILLER_BYTES: usize = 4096;
/// Real-size segments at the start of the day: 70 minutes, so that a 1 h playlist starting
/// in the first ten minutes lists real segments only.
const REAL_ROWS: usize = 700;
/// Requests start in the first ten minutes.
const START_WINDOW_MS: i64 = 600_000;

pub async fn timerange() {
    let fx = ten_minutes_1080p().await;
    let store = DiskDir::new("video-timerange");
    let recordings = store.join("recordings");
    // The stored day ends two minutes ago; the live recording continues from now.
    let day_start = now_ms() - DAY_MS - 120_000;
    let built = Instant::now();
    let (rows, bytes) = {
        let (db, init) = (recordings.join("cam/segments.db"), fx.init.clone());
        let real: Vec<_> = fx.segments.iter().map(|s| s.path.clone()).collect();
        tokio::task::spawn_blocking(move || prefill(&db, &init, &real, day_start)).await.unwrap()
    };
    println!(
        "segments.db: {rows} rows over 24 h, {:.0} MB of segments (the first {REAL_ROWS} real), built in {:.0} s",
        mb(bytes),
        built.elapsed().as_secs_f64()
    );

    let camera = camera_1080p().await;
    let spool = ScratchDir::new("video-spool");
    let config = json!({"recording": {"hls_storage_enabled": true, "database_type": "sqlite", "database_path": recordings,
        "continuous": true, "spool_path": spool.0}});
    let server = Server::start(config, &[("cam", camera_json("/cam", &camera.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(40)).await;
    let recording = eventually(Duration::from_secs(30), async || {
        server.camera_status("cam").await["video"]["segments_kept"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(recording, "the camera's segments are not being stored: {}", server.camera_status("cam").await);
    println!("{}, recording continuously into the same database meanwhile", camera_note());

    let reps = ((100.0 * bench_seconds() / 30.0).round() as usize).max(20);
    let mut rng = Rng::new(0x5eed);
    let db = recordings.join("cam/segments.db");
    let variants = [
        ("1 h range", 3_600_000, false),
        ("1 h range, cold page cache", 3_600_000, true),
        ("24 h range", DAY_MS, false),
    ];
    for (label, range_ms, cold) in variants {
        let evict = cold.then_some(db.as_path());
        measure(&server, day_start, label, range_ms, evict, reps, &mut rng).await;
    }
}

/// A day of segments in `<recordings>/cam/segments.db`: real segments first (the fixture's,
/// repeated), then stand-ins. Returns (rows, bytes).
fn prefill(db: &Path, init: &Path, real: &[std::path::PathBuf], day_start: i64) -> (usize, u64) {
    let index = LocalIndex::open(db).expect("open segments.db");
    let init = std::fs::read(init).unwrap();
    let sha = sha256_hex(&init);
    index.put_init(&sha, &init).unwrap();
    let filler = db.with_file_name("filler.m4s");
    std::fs::write(&filler, vec![0u8; FILLER_BYTES]).unwrap();
    let rows = (DAY_MS / SEGMENT_MS) as usize;
    let mut bytes = 0;
    for i in 0..rows {
        let src = if i < REAL_ROWS { &real[i % real.len()] } else { &filler };
        let meta = HlsMeta {
            start_ms: day_start + i as i64 * SEGMENT_MS,
            duration_ms: SEGMENT_MS,
            init_sha256: sha.clone(),
            session_id: None,
            size: 0,
        };
        index.put_hls(&meta, src).unwrap();
        bytes += std::fs::metadata(src).unwrap().len();
    }
    let _ = std::fs::remove_file(&filler);
    (rows, bytes)
}

/// `reps` repetitions of playlist -> first segment (then its init segment), with a random
/// start in the first ten minutes; `evict`: drop this database from the page cache first.
async fn measure(
    server: &Server,
    day_start: i64,
    label: &str,
    range_ms: i64,
    evict: Option<&Path>,
    reps: usize,
    rng: &mut Rng,
) {
    let base = "/cam/control/recordings/hls/";
    let (mut first_byte, mut playlists, mut segments, mut segments_whole, mut inits) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut playlist_bytes, mut entries, mut segment_bytes) = (0, 0, 0);
    let disk_read = || read_bytes(server.pid());
    let read_before = disk_read();
    for _ in 0..reps {
        if let Some(db) = evict {
            evict_from_page_cache(db).expect("evict segments.db from the page cache");
        }
        let t1 = rng.range(day_start, day_start + START_WINDOW_MS);
        let t2 = t1 + range_ms;
        let started = Instant::now();
        let playlist = timed_get(server.port, &format!("{base}timerange?t1={t1}&t2={t2}")).await;
        assert_eq!(playlist.status, 200, "{}", String::from_utf8_lossy(&playlist.body));
        let text = String::from_utf8_lossy(&playlist.body);
        let (init_uri, segment_uri) = first_uris(&text);
        let segment = timed_get(server.port, &format!("{base}{segment_uri}")).await;
        first_byte.push(ms_since(started, segment.first_byte_at));
        assert_eq!(segment.status, 200, "{segment_uri}");
        assert!(segment.body.len() > 2 * FILLER_BYTES, "{segment_uri} is a stand-in, not a real segment");
        playlists.push(ms_since(playlist.sent, playlist.done_at));
        segments.push(ms_since(segment.sent, segment.first_byte_at));
        segments_whole.push(ms_since(segment.sent, segment.done_at));
        let init = timed_get(server.port, &format!("{base}{init_uri}")).await;
        assert_eq!(init.status, 200, "{init_uri}");
        inits.push(ms_since(init.sent, init.done_at));
        playlist_bytes += playlist.body.len();
        entries += text.lines().filter(|l| l.starts_with("#EXTINF")).count();
        segment_bytes += segment.body.len();
    }
    let read_mb = mb(disk_read() - read_before) / reps as f64;
    let summary = |v: &[f64]| Summary::of(v).expect("samples");
    let s = summary(&first_byte);
    result(
        &format!("timerange -> first byte of the first segment ({label})"),
        s.text(),
        &format!("p99 <= {TARGET_MS} ms"),
        Some(s.p99 <= TARGET_MS),
        &format!("panelcam read {read_mb:.1} MB from disk per repetition; load {}", loadavg()),
    );
    let per = |total: usize| total as f64 / reps as f64;
    let playlist_note = format!("{:.0} entries, {:.0} KB", per(entries), per(playlist_bytes) / 1000.0);
    result(&format!("  playlist, whole ({label})"), summary(&playlists).text(), "", None, &playlist_note);
    result(&format!("  first segment, first byte ({label})"), summary(&segments).text(), "", None, "");
    let segment_note = format!("{:.1} MB", per(segment_bytes) / 1e6);
    result(&format!("  first segment, whole ({label})"), summary(&segments_whole).text(), "", None, &segment_note);
    result(&format!("  init segment, whole ({label})"), summary(&inits).text(), "", None, "");
}

/// The first `#EXT-X-MAP` URI and the first segment URI of a playlist.
fn first_uris(playlist: &str) -> (String, String) {
    let init = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .expect("an #EXT-X-MAP in the playlist");
    let segment = playlist.lines().find(|l| !l.is_empty() && !l.starts_with('#')).expect("a segment in the playlist");
    (init.to_string(), segment.to_string())
}

/// Bytes a process made the disk read (`read_bytes` of /proc/<pid>/io): page-cache hits
/// do not count.
fn read_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("read_bytes:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

pub fn ms_since(start: Instant, end: Instant) -> f64 {
    end.duration_since(start).as_secs_f64() * 1000.0
}

pub struct Timed {
    pub status: u16,
    pub body: Vec<u8>,
    /// Before the connection is opened.
    pub sent: Instant,
    pub first_byte_at: Instant,
    pub done_at: Instant,
}

/// GET over a fresh connection, noting when the first byte of the body arrives. Also used
/// by `status-latency`.
pub async fn timed_get(port: u16, path: &str) -> Timed {
    let sent = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect to panelcam");
    s.set_nodelay(true).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::with_capacity(64 << 10);
    let mut chunk = vec![0u8; 256 << 10];
    let (mut header_end, mut first_byte_at) = (None, None);
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut chunk))
            .await
            .expect("response timed out")
            .unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if header_end.is_none() {
            header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        }
        if first_byte_at.is_none() && header_end.is_some_and(|h| raw.len() > h) {
            first_byte_at = Some(Instant::now());
        }
    }
    let done_at = Instant::now();
    let h = header_end.expect("a complete response header");
    let head = String::from_utf8_lossy(&raw[..h]);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "a chunked response: {head}");
    Timed { status, body: raw[h..].to_vec(), sent, first_byte_at: first_byte_at.unwrap_or(done_at), done_at }
}
