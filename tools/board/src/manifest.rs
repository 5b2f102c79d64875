//! The image manifest (`usr/share/panelcam/manifest.json`): which build this is (version from
//! Cargo.toml, git commit, board, target) and the size and SHA-256 of every other file in the
//! tarball, so a panel can be checked against what was shipped (`sha256sum` by hand, or a test).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::schema::Board;

/// What `board manifest` is given.
pub struct ManifestRequest<'a> {
    pub board: &'a Board,
    /// The overlay tree as it will be packed.
    pub root: &'a Path,
    /// The binary, relative to `root` (`usr/bin/panelcam`).
    pub binary: &'a str,
    /// Where the manifest goes, relative to `root`; it does not list itself.
    pub out: &'a str,
    /// The package whose version is stamped; its directory is the git work tree asked for the commit.
    pub cargo_toml: &'a Path,
}

pub fn write(req: &ManifestRequest) -> Result<Value, Error> {
    let version = package_version(req.cargo_toml)?;
    let commit = git_commit(req.cargo_toml.parent().unwrap_or(Path::new(".")));
    let mut files = Vec::new();
    for rel in list_files(req.root)? {
        if rel == req.out {
            continue;
        }
        let path = req.root.join(&rel);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, "stat", e))?;
        files.push(json!({
            "path": rel,
            "size": meta.len(),
            "mode": format!("{:04o}", std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777),
            "sha256": sha256_file(&path)?,
        }));
    }
    let binary_size = files
        .iter()
        .find(|f| f["path"] == req.binary)
        .and_then(|f| f["size"].as_u64())
        .ok_or_else(|| Error::new(req.root, "", format!("the binary {} is not in the tree", req.binary)))?;
    let manifest = json!({
        "name": "panelcam",
        "version": version,
        "git_commit": commit,
        "board": req.board.name,
        "target": req.board.target,
        "binary": {"path": req.binary, "size": binary_size},
        "files": files,
        "note": "files lists every file of the tarball except this manifest; paths are relative to /",
    });
    let out = req.root.join(req.out);
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    std::fs::write(&out, text).map_err(|e| Error::io(&out, "write the manifest", e))?;
    Ok(manifest)
}

/// `[package] version` of a Cargo.toml, read with toml_edit like every other TOML here.
pub fn package_version(cargo_toml: &Path) -> Result<String, Error> {
    let doc = crate::edit::read(cargo_toml)?;
    doc.get("package")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::new(cargo_toml, "package.version", "missing; expected a version string"))
}

/// `HEAD`'s commit, with `-dirty` when tracked files differ from it (the tarball then holds
/// changes no commit has); `unknown` outside a git work tree.
fn git_commit(dir: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match (git(&["rev-parse", "HEAD"]), git(&["status", "--porcelain", "--untracked-files=no"])) {
        (Some(head), Some(changes)) if !changes.is_empty() => format!("{head}-dirty"),
        (Some(head), _) => head,
        _ => "unknown".into(),
    }
}

/// Every regular file below `root`, relative, `/`-separated, sorted. Symlinks and other special
/// files are refused: an overlay unpacked over `/` must not redirect anything.
pub fn list_files(root: &Path) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, "list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, "list", e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&path, "stat", e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(rel.to_string_lossy().into_owned());
            } else {
                return Err(Error::new(&path, "", "is neither a file nor a directory; the overlay holds only those"));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_text() {
        let dir = std::env::temp_dir().join(format!("board-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("abc"), "abc").unwrap();
        assert_eq!(
            sha256_file(&dir.join("abc")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
