//! The board file (`board/<name>.toml`): what a panel model needs from an image. Checked whole:
//! unknown keys are errors (a typo must not silently fall back to a default on a panel), and
//! every value is checked for what it becomes: a path in a systemd unit and in JSON, a size in
//! `MemoryMax=` and tmpfs `size=`, flags in `CARGO_TARGET_<triple>_RUSTFLAGS`.

use std::path::Path;

use toml_edit::{DocumentMut, Item, TableLike};

use crate::error::{Error, Problem};

/// A checked board. Paths are absolute and contain only `A-Z a-z 0-9 _ . + -` between
/// slashes, so they need no quoting in JSON, unit files, tmpfiles lines or sed replacements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    pub name: String,
    pub description: String,
    pub target: String,
    pub rustflags: Vec<String>,
    pub binary: String,
    pub config_dir: String,
    pub data_dir: String,
    pub spool_dir: String,
    pub log_dir: String,
    /// systemd size (`384M`): `MemoryMax=` of the service.
    pub memory_max: String,
    pub disk_max_percent: i64,
    pub outbox_max_mb: i64,
    /// tmpfs size of the RAM spool (`64M`).
    pub spool_max: String,
    pub ffmpeg: String,
    pub port: u16,
}

/// The keys a board may have, per table; anything else is an error.
const SCHEMA: &[(&str, &[&str])] = &[
    ("build", &["target", "rustflags"]),
    ("paths", &["binary", "config_dir", "data_dir", "spool_dir", "log_dir"]),
    ("limits", &["memory_max", "disk_max_percent", "outbox_max_mb", "spool_max"]),
    ("ffmpeg", &["path"]),
    ("server", &["port"]),
];
const TOP_LEVEL: &[&str] = &["name", "description"];

/// Where each directory must live, and why: the unit hands them to the service with systemd's
/// `ConfigurationDirectory=`/`StateDirectory=`/`LogsDirectory=`/`RuntimeDirectory=`, which only
/// take paths below these roots (systemd then creates them with the right owner).
const DIR_ROOTS: &[(&str, &str, &str)] = &[
    ("config_dir", "/etc/", "ConfigurationDirectory="),
    ("data_dir", "/var/lib/", "StateDirectory="),
    ("log_dir", "/var/log/", "LogsDirectory="),
    ("spool_dir", "/run/", "RuntimeDirectory="),
];

