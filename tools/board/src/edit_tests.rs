use std::path::{Path, PathBuf};

use super::*;

const AARCH64: &str = include_str!("../../../board/aarch64-panel.toml");

/// A scratch copy of the reference board in its own directory (boards are found beside it).
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("board-edit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("aarch64-panel.toml");
    std::fs::write(&file, AARCH64).unwrap();
    file
}

fn set_in(file: &Path, key: &str, value: &str) -> Result<String, Error> {
    let mut doc = read(file)?;
    set(file, &mut doc, key, value)?;
    write(file, &doc)?;
    Ok(std::fs::read_to_string(file).unwrap())
}

#[test]
fn comments_and_layout_survive_an_edit() {
    let file = scratch("comments");
    let text = set_in(&file, "limits.memory_max", "512M").unwrap();
    // Exactly one line changed; every comment, blank line and the key order are as they were.
    let expected = AARCH64.replace("memory_max = \"384M\"", "memory_max = \"512M\"");
    assert_eq!(text, expected);
    let text = set_in(&file, "server.port", "8443").unwrap();
    assert_eq!(text, expected.replace("port = 8080", "port = 8443"));
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn a_comment_after_the_value_stays() {
    let file = scratch("trailing");
    std::fs::write(&file, AARCH64.replace("port = 8080", "port = 8080  # WinCC's IIS proxies here")).unwrap();
    let text = set_in(&file, "server.port", "9090").unwrap();
    assert!(text.contains("port = 9090  # WinCC's IIS proxies here"), "{text}");
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn an_edit_that_breaks_the_board_is_refused_and_the_file_is_untouched() {
    let file = scratch("refused");
    let e = set_in(&file, "server.port", "0").unwrap_err().to_string();
    assert!(e.contains("server.port: expected an integer from 1 to 65535, found 0"), "{e}");
    let e = set_in(&file, "server.port", "\"8080\"").unwrap_err().to_string();
    assert!(e.contains("server.port: expected integer like the current value, found string"), "{e}");
    let e = set_in(&file, "server.prot", "1").unwrap_err().to_string();
    assert!(e.contains("server.prot: unknown key"), "{e}");
    let e = set_in(&file, "server", "1").unwrap_err().to_string();
    assert!(e.contains("server: is a table"), "{e}");
    let e = set_in(&file, "limits..x", "1").unwrap_err().to_string();
    assert!(e.contains("expected a dotted TOML key"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), AARCH64);
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn cross_toml_is_edited_without_a_board_schema() {
    let dir = scratch("cross");
    let file = dir.with_file_name("Cross.toml");
    std::fs::write(&file, "# why\n[target.aarch64-unknown-linux-musl] # the panel\nrunner = \"qemu-user\"\n").unwrap();
    let text = set_in(&file, "target.armv7-unknown-linux-musleabihf.runner", "qemu-user").unwrap();
    assert_eq!(
        text,
        "# why\n[target.aarch64-unknown-linux-musl] # the panel\nrunner = \"qemu-user\"\n\n\
         [target.armv7-unknown-linux-musleabihf]\nrunner = \"qemu-user\"\n"
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn a_new_board_is_a_copy_with_its_comments_and_its_own_name() {
    let file = scratch("new");
    let out = new_board(&file, "line3-panel").unwrap();
    assert_eq!(out, file.with_file_name("line3-panel.toml"));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, AARCH64.replace("name = \"aarch64-panel\"", "name = \"line3-panel\""));
    let e = new_board(&file, "line3-panel").unwrap_err().to_string();
    assert!(e.contains("line3-panel.toml: already exists"), "{e}");
    let e = new_board(&file, "../etc").unwrap_err().to_string();
    assert!(e.contains("name: expected 1 to 64 letters"), "{e}");
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}
