//! The WinCC Unified Custom Web Control's package: `scripts/build-cwc.sh` makes the zip WinCC
//! expects, and the packed control talks to WinCC through WebCC (Siemens' `webcc.min.js`, here
//! a stand-in with the same API), falling back to its URL when WebCC does not connect.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::chromium::Browser;
use support::cwc::*;
use support::harness::*;
use support::static_files::StaticFiles;

/// The control's GUID: `cwc/manifest.json` `identity.type` and the zip's name.
const GUID: &str = "09A96E13-71CC-4C2F-933F-4663F5687302";

/// A stand-in for Siemens' webcc.min.js with the API the control uses: `start(callback,
/// contract, extensions, timeout)`, `Properties`, `onPropertyChanged.subscribe`. The initial
/// values come from the page's `#` (JSON); `#fail` makes start report failure.
/// `WebCC.change(key, value)` is the runtime changing a property; `WebCC.writes` lists what
/// the control wrote.
const FAKE_WEBCC: &str = r##"
window.WebCC = (() => {
  const subscribers = [];
  const api = { writes: [], started: null, onPropertyChanged: { subscribe: (fn) => subscribers.push(fn) } };
  let values = {};
  api.start = (callback, contract, extensions, timeout) => {
    api.started = { contract, extensions, timeout };
    if (location.hash === "#fail") return setTimeout(() => callback(false), 10);
    values = Object.assign({}, contract.properties, JSON.parse(decodeURIComponent(location.hash.slice(1)) || "{}"));
    api.Properties = new Proxy(values, { set: (t, k, v) => { t[k] = v; api.writes.push([k, v]); return true; } });
    setTimeout(() => callback(true), 10);
  };
  api.change = (key, value) => { values[key] = value; subscribers.forEach((fn) => fn({ key, value })); };
  return api;
})();
"##;

/// Builds the package (`scripts/build-cwc.sh`), optionally with `webcc`; returns the zip's path.
fn build_package(out: &Path, webcc: Option<&Path>) -> std::process::Output {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(repo_path("scripts/build-cwc.sh")).arg("--out").arg(out);
    match webcc {
        Some(w) => cmd.arg("--webcc").arg(w),
        None => cmd.arg("--without-webcc"),
    };
    cmd.output().expect("run scripts/build-cwc.sh")
}

/// The zip's entries, in order, with their bytes (Python's zipfile, as the build uses).
fn unzip(zip: &Path) -> Vec<(String, Vec<u8>)> {
    let script = "import base64, json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint(json.dumps([[i.filename, base64.b64encode(z.read(i)).decode()] for i in z.infolist()]))";
    let out = std::process::Command::new("python3").args(["-c", script]).arg(zip).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entries: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    entries.into_iter().map(|(name, b64)| (name, support::chromium::base64_decode(&b64).unwrap())).collect()
}