impl Board {
    /// Parses and checks a board file's text; `file` names it in errors and gives the
    /// expected `name`.
    pub fn parse(file: &Path, text: &str) -> Result<Board, Error> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            Error::new(file, "", format!("is not valid TOML: {}", e.to_string().trim_end()))
        })?;
        Board::from_document(file, &doc)
    }

    pub fn load(file: &Path) -> Result<Board, Error> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, "read the board file", e))?;
        Board::parse(file, &text)
    }

    pub fn from_document(file: &Path, doc: &DocumentMut) -> Result<Board, Error> {
        let mut r = Reader { problems: Vec::new() };
        r.unknown_keys(doc.as_table());
        let root = doc.as_table() as &dyn TableLike;
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let name = r.string(root, "", "name").unwrap_or_default();
        if !name.is_empty() && !is_board_name(&name) {
            r.fail(
                "name",
                format!("expected 1 to 64 letters, digits, '_' or '-' (it names the tarball), found {name:?}"),
            );
        } else if !name.is_empty() && name != stem {
            r.fail("name", format!("expected the file's name without .toml ({stem:?}), found {name:?}"));
        }
        let description = r.string(root, "", "description").unwrap_or_default();
        if description.chars().any(char::is_control) {
            r.fail("description", "expected one line of text without control characters");
        }

        let build = r.table(root, "build");
        let target = build.and_then(|t| r.string(t, "build", "target")).unwrap_or_default();
        if !target.is_empty() && !is_musl_triple(&target) {
            r.fail(
                "build.target",
                format!("expected a musl target triple such as aarch64-unknown-linux-musl (the shipped binary is fully static), found {target:?}"),
            );
        }
        let rustflags = build.and_then(|t| r.rustflags(t)).unwrap_or_default();

        let paths = r.table(root, "paths");
        let mut path = |key: &str| paths.and_then(|t| r.path(t, key)).unwrap_or_default();
        let (binary, config_dir, data_dir, spool_dir, log_dir) =
            (path("binary"), path("config_dir"), path("data_dir"), path("spool_dir"), path("log_dir"));
        if !(binary.is_empty() || binary.starts_with("/usr/") || binary.starts_with("/opt/")) {
            r.fail(
                "paths.binary",
                format!("expected a path under /usr/ or /opt/ (Debian has merged /usr: /bin and /lib are symlinks that unpacking the tarball would replace), found {binary:?}"),
            );
        }
        for (key, value) in
            [("config_dir", &config_dir), ("data_dir", &data_dir), ("log_dir", &log_dir), ("spool_dir", &spool_dir)]
        {
            let (_, root_dir, directive) = DIR_ROOTS.iter().find(|(k, ..)| *k == key).copied().unwrap_or_default();
            if !value.is_empty() && !value.starts_with(root_dir) {
                r.fail(
                    &format!("paths.{key}"),
                    format!("expected a directory below {root_dir} (the unit creates it with systemd's {directive}), found {value:?}"),
                );
            }
        }

        let limits = r.table(root, "limits");
        let memory_max = limits.and_then(|t| r.size(t, "memory_max")).unwrap_or_default();
        let spool_max = limits.and_then(|t| r.size(t, "spool_max")).unwrap_or_default();
        if let (Some(mem), Some(spool)) = (size_bytes(&memory_max), size_bytes(&spool_max))
            && spool >= mem
        {
            r.fail(
                "limits.spool_max",
                format!("expected less than limits.memory_max ({memory_max}): the spool's pages are charged to the service's memory, found {spool_max}"),
            );
        }
        let disk_max_percent = limits.and_then(|t| r.integer(t, "limits", "disk_max_percent", 1..=100)).unwrap_or(0);
        let outbox_max_mb = limits.and_then(|t| r.integer(t, "limits", "outbox_max_mb", 1..=1 << 20)).unwrap_or(0);

        let ffmpeg = r.table(root, "ffmpeg").and_then(|t| r.path_in(t, "ffmpeg", "path")).unwrap_or_default();
        let port = r.table(root, "server").and_then(|t| r.integer(t, "server", "port", 1..=65535)).unwrap_or(0) as u16;

        if !r.problems.is_empty() {
            return Err(Error { file: file.to_path_buf(), problems: r.problems });
        }
        Ok(Board {
            name,
            description,
            target,
            rustflags,
            binary,
            config_dir,
            data_dir,
            spool_dir,
            log_dir,
            memory_max,
            disk_max_percent,
            outbox_max_mb,
            spool_max,
            ffmpeg,
            port,
        })
    }

    /// The directory relative to its systemd root (`/var/lib/panelcam` → `panelcam`), for
    /// `StateDirectory=` and friends. Only meaningful on a checked board.
    pub fn systemd_dir(path: &str) -> &str {
        DIR_ROOTS.iter().find_map(|(_, root, _)| path.strip_prefix(root)).unwrap_or(path)
    }
}

/// Board names become file names and tarball names.
pub fn is_board_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_musl_triple(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    (3..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        && parts.last().is_some_and(|env| env.starts_with("musl"))
}

/// An absolute path whose components are plain names (no `.`/`..`, nothing to quote).
fn is_plain_path(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('/') else { return false };
    s.len() <= 200
        && !rest.is_empty()
        && rest.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with('.')
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
        })
}

