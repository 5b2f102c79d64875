//! Configuration: `config.json` plus one JSON file per camera in `cameras/`, exactly the
//! schema of the compatibility spec. A broken `config.json` stops startup; a broken camera
//! file disables only that camera and is reported in `/api/status`.

pub mod camera;
pub mod duration;
pub mod edit;
pub mod global;
pub mod mqtt;
pub mod origin;
pub mod ptz;
pub mod reader;
pub mod secret;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use camera::{CameraConfig, FfmpegOptions, LogStderr, SourceKind, Transport};
pub use global::{Config, DatabaseType, Mp4Storage, RecordingConfig, Transcoding};
pub use ptz::PtzConfig;
pub use reader::{Problem, Severity};

use reader::Ctx;

/// Loads `config.json`. `Err` carries every problem found when at least one is an error;
/// `Ok` carries the warnings (unknown fields).
pub fn load_config(path: &Path) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    let ctx = Ctx::new(path);
    let config = read_document(&ctx, path).map(|value| {
        let root = ctx.root(&value);
        let config = Config::read(&root);
        root.finish();
        config
    });
    split(ctx.into_problems(), config)
}

/// Parses `config.json`'s text as [`load_config`] reads the file (for checking an edit
/// before it is written); `path` names the file in problems.
pub fn parse_config(path: &Path, text: &str) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    let ctx = Ctx::new(path);
    let config = parse_document(&ctx, text).map(|value| {
        let root = ctx.root(&value);
        let config = Config::read(&root);
        root.finish();
        config
    });
    split(ctx.into_problems(), config)
}

/// Loads one camera file; the id is the file name without `.json`.
pub fn load_camera_file(path: &Path) -> Result<(CameraConfig, Vec<Problem>), Vec<Problem>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_camera(path, &text),
        Err(e) => {
            let ctx = Ctx::new(path);
            ctx.error("", format!("cannot read file: {e}"));
            Err(ctx.into_problems())
        }
    }
}

/// Parses a camera file's text; `path` names the file in problems and gives the id.
pub fn parse_camera(path: &Path, text: &str) -> Result<(CameraConfig, Vec<Problem>), Vec<Problem>> {
    let ctx = Ctx::new(path);
    let id = camera_id(path);
    if !is_identifier(&id) {
        ctx.error(
            "",
            format!(
                "the file name makes the camera id \"{}\"; expected 1 to 64 letters, digits, '_', '-' or '.' (not starting with '.') before .json",
                id.escape_debug()
            ),
        );
    }
    let camera = parse_document(&ctx, text).and_then(|value| {
        let root = ctx.root(&value);
        let camera = CameraConfig::read(&id, path.to_path_buf(), &root);
        root.finish();
        camera
    });
    split(ctx.into_problems(), camera)
}

pub fn camera_id(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A name that becomes part of paths, FFmpeg output patterns, SQL values and database names
/// (camera ids, the panel id): 1 to 64 ASCII letters, digits, `_`, `-` or `.`, not starting
/// with `.`.
pub fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A camera file that could not be used, with why.
#[derive(Clone, Debug)]
pub struct RejectedCamera {
    pub id: String,
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

/// The result of reading the camera directory.
#[derive(Debug, Default)]
pub struct CameraSet {
    pub cameras: Vec<CameraConfig>,
    pub rejected: Vec<RejectedCamera>,
    pub warnings: Vec<Problem>,
}

impl CameraSet {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.rejected.iter().flat_map(|r| r.problems.iter()).filter(|p| p.severity == Severity::Error)
    }
}

/// Reads every `*.json` in `dir`, in file-name order. Two files claiming the same `path`:
/// the second is rejected.
pub fn load_cameras(dir: &Path) -> CameraSet {
    let mut set = CameraSet::default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_camera_file(p)).collect(),
        Err(e) => {
            set.warnings.push(Problem {
                file: dir.to_path_buf(),
                field: String::new(),
                message: format!("cannot read camera directory ({e}); no cameras configured"),
                severity: Severity::Warning,
            });
            return set;
        }
    };
    files.sort();
    for file in files {
        let id = camera_id(&file);
        match load_camera_file(&file) {
            Ok((camera, warnings)) => {
                set.warnings.extend(warnings);
                if let Some(other) = set.cameras.iter().find(|c| c.path == camera.path) {
                    let problem = Problem {
                        file: file.clone(),
                        field: "path".into(),
                        message: format!("\"/{}\" is already used by {}", camera.path, other.file.display()),
                        severity: Severity::Error,
                    };
                    set.rejected.push(RejectedCamera { id, file, problems: vec![problem] });
                } else {
                    set.cameras.push(camera);
                }
            }
            Err(problems) => set.rejected.push(RejectedCamera { id, file, problems }),
        }
    }
    set
}

/// Camera files are `*.json`; editor backups and hidden files are not cameras.
pub fn is_camera_file(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    name.ends_with(".json") && !name.starts_with('.')
}

fn read_document(ctx: &Ctx, path: &Path) -> Option<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            ctx.error("", format!("cannot read file: {e}"));
            return None;
        }
    };
    parse_document(ctx, &text)
}

fn parse_document(ctx: &Ctx, text: &str) -> Option<Value> {
    let mut value = ctx.parse_json(text)?;
    substitute_hostname(&mut value, &hostname());
    Some(value)
}

fn split<T>(problems: Vec<Problem>, value: Option<T>) -> Result<(T, Vec<Problem>), Vec<Problem>> {
    let has_error = problems.iter().any(|p| p.severity == Severity::Error);
    match value {
        Some(v) if !has_error => Ok((v, problems)),
        _ => Err(problems),
    }
}

/// The FFmpeg binary; `PANELCAM_FFMPEG` overrides it (a board may ship its own build).
pub fn ffmpeg_program() -> String {
    std::env::var("PANELCAM_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "panel".into())
}

/// Replaces `${hostname}` in every string value (client ids, topics).
fn substitute_hostname(v: &mut Value, host: &str) {
    match v {
        Value::String(s) if s.contains("${hostname}") => *s = s.replace("${hostname}", host),
        Value::Array(items) => items.iter_mut().for_each(|i| substitute_hostname(i, host)),
        Value::Object(map) => map.values_mut().for_each(|i| substitute_hostname(i, host)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
