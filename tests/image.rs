//! The panel image end to end, as CI sees it: `scripts/build-image --board aarch64-panel` builds
//! the tarball; it is unpacked into a temporary root and checked against its manifest; its units
//! pass `systemd-analyze verify` and the exposure budget; systemd-sysusers and systemd-tmpfiles
//! apply its entries to that root; and the unpacked static aarch64 binary, under
//! `qemu-aarch64-static` without a sysroot, serves `/api/status` and live JPEGs from the real
//! test camera with the shipped configuration.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::harness::*;

const BOARD: &str = "aarch64-panel";
/// The panel's flash budget for the binary.
const BINARY_LIMIT: u64 = 4 << 20;
/// `systemd-analyze security` exposure the unit must stay within (issue 8).
const EXPOSURE_LIMIT: f64 = 1.5;

/// Runs a command to completion; panics with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

/// The tarball, built into `dir`, and the root it was unpacked into.
fn build_and_unpack(dir: &TempDir) -> (PathBuf, PathBuf) {
    let out = dir.0.join("out");
    run(Command::new(repo_path("scripts/build-image")).args(["--board", BOARD, "--out"]).arg(&out));
    let version = env!("CARGO_PKG_VERSION");
    let tarball = out.join(format!("panelcam-{BOARD}-{version}.tar.gz"));
    assert!(tarball.is_file(), "build-image made {}", tarball.display());
    let root = dir.0.join("root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&root));
    (tarball, root)
}

/// Every regular file below `root`, relative, with its bytes' SHA-256 (via sha256sum, which is
/// what a person checking a panel would use).
fn files_with_sha256(root: &Path) -> BTreeMap<String, String> {
    let listing =
        run(Command::new("find").arg(".").args(["-type", "f", "-exec", "sha256sum", "{}", "+"]).current_dir(root));
    listing
        .lines()
        .map(|l| {
            let (sha, path) = l.split_once("  ./").unwrap_or_else(|| panic!("sha256sum line {l:?}"));
            (path.to_string(), sha.to_string())
        })
        .collect()
}

fn check_tarball_entries(tarball: &Path) {
    let entries = run(Command::new("tar").arg("-tzf").arg(tarball));
    for entry in entries.lines() {
        let top = entry.split('/').next().unwrap_or_default();
        assert!(
            !["lib", "lib64", "bin", "sbin"].contains(&top),
            "{entry}: unpacking over / would replace Debian's merged-/usr symlink /{top}"
        );
        assert!(!entry.ends_with('/'), "{entry}: directory entries would change existing directories on the panel");
    }
    assert!(entries.lines().any(|e| e == "usr/lib/systemd/system/panelcam.service"), "{entries}");
}

/// Every file listed with its SHA-256 and size, nothing unlisted but the manifest itself.
fn check_manifest(root: &Path) -> Value {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("usr/share/panelcam/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["board"], BOARD);
    assert_eq!(manifest["target"], "aarch64-unknown-linux-musl");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    let commit = manifest["git_commit"].as_str().unwrap();
    let hex = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "git_commit {commit:?}");

    let mut on_disk = files_with_sha256(root);
    assert!(on_disk.remove("usr/share/panelcam/manifest.json").is_some(), "the manifest is in the tarball");
    let mut listed = BTreeMap::new();
    for f in manifest["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap().to_string();
        let size = std::fs::metadata(root.join(&path)).map(|m| m.len()).ok();
        assert_eq!(size, f["size"].as_u64(), "{path}: size in the manifest");
        assert!(
            listed.insert(path.clone(), f["sha256"].as_str().unwrap().to_string()).is_none(),
            "{path} listed twice"
        );
    }
    assert_eq!(listed, on_disk, "manifest (left) and unpacked files (right) must list the same files and hashes");

    let binary = manifest["binary"]["size"].as_u64().unwrap();
    assert_eq!(manifest["binary"]["path"], "usr/bin/panelcam");
    assert_eq!(Some(binary), std::fs::metadata(root.join("usr/bin/panelcam")).ok().map(|m| m.len()));
    assert!(binary <= BINARY_LIMIT, "binary {binary} bytes, budget {BINARY_LIMIT}");
    for expected in [
        "etc/panelcam/config.json",
        "etc/panelcam/cameras/demo.json",
        "usr/lib/systemd/system/run-panelcam-spool.mount",
        "usr/lib/tmpfiles.d/panelcam.conf",
        "usr/lib/sysusers.d/panelcam.conf",
        "usr/share/doc/panelcam/README.md",
        "usr/share/panelcam/hls.min.js",
    ] {
        assert!(listed.contains_key(expected), "{expected} is shipped");
    }
    manifest
}

/// `systemd-analyze verify` checks that ExecStart's program exists on this machine, where the
/// image's binary is not at /usr/bin/panelcam, and `--root=` does not help (systemd 252's verify
/// then also looks for sysinit.target and friends in that root). So the check runs on copies of
/// the units whose ExecStart names the unpacked binary; nothing else is changed.
fn check_units(root: &Path, work: &Path) {
    let units = work.join("units");
    std::fs::create_dir_all(&units).unwrap();
    let shipped = root.join("usr/lib/systemd/system");
    let service = std::fs::read_to_string(shipped.join("panelcam.service")).unwrap();
    let binary = root.join("usr/bin/panelcam");
    let rewritten = service.replace("\nExecStart=/usr/bin/panelcam ", &format!("\nExecStart={} ", binary.display()));
    assert_ne!(rewritten, service, "ExecStart runs /usr/bin/panelcam");
    std::fs::write(units.join("panelcam.service"), rewritten).unwrap();
    std::fs::copy(shipped.join("run-panelcam-spool.mount"), units.join("run-panelcam-spool.mount")).unwrap();

    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.join("panelcam.service"))
        .arg(units.join("run-panelcam-spool.mount"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // verify exits 0 on unknown keys and only prints them: any output is a finding.
    assert!(out.status.success() && text.trim().is_empty(), "systemd-analyze verify ({}):\n{text}", out.status);

    let report =
        run(Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(units.join("panelcam.service")));
    let score: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for panelcam.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    eprintln!("systemd-analyze security --offline=true: exposure {score}");
    assert!(score <= EXPOSURE_LIMIT, "exposure {score} > {EXPOSURE_LIMIT}:\n{report}");
}

/// The README's install steps, on the temporary root: sysusers creates the user, tmpfiles makes
/// /etc/panelcam readable by root and the panelcam group only (it holds camera passwords).
fn apply_sysusers_and_tmpfiles(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    assert!(
        std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0),
        "this test applies owners in a temporary root and needs root, as CI and the panel run it"
    );
    run(Command::new("systemd-sysusers").arg(format!("--root={}", root.display())));
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    let gid: u32 = group
        .lines()
        .find_map(|l| l.strip_prefix("panelcam:x:"))
        .and_then(|rest| rest.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no panelcam group in etc/group:\n{group}"));
    run(Command::new("systemd-tmpfiles").arg(format!("--root={}", root.display())).arg("--create"));
    for (path, mode) in
        [("etc/panelcam", 0o750), ("etc/panelcam/cameras/demo.json", 0o640), ("etc/panelcam/config.json", 0o640)]
    {
        let meta = std::fs::metadata(root.join(path)).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid(), meta.gid()), (mode, 0, gid), "{path}: mode, owner, group");
    }
}

