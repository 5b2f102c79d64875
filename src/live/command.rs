//! The control WebSocket's commands, decoded by serde into one typed enum: an unknown
//! command, a missing field or a wrong type is an error message, never a panic, and every
//! time goes through the same checked parser as the REST API.

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::ptz::{GotoRequest, MoveRequest, SetPresetRequest};
use crate::util::{check_time, parse_time};

/// `{"cmd": "...", ...}` as the spec defines it, plus `pause`, `resume` and `step`, and the
/// PTZ commands with the REST API's bodies (the CWC's `ptz_move`, `ptz_stop`,
/// `ptz_goto_preset`, `ptz_set_preset` properties, and `ptz_presets`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// Replay recorded frames from `from` (to `to`, or the end).
    Start {
        from: Time,
        #[serde(default)]
        to: Option<Time>,
    },
    Stop,
    Speed {
        speed: f64,
    },
    Live,
    /// Show the recorded frame nearest to `timestamp`.
    Goto {
        timestamp: Time,
    },
    Pause,
    Resume,
    /// One frame forward (`direction` >= 0, the default) or back.
    Step {
        #[serde(default)]
        direction: Option<i64>,
    },
    /// `{"cmd":"ptz_move","pan":0.5,"tilt":0,"zoom":0,"timeout_secs":2}`
    #[serde(rename = "ptz_move")]
    PtzMove(MoveRequest),
    #[serde(rename = "ptz_stop")]
    PtzStop,
    /// `{"cmd":"ptz_goto_preset","preset":1}` or `"token":"..."`
    #[serde(rename = "ptz_goto_preset")]
    PtzGotoPreset(GotoRequest),
    /// `{"cmd":"ptz_set_preset","name":"Entrance"}` (`token` or `preset` to overwrite one)
    #[serde(rename = "ptz_set_preset")]
    PtzSetPreset(SetPresetRequest),
    #[serde(rename = "ptz_presets")]
    PtzPresets,
}

/// A time in a command: an ISO-8601 string or Unix milliseconds, within 1970..9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time(pub i64);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(i64),
            Text(String),
            Other(serde_json::Value),
        }
        let ms = match Raw::deserialize(d)? {
            Raw::Ms(ms) => check_time(ms).map_err(|e| de::Error::custom(format!("{ms}: {e}")))?,
            Raw::Text(s) => parse_time(&s).map_err(|e| {
                let shown: String = s.chars().take(40).collect();
                de::Error::custom(format!("\"{shown}\" is not a valid time ({e})"))
            })?,
            Raw::Other(v) => {
                return Err(de::Error::custom(format!("expected an ISO time or Unix milliseconds, found {v}")));
            }
        };
        Ok(Time(ms))
    }
}

/// Commands larger than this are not commands.
const MAX_COMMAND: usize = 4096;

pub const COMMAND_HELP: &str = "commands are JSON objects like {\"cmd\":\"live\"}; cmd is start, stop, speed, live, goto, pause, resume, step, ptz_move, ptz_stop, ptz_goto_preset, ptz_set_preset or ptz_presets";

const NAMES: &str = "start, stop, speed, live, goto, pause, resume, step, ptz_move, ptz_stop, ptz_goto_preset, ptz_set_preset or ptz_presets";

/// Decodes one message. The error says what was wrong, for the client.
pub fn parse(raw: &[u8]) -> Result<Command, String> {
    if raw.len() > MAX_COMMAND {
        return Err(format!("command of {} bytes is too long (at most {MAX_COMMAND})", raw.len()));
    }
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(v) if v.is_object() => serde_json::from_value::<Command>(v).map_err(explain),
        _ => Err(COMMAND_HELP.to_string()),
    }
}

