use std::path::Path;

use proptest::prelude::*;

use super::*;

/// The repository's reference board, so the tests follow the real file.
const AARCH64: &str = include_str!("../../../board/aarch64-panel.toml");

fn parse(text: &str) -> Result<Board, Error> {
    Board::parse(Path::new("board/aarch64-panel.toml"), text)
}

fn problems(text: &str) -> Vec<String> {
    parse(text).unwrap_err().to_string().lines().map(str::to_string).collect()
}

#[test]
fn the_shipped_boards_are_valid() {
    let b = parse(AARCH64).unwrap();
    assert_eq!(b.target, "aarch64-unknown-linux-musl");
    assert_eq!(b.rustflags, ["-C", "target-cpu=cortex-a53", "-C", "force-unwind-tables=no"]);
    assert_eq!(b.spool_dir, "/run/panelcam/spool");
    assert_eq!((b.memory_max.as_str(), b.spool_max.as_str(), b.port), ("384M", "64M", 8080));
    for name in ["armv7-panel", "x86_64-pc"] {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../board/{name}.toml"));
        Board::load(&file).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn errors_name_the_file_the_field_and_what_was_expected() {
    let text = AARCH64.replace("port = 8080", "port = 80800").replace("memory_max = \"384M\"", "memory_max = 384");
    let p = problems(&text);
    assert!(
        p.contains(&"board/aarch64-panel.toml: limits.memory_max: expected a string, found integer".to_string()),
        "{p:?}"
    );
    assert!(
        p.contains(
            &"board/aarch64-panel.toml: server.port: expected an integer from 1 to 65535, found 80800".to_string()
        ),
        "{p:?}"
    );
    assert_eq!(p.len(), 2, "every problem, once: {p:?}");
}

#[test]
fn unknown_and_missing_keys_are_errors() {
    let p = problems(&AARCH64.replace("port = 8080", "port = 8080\nprot = 1").replace("[ffmpeg]", "[ffmpg]"));
    assert!(p.iter().any(|l| l.contains("server.prot: unknown key; expected one of port")), "{p:?}");
    assert!(p.iter().any(|l| l.contains("ffmpg: unknown key")), "{p:?}");
    assert!(p.iter().any(|l| l.contains("ffmpeg: missing; expected a table")), "{p:?}");
    let p = problems(&AARCH64.replace("spool_dir = \"/run/panelcam/spool\"\n", ""));
    assert!(p.iter().any(|l| l.ends_with("paths.spool_dir: missing; expected a string")), "{p:?}");
}

#[test]
fn paths_that_would_break_a_panel_are_refused() {
    for (from, to, expect) in [
        (
            "binary = \"/usr/bin/panelcam\"",
            "binary = \"/bin/panelcam\"",
            "paths.binary: expected a path under /usr/ or /opt/",
        ),
        (
            "data_dir = \"/var/lib/panelcam\"",
            "data_dir = \"/data/panelcam\"",
            "paths.data_dir: expected a directory below /var/lib/",
        ),
        (
            "spool_dir = \"/run/panelcam/spool\"",
            "spool_dir = \"/run/../etc\"",
            "paths.spool_dir: expected an absolute path of plain names",
        ),
        (
            "log_dir = \"/var/log/panelcam\"",
            "log_dir = \"/var/log/pan elcam\"",
            "paths.log_dir: expected an absolute path",
        ),
        ("path = \"/usr/bin/ffmpeg\"", "path = \"ffmpeg\"", "ffmpeg.path: expected an absolute path"),
    ] {
        let p = problems(&AARCH64.replace(from, to));
        assert!(p.iter().any(|l| l.contains(expect)), "{to}: {p:?}");
    }
}

#[test]
fn limits_and_target_are_checked_for_what_they_become() {
    let p = problems(&AARCH64.replace("spool_max = \"64M\"", "spool_max = \"1G\""));
    assert!(p.iter().any(|l| l.contains("limits.spool_max: expected less than limits.memory_max")), "{p:?}");
    let p = problems(&AARCH64.replace("memory_max = \"384M\"", "memory_max = \"384MB\""));
    assert!(p.iter().any(|l| l.contains("limits.memory_max: expected a size such as")), "{p:?}");
    let p = problems(&AARCH64.replace("aarch64-unknown-linux-musl", "aarch64-unknown-linux-gnu"));
    assert!(p.iter().any(|l| l.contains("build.target: expected a musl target triple")), "{p:?}");
    let p = problems(&AARCH64.replace("\"target-cpu=cortex-a53\"", "\"target-cpu=cortex a53\""));
    assert!(p.iter().any(|l| l.contains("build.rustflags: expected an array of rustc flags without spaces")), "{p:?}");
    let p = problems(&AARCH64.replace("name = \"aarch64-panel\"", "name = \"other\""));
    assert!(p.iter().any(|l| l.contains("name: expected the file's name without .toml")), "{p:?}");
}

#[test]
fn sizes() {
    assert_eq!(size_bytes("64M"), Some(64 << 20));
    assert_eq!(size_bytes("1G"), Some(1 << 30));
    for bad in ["", "M", "0M", "064M", "64", "64m", "64é", "é", "99999999999999999999G"] {
        assert_eq!(size_bytes(bad), None, "{bad:?}");
    }
}

proptest! {
    /// Arbitrary text, including broken TOML and multi-byte characters: an error, never a panic.
    #[test]
    fn hostile_text_gives_an_error_not_a_panic(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    /// A valid board with one line replaced by junk: still no panic, and a readable error.
    #[test]
    fn a_corrupted_line_gives_an_error_naming_the_file(line in 0usize..40, junk in "[ -~éß\\[\\]\"'=.\\n]{0,30}") {
        let mut lines: Vec<&str> = AARCH64.lines().collect();
        if line < lines.len() {
            lines[line] = &junk;
        }
        if let Err(e) = parse(&lines.join("\n")) {
            prop_assert!(e.to_string().starts_with("board/aarch64-panel.toml: "), "{}", e);
        }
    }

    /// Values of every TOML type in every field: checked, never a panic.
    #[test]
    fn any_value_in_any_field(field in 0usize..15, value in prop_oneof![
        Just("1".to_string()), Just("-1".to_string()), Just("1.5".to_string()), Just("true".to_string()),
        Just("[]".to_string()), Just("{}".to_string()), Just("1979-05-27".to_string()),
        "\"\\PC{0,20}\"".prop_map(|s| s.replace('\\', "")), Just("9223372036854775807".to_string()),
    ]) {
        let keys = ["name", "description", "target", "rustflags", "binary", "config_dir", "data_dir", "spool_dir",
                    "log_dir", "memory_max", "disk_max_percent", "outbox_max_mb", "spool_max", "path", "port"];
        let key = keys[field];
        let text: String = AARCH64.lines().map(|l| {
            if l.starts_with(&format!("{key} =")) { format!("{key} = {value}\n") } else { format!("{l}\n") }
        }).collect();
        let _ = parse(&text);
    }
}
