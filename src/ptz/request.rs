//! PTZ requests as the REST API and the control WebSocket receive them, checked once here.
//!
//! Fields are read as raw JSON values and checked by hand, so that every refusal names its
//! field ("`pan` must be a number from -1 to 1, got \"left\""), which serde's own type errors
//! do not. Unknown fields are refused: a misspelt `tilt` must not silently mean 0.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::error::PtzError;
use super::onvif::Velocity;

/// Longest move an operator can ask for; the dead-man timer is never further away than this.
pub const MAX_MOVE_SECS: f64 = 60.0;
/// Preset names and tokens are short on every camera (ONVIF's `Name` is typically ≤ 64).
const MAX_PRESET_TEXT: usize = 64;

/// `{"pan", "tilt", "zoom"?, "timeout_secs"?}`
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    #[serde(default)]
    pub pan: Option<Value>,
    #[serde(default)]
    pub tilt: Option<Value>,
    #[serde(default)]
    pub zoom: Option<Value>,
    #[serde(default)]
    pub timeout_secs: Option<Value>,
}

/// `{"token"}` or `{"preset": n}` (the old WinCC control).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GotoRequest {
    #[serde(default)]
    pub token: Option<Value>,
    #[serde(default)]
    pub preset: Option<Value>,
}

/// `{"name"?, "token"?}`, or the old control's `{"preset": n, "name"?}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPresetRequest {
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub token: Option<Value>,
    #[serde(default)]
    pub preset: Option<Value>,
}

/// A preset as a request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresetRef {
    Token(String),
    /// Resolved against the camera's list (see `ptz::resolve`).
    Number(u32),
}

fn invalid(field: &str, expected: &str, got: &Value) -> PtzError {
    let shown: String = got.to_string().chars().take(40).collect();
    PtzError::Invalid(format!("`{field}` must be {expected}, got {shown}"))
}

/// A finite number within `range` (`null` counts as absent).
fn number(field: &str, v: Option<&Value>, ok: impl Fn(f64) -> bool, expected: &str) -> Result<Option<f64>, PtzError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(raw) => match raw.as_f64() {
            Some(x) if x.is_finite() && ok(x) => Ok(Some(x)),
            _ => Err(invalid(field, expected, raw)),
        },
    }
}

fn velocity(field: &str, v: Option<&Value>) -> Result<Option<f64>, PtzError> {
    number(field, v, |x| (-1.0..=1.0).contains(&x), "a number from -1 to 1")
}

fn text(field: &str, v: Option<&Value>) -> Result<Option<String>, PtzError> {
    let expected = "a non-empty string of at most 64 characters";
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_PRESET_TEXT => Ok(Some(s.clone())),
        Some(raw) => Err(invalid(field, expected, raw)),
    }
}

fn preset_number(v: Option<&Value>) -> Result<Option<u32>, PtzError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(raw) => match raw.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1) {
            Some(n) => Ok(Some(n)),
            None => Err(invalid("preset", "a whole number from 1 (use `token` for a preset token)", raw)),
        },
    }
}

impl MoveRequest {
    /// The velocity and the move's own timeout, if any.
    pub fn check(&self) -> Result<(Velocity, Option<Duration>), PtzError> {
        let required = |field: &str, v: Option<f64>| {
            v.ok_or_else(|| PtzError::Invalid(format!("`{field}` is required (a number from -1 to 1)")))
        };
        let pan = required("pan", velocity("pan", self.pan.as_ref())?)?;
        let tilt = required("tilt", velocity("tilt", self.tilt.as_ref())?)?;
        let zoom = velocity("zoom", self.zoom.as_ref())?;
        let timeout = number(
            "timeout_secs",
            self.timeout_secs.as_ref(),
            |t| t > 0.0 && t <= MAX_MOVE_SECS,
            "a number of seconds greater than 0 and at most 60",
        )?;
        Ok((Velocity { pan, tilt, zoom }, timeout.map(Duration::from_secs_f64)))
    }
}

impl GotoRequest {
    pub fn check(&self) -> Result<PresetRef, PtzError> {
        let token = text("token", self.token.as_ref())?;
        let number = preset_number(self.preset.as_ref())?;
        match (token, number) {
            (Some(t), None) => Ok(PresetRef::Token(t)),
            (None, Some(n)) => Ok(PresetRef::Number(n)),
            (Some(_), Some(_)) => Err(PtzError::Invalid("give either `token` or `preset`, not both".into())),
            (None, None) => Err(PtzError::Invalid(
                "`token` (a preset token) or `preset` (a preset number from 1) is required".into(),
            )),
        }
    }
}