/// `64M` → bytes. systemd and tmpfs both read K, M, G as powers of 1024.
pub fn size_bytes(s: &str) -> Option<u64> {
    let shift = match s.chars().last()? {
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return None,
    };
    let digits = s.strip_suffix(['K', 'M', 'G'])?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Collects problems while reading; each reader returns `None` after recording why.
struct Reader {
    problems: Vec<Problem>,
}

impl Reader {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem { field: field.into(), message: message.into() });
    }

    fn unknown_keys(&mut self, root: &toml_edit::Table) {
        for (key, item) in root.iter() {
            if TOP_LEVEL.contains(&key) {
                continue;
            }
            match SCHEMA.iter().find(|(table, _)| *table == key) {
                None => self.fail(key, format!("unknown key; expected one of {}", known_top_level())),
                Some((_, keys)) => {
                    let Some(table) = item.as_table_like() else { continue }; // reported by `table`
                    for (sub, _) in table.iter() {
                        if !keys.contains(&sub) {
                            self.fail(
                                &format!("{key}.{sub}"),
                                format!("unknown key; expected one of {}", keys.join(", ")),
                            );
                        }
                    }
                }
            }
        }
    }

    fn table<'d>(&mut self, root: &'d dyn TableLike, key: &str) -> Option<&'d dyn TableLike> {
        match root.get(key) {
            None => self.fail(key, "missing; expected a table"),
            Some(item) => match item.as_table_like() {
                Some(t) => return Some(t),
                None => self.fail(key, format!("expected a table, found {}", item.type_name())),
            },
        }
        None
    }

    fn item<'d>(&mut self, table: &'d dyn TableLike, field: &str, what: &str) -> Option<&'d Item> {
        let key = field.rsplit('.').next().unwrap_or(field);
        let item = table.get(key);
        if item.is_none() {
            self.fail(field, format!("missing; expected {what}"));
        }
        item
    }

    fn string(&mut self, table: &dyn TableLike, prefix: &str, key: &str) -> Option<String> {
        let field = dotted(prefix, key);
        let item = self.item(table, &field, "a string")?;
        match item.as_str() {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            Some(_) => {
                self.fail(&field, "expected a non-empty string");
                None
            }
            None => {
                self.fail(&field, format!("expected a string, found {}", item.type_name()));
                None
            }
        }
    }

    fn integer(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let field = dotted(prefix, key);
        let what = format!("an integer from {} to {}", range.start(), range.end());
        let item = self.item(table, &field, &what)?;
        match item.as_integer() {
            Some(n) if range.contains(&n) => Some(n),
            Some(n) => {
                self.fail(&field, format!("expected {what}, found {n}"));
                None
            }
            None => {
                self.fail(&field, format!("expected {what}, found {}", item.type_name()));
                None
            }
        }
    }

    fn path(&mut self, table: &dyn TableLike, key: &str) -> Option<String> {
        self.path_in(table, "paths", key)
    }

    fn path_in(&mut self, table: &dyn TableLike, prefix: &str, key: &str) -> Option<String> {
        let value = self.string(table, prefix, key)?;
        if is_plain_path(&value) {
            Some(value)
        } else {
            self.fail(
                &dotted(prefix, key),
                format!("expected an absolute path of plain names (letters, digits, '_', '.', '+', '-'; no '..'), found {value:?}"),
            );
            None
        }
    }

    fn size(&mut self, table: &dyn TableLike, key: &str) -> Option<String> {
        let value = self.string(table, "limits", key)?;
        if size_bytes(&value).is_some() {
            Some(value)
        } else {
            self.fail(
                &dotted("limits", key),
                format!("expected a size such as \"384M\" (digits, then K, M or G), found {value:?}"),
            );
            None
        }
    }

    fn rustflags(&mut self, table: &dyn TableLike) -> Option<Vec<String>> {
        const WHAT: &str =
            "an array of rustc flags without spaces (they are joined with spaces into CARGO_TARGET_<triple>_RUSTFLAGS)";
        let item = self.item(table, "build.rustflags", WHAT)?;
        let flags: Option<Vec<String>> = item.as_array().and_then(|a| {
            a.iter()
                .map(|v| {
                    v.as_str().filter(|s| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()))
                })
                .map(|s| s.map(str::to_string))
                .collect()
        });
        if flags.is_none() {
            self.fail("build.rustflags", format!("expected {WHAT}"));
        }
        flags
    }
}

fn dotted(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn known_top_level() -> String {
    TOP_LEVEL.iter().copied().chain(SCHEMA.iter().map(|(t, _)| *t)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
