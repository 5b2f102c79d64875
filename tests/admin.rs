//! The admin API against the real binary: every endpoint needs the admin token; edits are
//! validated, written atomically and applied at once; secrets are write-only; concurrent
//! edits never tear a file and `If-Match` turns a lost update into a 412.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::harness::*;

const VIEWER: &str = "viewer-token-admin-test";
const PASSWORD: &str = "cam-pw-7731";

fn body(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_endpoint_needs_the_admin_token() {
    let server =
        Server::start(json!({}), &[("cam", json!({"path": "/cam", "url": "rtsp://127.0.0.1:9/x", "token": VIEWER}))])
            .await;
    let endpoints = [
        ("GET", "/api/admin/cameras"),
        ("POST", "/api/admin/cameras"),
        ("GET", "/api/admin/cameras/cam"),
        ("PUT", "/api/admin/cameras/cam"),
        ("DELETE", "/api/admin/cameras/cam"),
        ("GET", "/api/admin/config"),
        ("PUT", "/api/admin/config"),
    ];
    let viewer = format!("Bearer {VIEWER}");
    for (method, path) in endpoints {
        let none = server.request(method, path, &[], Some(b"{}")).await;
        assert_eq!(none.status, 401, "{method} {path} without a credential");
        let as_viewer = server.request(method, path, &[("Authorization", &viewer)], Some(b"{}")).await;
        assert_eq!(as_viewer.status, 403, "{method} {path} with a viewer token");
        let in_query = server.request(method, &format!("{path}?token={ADMIN_TOKEN}"), &[], Some(b"{}")).await;
        assert_eq!(in_query.status, 401, "{method} {path}: the admin token is taken from the header only");
    }
    // Nothing was changed by any of them.
    assert!(server.dir.0.join("cameras/cam.json").exists());
    assert_eq!(server.admin("GET", "/api/admin/cameras/cam", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_are_created_edited_and_deleted_with_secrets_write_only() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let server = Server::start(json!({}), &[]).await;
    let url = format!("rtsp://operator:{PASSWORD}@127.0.0.1:{}/cam", cam.port);
    let config = camera_json("/door", &url, json!({"token": VIEWER}));

    // Create: validated, written, applied at once.
    let r =
        server.admin("POST", "/api/admin/cameras", Some(&body(&json!({"camera_id": "door", "config": config})))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["data"]["applied"]["added"], json!(["door"]));
    server.wait_streaming("door", Duration::from_secs(20)).await;
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(server.dir.0.join("cameras/door.json")).unwrap()).unwrap();
    assert_eq!(on_disk["url"], url);

    // Read: no password, no user name, no token; what is set is named.
    let r = server.admin("GET", "/api/admin/cameras/door", None).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    for secret in [PASSWORD, "operator", VIEWER] {
        assert!(!text.contains(secret), "{secret} returned: {text}");
    }
    let shown = r.json()["data"]["config"].clone();
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(r.json()["data"]["secrets_set"], json!(["/token", "/url (credentials)"]));
    let list = server.admin("GET", "/api/admin/cameras", None).await.text();
    assert!(!list.contains(PASSWORD) && !list.contains(VIEWER), "{list}");

    // Edit what was shown (as the admin page does): the secrets stay, the camera restarts.
    let mut edited = shown.clone();
    merge(&mut edited, json!({"ffmpeg": {"scale": "320:-1"}}));
    let r = server
        .request(
            "PUT",
            "/api/admin/cameras/door",
            &[("Authorization", &format!("Bearer {ADMIN_TOKEN}")), ("If-Match", &etag)],
            Some(&body(&edited)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["applied"]["restarted"], json!(["door"]));
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(server.dir.0.join("cameras/door.json")).unwrap()).unwrap();
    assert_eq!(on_disk["url"], url, "the password was kept");
    assert_eq!(on_disk["token"], VIEWER, "the token was kept");
    assert_eq!(on_disk["ffmpeg"]["scale"], "320:-1");
    server.wait_streaming("door", Duration::from_secs(20)).await;
    assert_eq!(server.get(&format!("/door/snapshot?token={VIEWER}")).await.status, 200, "the token still opens it");

    // The old version's ETag is stale now.
    let stale = server
        .request(
            "PUT",
            "/api/admin/cameras/door",
            &[("Authorization", &format!("Bearer {ADMIN_TOKEN}")), ("If-Match", &etag)],
            Some(&body(&edited)),
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text());

    // Invalid edits name the field and change nothing.
    let mut bad = shown.clone();
    bad["url"] = json!(42);
    let r = server.admin("PUT", "/api/admin/cameras/door", Some(&body(&bad))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["problems"].as_array().unwrap().iter().any(|p| p["field"] == "url"), "{}", r.text());
    for (method, path, payload, want) in [
        ("PUT", "/api/admin/cameras/door", b"not json".to_vec(), 400),
        ("PUT", "/api/admin/cameras/door", b"[1, 2]".to_vec(), 400),
        ("PUT", "/api/admin/cameras/..%2Fetc", body(&shown), 400),
        ("PUT", "/api/admin/cameras/nobody", body(&shown), 404),
        ("POST", "/api/admin/cameras", body(&json!({"camera_id": "door", "config": shown})), 409),
        ("POST", "/api/admin/cameras", body(&json!({"camera_id": "other", "config": config})), 409),
        ("POST", "/api/admin/cameras", body(&json!({"camera_id": ".hidden", "config": config})), 400),
        ("POST", "/api/admin/cameras", body(&json!({"config": config})), 400),
        ("POST", "/api/admin/cameras", vec![b' '; 100_000], 413),
    ] {
        let r = server.admin(method, path, Some(&payload)).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.text());
    }
    let after: Value = serde_json::from_slice(&std::fs::read(server.dir.0.join("cameras/door.json")).unwrap()).unwrap();
    assert_eq!(after, on_disk, "refused edits changed nothing");
    assert_eq!(server.camera_status("door").await["state"], "streaming");

    // Delete.
    let r = server.admin("DELETE", "/api/admin/cameras/door", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["applied"]["removed"], json!(["door"]));
    assert!(!server.dir.0.join("cameras/door.json").exists());
    assert_eq!(server.admin("DELETE", "/api/admin/cameras/door", None).await.status, 404);
    assert!(!server.log().contains(PASSWORD), "the password reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_never_tear_a_file_and_if_match_lets_only_one_win() {
    let server =
        Server::start(json!({}), &[("cam", json!({"path": "/cam", "url": "rtsp://127.0.0.1:9/x", "enabled": false}))])
            .await;
    let version = server.admin("GET", "/api/admin/cameras/cam", None).await.header("etag").unwrap().to_string();
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    // Twenty editors at once, each with the same version: one wins, the others get 412.
    let mut edits = Vec::new();
    for i in 0..20 {
        let doc = json!({"path": "/cam", "url": format!("rtsp://127.0.0.1:9/edit{i}"), "enabled": false});
        let (server, bearer, version) = (&server, bearer.clone(), version.clone());
        edits.push(async move {
            server
                .request(
                    "PUT",
                    "/api/admin/cameras/cam",
                    &[("Authorization", &bearer), ("If-Match", &version)],
                    Some(&body(&doc)),
                )
                .await
                .status
        });
    }
    let statuses = futures_util::future::join_all(edits).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 19, "{statuses:?}");
    // Without If-Match the last writer wins, and the file is always one whole edit.
    let mut edits = Vec::new();
    for i in 0..20 {
        let doc = json!({"path": "/cam", "url": format!("rtsp://127.0.0.1:9/last{i}"), "enabled": false});
        let server = &server;
        edits.push(async move { server.admin("PUT", "/api/admin/cameras/cam", Some(&body(&doc))).await.status });
    }
    assert!(futures_util::future::join_all(edits).await.iter().all(|s| *s == 200));
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(server.dir.0.join("cameras/cam.json")).unwrap()).unwrap();
    assert!(on_disk["url"].as_str().unwrap().starts_with("rtsp://127.0.0.1:9/last"), "{on_disk}");
    let leftovers: Vec<_> =
        std::fs::read_dir(server.dir.0.join("cameras")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_json_is_merged_validated_and_its_secrets_stay_hidden() {
    let server = Server::start(json!({"mqtt": {"password": "mqtt-secret-pw"}}), &[]).await;
    let r = server.admin("GET", "/api/admin/config", None).await;
    assert_eq!(r.status, 200);
    assert!(!r.text().contains(ADMIN_TOKEN) && !r.text().contains("mqtt-secret-pw"), "{}", r.text());
    assert!(r.json()["data"]["secrets_set"].as_array().unwrap().contains(&json!("/server/admin_token")));

    let r =
        server.admin("PUT", "/api/admin/config", Some(&body(&json!({"server": {"max_viewers_per_camera": 5}})))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["restart_required"], true);
    assert_eq!(r.json()["data"]["changed_sections"], json!(["server"]));
    let on_disk: Value = serde_json::from_slice(&std::fs::read(server.dir.0.join("config.json")).unwrap()).unwrap();
    assert_eq!(on_disk["server"]["max_viewers_per_camera"], 5);
    assert_eq!(on_disk["server"]["admin_token"], ADMIN_TOKEN, "a partial edit keeps the rest");
    assert_eq!(on_disk["mqtt"]["password"], "mqtt-secret-pw");

    let r = server.admin("PUT", "/api/admin/config", Some(&body(&json!({"server": {"port": "eighty"}})))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["problems"].as_array().unwrap().iter().any(|p| p["field"] == "server.port"), "{}", r.text());
    let unchanged: Value = serde_json::from_slice(&std::fs::read(server.dir.0.join("config.json")).unwrap()).unwrap();
    assert_eq!(unchanged, on_disk);
}