/// The shipped config.json with only its absolute paths taken out: the harness then keeps
/// recordings and spool in the server's own directory. Everything else is as on a panel.
fn shipped_config(root: &Path) -> Value {
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("etc/panelcam/config.json")).unwrap()).unwrap();
    assert_eq!(config["server"]["port"], 8080);
    assert_eq!(config["recording"]["spool_path"], "/run/panelcam/spool");
    assert_eq!(config["recording"]["database_path"], "/var/lib/panelcam/recordings");
    let recording = config["recording"].as_object_mut().unwrap();
    recording.remove("database_path");
    recording.remove("spool_path");
    config["server"].as_object_mut().unwrap().remove("log_dir");
    let hls = root.join(config["server"]["hls_js_path"].as_str().unwrap().trim_start_matches('/'));
    config["server"]["hls_js_path"] = json!(hls);
    config
}

/// Command lines of the FFmpeg processes started by `parent` (under qemu-user the emulated
/// panelcam is the qemu process itself, and FFmpeg, a host binary, runs natively).
fn ffmpeg_children(parent: u32) -> Vec<String> {
    let parent_of = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
    };
    pids_with_arg("ffmpeg")
        .into_iter()
        .filter(|pid| comm(*pid) == "ffmpeg" && parent_of(*pid) == Some(parent))
        .map(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default().replace('\0', " "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_image_tarball_is_complete_verified_hardened_and_serves_under_qemu() {
    let dir = TempDir::new("image");
    let (tarball, root) = build_and_unpack(&dir);
    check_tarball_entries(&tarball);
    check_manifest(&root);
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("etc/panelcam/cameras/demo.json")).unwrap()).unwrap();
    assert_eq!(demo["enabled"], false, "the demo camera ships disabled");
    check_units(&root, &dir.0);
    apply_sysusers_and_tmpfiles(&root);

    // The static aarch64 binary under qemu-user, no sysroot (-L): it needs no loader or libc.
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let binary = root.join("usr/bin/panelcam").display().to_string();
    let launch = Launch { program: vec!["qemu-aarch64-static".into(), binary], ..Launch::default() };
    let server = Server::start_with(
        shipped_config(&root),
        &[("cam", camera_json("/cam", &cam.url("/cam"), json!({}))), ("demo", demo)],
        launch,
    )
    .await;
    let status = server.get("/api/status").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["status"], "success", "{}", status.text());
    server.wait_streaming("cam", Duration::from_secs(30)).await;
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    for i in 0..5 {
        let jpeg =
            next_binary(&mut ws, Duration::from_secs(5)).await.unwrap_or_else(|| panic!("frame {i} over WebSocket"));
        assert_eq!(jpeg_size(&jpeg), (640, 360), "frame {i} is a whole JPEG at the configured scale");
    }
    let hls = server.get("/assets/hls.min.js").await;
    assert_eq!(hls.status, 200, "the shipped hls.js is served from the config's hls_js_path");
    let demo = server.camera_status("demo").await;
    assert_eq!(demo["enabled"], false, "{demo}");
    let ffmpegs = ffmpeg_children(server.pid());
    assert_eq!(ffmpegs.len(), 1, "one FFmpeg (cam), none for the disabled demo camera: {ffmpegs:?}");
    assert!(!ffmpegs[0].contains("testsrc2"), "{ffmpegs:?}");
}
