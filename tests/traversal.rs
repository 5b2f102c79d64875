//! Every route that serves a file, attacked (issue 10 §2): `..` plain, percent-encoded and
//! double-encoded, backslashes, absolute paths, NUL, overlong UTF-8; and symlinks planted in
//! the spool and the recordings that lead to a secret file outside them. Each answer is 400
//! or 404 and never carries the secret, `/etc/passwd` or the admin token from `config.json`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::harness::*;

/// Text that must never come back: the planted secret, `/etc/passwd`, `config.json`'s token.
const SECRET: &str = "PANELCAM-TRAVERSAL-SECRET";

fn assert_refused(r: &HttpResponse, what: &str) {
    let body = r.text();
    assert!(matches!(r.status, 400 | 404), "{what}: {} {body}", r.status);
    for leak in [SECRET, "root:x:0:0", ADMIN_TOKEN] {
        assert!(!body.contains(leak), "{what}: the answer carries {leak}: {body}");
    }
}

/// A file of exactly `len` bytes outside the data directories, filled with the secret (the
/// same size as a stored segment, so a check of the size alone would not catch it).
fn secret_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    let path = dir.join(name);
    let text: String = SECRET.chars().cycle().take(len.max(SECRET.len())).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Replaces `victim` by a symlink to `target`.
fn plant(victim: &Path, target: &Path) {
    let _ = std::fs::remove_file(victim);
    std::os::unix::fs::symlink(target, victim).unwrap();
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
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
    out
}

async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let mut all = vec![("Authorization", bearer.as_str())];
    all.extend_from_slice(headers);
    server.try_request("GET", path, &all, None).await.unwrap_or_else(|e| panic!("GET {path:?}: {e}"))
}

