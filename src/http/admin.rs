//! The admin API (`/api/admin/*`, admin role): camera files and `config.json`, compatible
//! with the system we replace (`POST /api/admin/cameras` `{camera_id, config}`, `GET|PUT|DELETE
//! /api/admin/cameras/<id>`, `GET|PUT /api/admin/config`).
//!
//! - An edit is checked by the same validator as `panelcam check` before anything is written;
//!   its problems come back with their fields (400).
//! - Files are replaced atomically (`config::edit::write_atomic`), then the camera directory is
//!   rescanned at once, so the answer says what happened (added, restarted, updated in place);
//!   the directory watcher would apply it a moment later anyway.
//! - Secrets (camera token, URL credentials, PTZ, MQTT and PostgreSQL passwords, the tokens
//!   of `config.json`) are never returned; an edit that leaves them out keeps them.
//! - Each answer carries the file's version as `ETag`; an edit with `If-Match` that names an
//!   older version gets 412 instead of overwriting someone else's change. Without `If-Match`
//!   the last writer wins; edits are applied one at a time, so no file is ever torn.

use std::path::PathBuf;

use hyper::body::Incoming;
use hyper::header::{ETAG, HeaderValue, IF_MATCH};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::params::read_json;
use super::response::{self, Resp};
use super::route::AdminRoute;
use crate::config::edit::{self, CAMERA_SECRETS, CONFIG_SECRETS};
use crate::config::{Problem, Severity, is_identifier};
use crate::registry::{Applied, Registry};
use crate::store::StoreError;

/// Largest body of an edit: a camera file or config.json is a few KB.
const MAX_BODY: usize = 64 << 10;

/// One edit at a time (check, compare version, write, apply).
static EDITS: Mutex<()> = Mutex::const_new(());

/// What an admin request could not do, as an answer.
enum Refused {
    Store(StoreError),
    /// 400 with the validator's problems.
    Invalid(Vec<Problem>),
    /// 412: `If-Match` named another version.
    Stale(String),
    /// 500: the file could not be written (read-only configuration, full disk, ...).
    Io(String),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        Refused::Store(e)
    }
}

fn answer(result: Result<(StatusCode, Value, Option<String>), Refused>) -> Resp {
    match result {
        Ok((status, data, version)) => {
            let mut r = response::json(status, &json!({"status": "success", "data": data}));
            if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
                r.headers_mut().insert(ETAG, v);
            }
            r
        }
        Err(Refused::Store(e)) => super::errors::store_error(e),
        Err(Refused::Invalid(problems)) => {
            let list: Vec<Value> = problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .map(|p| json!({"field": p.field, "message": p.message}))
                .collect();
            let summary = problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
            response::json(
                StatusCode::BAD_REQUEST,
                &json!({"status": "error", "code": 400, "error": format!("invalid configuration: {summary}"), "problems": list}),
            )
        }
        Err(Refused::Stale(current)) => response::json(
            StatusCode::PRECONDITION_FAILED,
            &json!({"status": "error", "code": 412, "current_version": current,
                    "error": "the file changed since you read it (If-Match names an older version); read it again"}),
        ),
        Err(Refused::Io(message)) => response::error(StatusCode::INTERNAL_SERVER_ERROR, &message),
    }
}

