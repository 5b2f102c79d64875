//! `board`: the board files (`board/*.toml`) for scripts, and the edits people make to them and
//! to `Cross.toml`, done with toml_edit so comments and layout survive. Also writes the image
//! manifest, since it needs the same checked board. Run it as `scripts/board ...`.

mod edit;
mod error;
mod manifest;
mod schema;
mod shell;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use error::Error;
use schema::Board;

const USAGE: &str = "usage: board <command> ...

  env <board.toml>                        check the board, print KEY='value' lines for `eval`:
        BOARD_NAME BOARD_DESCRIPTION BOARD_TARGET BOARD_RUSTFLAGS BOARD_BINARY
        BOARD_CONFIG_DIR BOARD_DATA_DIR BOARD_SPOOL_DIR BOARD_LOG_DIR BOARD_MEMORY_MAX
        BOARD_DISK_MAX_PERCENT BOARD_OUTBOX_MAX_MB BOARD_SPOOL_MAX BOARD_FFMPEG BOARD_PORT
        and, derived, BOARD_CONFIGURATION_DIRECTORY BOARD_STATE_DIRECTORY BOARD_LOGS_DIRECTORY
        BOARD_RUNTIME_DIRECTORY (systemd's *Directory= names) and BOARD_SPOOL_UNIT (mount unit)
  check <board.toml>...                   check boards, list every problem (exit 1 on any)
  set <file.toml> <dotted.key> <value>    change one value keeping comments; a string stays a
                                          string, other values are TOML of the same type; a
                                          board must stay valid (Cross.toml is not checked)
  new <name> --from <board.toml>          copy a board with its comments to <name>.toml beside it
  version [Cargo.toml]                    the package version (default ./Cargo.toml)
  manifest --board <board.toml> --root <dir> --binary <path in root> --out <path in root>
           [--cargo-toml Cargo.toml]      write the image manifest (version, git commit, board,
                                          target, binary size, SHA-256 of every file)";

/// A command line that does not fit the usage.
struct Usage(String);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
        Err(Usage(msg)) => {
            eprintln!("board: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<Result<(), Error>, Usage> {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(match strs.as_slice() {
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        ["env", file] => Board::load(Path::new(file)).map(|b| print!("{}", shell::render(&b))),
        ["check", files @ ..] if !files.is_empty() => check(files),
        ["set", file, key, value] => set(Path::new(file), key, value),
        ["new", name, "--from", from] => {
            edit::new_board(Path::new(from), name).map(|out| println!("board: wrote {}", out.display()))
        }
        ["version"] => manifest::package_version(Path::new("Cargo.toml")).map(|v| println!("{v}")),
        ["version", cargo_toml] => manifest::package_version(Path::new(cargo_toml)).map(|v| println!("{v}")),
        ["manifest", rest @ ..] => return manifest_cmd(rest),
        [] => return Err(Usage("no command".into())),
        [cmd, ..] => return Err(Usage(format!("unknown command or wrong arguments: `{cmd}`"))),
    })
}

/// Checks every file; all problems are printed, the last file's error is returned for `main`.
fn check(files: &[&str]) -> Result<(), Error> {
    let mut errors: Vec<Error> = files
        .iter()
        .filter_map(|file| match Board::load(Path::new(file)) {
            Ok(b) => {
                println!("{file}: ok ({}, {})", b.name, b.target);
                None
            }
            Err(e) => Some(e),
        })
        .collect();
    match errors.pop() {
        None => Ok(()),
        Some(last) => {
            for e in &errors {
                eprintln!("{e}");
            }
            Err(last)
        }
    }
}

fn set(file: &Path, key: &str, value: &str) -> Result<(), Error> {
    let mut doc = edit::read(file)?;
    edit::set(file, &mut doc, key, value)?;
    edit::write(file, &doc)
}

fn manifest_cmd(args: &[&str]) -> Result<Result<(), Error>, Usage> {
    let (mut board, mut root, mut binary, mut out, mut cargo_toml) =
        (None, None, None, None, PathBuf::from("Cargo.toml"));
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| Usage(format!("manifest: {flag} needs a value")))?;
        match *flag {
            "--board" => board = Some(PathBuf::from(value)),
            "--root" => root = Some(PathBuf::from(value)),
            "--binary" => binary = Some(value.to_string()),
            "--out" => out = Some(value.to_string()),
            "--cargo-toml" => cargo_toml = PathBuf::from(value),
            other => return Err(Usage(format!("manifest: unknown option {other}"))),
        }
    }
    let (Some(board), Some(root), Some(binary), Some(out)) = (board, root, binary, out) else {
        return Err(Usage("manifest needs --board, --root, --binary and --out".into()));
    };
    Ok(Board::load(&board).and_then(|board| {
        let req = manifest::ManifestRequest {
            board: &board,
            root: &root,
            binary: &binary,
            out: &out,
            cargo_toml: &cargo_toml,
        };
        let m = manifest::write(&req)?;
        println!(
            "board: manifest {} ({} files, binary {} bytes, commit {})",
            root.join(&out).display(),
            m["files"].as_array().map_or(0, Vec::len),
            m["binary"]["size"],
            m["git_commit"].as_str().unwrap_or("?")
        );
        Ok(())
    }))
}
