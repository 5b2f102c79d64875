//! Commands on `<base>/cameras/<id>/command` (only with `mqtt.commands_enabled`):
//! `{"action": "start_recording", "reason": "..."}`, `{"action": "stop_recording"}`, and PTZ:
//! `{"action": "ptz_move", "pan", "tilt", "zoom"?, "timeout_secs"?}`, `ptz_stop`,
//! `ptz_goto_preset` (`token` or `preset`), `ptz_set_preset` (`name`?, `token`?), each with an
//! optional `"id"` echoed in the reply so a client can pair answers with requests. They use the
//! frame store and the camera's PTZ exactly as `POST /<cam>/control/recording/start|stop` and
//! `/<cam>/control/ptz/...` do. Payloads come from
//! anyone who may publish to the broker: parsing is total (fuzzed below), errors name the field.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::registry::Registry;
use crate::store::StoreError;

/// Commands are small JSON objects.
pub const MAX_PAYLOAD: usize = 64 << 10;
const MAX_REASON_CHARS: usize = 1000;
const MAX_ID_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    StartRecording {
        reason: Option<String>,
    },
    StopRecording,
    /// A PTZ request; its fields (all but `action` and `id`) are checked by `ptz::request` when
    /// it runs, as the REST body would be.
    Ptz {
        op: PtzOp,
        body: Value,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtzOp {
    Move,
    Stop,
    GotoPreset,
    SetPreset,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub action: Action,
    /// The caller's request id, echoed in the reply.
    pub id: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CommandError {
    /// Not a JSON object, or too large.
    Malformed(String),
    /// A known action with an unusable field.
    Invalid(String),
    /// An action this version does not know (PTZ comes later).
    UnknownAction(String),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Malformed(m) | CommandError::Invalid(m) => f.write_str(m),
            CommandError::UnknownAction(a) => write!(
                f,
                "unknown action \"{a}\"; expected start_recording, stop_recording, ptz_move, ptz_stop, ptz_goto_preset or ptz_set_preset"
            ),
        }
    }
}

impl std::error::Error for CommandError {}

/// Parses a command payload. Never panics, whatever the bytes.
pub fn parse(payload: &[u8]) -> Result<Command, CommandError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(CommandError::Malformed(format!("a command is at most {MAX_PAYLOAD} bytes")));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(payload) else {
        return Err(CommandError::Malformed(
            "expected a JSON object like {\"action\": \"start_recording\", \"reason\": \"...\"}".into(),
        ));
    };
    let id = request_id(&map)?;
    let action = match map.get("action") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(CommandError::Invalid("`action` must be a string such as \"start_recording\"".into())),
    };
    let action = match action {
        "start_recording" => Action::StartRecording { reason: reason(&map)? },
        "stop_recording" => Action::StopRecording,
        "ptz_move" => ptz(PtzOp::Move, &map),
        "ptz_stop" => ptz(PtzOp::Stop, &map),
        "ptz_goto_preset" => ptz(PtzOp::GotoPreset, &map),
        "ptz_set_preset" => ptz(PtzOp::SetPreset, &map),
        other => return Err(CommandError::UnknownAction(other.chars().take(64).collect())),
    };
    Ok(Command { action, id })
}

/// The PTZ request inside a command: its fields without `action` and `id`.
fn ptz(op: PtzOp, map: &Map<String, Value>) -> Action {
    let body: Map<String, Value> =
        map.iter().filter(|(k, _)| *k != "action" && *k != "id").map(|(k, v)| (k.clone(), v.clone())).collect();
    Action::Ptz { op, body: Value::Object(body) }
}

fn request_id(map: &Map<String, Value>) -> Result<Option<Value>, CommandError> {
    match map.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(Value::Number(n.clone()))),
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => Ok(Some(Value::String(s.clone()))),
        Some(_) => Err(CommandError::Invalid(format!(
            "`id` must be a number or a string of at most {MAX_ID_CHARS} characters"
        ))),
    }
}

fn reason(map: &Map<String, Value>) -> Result<Option<String>, CommandError> {
    match map.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_REASON_CHARS => Ok(Some(s.clone())),
        Some(_) => {
            Err(CommandError::Invalid(format!("`reason` must be a string of at most {MAX_REASON_CHARS} characters")))
        }
    }
}

/// The reply to a payload that did not parse.
pub fn rejected(e: &CommandError) -> Value {
    let status = if matches!(e, CommandError::UnknownAction(_)) { "unknown_action" } else { "error" };
    json!({"status": status, "error": e.to_string()})
}

/// Runs a command on a camera and returns the reply document.
pub async fn execute(registry: &Arc<Registry>, camera_id: &str, command: Command) -> Value {
    let action = match command.action {
        Action::StartRecording { .. } => "start_recording",
        Action::StopRecording => "stop_recording",
        Action::Ptz { op: PtzOp::Move, .. } => "ptz_move",
        Action::Ptz { op: PtzOp::Stop, .. } => "ptz_stop",
        Action::Ptz { op: PtzOp::GotoPreset, .. } => "ptz_goto_preset",
        Action::Ptz { op: PtzOp::SetPreset, .. } => "ptz_set_preset",
    };
    let mut reply = match run(registry, camera_id, command.action).await {
        Ok(v) => v,
        Err(e) => json!({"status": "error", "error": e}),
    };
    if let Value::Object(map) = &mut reply {
        map.insert("action".into(), action.into());
        map.insert("camera".into(), camera_id.into());
        if let Some(id) = command.id {
            map.insert("id".into(), id);
        }
    }
    reply
}