/// serde's message in the control channel's words.
fn explain(e: serde_json::Error) -> String {
    let full = e.to_string();
    // "… at line 1 column 12" says nothing to a client sending one line.
    let m = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m);
    let quoted = |prefix: &str| m.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    let text = if let Some(name) = quoted("unknown variant `") {
        format!("unknown command \"{}\"; expected {NAMES}", name.chars().take(40).collect::<String>())
    } else if m == "missing field `cmd`" {
        format!("missing \"cmd\"; expected {NAMES}")
    } else if let Some(field) = quoted("missing field `") {
        format!("\"{field}\" is required")
    } else if m.contains("expected internally tagged enum") {
        COMMAND_HELP.to_string()
    } else {
        m.replace("expected f64", "expected a number").replace("expected i64", "expected a whole number")
    };
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_every_command() {
        let t = 1_755_252_000_000;
        let cases = [
            (r#"{"cmd":"start","from":"2025-08-15T10:00:00Z"}"#, Command::Start { from: Time(t), to: None }),
            (
                r#"{"cmd":"start","from":1755252000000,"to":"2025-08-15T10:00:01Z"}"#,
                Command::Start { from: Time(t), to: Some(Time(t + 1000)) },
            ),
            (r#"{"cmd":"stop"}"#, Command::Stop),
            (r#"{"cmd":"speed","speed":2.5}"#, Command::Speed { speed: 2.5 }),
            (r#"{"cmd":"live","extra":1}"#, Command::Live),
            (r#"{"cmd":"goto","timestamp":"2025-08-15T10:00:00.000Z"}"#, Command::Goto { timestamp: Time(t) }),
            (r#"{"cmd":"pause"}"#, Command::Pause),
            (r#"{"cmd":"resume"}"#, Command::Resume),
            (r#"{"cmd":"step","direction":-1}"#, Command::Step { direction: Some(-1) }),
            (r#"{"cmd":"step"}"#, Command::Step { direction: None }),
            (
                r#"{"cmd":"ptz_move","pan":0.5,"tilt":-1}"#,
                Command::PtzMove(MoveRequest { pan: Some(0.5.into()), tilt: Some((-1).into()), ..Default::default() }),
            ),
            (r#"{"cmd":"ptz_stop"}"#, Command::PtzStop),
            (
                r#"{"cmd":"ptz_goto_preset","preset":1}"#,
                Command::PtzGotoPreset(GotoRequest { preset: Some(1.into()), token: None }),
            ),
            (
                r#"{"cmd":"ptz_set_preset","name":"Gate"}"#,
                Command::PtzSetPreset(SetPresetRequest { name: Some("Gate".into()), ..Default::default() }),
            ),
            (r#"{"cmd":"ptz_presets"}"#, Command::PtzPresets),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text.as_bytes()), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_with_a_reason() {
        for (text, says) in [
            (r#"{"cmd":"fly"}"#, "unknown command \"fly\""),
            (r#"{"from":"x"}"#, "missing \"cmd\""),
            (r#"{"cmd":"start"}"#, "\"from\" is required"),
            (r#"{"cmd":"start","from":"2025-08-15T10:00:00+a€"}"#, "not a valid time"),
            (r#"{"cmd":"goto","timestamp":-9223372036854775808}"#, "outside the supported times"),
            (r#"{"cmd":"goto","timestamp":[1]}"#, "expected an ISO time"),
            (r#"{"cmd":"speed","speed":"fast"}"#, "expected a number"),
            (r#"{"cmd":"ptz_move","pan":0,"tilt":0,"tlit":1}"#, "unknown field `tlit`"),
            ("[1,2]", "commands are JSON objects"),
            ("not json", "commands are JSON objects"),
        ] {
            let e = parse(text.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(parse(&vec![b' '; 10_000]).unwrap_err().contains("too long"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn near_valid_commands_never_panic(
            cmd in "start|stop|speed|live|goto|pause|resume|step|ptz_move|ptz_goto_preset|ptz_set_preset|\\PC{0,8}",
            key in "from|to|speed|timestamp|direction|pan|tilt|zoom|timeout_secs|preset|token|name|\\PC{0,6}",
            value in "\"\\PC{0,30}\"|-?[0-9]{1,25}(\\.[0-9]{1,5})?(e[0-9]{1,4})?|null|true|\\[\\]|\\{\\}",
        ) {
            let text = format!(r#"{{"cmd":"{cmd}","{key}":{value}}}"#);
            match parse(text.as_bytes()) {
                Ok(Command::Start { from, to }) => prop_assert!(from.0 >= 0 && to.is_none_or(|t| t.0 >= 0)),
                // The PTZ checks run on whatever decoded, and never panic either.
                Ok(Command::PtzMove(m)) => { let _ = m.check(); }
                Ok(Command::PtzGotoPreset(g)) => { let _ = g.check(); }
                Ok(Command::PtzSetPreset(s)) => { let _ = s.check(); }
                _ => {}
            }
        }
    }
}