pub async fn handle(registry: &Registry, route: AdminRoute<'_>, req: &mut Request<Incoming>) -> Resp {
    let if_match = req
        .headers()
        .get(IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"').to_string());
    let result = match route {
        AdminRoute::ListCameras => list_cameras(registry).await,
        AdminRoute::GetCamera(id) => get_camera(registry, id).await,
        AdminRoute::CreateCamera => create_camera(registry, req).await,
        AdminRoute::PutCamera(id) => put_camera(registry, id, req, if_match).await,
        AdminRoute::DeleteCamera(id) => delete_camera(registry, id, if_match).await,
        AdminRoute::GetConfig => get_config(registry).await,
        AdminRoute::PutConfig => put_config(registry, req, if_match).await,
    };
    answer(result)
}

fn camera_path(registry: &Registry, id: &str) -> Result<PathBuf, Refused> {
    if !is_identifier(id) {
        return Err(StoreError::Invalid(format!(
            "camera id \"{}\": expected 1 to 64 letters, digits, '_', '-' or '.' (not starting with '.')",
            super::params::shown(id)
        ))
        .into());
    }
    Ok(registry.camera_dir.join(format!("{id}.json")))
}

/// A file's bytes, off the async workers; `None` when it does not exist.
async fn read(path: PathBuf) -> Result<Option<Vec<u8>>, Refused> {
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || std::fs::read(&path)).await {
        Ok(Ok(bytes)) => Ok(Some(bytes)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Ok(Err(e)) => Err(Refused::Io(format!("cannot read {shown}: {e}"))),
        Err(e) => Err(Refused::Io(format!("cannot read {shown}: {e}"))),
    }
}

async fn write(path: PathBuf, bytes: Vec<u8>) -> Result<(), Refused> {
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || edit::write_atomic(&path, &bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e))
            if e.raw_os_error() == Some(nix::libc::EROFS) || e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Err(Refused::Io(format!(
                "cannot write {shown}: {e} (the service may write camera files only; edit config.json on the panel and restart panelcam)"
            )))
        }
        Ok(Err(e)) => Err(Refused::Io(format!("cannot write {shown}: {e}"))),
        Err(e) => Err(Refused::Io(format!("cannot write {shown}: {e}"))),
    }
}

/// A stored document as it may be shown: `(config, secrets_set)`. A file that is not JSON is
/// shown as `null` (the editor replaces it).
fn shown(bytes: &[u8], secrets: &edit::Secrets) -> (Value, Vec<String>) {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(doc) => edit::redact(&doc, secrets),
        Err(_) => (Value::Null, Vec::new()),
    }
}

fn applied_json(a: &Applied) -> Value {
    json!({"added": a.added, "restarted": a.replaced, "updated_in_place": a.updated, "removed": a.removed,
           "invalid": a.rejected})
}

async fn list_cameras(registry: &Registry) -> Result<(StatusCode, Value, Option<String>), Refused> {
    let dir = registry.camera_dir.clone();
    let files = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if crate::config::is_camera_file(&path) {
                let bytes = std::fs::read(&path)?;
                files.push((crate::config::camera_id(&path), bytes));
            }
        }
        files.sort();
        Ok(files)
    })
    .await
    .map_err(|e| Refused::Io(e.to_string()))?
    .map_err(|e| Refused::Io(format!("cannot read the camera directory: {e}")))?;
    let cameras: Vec<Value> = files
        .iter()
        .map(|(id, bytes)| {
            let (config, secrets_set) = shown(bytes, &CAMERA_SECRETS);
            let running = registry.camera(id).map(|c| c.stats.state().as_str());
            json!({"camera_id": id, "config": config, "secrets_set": secrets_set, "version": edit::version(bytes),
                   "state": running.unwrap_or("not running")})
        })
        .collect();
    Ok((StatusCode::OK, json!({"cameras": cameras}), None))
}

async fn get_camera(registry: &Registry, id: &str) -> Result<(StatusCode, Value, Option<String>), Refused> {
    let path = camera_path(registry, id)?;
    let bytes = read(path).await?.ok_or_else(|| StoreError::NotFound(format!("no camera file for \"{id}\"")))?;
    let (config, secrets_set) = shown(&bytes, &CAMERA_SECRETS);
    let version = edit::version(&bytes);
    Ok((
        StatusCode::OK,
        json!({"camera_id": id, "config": config, "secrets_set": secrets_set, "version": version}),
        Some(version),
    ))
}

