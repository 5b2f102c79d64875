//! `board env`: the board as `KEY='value'` lines that `eval` in bash reads safely, plus the
//! values derived from it that the image needs (systemd directory names, the spool's mount unit).

use crate::schema::Board;

/// Single-quotes a value for POSIX shells: nothing inside is expanded.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The variables, in a fixed order; names are documented in `board --help`.
pub fn variables(b: &Board) -> Vec<(&'static str, String)> {
    vec![
        ("BOARD_NAME", b.name.clone()),
        ("BOARD_DESCRIPTION", b.description.clone()),
        ("BOARD_TARGET", b.target.clone()),
        ("BOARD_RUSTFLAGS", b.rustflags.join(" ")),
        ("BOARD_BINARY", b.binary.clone()),
        ("BOARD_CONFIG_DIR", b.config_dir.clone()),
        ("BOARD_DATA_DIR", b.data_dir.clone()),
        ("BOARD_SPOOL_DIR", b.spool_dir.clone()),
        ("BOARD_LOG_DIR", b.log_dir.clone()),
        ("BOARD_MEMORY_MAX", b.memory_max.clone()),
        ("BOARD_DISK_MAX_PERCENT", b.disk_max_percent.to_string()),
        ("BOARD_OUTBOX_MAX_MB", b.outbox_max_mb.to_string()),
        ("BOARD_SPOOL_MAX", b.spool_max.clone()),
        ("BOARD_FFMPEG", b.ffmpeg.clone()),
        ("BOARD_PORT", b.port.to_string()),
        // Derived: the directories as systemd's *Directory= settings spell them.
        ("BOARD_CONFIGURATION_DIRECTORY", Board::systemd_dir(&b.config_dir).into()),
        ("BOARD_STATE_DIRECTORY", Board::systemd_dir(&b.data_dir).into()),
        ("BOARD_LOGS_DIRECTORY", Board::systemd_dir(&b.log_dir).into()),
        ("BOARD_RUNTIME_DIRECTORY", Board::systemd_dir(&b.spool_dir).into()),
        ("BOARD_SPOOL_UNIT", mount_unit_name(&b.spool_dir)),
    ]
}

pub fn render(b: &Board) -> String {
    variables(b).into_iter().map(|(k, v)| format!("{k}={}\n", quote(&v))).collect()
}

/// The mount unit's file name for a path, as `systemd-escape --path --suffix=mount` spells it
/// (systemd only accepts a mount unit whose name matches its `Where=`).
pub fn mount_unit_name(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out + ".mount"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_shell() {
        for value in ["plain", "it's", "$(rm -rf /)", "a b\tc", "", "'", "\\x2d"] {
            let out = std::process::Command::new("bash")
                .args(["-c", &format!("V={}; printf %s \"$V\"", quote(value))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }

    #[test]
    fn mount_unit_names_match_systemd_escape() {
        assert_eq!(mount_unit_name("/run/panelcam/spool"), "run-panelcam-spool.mount");
        assert_eq!(mount_unit_name("/run/panel-cam/spool"), "run-panel\\x2dcam-spool.mount");
        assert_eq!(mount_unit_name("/run/a+b/c.d"), "run-a\\x2bb-c.d.mount");
    }
}