impl SetPresetRequest {
    /// The name and which preset to overwrite (`None`: a new one).
    pub fn check(&self) -> Result<(Option<String>, Option<PresetRef>), PtzError> {
        let name = text("name", self.name.as_ref())?;
        let token = text("token", self.token.as_ref())?;
        let number = preset_number(self.preset.as_ref())?;
        let preset = match (token, number) {
            (Some(_), Some(_)) => return Err(PtzError::Invalid("give either `token` or `preset`, not both".into())),
            (Some(t), None) => Some(PresetRef::Token(t)),
            (None, Some(n)) => Some(PresetRef::Number(n)),
            (None, None) => None,
        };
        Ok((name, preset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mv(json: &str) -> Result<(Velocity, Option<Duration>), String> {
        let r: MoveRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        r.check().map_err(|e| e.to_string())
    }

    #[test]
    fn moves_are_checked_field_by_field() {
        let (v, t) = mv(r#"{"pan":0.5,"tilt":-1,"zoom":0,"timeout_secs":1.5}"#).unwrap();
        assert_eq!(v, Velocity { pan: 0.5, tilt: -1.0, zoom: Some(0.0) });
        assert_eq!(t, Some(Duration::from_millis(1500)));
        assert_eq!(mv(r#"{"pan":1,"tilt":0}"#).unwrap(), (Velocity { pan: 1.0, tilt: 0.0, zoom: None }, None));
        for (json, says) in [
            (r#"{"pan":1.01,"tilt":0}"#, "`pan` must be a number from -1 to 1, got 1.01"),
            (r#"{"pan":0,"tilt":"up"}"#, "`tilt` must be a number from -1 to 1, got \"up\""),
            (r#"{"pan":0}"#, "`tilt` is required"),
            (r#"{"pan":0,"tilt":0,"zoom":[1]}"#, "`zoom` must be"),
            (r#"{"pan":0,"tilt":0,"timeout_secs":0}"#, "`timeout_secs` must be"),
            (r#"{"pan":0,"tilt":0,"timeout_secs":61}"#, "`timeout_secs` must be"),
            (r#"{"pan":0,"tilt":0,"tlit":1}"#, "unknown field `tlit`"),
        ] {
            let e = mv(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn presets_by_token_or_number() {
        let g = |json: &str| serde_json::from_str::<GotoRequest>(json).unwrap().check();
        assert_eq!(g(r#"{"token":"Preset_1"}"#), Ok(PresetRef::Token("Preset_1".into())));
        assert_eq!(g(r#"{"preset":3}"#), Ok(PresetRef::Number(3)));
        assert!(g(r#"{"preset":0}"#).unwrap_err().to_string().contains("`preset`"));
        assert!(g(r#"{"preset":1.5}"#).is_err());
        assert!(g(r#"{}"#).unwrap_err().to_string().contains("is required"));
        assert!(g(r#"{"token":"a","preset":1}"#).is_err());
        let s = |json: &str| serde_json::from_str::<SetPresetRequest>(json).unwrap().check();
        assert_eq!(s(r#"{"name":"Gate"}"#), Ok((Some("Gate".into()), None)));
        assert_eq!(s(r#"{"preset":1,"name":"Entrance"}"#), Ok((Some("Entrance".into()), Some(PresetRef::Number(1)))));
        assert!(s(&format!(r#"{{"name":"{}"}}"#, "x".repeat(65))).unwrap_err().to_string().contains("`name`"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn accepted_moves_are_in_range(
            pan in "-?[0-9]{1,3}(\\.[0-9]{1,4})?(e-?[0-9]{1,3})?|null|\"x\"",
            tilt in "-?[0-9]{1,3}(\\.[0-9]{1,4})?|true",
            timeout in "-?[0-9]{1,3}(\\.[0-9]{1,4})?(e[0-9]{1,3})?|null",
        ) {
            let json = format!(r#"{{"pan":{pan},"tilt":{tilt},"timeout_secs":{timeout}}}"#);
            if let Ok((v, t)) = mv(&json) {
                prop_assert!((-1.0..=1.0).contains(&v.pan) && (-1.0..=1.0).contains(&v.tilt));
                prop_assert!(t.is_none_or(|t| t > Duration::ZERO && t <= Duration::from_secs(60)));
            }
        }
    }
}
