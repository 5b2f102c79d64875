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
    assert_eq!(version, 2, "the schema is versioned");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_guard_frees_local_data_and_never_touches_the_central_archive() {
    let db = TestDb::create("guard").await;
    // Every real disk is fuller than 0.001 %: the guard is at work the whole time.
    let (_cam, server) =
        start(&db.url, json!({"recording": {"disk_max_percent": 0.001, "continuous": true}}), "cam", json!({})).await;
    // Frames of a finished session are local data the guard may take.
    let id = server.start_recording("cam", "local frames").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.stop_recording("cam").await;
    let pg = db.client().await;
    let count = async || -> (i64, i64) {
        let h: i64 = pg.query_one("SELECT count(*) FROM hls_segments", &[]).await.unwrap().get(0);
        let m: i64 = pg.query_one("SELECT count(*) FROM mp4_segments", &[]).await.unwrap().get(0);
        (h, m)
    };
    let arrived = eventually(Duration::from_secs(40), async || count().await.0 >= 5 && count().await.1 >= 1).await;
    assert!(arrived, "segments reached PostgreSQL: {:?}", count().await);
    let before = count().await;
    let frames_gone = eventually(Duration::from_secs(30), async || {
        server.get(&format!("/cam/control/recordings/{id}/frames")).await.status == 404
    })
    .await;
    assert!(frames_gone, "the guard freed the local frames\n{}", server.log());
    // Several more guard rounds: PostgreSQL only grows.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = count().await;
    assert!(after.0 >= before.0 && after.1 >= before.1, "rows disappeared from PostgreSQL: {before:?} -> {after:?}");
    let disk = server.status().await["disk"].clone();
    assert!(disk["used_percent"].as_f64().unwrap() > 0.001, "{disk}");
    assert!(disk["message"].is_string(), "{disk}");
    assert!(server.log().contains("disk guard"), "the guard says what it does");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_everything_local_is_protected_the_guard_says_so_instead_of_looping() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let config = json!({"recording": {"disk_max_percent": 0.001}});
    let server = Server::start(config, &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    server.start_recording("cam", "protected while active").await;
    let stuck = eventually(Duration::from_secs(20), async || {
        server.status().await["disk"]["over_limit_and_nothing_to_free"] == true
    })
    .await;
    assert!(stuck, "{}", server.status().await["disk"]);
    let message = server.status().await["disk"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("protected"), "{message}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let said = server.log().matches("every local recording is protected").count();
    assert_eq!(said, 1, "said once, not every round");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_panels_with_a_cam1_share_one_database_without_colliding() {
    let db = TestDb::create("panels").await;
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    let mut servers = Vec::new();
    for panel in ["panel-a", "panel-b"] {
        let config = pg_config(&db.url, json!({"server": {"panel_id": panel}, "recording": {"continuous": true}}));
        let server = Server::start(config, &[("cam1", camera_json("/cam1", &cam.url("/cam"), json!({})))]).await;
        server.wait_streaming("cam1", Duration::from_secs(20)).await;
        servers.push(server);
    }
    let pg = db.client().await;
    let both = eventually(Duration::from_secs(40), async || {
        // The tables appear with the first upload.
        let n = pg.query_one("SELECT count(DISTINCT panel) FROM hls_segments WHERE camera = 'cam1'", &[]).await;
        n.map(|r| r.get::<_, i64>(0) == 2).unwrap_or(false)
    })
    .await;
    assert!(both, "both panels' cam1 recordings are in the shared database");
    for (server, panel) in servers.iter().zip(["panel-a", "panel-b"]) {
        // Each panel plays back its own recordings only.
        let now = panelcam::util::now_ms();
        let list = server.get(&format!("/cam1/control/recordings/spans?from={}&to={now}", now - 60_000)).await.json();
        assert!(!list["data"]["spans"].as_array().unwrap().is_empty(), "{panel}: {list}");
        let theirs: i64 =
            pg.query_one("SELECT count(*) FROM hls_segments WHERE panel = $1", &[&panel]).await.unwrap().get(0);
        assert!(theirs > 0, "{panel}");
        assert_eq!(server.status().await["panel_id"], panel);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_migrated_and_its_rows_kept() {
    let db = TestDb::create("migrate").await;
    let pg = db.client().await;
    pg.batch_execute(
        "CREATE TABLE panelcam_schema (version integer NOT NULL); INSERT INTO panelcam_schema VALUES (1);
         CREATE TABLE init_segments (camera text NOT NULL, sha256 text NOT NULL, data bytea NOT NULL, PRIMARY KEY (camera, sha256));
         CREATE TABLE hls_segments (camera text NOT NULL, start_ms bigint NOT NULL, duration_ms integer NOT NULL,
             init_sha256 text NOT NULL, session_id bigint, size bigint NOT NULL, sha256 text NOT NULL,
             uploaded_at timestamptz NOT NULL DEFAULT now(), data bytea NOT NULL, PRIMARY KEY (camera, start_ms));
         CREATE TABLE mp4_segments (camera text NOT NULL, start_ms bigint NOT NULL, duration_ms bigint NOT NULL,
             name text NOT NULL, session_id bigint, size bigint NOT NULL, sha256 text NOT NULL,
             uploaded_at timestamptz NOT NULL DEFAULT now(), data bytea NOT NULL, PRIMARY KEY (camera, start_ms));
         CREATE INDEX mp4_segments_by_name ON mp4_segments (camera, name);
         INSERT INTO hls_segments VALUES ('cam', 1000, 6000, 'aa', NULL, 3, 'x', now(), 'abc');",
    )
    .await
    .unwrap();
    let (_cam, server) =
        start(&db.url, json!({"server": {"panel_id": "old-panel"}}), "cam", json!({"recording": {"continuous": true}}))
            .await;
    let migrated = eventually(Duration::from_secs(30), async || {
        pg.query_one("SELECT max(version) FROM panelcam_schema", &[]).await.unwrap().get::<_, Option<i32>>(0) == Some(2)
    })
    .await;
    assert!(migrated, "{}", server.log());
    let legacy: String =
        pg.query_one("SELECT panel FROM hls_segments WHERE start_ms = 1000", &[]).await.unwrap().get(0);
    assert_eq!(legacy, "old-panel", "rows from before the migration belong to the panel that migrated");
    let new_rows = eventually(Duration::from_secs(30), async || {
        pg.query_one("SELECT count(*) FROM hls_segments WHERE start_ms > 1000", &[]).await.unwrap().get::<_, i64>(0) > 0
    })
    .await;
    assert!(new_rows, "recording goes on after the migration");
}

/// Peak resident memory of this process, KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_mp4_goes_to_postgresql_without_being_held_in_memory() {
    use panelcam::store::outbox::{Kind, NewItem, Outbox};
    use panelcam::store::pg::{Central, upload};
    let db = TestDb::create("large").await;
    let dir = TempDir::new("large");
    // 300 MB of "video", written in pieces so that writing it costs no memory either.
    let file = dir.0.join("big.mp4");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&file).unwrap();
        let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..300 {
            f.write_all(&chunk).unwrap();
        }
    }
    let outbox = Outbox::open(&dir.0.join("outbox"), 1 << 30).unwrap();
    let new = NewItem {
        camera: "cam".into(),
        kind: Kind::Mp4,
        start_ms: 1_000,
        duration_ms: 60_000,
        name: Some("cam_19700101_000001.mp4".into()),
        init_sha256: None,
        session_id: None,
    };
    let before = peak_rss_kib();
    let item = outbox.enqueue(new, &file).unwrap().unwrap();
    let central = Central::new(&db.url, "panel-x").unwrap();
    let mut client = central.client("cam", true).await.unwrap();
    upload(client.as_mut().unwrap(), "panel-x", &item, &outbox.file(item.id)).await.unwrap();
    let grew = peak_rss_kib().saturating_sub(before);
    eprintln!("peak RSS grew {grew} KiB for a 300 MB upload");
    assert!(grew < 64 * 1024, "the upload held {grew} KiB: the file went through RAM");
    let pg = db.client().await;
    let (size, ok): (i64, bool) = pg
        .query_one("SELECT octet_length(data)::bigint, sha256 = encode(sha256(data), 'hex') FROM mp4_segments", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((size, ok), (300 << 20, true));
}

/// Stops panelcam dead at an outbox crash point (the fourth time it is reached, well into
/// recording), kills it, and checks that the restart neither loses nor duplicates what had
/// reached the outbox.
async fn kill_at(point: &str) {
    let db = TestDb::create("fault").await;
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    let config = pg_config(&db.url, json!({"recording": {"mp4_storage_type": "disabled", "continuous": true}}));
    let launch = Launch { env: vec![("PANELCAM_FAULT".into(), format!("{point}@4"))], ..Launch::default() };
    let mut server =
        Server::start_with(config, &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))], launch).await;
    let reached = eventually(Duration::from_secs(40), async || {
        server.log().contains(&format!("PANELCAM_FAULT reached: {point}"))
    })
    .await;
    assert!(reached, "the crash point was reached\n{}", server.log());
    server.kill9();
    server.wait_exit(Duration::from_secs(5)).await;
    // What had reached the outbox when it died, one item caught mid-write.
    let queued: Vec<(i64, String, String)> = {
        let c = rusqlite::Connection::open(server.dir.0.join("recordings/outbox/outbox.db")).unwrap();
        let mut stmt = c.prepare("SELECT start_ms, kind, state FROM items ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
    };
    let writing: Vec<&(i64, String, String)> = queued.iter().filter(|q| q.2 == "writing").collect();
    assert_eq!(writing.len(), 1, "killed mid-write: {queued:?}");
    server.launch.env.clear();
    server.spawn().await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    wait_drained(&server, Duration::from_secs(60)).await;
    let status = outbox(&server).await;
    assert_eq!(status["lost_items"], 0, "{status}");
    let pg = db.client().await;
    let rows = pg.query("SELECT start_ms, sha256 FROM hls_segments", &[]).await.unwrap();
    let starts: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let shas: std::collections::HashSet<String> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(shas.len(), rows.len(), "nothing stored twice");
    for (start, kind, state) in &queued {
        if kind == "hls" {
            assert!(starts.contains(start), "the {state} segment at {start} never arrived\n{}", server.log());
        }
    }
    let inits: i64 = pg.query_one("SELECT count(*) FROM init_segments", &[]).await.unwrap().get(0);
    assert!(inits >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_kill_9_between_rename_and_commit_loses_nothing() {
    kill_at("outbox.after_rename").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_kill_9_between_row_and_copy_loses_nothing() {
    kill_at("outbox.after_row").await;
}