/// A camera recording HLS segments and MP4 files, one finished session and one finished
/// export; returns the export's job id.
async fn setup() -> (TestCamera, Server, u64) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let config = json!({"recording": {"hls_storage_enabled": true, "mp4_storage_type": "filesystem",
                                      "hls_segment_seconds": 1, "mp4_segment_minutes": 0.05}});
    let server = Server::start(config, &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    server.start_recording("cam", "traversal").await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    server.stop_recording("cam").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list = server.get("/cam/control/recordings/mp4/segments").await.json();
    let segments = list["data"]["segments"].as_array().cloned().unwrap_or_default();
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else { panic!("no MP4 segments: {list}") };
    let body = json!({"from": first["start_time"], "to": last["end_time"]}).to_string();
    let started = server.request("POST", "/cam/control/recordings/mp4/export", &[], Some(body.as_bytes())).await;
    let id = started.json()["data"]["job_id"].as_u64().unwrap_or_else(|| panic!("{}", started.text()));
    let done = eventually(Duration::from_secs(60), async || {
        server.get(&format!("/cam/control/recordings/mp4/export/jobs/{id}")).await.json()["data"]["state"] == "done"
    })
    .await;
    assert!(done, "{}", server.get(&format!("/cam/control/recordings/mp4/export/jobs/{id}")).await.text());
    (cam, server, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_traversal_and_planted_symlinks_never_serve_a_file_from_outside() {
    let (_cam, server, export_id) = setup().await;
    let dir = server.dir.0.clone();
    let secret = secret_file(&dir, "secret.txt", 64);
    let abs = secret.to_string_lossy().into_owned();
    let abs_encoded = abs.replace('/', "%2f");

    // 1. Names that try to walk out, against every route that turns a name into a file.
    let routes = [
        "/cam/hls/{}",
        "/cam/control/recordings/hls/segments/{}",
        "/cam/control/recordings/hls/init/{}",
        "/cam/control/recordings/mp4/segments/{}",
        "/cam/control/recordings/mp4/export/download/{}",
        "/cam/control/recordings/mp4/export/jobs/{}",
        "/cam/control/recordings/frames/{}",
        "/assets/{}",
        "/api/admin/cameras/{}",
        "/cam/{}",
        "/{}",
    ];
    let attacks = [
        "../../secret.txt".to_string(),
        "../../../../../../etc/passwd".into(),
        "..%2f..%2fsecret.txt".into(),
        "..%2F..%2Fsecret.txt".into(),
        "%2e%2e%2f%2e%2e%2fsecret.txt".into(),
        "%2e%2e/%2e%2e/secret.txt".into(),
        ".%2e/.%2e/secret.txt".into(),
        "%252e%252e%252f%252e%252e%252fsecret.txt".into(),
        "..%252f..%252fsecret.txt".into(),
        "..\\..\\secret.txt".into(),
        "..%5c..%5csecret.txt".into(),
        "..%255c..%255csecret.txt".into(),
        "....//....//secret.txt".into(),
        "..;/..;/secret.txt".into(),
        "%c0%ae%c0%ae/%c0%ae%c0%ae/secret.txt".into(),
        "..%c0%af..%c0%afsecret.txt".into(),
        "/etc/passwd".into(),
        "%2fetc%2fpasswd".into(),
        abs.clone(),
        abs_encoded,
        "secret.txt%00.mp4".into(),
        "%00".into(),
        "..%00/secret.txt".into(),
        "..\0/secret.txt".into(),
        "config.json".into(),
        "../config".into(),
        "..%2fconfig".into(),
    ];
    for route in routes {
        for attack in &attacks {
            let path = route.replace("{}", attack);
            let r = get(&server, &path, &[]).await;
            assert_refused(&r, &format!("GET {path:?}"));
        }
    }

    // 2. Symlinks planted in the live HLS spool, named like what the route serves.
    let spool = dir.join("spool/cam");
    assert!(spool.join("live.m3u8").exists(), "the camera has live HLS");
    for (name, target) in [
        ("evil.m4s", secret.clone()),
        ("evil.mp4", secret.clone()),
        ("evil.m3u8", secret.clone()),
        ("passwd.m4s", PathBuf::from("/etc/passwd")),
    ] {
        plant(&spool.join(name), &target);
        assert_refused(&get(&server, &format!("/cam/hls/{name}"), &[]).await, &format!("spool symlink {name}"));
    }
    // The real live playlist is still served: the check refuses only what leads out.
    assert_eq!(get(&server, "/cam/hls/live.m3u8", &[]).await.status, 200);

    // 3. A recorded MP4 file replaced by a symlink to a secret of the same size.
    let list = get(&server, "/cam/control/recordings/mp4/segments", &[]).await.json();
    let segments = list["data"]["segments"].as_array().unwrap().clone();
    assert!(!segments.is_empty(), "{list}");
    let recordings = dir.join("recordings");
    let name = segments[0]["filename"].as_str().unwrap();
    let url = format!("/cam/control/recordings/mp4/segments/{name}");
    assert_eq!(get(&server, &url, &[]).await.status, 200, "served before the swap");
    let file = files_under(&recordings.join("cam")).into_iter().find(|p| p.ends_with(name)).unwrap();
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    plant(&file, &secret_file(&dir, "secret-mp4", len));
    assert_refused(&get(&server, &url, &[]).await, "MP4 symlink");
    assert_refused(&get(&server, &url, &[("Range", "bytes=0-99")]).await, "MP4 symlink, ranged");
    assert_refused(&get(&server, &format!("{url}?download=1"), &[]).await, "MP4 symlink, download");

    // 4. Stored HLS segments (files beside segments.db) replaced the same way.
    let t1 = segments[0]["start_ms"].as_i64().unwrap() - 60_000;
    let playlist =
        get(&server, &format!("/cam/control/recordings/hls/timerange?t1={t1}&t2={}", t1 + 3_600_000), &[]).await;
    let playlist = playlist.text();
    let starts: Vec<String> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("segments/"))
        .filter_map(|l| l.split('.').next())
        .map(str::to_string)
        .collect();
    assert!(!starts.is_empty(), "{playlist}");
    let blobs = files_under(&recordings.join("cam/segments"));
    for start in &starts {
        let file = blobs
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{start}_")))
            .unwrap_or_else(|| panic!("no stored file for segment {start} in {blobs:?}"));
        let len = std::fs::metadata(file).unwrap().len() as usize;
        plant(file, &secret_file(&dir, &format!("secret-{start}"), len));
        let r = get(&server, &format!("/cam/control/recordings/hls/segments/{start}.m4s"), &[]).await;
        assert_refused(&r, &format!("stored HLS segment {start} as a symlink"));
    }

    // 5. A finished export replaced by a symlink.
    let exports = files_under(&recordings.join("exports"));
    let export = exports.iter().find(|p| p.extension().is_some_and(|e| e == "mp4")).expect("the export file");
    let len = std::fs::metadata(export).unwrap().len() as usize;
    plant(export, &secret_file(&dir, "secret-export", len));
    let r = get(&server, &format!("/cam/control/recordings/mp4/export/download/{export_id}"), &[]).await;
    assert_refused(&r, "export symlink");

    // Every refusal of a planted symlink was logged with where it led.
    let log = server.log();
    assert!(log.contains("refused to serve a file outside"), "{log}");
    assert_eq!(server.camera_status("cam").await["restarts"], 0);
}