async fn run(registry: &Arc<Registry>, camera_id: &str, action: Action) -> Result<Value, String> {
    let camera = registry.camera(camera_id).ok_or_else(|| format!("no camera \"{camera_id}\""))?;
    if let Action::Ptz { op, body } = action {
        return run_ptz(&camera, op, body).await.map_err(|e| e.to_string());
    }
    let store = camera.frames.clone().ok_or_else(|| {
        let why = camera.frames_unavailable.clone().unwrap_or_else(|| "frame storage is not available".into());
        format!("camera {camera_id}: {why}")
    })?;
    let result = match action {
        Action::StartRecording { reason } => store.start_session(reason).await.map(|s| (s, "Recording started")),
        Action::StopRecording => store.stop_session().await.map(|s| (s, "Recording stopped")),
        Action::Ptz { .. } => return Err("PTZ handled above".into()),
    };
    match result {
        Ok((s, message)) => Ok(json!({"status": "ok", "message": message, "session_id": s.id, "session": s.to_json()})),
        Err(e) => Err(store_message(&e)),
    }
}

fn store_message(e: &StoreError) -> String {
    e.message().to_string()
}

/// A PTZ command, checked and run as the REST route does.
async fn run_ptz(camera: &crate::camera::Camera, op: PtzOp, body: Value) -> Result<Value, crate::ptz::PtzError> {
    use crate::ptz::{GotoRequest, MoveRequest, PtzError, SetPresetRequest};
    fn parse<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, PtzError> {
        serde_json::from_value(body).map_err(|e| PtzError::Invalid(format!("command: {e}")))
    }
    let config = camera.config().ptz.clone();
    let ptz = &camera.ptz;
    match op {
        PtzOp::Move => {
            ptz.continuous_move(&config, &parse::<MoveRequest>(body)?).await.map(|()| json!({"message": "Moving"}))
        }
        PtzOp::Stop => ptz.stop(&config).await.map(|()| json!({"message": "Stopped"})),
        PtzOp::GotoPreset => ptz
            .goto_preset(&config, &parse::<GotoRequest>(body)?)
            .await
            .map(|token| json!({"message": "Moving to preset", "preset_token": token})),
        PtzOp::SetPreset => {
            ptz.set_preset(&config, &parse::<SetPresetRequest>(body)?).await.map(|token| json!({"preset_token": token}))
        }
    }
    .map(|mut v| {
        if let Value::Object(m) = &mut v {
            m.insert("status".into(), "ok".into());
        }
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commands_parse() {
        let c = parse(br#"{"action":"start_recording","reason":"door open","id":7}"#).unwrap();
        assert_eq!(c.action, Action::StartRecording { reason: Some("door open".into()) });
        assert_eq!(c.id, Some(json!(7)));
        assert_eq!(parse(br#"{"action":"stop_recording"}"#).unwrap().action, Action::StopRecording);
        assert_eq!(parse(br#"{"action":"start_recording"}"#).unwrap().action, Action::StartRecording { reason: None });
    }

    #[test]
    fn bad_commands_say_why() {
        assert!(matches!(parse(br#"{"action":"ptz_zoom"}"#), Err(CommandError::UnknownAction(a)) if a == "ptz_zoom"));
        assert!(matches!(parse(b"[1]"), Err(CommandError::Malformed(_))));
        assert!(matches!(parse(b"\xff\xfe"), Err(CommandError::Malformed(_))));
        assert!(matches!(parse(br#"{"reason":"x"}"#), Err(CommandError::Invalid(_))));
        assert!(matches!(parse(br#"{"action":"start_recording","reason":5}"#), Err(CommandError::Invalid(_))));
        let long = format!(r#"{{"action":"start_recording","reason":"{}"}}"#, "x".repeat(1001));
        assert!(matches!(parse(long.as_bytes()), Err(CommandError::Invalid(_))));
        assert_eq!(rejected(&parse(br#"{"action":"zoom"}"#).unwrap_err())["status"], "unknown_action");
        let m = parse(br#"{"action":"ptz_move","pan":0.5,"tilt":-0.2,"id":7}"#).unwrap();
        assert_eq!(m.action, Action::Ptz { op: PtzOp::Move, body: json!({"pan": 0.5, "tilt": -0.2}) });
        assert_eq!(m.id, Some(json!(7)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn arbitrary_objects_never_panic(action in ".{0,40}", reason in proptest::option::of(".{0,1200}"), id in any::<i64>()) {
            let doc = json!({"action": action, "reason": reason, "id": id});
            if let Err(e) = parse(doc.to_string().as_bytes()) {
                let _ = rejected(&e).to_string();
            }
        }
    }
}