/// Checks a camera document with `panelcam check`'s validator and against the other
/// cameras' URL paths; returns the bytes to write.
fn checked_camera(registry: &Registry, id: &str, path: &std::path::Path, doc: &Value) -> Result<Vec<u8>, Refused> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| Refused::Io(e.to_string()))?;
    let (camera, _warnings) = crate::config::parse_camera(path, &text).map_err(Refused::Invalid)?;
    if let Some(other) = registry.camera_by_path(&camera.path)
        && other.id() != id
    {
        return Err(StoreError::Conflict(
            format!("path \"/{}\" is already used by camera {}", camera.path, other.id()),
            None,
        )
        .into());
    }
    Ok((text + "\n").into_bytes())
}

fn body_object(body: Option<Value>, example: &str) -> Result<serde_json::Map<String, Value>, Refused> {
    match body {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(StoreError::Invalid(format!("body must be a JSON object like {example}")).into()),
    }
}

async fn create_camera(
    registry: &Registry,
    req: &mut Request<Incoming>,
) -> Result<(StatusCode, Value, Option<String>), Refused> {
    const EXAMPLE: &str = r#"{"camera_id": "cam1", "config": {"path": "/cam1", "url": "rtsp://..."}}"#;
    let mut body = body_object(read_json(req, MAX_BODY).await?, EXAMPLE)?;
    let id = match body.remove("camera_id") {
        Some(Value::String(id)) => id,
        _ => return Err(StoreError::Invalid(format!("`camera_id` (a string) is required: {EXAMPLE}")).into()),
    };
    let doc = match body.remove("config") {
        Some(doc @ Value::Object(_)) => doc,
        _ => return Err(StoreError::Invalid(format!("`config` (an object) is required: {EXAMPLE}")).into()),
    };
    let path = camera_path(registry, &id)?;
    let _one_at_a_time = EDITS.lock().await;
    if read(path.clone()).await?.is_some() {
        return Err(StoreError::Conflict(
            format!("camera \"{id}\" exists; change it with PUT /api/admin/cameras/{id}"),
            None,
        )
        .into());
    }
    let bytes = checked_camera(registry, &id, &path, &doc)?;
    let version = edit::version(&bytes);
    write(path, bytes).await?;
    let applied = apply(registry).await;
    Ok((
        StatusCode::CREATED,
        json!({"camera_id": id, "version": version, "applied": applied_json(&applied)}),
        Some(version),
    ))
}

