//! Shipping recordings to the real PostgreSQL over TLS (`sslmode`, `sslrootcert` in
//! `recording.database_url`), with the same rustls stack as HTTPS. The machine's PostgreSQL
//! serves Debian's self-signed "snakeoil" certificate (for the name `localhost`), which is
//! exactly the kind of server certificate a plant database has: trusted by naming the file.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::harness::*;
use support::pki::Ca;

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

fn pg_config(url: &str) -> Value {
    json!({"recording": {"database_type": "postgresql", "database_url": url, "hls_storage_enabled": true,
        "mp4_storage_type": "database", "hls_segment_seconds": 2, "mp4_segment_minutes": 0.2}})
}

async fn start(url: &str) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "320", "--height", "240", "--fps", "10"]).await;
    let server = Server::start(pg_config(url), &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    // Segments are kept (and shipped) while a recording runs.
    server.start_recording("cam", "over TLS").await;
    (cam, server)
}

/// The server side: TLS must be on, or these tests would prove nothing.
async fn assert_server_speaks_tls() {
    let admin = pg_connect(PG_ADMIN).await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(ssl, "on", "the test PostgreSQL must have ssl = on (Debian's default, with the snakeoil certificate)");
}

async fn shipped_rows(db: &TestDb) -> i64 {
    db.client().await.query_one("SELECT count(*) FROM hls_segments", &[]).await.map(|r| r.get(0)).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_ship_over_verified_tls_and_postgresql_sees_the_connection_encrypted() {
    assert_server_speaks_tls().await;
    let db = TestDb::create("tls_full").await;
    // verify-full: the certificate must name the host. The snakeoil certificate names
    // `localhost`; hostaddr keeps the connection on 127.0.0.1 where the test server trusts us.
    let url = format!(
        "postgres://postgres@localhost:5432/{}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={SNAKEOIL}",
        db.name
    );
    let (_cam, server) = start(&url).await;
    let shipped = eventually(Duration::from_secs(40), async || shipped_rows(&db).await > 0).await;
    assert!(shipped, "segments reach PostgreSQL over TLS: {}", server.status().await["outbox"]);
    let encrypted: Vec<bool> = db
        .client()
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'panelcam' AND a.datname = $1",
            &[&db.name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!encrypted.is_empty() && encrypted.iter().all(|e| *e), "panelcam's connections: ssl = {encrypted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_accepts_the_chain_under_another_name() {
    assert_server_speaks_tls().await;
    let db = TestDb::create("tls_ca").await;
    let url = format!("postgres://postgres@127.0.0.1:5432/{}?sslmode=verify-ca&sslrootcert={SNAKEOIL}", db.name);
    let (_cam, server) = start(&url).await;
    let shipped = eventually(Duration::from_secs(40), async || shipped_rows(&db).await > 0).await;
    assert!(shipped, "{}", server.status().await["outbox"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_it_cannot_verify_gets_nothing_and_the_outbox_keeps_the_segments() {
    assert_server_speaks_tls().await;
    let pki = TempDir::new("pg-tls-stranger");
    let stranger = Ca::new(&pki.0, "stranger");
    let db = TestDb::create("tls_refused").await;
    // Wrong CA, and the right CA under the wrong name: both refused.
    for (root, host, says) in [
        (stranger.cert_path.display().to_string(), "localhost", "UnknownIssuer"),
        (SNAKEOIL.to_string(), "127.0.0.1", "not valid for name"),
    ] {
        let url = format!(
            "postgres://postgres@{host}:5432/{}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={root}",
            db.name
        );
        let (_cam, server) = start(&url).await;
        let refused = eventually(Duration::from_secs(30), async || {
            let outbox = server.status().await["outbox"].clone();
            outbox["pending_items"].as_u64().unwrap_or(0) > 0
                && outbox["last_error"].as_str().is_some_and(|e| e.contains(says))
        })
        .await;
        assert!(refused, "{says}: {}", server.status().await["outbox"]);
        assert_eq!(shipped_rows(&db).await, 0, "nothing reached PostgreSQL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_that_cannot_work_stop_startup_naming_the_field() {
    let dir = TempDir::new("pg-tls-check");
    for (url, says) in [
        ("postgres://u:pg-secret-9@db/rec?sslmode=prefer", "may end in plain text"),
        (
            "postgres://u:pg-secret-9@db/rec?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "/nonexistent/ca.pem: cannot read",
        ),
        ("postgres://u:pg-secret-9@db/rec?sslrootcert=/etc/ssl/certs/ssl-cert-snakeoil.pem", "add sslmode=verify-full"),
    ] {
        dir.write("config.json", &pg_config(url).to_string());
        let (code, stdout, stderr) = run_panelcam(&dir.0, &["check", "--config", "config.json"]).await;
        let output = format!("{stdout}{stderr}");
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains("recording.database_url") && output.contains(says), "{says}: {output}");
        assert!(!output.contains("pg-secret-9"), "{output}");
    }
}