#[test]
fn cwc_package_has_the_layout_wincc_expects_and_the_version() {
    let dir = TempDir::new("cwc-build");
    let zip_name = format!("{{{GUID}}}.zip");
    let built = build_package(&dir.0.join("a"), None);
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let again = build_package(&dir.0.join("b"), None);
    assert!(again.status.success());
    let (a, b) = (
        std::fs::read(dir.0.join("a").join(&zip_name)).unwrap(),
        std::fs::read(dir.0.join("b").join(&zip_name)).unwrap(),
    );
    assert!(a == b, "two builds of the same sources differ");

    let entries = unzip(&dir.0.join("a").join(&zip_name));
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "assets/",
            "control/",
            "assets/logo.png",
            "control/endpoints.js",
            "control/fmp4.js",
            "control/h264-sinks.js",
            "control/h264.js",
            "control/index.html",
            "control/livevideo.js",
            "control/players.js",
            "control/properties.js",
            "control/style.css",
            "control/videoplayer.js",
            "manifest.json"
        ]
    );
    let file = |name: &str| String::from_utf8_lossy(&entries.iter().find(|(n, _)| n == name).unwrap().1).to_string();
    let manifest: Value = serde_json::from_str(&file("manifest.json")).unwrap();
    let identity = &manifest["control"]["identity"];
    assert_eq!(identity["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(identity["type"], format!("guid://{GUID}"));
    assert_eq!(identity["name"], "VideoPlayer");
    assert_eq!(identity["start"], "./control/index.html");
    assert_eq!(identity["icon"], "./assets/logo.png");
    let props = manifest["control"]["contracts"]["api"]["properties"].as_object().unwrap();
    assert_eq!(props.keys().cloned().collect::<Vec<_>>(), sorted(&PROPERTIES));
    assert!(file("control/videoplayer.js").contains(&format!("const VERSION = \"{}\";", env!("CARGO_PKG_VERSION"))));
    assert!(!file("control/index.html").contains("webcc.min.js\"></script>"), "no WebCC without --webcc");
    for shared in ["fmp4.js", "h264-sinks.js", "h264.js"] {
        let web = std::fs::read_to_string(repo_path(&format!("web/{shared}"))).unwrap();
        assert_eq!(file(&format!("control/{shared}")), web, "{shared}: panelcam's own H.264 player, as it is");
    }
    let png = &entries.iter().find(|(n, _)| n == "assets/logo.png").unwrap().1;
    assert!(
        png.starts_with(b"\x89PNG") && u32::from_be_bytes(png[16..20].try_into().unwrap()) >= 120,
        "WinCC wants a 120-320 px icon"
    );

    // With Siemens' script (a stand-in here): packed under control/js and loaded before ours.
    let webcc = dir.0.join("webcc.min.js");
    std::fs::write(&webcc, FAKE_WEBCC).unwrap();
    let built = build_package(&dir.0.join("c"), Some(&webcc));
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let entries = unzip(&dir.0.join("c").join(&zip_name));
    let webcc_entry = entries.iter().find(|(n, _)| n == "control/js/webcc.min.js").expect("control/js/webcc.min.js");
    assert_eq!(webcc_entry.1, FAKE_WEBCC.as_bytes());
    let html = String::from_utf8_lossy(&entries.iter().find(|(n, _)| n == "control/index.html").unwrap().1).to_string();
    let (at_webcc, at_ours) = (html.find("./js/webcc.min.js").unwrap(), html.find("./properties.js").unwrap());
    assert!(at_webcc < at_ours, "{html}");

    // Neither flag: refused, saying where webcc.min.js comes from.
    let out = std::process::Command::new("bash")
        .arg(repo_path("scripts/build-cwc.sh"))
        .arg("--out")
        .arg(dir.0.join("d"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--webcc") && stderr.contains("cwc/README.md"), "{stderr}");
    let out = build_package(&dir.0.join("d"), Some(&dir.0.join("missing.js")));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("missing.js"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_cwc_inside_wincc_talks_through_webcc() {
    let dir = TempDir::new("cwc-webcc");
    let webcc = dir.0.join("webcc.min.js");
    std::fs::write(&webcc, FAKE_WEBCC).unwrap();
    let built = build_package(&dir.0.join("zip"), Some(&webcc));
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let root = dir.0.join("unpacked");
    for (name, bytes) in unzip(&dir.0.join("zip").join(format!("{{{GUID}}}.zip"))) {
        let path = root.join(&name);
        if name.ends_with('/') {
            std::fs::create_dir_all(path).unwrap();
        } else {
            std::fs::write(path, bytes).unwrap();
        }
    }
    let server = server_with(json!({}), lavfi_camera(json!({"token": TOKEN}))).await;
    let files = StaticFiles::serve(root).await;
    let browser = Browser::launch().await.unwrap();

    // WinCC's values: from the contract's defaults and the bound tags (the page's #, here).
    let initial =
        json!({"camera_stream_url": server.http_url("/cam/stream"), "camera_auth_token": TOKEN, "show_version": true});
    let hash = query(&[("x", &initial.to_string())]).trim_start_matches("x=").to_string();
    let page = browser.new_page(&files.url(&format!("/control/index.html#{hash}"))).await.unwrap();
    let props = "window.WebCC.Properties";
    let connected = format!(
        "{props} && {props}.status_connected === true && {props}.status_fps > 3 && {props}.status_bitrate_kbps > 0"
    );
    if let Err(e) = page.wait_for(&connected, Duration::from_secs(15)).await {
        panic!("{e}; console: {:?}", page.console_messages().await);
    }
    let started = page.eval("window.WebCC.started").await.unwrap();
    assert_eq!((started["extensions"].clone(), started["timeout"].clone()), (json!([]), json!(10000)));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("cwc/manifest.json")).unwrap()).unwrap();
    for (name, spec) in manifest["control"]["contracts"]["api"]["properties"].as_object().unwrap() {
        assert_eq!(started["contract"]["properties"][name], spec["default"], "the contract's {name}");
    }
    let v = env!("CARGO_PKG_VERSION");
    let version = format!("document.getElementById('version').textContent === 'VideoPlayer {v} · panelcam {v}'");
    page.wait_for(&version, Duration::from_secs(5)).await.unwrap();
    assert_eq!(page.eval("typeof window.panelcamSetProperty").await.unwrap(), "undefined", "WinCC owns the properties");

    // The runtime changes a property: the control follows and writes its status back.
    page.eval("window.WebCC.change('enable_connection', false)").await.unwrap();
    page.wait_for(&format!("{props}.status_connected === false && {props}.status_fps === 0"), Duration::from_secs(5))
        .await
        .unwrap();
    // A command property is written back to rest once taken (here ignored: no playback runs).
    page.eval("window.WebCC.change('seek_to_time', '2025-08-15T10:00:00Z')").await.unwrap();
    page.wait_for(&format!("{props}.seek_to_time === ''"), Duration::from_secs(5)).await.unwrap();
    page.eval("window.WebCC.change('enable_connection', true)").await.unwrap();
    page.wait_for(&format!("{props}.status_connected === true && {props}.status_fps > 3"), Duration::from_secs(15))
        .await
        .unwrap();
    let written = page.eval("[...new Set(window.WebCC.writes.map(w => w[0]))].sort()").await.unwrap();
    assert_eq!(
        written,
        json!(["seek_to_time", "status_bitrate_kbps", "status_connected", "status_fps", "status_timestamp"])
    );
    page.assert_no_console_errors().await;

    // WebCC that does not connect (the page opened outside WinCC): the URL's properties apply.
    let query = query(&[("camera_stream_url", &server.http_url("/cam/stream")), ("camera_auth_token", TOKEN)]);
    let page = browser.new_page(&files.url(&format!("/control/index.html?{query}#fail"))).await.unwrap();
    page.wait_for(
        "window.panelcamStatus && window.panelcamStatus.status_connected && window.panelcamStatus.status_fps > 3",
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    let warned =
        page.console_messages().await.iter().any(|m| m.starts_with("[warning]") && m.contains("WebCC did not connect"));
    assert!(warned, "{:?}", page.console_messages().await);
    page.assert_no_console_errors().await;
}
