//! What an engineer needs to know about a camera's PTZ without trying it: the last command
//! that acted on the camera and how it went, the last failure with its reason, and counters.
//! The status documents (`registry::report`) read it, so `/api/status`, `/metrics` and MQTT's
//! camera status say the same thing.
//!
//! A body refused by the checks and a call to a camera without PTZ are answered to their caller
//! and not recorded: they say nothing about the camera, and would only hide the failure an
//! engineer is looking for. Unusable `ptz` settings (a user-info `onvif_url`, a CA file gone
//! since the camera was loaded) are recorded, since they are the camera's problem, and so is a
//! refused TLS certificate, with the check that failed (unknown issuer, fingerprint or name
//! mismatch): the first place an engineer looks after renewing a camera's certificate.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde_json::{Value, json};

use crate::util::iso_ms;

/// A PTZ operation, as the status names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Move,
    Stop,
    GotoPreset,
    SetPreset,
    Presets,
    /// The Stop panelcam sends itself when a move's time is up (see `Ptz::continuous_move`).
    DeadmanStop,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Move => "move",
            Op::Stop => "stop",
            Op::GotoPreset => "goto_preset",
            Op::SetPreset => "set_preset",
            Op::Presets => "presets",
            Op::DeadmanStop => "deadman_stop",
        }
    }

    /// Listing presets asks the camera but moves nothing: the control page lists them on every
    /// load, and as "last command" that would hide the move an operator made.
    fn acts(self) -> bool {
        self != Op::Presets
    }
}

#[derive(Clone, Debug)]
struct Event {
    op: Op,
    at_ms: i64,
    /// The failure's message, already redacted; `None` when the camera did what was asked.
    error: Option<String>,
}

#[derive(Default)]
pub struct PtzStatus {
    last_command: Mutex<Option<Event>>,
    last_error: Mutex<Option<Event>>,
    /// Requests recorded (presets listings and dead-man stops included).
    requests: AtomicU64,
    errors: AtomicU64,
}

impl PtzStatus {
    /// Records one request's outcome at `at_ms`. `outcome` is the redacted error message of a
    /// failure: callers must not pass anything that may hold a secret.
    pub fn record(&self, op: Op, at_ms: i64, outcome: Result<(), String>) {
        let event = Event { op, at_ms, error: outcome.err() };
        self.requests.fetch_add(1, Relaxed);
        if event.error.is_some() {
            self.errors.fetch_add(1, Relaxed);
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(event.clone());
        }
        if op.acts() {
            *self.last_command.lock().unwrap_or_else(|e| e.into_inner()) = Some(event);
        }
    }

    pub fn to_json(&self) -> Value {
        let last_command = self.last_command.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        json!({
            "last_command": last_command.map(|e| json!({
                "command": e.op.as_str(), "at": iso_ms(e.at_ms), "ok": e.error.is_none(),
            })),
            "last_error": last_error.map(|e| json!({
                "command": e.op.as_str(), "at": iso_ms(e.at_ms), "message": e.error,
            })),
            "requests": self.requests.load(Relaxed),
            "errors": self.errors.load(Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_755_252_000_000;

    #[test]
    fn nothing_recorded_is_nulls_and_zeros() {
        let v = PtzStatus::default().to_json();
        assert_eq!(v, json!({"last_command": null, "last_error": null, "requests": 0, "errors": 0}));
    }

    #[test]
    fn a_failure_stays_visible_after_later_successes() {
        let s = PtzStatus::default();
        s.record(Op::Move, T, Err("the camera refused ONVIF ContinuousMove: Sender not Authorized".into()));
        s.record(Op::Stop, T + 500, Ok(()));
        let v = s.to_json();
        assert_eq!(v["last_command"], json!({"command": "stop", "at": "2025-08-15T10:00:00.500Z", "ok": true}));
        assert_eq!(v["last_error"]["command"], "move");
        assert_eq!(v["last_error"]["at"], "2025-08-15T10:00:00.000Z");
        assert!(v["last_error"]["message"].as_str().unwrap().contains("Sender not Authorized"));
        assert_eq!((v["requests"].as_u64(), v["errors"].as_u64()), (Some(2), Some(1)));
    }

    #[test]
    fn listing_presets_is_counted_but_is_not_the_last_command() {
        let s = PtzStatus::default();
        s.record(Op::GotoPreset, T, Ok(()));
        s.record(Op::Presets, T + 1, Err("timeout".into()));
        let v = s.to_json();
        assert_eq!(v["last_command"]["command"], "goto_preset");
        assert_eq!(v["last_error"]["command"], "presets");
        assert_eq!(v["requests"], 2);
    }
}
