//! Editing configuration documents for the admin API, without knowing HTTP: secrets are
//! write-only (left out of what is shown, kept when an edit leaves them out), partial edits
//! are JSON merge patches (RFC 7396), each version of a file has a short content hash, and a
//! file is replaced atomically so the directory watcher never reads half of it.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::secret::CameraUrl;

/// Where a document keeps secrets: plain values and URLs that may carry credentials.
pub struct Secrets {
    pub values: &'static [&'static str],
    pub urls: &'static [&'static str],
}

pub const CAMERA_SECRETS: Secrets = Secrets { values: &["/token", "/ptz/password"], urls: &["/url", "/ptz/onvif_url"] };

pub const CONFIG_SECRETS: Secrets = Secrets {
    values: &["/server/admin_token", "/server/metrics_token", "/mqtt/password"],
    urls: &["/recording/database_url", "/mqtt/broker_url"],
};

fn parent_and_key(pointer: &str) -> Option<(&str, &str)> {
    pointer.rsplit_once('/')
}

/// The document as it may be shown: secret values left out, URLs without user-info (and with
/// secret query parameters masked); with the pointers of the secrets that are set.
pub fn redact(doc: &Value, secrets: &Secrets) -> (Value, Vec<String>) {
    let mut shown = doc.clone();
    let mut set = Vec::new();
    for pointer in secrets.values {
        let Some((parent, key)) = parent_and_key(pointer) else { continue };
        if let Some(Value::Object(map)) = shown.pointer_mut(parent)
            && let Some(v) = map.remove(key)
            && !v.is_null()
        {
            set.push((*pointer).to_string());
        }
    }
    for pointer in secrets.urls {
        if let Some(v) = shown.pointer_mut(pointer)
            && let Some(url) = v.as_str()
        {
            let public = CameraUrl::new(url.to_string()).public();
            if public != url {
                set.push(format!("{pointer} (credentials)"));
                *v = Value::String(public);
            }
        }
    }
    (shown, set)
}

/// Puts back the secrets an edit left out: a secret value absent from `new` keeps its value
/// from `old` (an explicit `null` clears it), and a URL equal to the shown form of the old
/// one gets the old one back, credentials included.
pub fn keep_secrets(new: &mut Value, old: &Value, secrets: &Secrets) {
    for pointer in secrets.values {
        let Some((parent, key)) = parent_and_key(pointer) else { continue };
        let Some(previous) = old.pointer(pointer) else { continue };
        if let Some(Value::Object(map)) = new.pointer_mut(parent)
            && !map.contains_key(key)
        {
            map.insert(key.to_string(), previous.clone());
        }
    }
    for pointer in secrets.urls {
        let Some(Value::String(previous)) = old.pointer(pointer) else { continue };
        if let Some(v) = new.pointer_mut(pointer)
            && v.as_str() == Some(CameraUrl::new(previous.clone()).public().as_str())
        {
            *v = Value::String(previous.clone());
        }
    }
}

/// Applies a JSON merge patch: objects merge key by key, `null` removes, anything else
/// replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// A short hash of a file's bytes: the version an edit names in `If-Match`.
pub fn version(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Replaces `path` with `bytes` so that a reader sees the old file or the new one, never a
/// mix, and the new one survives a power cut: a temporary file in the same directory,
/// fsynced, renamed over the old one, then the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let name = path.file_name().ok_or_else(|| io::Error::other("no file name"))?;
    // Hidden and not `.json`: the watcher ignores it, so it never sees it half-written.
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Removes a file and makes that durable.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)?;
    File::open(parent(path))?.sync_all()
}

/// The directory of `path`; `.` for a bare file name (`--config config.json`).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn secrets_are_left_out_and_kept_by_an_edit_that_leaves_them_out() {
        let stored = json!({"path": "/cam", "url": "rtsp://admin:pw1@10.0.0.5/stream", "token": "view-123",
                            "ptz": {"enabled": true, "password": "ptz-pw"}});
        let (shown, set) = redact(&stored, &CAMERA_SECRETS);
        let text = shown.to_string();
        for secret in ["pw1", "admin", "view-123", "ptz-pw"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(shown["url"], "rtsp://10.0.0.5/stream");
        assert_eq!(set, vec!["/token", "/ptz/password", "/url (credentials)"]);
        // The page sends back what it was shown, with one change.
        let mut edited = shown.clone();
        edited["path"] = json!("/cam2");
        keep_secrets(&mut edited, &stored, &CAMERA_SECRETS);
        assert_eq!(edited["url"], "rtsp://admin:pw1@10.0.0.5/stream");
        assert_eq!(edited["token"], "view-123");
        assert_eq!(edited["ptz"]["password"], "ptz-pw");
        assert_eq!(edited["path"], "/cam2");
        // A new URL or an explicit null replaces them.
        let mut changed = json!({"url": "rtsp://other/x", "token": null, "ptz": {"enabled": false}});
        keep_secrets(&mut changed, &stored, &CAMERA_SECRETS);
        assert_eq!(changed["url"], "rtsp://other/x");
        assert_eq!(changed["token"], Value::Null);
    }

    #[test]
    fn merge_patch_merges_objects_and_removes_nulls() {
        let mut doc = json!({"server": {"port": 8080, "host": "0.0.0.0"}, "mqtt": {"enabled": true}});
        merge_patch(&mut doc, &json!({"server": {"port": 9090}, "mqtt": null, "recording": {"enabled": true}}));
        assert_eq!(doc, json!({"server": {"port": 9090, "host": "0.0.0.0"}, "recording": {"enabled": true}}));
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = std::env::temp_dir().join(format!("panelcam-edit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cam.json");
        write_atomic(&path, b"{\"a\": 1}").unwrap();
        write_atomic(&path, b"{\"a\": 2}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\": 2}");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        assert_ne!(version(b"{\"a\": 1}"), version(b"{\"a\": 2}"));
        remove_durably(&path).unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_/]{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_documents_redact_keep_and_merge_without_panicking(a in json_value(), b in json_value()) {
            let (shown, _) = redact(&a, &CAMERA_SECRETS);
            let mut edited = shown.clone();
            keep_secrets(&mut edited, &a, &CAMERA_SECRETS);
            let mut merged = a.clone();
            merge_patch(&mut merged, &b);
            let _ = redact(&b, &CONFIG_SECRETS);
        }
    }
}
