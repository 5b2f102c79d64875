//! Shipping recordings to a real PostgreSQL through the outbox: shared and per-camera
//! databases, playback from PostgreSQL, outages, crashes during upload, a full outbox,
//! retention.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::harness::*;

fn pg_config(url: &str, extra: Value) -> Value {
    let mut c = json!({"recording": {"database_type": "postgresql", "database_url": url, "hls_storage_enabled": true,
        "mp4_storage_type": "database", "hls_segment_seconds": 2, "mp4_segment_minutes": 0.2, "cleanup_interval_hours": 1}});
    merge(&mut c, extra);
    c
}

async fn start(url: &str, extra: Value, camera_id: &str, camera: Value) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    let server = Server::start(
        pg_config(url, extra),
        &[(camera_id, camera_json(&format!("/{camera_id}"), &cam.url("/cam"), camera))],
    )
    .await;
    server.wait_streaming(camera_id, Duration::from_secs(20)).await;
    (cam, server)
}

async fn outbox(server: &Server) -> Value {
    server.status().await["outbox"].clone()
}

async fn wait_drained(server: &Server, timeout: Duration) {
    let ok = eventually(timeout, async || outbox(server).await["pending_items"] == 0).await;
    assert!(ok, "the outbox did not empty: {}", outbox(server).await);
}

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The segments a test collected from the spool, by SHA-256.
fn collected(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .filter(|d| !d.is_empty())
        .map(|d| (sha_hex(&d), d))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_ship_to_a_shared_database_and_play_back_from_it() {
    let db = TestDb::create("shared").await;
    let (_cam, server) = start(&db.url, json!({}), "cam", json!({})).await;
    server.start_recording("cam", "to the centre").await;
    tokio::time::sleep(Duration::from_secs(14)).await;
    let session = server.stop_recording("cam").await["session"].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_drained(&server, Duration::from_secs(30)).await;

    let pg = db.client().await;
    let row = pg.query_one("SELECT count(*), count(DISTINCT camera), bool_and(sha256 = encode(sha256(data), 'hex')), bool_and(size = octet_length(data)) FROM hls_segments", &[]).await.unwrap();
    let (n, cameras, sha_ok, size_ok): (i64, i64, bool, bool) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert!(
        n >= 6 && cameras == 1 && sha_ok && size_ok,
        "{n} segments, {cameras} cameras, checksums {sha_ok}, sizes {size_ok}"
    );
    let mp4: i64 = pg.query_one("SELECT count(*) FROM mp4_segments WHERE camera = 'cam'", &[]).await.unwrap().get(0);
    assert!(mp4 >= 1);
    let inits: i64 = pg.query_one("SELECT count(*) FROM init_segments WHERE camera = 'cam'", &[]).await.unwrap().get(0);
    assert_eq!(inits, 1);

    // Played back from PostgreSQL: a playlist, its segments, and an MP4 with ranges.
    let (t1, t2) = (session["start_time"].as_str().unwrap(), session["end_time"].as_str().unwrap());
    let probe = ffprobe(&server.http_url(&format!("/cam/control/recordings/hls/timerange?t1={t1}&t2={t2}"))).await;
    assert_eq!(probe["streams"][0]["codec_name"], "h264");
    assert!(probe_duration(&probe) >= 10.0, "{probe}");
    let list = server.get("/cam/control/recordings/mp4/segments").await.json();
    let name = list["data"]["segments"][0]["filename"].as_str().unwrap().to_string();
    let whole = server.get(&format!("/cam/control/recordings/mp4/segments/{name}")).await;
    assert_eq!(whole.status, 200);
    let stored: Vec<u8> = pg.query_one("SELECT data FROM mp4_segments WHERE name = $1", &[&name]).await.unwrap().get(0);
    assert_eq!(whole.body, stored, "served from PostgreSQL byte for byte");
    let part = server
        .request("GET", &format!("/cam/control/recordings/mp4/segments/{name}"), &[("Range", "bytes=1000-1999")], None)
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, stored[1000..2000]);
    let status = outbox(&server).await;
    assert!(status["uploaded_items"].as_u64().unwrap() >= n as u64, "{status}");
    assert!(
        !server.get("/api/status").await.text().contains("postgres://postgres@"),
        "the database URL stays out of the API"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_without_a_database_gets_one_database_per_camera() {
    let camera_id = format!("pc{}", std::process::id());
    let database = format!("rtsp_{camera_id}");
    let admin = pg_connect(PG_ADMIN).await;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
    let (_cam, server) =
        start("postgres://postgres@127.0.0.1:5432/", json!({"recording": {"continuous": true}}), &camera_id, json!({}))
            .await;
    let made = eventually(Duration::from_secs(20), async || {
        admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database]).await.unwrap().is_some()
    })
    .await;
    assert!(made, "database {database} was created");
    let client = pg_connect(&format!("host=127.0.0.1 port=5432 user=postgres dbname={database}")).await;
    let arrived = eventually(Duration::from_secs(20), async || {
        client
            .query_one("SELECT count(*) FROM hls_segments", &[])
            .await
            .map(|r| r.get::<_, i64>(0) > 0)
            .unwrap_or(false)
    })
    .await;
    assert!(arrived);
    let version: i32 = client.query_one("SELECT version FROM panelcam_schema", &[]).await.unwrap().get(0);
    assert_eq!(version, 1, "the schema is versioned");
    drop(server);
    drop(client);
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_two_minute_outage_loses_nothing() {
    let pg = PrivatePg::start().await;
    pg.client("postgres").await.batch_execute("CREATE DATABASE rec").await.unwrap();
    let (_cam, server) = start(&pg.url("rec"), json!({}), "cam", json!({"recording": {"continuous": true}})).await;
    let copies = server.dir.0.join("copies");
    let collector = collect_spool(server.dir.0.join("spool/cam"), copies.clone());
    tokio::time::sleep(Duration::from_secs(8)).await;

    pg.down().await;
    let down_at = Instant::now();
    let noticed =
        eventually(Duration::from_secs(30), async || outbox(&server).await["postgresql_reachable"] == false).await;
    assert!(noticed, "the outage shows in /api/status");
    while down_at.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let waiting = outbox(&server).await;
    assert!(waiting["pending_items"].as_u64().unwrap() >= 50, "two minutes of segments wait on disk: {waiting}");
    assert_eq!(waiting["dropped_items"], 0);
    pg.up().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    collector.abort();
    wait_drained(&server, Duration::from_secs(90)).await;

    let client = pg.client("rec").await;
    let rows = client
        .query("SELECT start_ms, duration_ms, data FROM hls_segments WHERE camera = 'cam' ORDER BY start_ms", &[])
        .await
        .unwrap();
    let in_pg: BTreeMap<i64, (i32, Vec<u8>)> = rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect();
    let by_sha: HashMap<String, i64> = in_pg.iter().map(|(start, (_, data))| (sha_hex(data), *start)).collect();
    let recorded = collected(&copies);
    assert!(recorded.len() >= 60, "{} segments recorded", recorded.len());
    let missing: Vec<&String> = recorded.keys().filter(|sha| !by_sha.contains_key(*sha)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} recorded segments never arrived byte-identical",
        missing.len(),
        recorded.len()
    );
    // In order and without holes: each segment starts where the previous one ended.
    let starts: Vec<(&i64, &(i32, Vec<u8>))> = in_pg.iter().collect();
    for pair in starts.windows(2) {
        let (prev_start, (prev_dur, _)) = pair[0];
        let (next_start, _) = pair[1];
        let gap = next_start - (prev_start + i64::from(*prev_dur));
        assert!(gap.abs() <= 150, "hole of {gap} ms after the segment at {prev_start}");
    }
    assert!(outbox(&server).await["postgresql_reachable"] == true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_kill_9_during_upload_neither_duplicates_nor_loses() {
    let pg = PrivatePg::start().await;
    pg.client("postgres").await.batch_execute("CREATE DATABASE rec").await.unwrap();
    let (_cam, mut server) = start(&pg.url("rec"), json!({}), "cam", json!({"recording": {"continuous": true}})).await;
    let copies = server.dir.0.join("copies");
    let collector = collect_spool(server.dir.0.join("spool/cam"), copies.clone());
    // Build a backlog of HLS segments and MP4 files, then kill panelcam while it drains.
    pg.down().await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    pg.up().await;
    let draining = eventually(Duration::from_secs(30), async || {
        outbox(&server).await["uploaded_items"].as_u64().unwrap_or(0) >= 3
    })
    .await;
    assert!(draining);
    server.kill9();
    server.wait_exit(Duration::from_secs(5)).await;
    collector.abort();
    server.spawn().await;
    wait_drained(&server, Duration::from_secs(90)).await;

    let client = pg.client("rec").await;
    let dup: i64 = client
        .query_one("SELECT count(*) - count(DISTINCT sha256) FROM hls_segments WHERE camera = 'cam'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dup, 0, "no segment stored twice");
    let rows = client.query("SELECT sha256 FROM hls_segments WHERE camera = 'cam'", &[]).await.unwrap();
    let in_pg: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let recorded = collected(&copies);
    let missing = recorded.keys().filter(|sha| !in_pg.contains(*sha)).count();
    assert_eq!(missing, 0, "{missing} of {} segments recorded before the kill are missing", recorded.len());
    let mp4_ok: bool = client
        .query_one("SELECT coalesce(bool_and(sha256 = encode(sha256(data), 'hex')), true) FROM mp4_segments", &[])
        .await
        .unwrap()
        .get(0);
    assert!(mp4_ok, "MP4 files arrived whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_drops_the_oldest_and_reports_it() {
    // Nobody listens on this port: PostgreSQL stays unreachable.
    let url = format!("postgres://postgres@127.0.0.1:{}/rec", free_port());
    let (_cam, server) = start(
        &url,
        json!({"recording": {"outbox_max_mb": 1, "mp4_storage_type": "disabled"}}),
        "cam",
        json!({"recording": {"continuous": true}}),
    )
    .await;
    let dropped =
        eventually(Duration::from_secs(40), async || outbox(&server).await["dropped_items"].as_u64().unwrap_or(0) > 0)
            .await;
    let status = outbox(&server).await;
    assert!(dropped, "{status}");
    assert!(status["pending_bytes"].as_u64().unwrap() <= 1 << 20, "the budget holds: {status}");
    assert!(status["dropped_bytes"].as_u64().unwrap() > 0);
    assert_eq!(status["postgresql_reachable"], false);
    assert!(status["last_error"].as_str().unwrap().contains("unreachable"), "{status}");
    assert!(server.log().contains("outbox full"), "the drop is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_applies_in_postgres_too() {
    let db = TestDb::create("retention").await;
    let extra = json!({"recording": {"hls_storage_retention": "6s", "mp4_storage_type": "disabled", "cleanup_interval_hours": 0.0005}});
    let (_cam, server) = start(&db.url, extra, "cam", json!({"recording": {"continuous": true}})).await;
    let pg = db.client().await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let oldest: Option<i64> = pg.query_one("SELECT min(start_ms) FROM hls_segments", &[]).await.unwrap().get(0);
    let age = panelcam::util::now_ms() - oldest.expect("segments arrived");
    assert!(age < 6_000 + 2_000 + 4_000, "the oldest segment in PostgreSQL is {age} ms old with 6 s retention");
    drop(server);
}
