//! Video helpers for the end-to-end tests: ffprobe, PostgreSQL databases (shared and a
//! private server that tests stop and start), and a spool collector.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::harness::{TempDir, free_port};

/// `ffprobe -show_format -show_streams` as JSON.
pub async fn ffprobe(input: &str) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams", input])
        .output()
        .await
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe {input}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Duration in seconds as ffprobe reports it.
pub fn probe_duration(p: &Value) -> f64 {
    p["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0)
}

/// SHA-256 of every video packet's payload (`ffprobe -show_packets -show_data_hash`): equal
/// hashes mean equal coded bytes, i.e. no re-encode.
pub async fn packet_hashes(input: &str) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_packets",
            "-show_data_hash",
            "sha256",
            "-show_entries",
            "packet=data_hash",
            "-of",
            "csv=p=0",
            input,
        ])
        .output()
        .await
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// A fresh database on the machine's PostgreSQL (127.0.0.1:5432, trust), dropped on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

pub const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

pub async fn pg_connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conninfo}: {e}"));
    tokio::spawn(conn);
    client
}

impl TestDb {
    pub async fn create(tag: &str) -> TestDb {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("panelcam_test_{tag}_{}_{n}", std::process::id());
        let admin = pg_connect(PG_ADMIN).await;
        // Two calls: one multi-statement string runs as a transaction, which DROP DATABASE refuses.
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        TestDb { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), name }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        pg_connect(&format!("host=127.0.0.1 port=5432 user=postgres dbname={}", self.name)).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Best effort, outside the (possibly finished) test runtime.
        let _ = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .output();
    }
}

/// A private PostgreSQL server in a temp directory, for tests that stop and start it.
pub struct PrivatePg {
    pub dir: TempDir,
    pub port: u16,
    bin: PathBuf,
}

impl PrivatePg {
    pub async fn start() -> PrivatePg {
        let version = std::fs::read_dir("/usr/lib/postgresql").unwrap().flatten().map(|e| e.file_name()).max().unwrap();
        let bin = Path::new("/usr/lib/postgresql").join(version).join("bin");
        let dir = TempDir::new("pg");
        let data = dir.0.join("data");
        std::fs::create_dir_all(&data).unwrap();
        // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
        let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir.0).status().await.unwrap();
        assert!(chown.success());
        let initdb = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .await
            .unwrap();
        assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
        let pg = PrivatePg { dir, port: free_port(), bin };
        pg.up().await;
        pg
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    async fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.0.join("data");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.0.display());
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(self.dir.0.join("pg.log"))
            .args(args)
            .output()
            .await
            .unwrap()
    }

    pub async fn up(&self) {
        let out = self.pg_ctl(&["-w", "start"]).await;
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub async fn down(&self) {
        let out = self.pg_ctl(&["-w", "-m", "fast", "stop"]).await;
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        pg_connect(&format!("host=127.0.0.1 port={} user=postgres dbname={db}", self.port)).await
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.0.join("data");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Copies every segment FFmpeg lists in a spool playlist into `keep`, as it appears, so a
/// test can compare what was recorded with what arrived elsewhere.
pub fn collect_spool(spool: PathBuf, keep: PathBuf) -> tokio::task::JoinHandle<()> {
    std::fs::create_dir_all(&keep).unwrap();
    tokio::spawn(async move {
        loop {
            if let Ok(text) = tokio::fs::read_to_string(spool.join("live.m3u8")).await {
                for line in text.lines().filter(|l| l.starts_with("seg_")) {
                    let dest = keep.join(line);
                    if !dest.exists() {
                        let _ = tokio::fs::copy(spool.join(line), &dest).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}