async fn put_camera(
    registry: &Registry,
    id: &str,
    req: &mut Request<Incoming>,
    if_match: Option<String>,
) -> Result<(StatusCode, Value, Option<String>), Refused> {
    let path = camera_path(registry, id)?;
    let mut body = body_object(read_json(req, MAX_BODY).await?, r#"{"path": "/cam1", "url": "rtsp://..."}"#)?;
    // The old admin page sent `{"config": {...}}`; a bare camera document is taken as well.
    let mut doc = match body.remove("config") {
        Some(doc @ Value::Object(_)) if body.is_empty() => doc,
        Some(other) => {
            body.insert("config".into(), other);
            Value::Object(body)
        }
        None => Value::Object(body),
    };
    let _one_at_a_time = EDITS.lock().await;
    let old = read(path.clone()).await?.ok_or_else(|| {
        StoreError::NotFound(format!("no camera file for \"{id}\"; create it with POST /api/admin/cameras"))
    })?;
    let current = edit::version(&old);
    if if_match.as_ref().is_some_and(|v| *v != current && v != "*") {
        return Err(Refused::Stale(current));
    }
    if let Ok(old_doc) = serde_json::from_slice::<Value>(&old) {
        edit::keep_secrets(&mut doc, &old_doc, &CAMERA_SECRETS);
    }
    let bytes = checked_camera(registry, id, &path, &doc)?;
    let version = edit::version(&bytes);
    write(path, bytes).await?;
    let applied = apply(registry).await;
    Ok((StatusCode::OK, json!({"camera_id": id, "version": version, "applied": applied_json(&applied)}), Some(version)))
}

async fn delete_camera(
    registry: &Registry,
    id: &str,
    if_match: Option<String>,
) -> Result<(StatusCode, Value, Option<String>), Refused> {
    let path = camera_path(registry, id)?;
    let _one_at_a_time = EDITS.lock().await;
    let old = read(path.clone()).await?.ok_or_else(|| StoreError::NotFound(format!("no camera file for \"{id}\"")))?;
    let current = edit::version(&old);
    if if_match.as_ref().is_some_and(|v| *v != current && v != "*") {
        return Err(Refused::Stale(current));
    }
    let shown_path = path.display().to_string();
    tokio::task::spawn_blocking(move || edit::remove_durably(&path))
        .await
        .map_err(|e| Refused::Io(e.to_string()))?
        .map_err(|e| Refused::Io(format!("cannot remove {shown_path}: {e}")))?;
    let applied = apply(registry).await;
    Ok((StatusCode::OK, json!({"camera_id": id, "deleted": true, "applied": applied_json(&applied)}), None))
}

/// Applies the camera directory now, in the registry's journald component (the watcher would
/// apply it a moment later; this way the answer says what happened).
async fn apply(registry: &Registry) -> Applied {
    use tracing::Instrument;
    registry.rescan().instrument(crate::telemetry::component("registry")).await
}

fn config_path(registry: &Registry) -> Result<PathBuf, Refused> {
    registry
        .config_path
        .clone()
        .ok_or_else(|| StoreError::NotFound("this panelcam was started without a config.json".into()).into())
}

async fn get_config(registry: &Registry) -> Result<(StatusCode, Value, Option<String>), Refused> {
    let bytes = read(config_path(registry)?).await?.unwrap_or_else(|| b"{}".to_vec());
    let (config, secrets_set) = shown(&bytes, &CONFIG_SECRETS);
    let version = edit::version(&bytes);
    Ok((StatusCode::OK, json!({"config": config, "secrets_set": secrets_set, "version": version}), Some(version)))
}

/// Top-level sections whose value differs between two documents.
fn changed_sections(old: &Value, new: &Value) -> Vec<String> {
    let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let mut all = keys(old);
    all.extend(keys(new));
    all.sort();
    all.dedup();
    all.into_iter().filter(|k| old.get(k) != new.get(k)).collect()
}

async fn put_config(
    registry: &Registry,
    req: &mut Request<Incoming>,
    if_match: Option<String>,
) -> Result<(StatusCode, Value, Option<String>), Refused> {
    let path = config_path(registry)?;
    let patch = Value::Object(body_object(read_json(req, MAX_BODY).await?, r#"{"server": {"port": 8080}}"#)?);
    let _one_at_a_time = EDITS.lock().await;
    let old = read(path.clone()).await?.unwrap_or_else(|| b"{}".to_vec());
    let current = edit::version(&old);
    if if_match.as_ref().is_some_and(|v| *v != current && v != "*") {
        return Err(Refused::Stale(current));
    }
    let old_doc: Value = serde_json::from_slice(&old).unwrap_or_else(|_| json!({}));
    let mut doc = old_doc.clone();
    edit::merge_patch(&mut doc, &patch);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Refused::Io(e.to_string()))? + "\n";
    crate::config::parse_config(&path, &text).map_err(Refused::Invalid)?;
    let version = edit::version(text.as_bytes());
    let changed = changed_sections(&old_doc, &doc);
    write(path, text.into_bytes()).await?;
    // Nothing in config.json applies while running yet: say so rather than pretend.
    Ok((
        StatusCode::OK,
        json!({"version": version, "changed_sections": changed, "restart_required": !changed.is_empty(),
               "message": if changed.is_empty() { "nothing changed" } else { "saved; restart panelcam to apply it (systemctl restart panelcam)" }}),
        Some(version),
    ))
}
