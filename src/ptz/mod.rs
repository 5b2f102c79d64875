//! Pan/tilt/zoom over ONVIF: one [`Ptz`] per camera, used by the REST API and the control
//! WebSocket alike. This module knows nothing of HTTP serving (dependencies point one way:
//! `http` → `ptz`); it returns [`PtzError`]s and the callers pick status codes.
//!
//! A continuous move never outlives its operator: every move arms a dead-man timer (the
//! move's `timeout_secs`, else [`DEFAULT_MOVE_SECS`]) after which panelcam sends Stop itself,
//! so a panel that loses its network mid-move does not leave the camera spinning. ONVIF's
//! own `Timeout` is sent too, but not every device honours it.
//!
//! Each request's outcome is kept in [`PtzStatus`], which the status documents show.

pub mod client;
pub mod error;
pub mod onvif;
pub mod request;
pub mod soap;
pub mod status;
pub mod tls;
pub mod url;
pub mod xml;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::config::PtzConfig;
use crate::redact::{Redactor, redact_url};
pub use error::PtzError;
pub use onvif::{Preset, Session, Velocity};
pub use request::{GotoRequest, MoveRequest, PresetRef, SetPresetRequest};
use status::{Op, PtzStatus};

/// How long one ONVIF operation may take, including the first call's session setup. Short:
/// an operator is waiting, and a camera that does not answer in 5 s is not going to move.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A move without a timeout of its own is stopped after this long.
pub const DEFAULT_MOVE_SECS: f64 = 10.0;

/// One camera's PTZ control. Cheap to share; all state is behind `Arc`.
pub struct Ptz {
    camera: String,
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The session and the settings it was opened with; reopened when they change.
    session: Mutex<Option<(PtzConfig, Session)>>,
    /// The pending Stop of the last move.
    deadman: Mutex<Option<JoinHandle<()>>>,
    status: PtzStatus,
}

impl Ptz {
    pub fn new(camera: &str) -> Ptz {
        Ptz { camera: camera.to_string(), inner: Arc::default() }
    }

    /// Starts a continuous move and arms the dead-man Stop.
    pub async fn continuous_move(&self, config: &PtzConfig, m: &MoveRequest) -> Result<(), PtzError> {
        self.noted(config, Op::Move, async {
            let (velocity, timeout) = m.check()?;
            let session = self.session(config).await?;
            // Armed before the request: a move the camera got but did not confirm in time is
            // stopped all the same.
            let after = timeout.unwrap_or(Duration::from_secs_f64(DEFAULT_MOVE_SECS));
            self.arm_deadman(config.clone(), after);
            self.run(config, session.continuous_move(velocity, timeout)).await
        })
        .await
    }

    pub async fn stop(&self, config: &PtzConfig) -> Result<(), PtzError> {
        self.disarm_deadman();
        self.noted(config, Op::Stop, async {
            let session = self.session(config).await?;
            self.run(config, session.stop()).await
        })
        .await
    }

    pub async fn presets(&self, config: &PtzConfig) -> Result<Vec<Preset>, PtzError> {
        self.noted(config, Op::Presets, async {
            let session = self.session(config).await?;
            self.run(config, session.presets()).await
        })
        .await
    }

    /// Goes to a preset by token, or by the old WinCC control's number (see [`resolve`]).
    pub async fn goto_preset(&self, config: &PtzConfig, g: &GotoRequest) -> Result<String, PtzError> {
        self.noted(config, Op::GotoPreset, async {
            let session = self.session(config).await?;
            let token = match g.check()? {
                PresetRef::Token(t) => t,
                PresetRef::Number(n) => {
                    let list = self.run(config, session.presets()).await?;
                    resolve(&list, n).ok_or_else(|| {
                        PtzError::NoPreset(format!(
                            "camera {}: no preset {n}: no preset has token \"{n}\" and the camera lists {} preset(s)",
                            self.camera,
                            list.len()
                        ))
                    })?
                }
            };
            self.disarm_deadman();
            self.run(config, session.goto_preset(&token)).await?;
            Ok(token)
        })
        .await
    }

    /// Saves the current position as a preset and returns its token. `{preset: n}` overwrites
    /// the preset that number resolves to, or makes a new one when none does.
    pub async fn set_preset(&self, config: &PtzConfig, s: &SetPresetRequest) -> Result<String, PtzError> {
        self.noted(config, Op::SetPreset, async {
            let (name, preset) = s.check()?;
            let session = self.session(config).await?;
            let token = match preset {
                Some(PresetRef::Token(t)) => Some(t),
                Some(PresetRef::Number(n)) => resolve(&self.run(config, session.presets()).await?, n),
                None => None,
            };
            self.run(config, session.set_preset(name.as_deref(), token.as_deref())).await
        })
        .await
    }

    /// The last command, the last error and the counters, for the status documents.
    pub fn status(&self) -> &PtzStatus {
        &self.inner.status
    }

    /// Runs one operation and records its outcome in [`PtzStatus`] (see there for what is
    /// left out). The message is redacted once more with the ONVIF password: `PtzError`s hold
    /// none by construction, but a device's fault text is the device's to choose.
    async fn noted<T>(
        &self,
        config: &PtzConfig,
        op: Op,
        work: impl Future<Output = Result<T, PtzError>>,
    ) -> Result<T, PtzError> {
        let r = work.await;
        let outcome = match &r {
            Ok(_) => Ok(()),
            Err(PtzError::Invalid(_) | PtzError::NotEnabled(_)) => return r,
            Err(e) => {
                let secrets = config.password.iter().map(|p| p.expose().to_string());
                Err(Redactor::new(secrets).apply(&redact_url(&e.to_string())))
            }
        };
        self.inner.status.record(op, crate::util::now_ms(), outcome);
        r
    }

    /// The cached session, or a new one when there is none or the settings changed.
    async fn session(&self, config: &PtzConfig) -> Result<Session, PtzError> {
        if !config.enabled {
            return Err(PtzError::NotEnabled(format!(
                "camera {} has no PTZ control (ptz.enabled is false in its camera file)",
                self.camera
            )));
        }
        if let Some((c, s)) = &*self.inner.session.lock().unwrap_or_else(|e| e.into_inner())
            && c == config
        {
            return Ok(s.clone());
        }
        let opened = tokio::time::timeout(CALL_TIMEOUT, Session::open(config, CALL_TIMEOUT)).await;
        let session = match opened {
            Ok(r) => r.map_err(|e| self.context(e))?,
            Err(_) => return Err(self.context(timeout_error(config))),
        };
        debug!(camera = %self.camera, skew_ms = session.skew_ms, "ONVIF session opened");
        *self.inner.session.lock().unwrap_or_else(|e| e.into_inner()) = Some((config.clone(), session.clone()));
        Ok(session)
    }

    /// Runs one operation within [`CALL_TIMEOUT`]. A refusal of our credentials forgets the
    /// session, so the next call measures the clock again (a device whose clock jumped); so
    /// does a refused certificate, so the next call reads a renewed CA file again.
    async fn run<T>(&self, config: &PtzConfig, op: impl Future<Output = Result<T, PtzError>>) -> Result<T, PtzError> {
        let r = match tokio::time::timeout(CALL_TIMEOUT, op).await {
            Ok(r) => r,
            Err(_) => Err(timeout_error(config)),
        };
        let forget = match &r {
            Err(PtzError::Fault { code, .. }) => code.ends_with("NotAuthorized"),
            Err(PtzError::Tls(_)) => true,
            _ => false,
        };
        if forget {
            *self.inner.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        r.map_err(|e| self.context(e))
    }

    fn context(&self, e: PtzError) -> PtzError {
        match e {
            PtzError::Unreachable(m) => PtzError::Unreachable(format!("camera {}: {m}", self.camera)),
            PtzError::Timeout(m) => PtzError::Timeout(format!("camera {}: {m}", self.camera)),
            PtzError::Protocol(m) => PtzError::Protocol(format!("camera {}: {m}", self.camera)),
            PtzError::Tls(m) => PtzError::Tls(format!("camera {}: {m}", self.camera)),
            other => other,
        }
    }

    fn arm_deadman(&self, config: PtzConfig, after: Duration) {
        let inner = self.inner.clone();
        let camera = self.camera.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let ptz = Ptz { camera, inner };
            // Forget our own handle (so a stop does not abort us mid-Stop), but not a newer
            // move's that replaced it in the meantime.
            {
                let mut slot = ptz.inner.deadman.lock().unwrap_or_else(|e| e.into_inner());
                if slot.as_ref().is_some_and(|h| h.id() == tokio::task::id()) {
                    slot.take();
                }
            }
            let stopped = ptz
                .noted(&config, Op::DeadmanStop, async {
                    let session = ptz.session(&config).await?;
                    ptz.run(&config, session.stop()).await
                })
                .await;
            match stopped {
                Ok(()) => debug!(camera = %ptz.camera, "PTZ move ended by the dead-man timer after {after:?}"),
                Err(e) => warn!(camera = %ptz.camera, "PTZ dead-man Stop failed: {e}"),
            }
        });
        if let Some(old) = self.inner.deadman.lock().unwrap_or_else(|e| e.into_inner()).replace(task) {
            old.abort();
        }
    }

    fn disarm_deadman(&self) {
        if let Some(old) = self.inner.deadman.lock().unwrap_or_else(|e| e.into_inner()).take() {
            old.abort();
        }
    }
}

fn timeout_error(config: &PtzConfig) -> PtzError {
    let url = config.onvif_url.as_deref().and_then(|u| url::OnvifUrl::parse(u, "ptz.onvif_url").ok());
    let at = url.map(|u| u.authority).unwrap_or_default();
    PtzError::Timeout(format!("the camera's ONVIF service at {at} did not answer within {} s", CALL_TIMEOUT.as_secs()))
}

/// The old WinCC control sends preset *numbers*. Number `n` is the preset whose token is
/// `"n"` (Hikvision, Dahua and most cameras number their tokens), else the `n`-th preset of
/// the camera's list, counted from 1 (cameras with tokens like `Preset_A`).
pub fn resolve(presets: &[Preset], n: u32) -> Option<String> {
    let wanted = n.to_string();
    if let Some(p) = presets.iter().find(|p| p.token == wanted) {
        return Some(p.token.clone());
    }
    let index = usize::try_from(n).ok()?.checked_sub(1)?;
    presets.get(index).map(|p| p.token.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(token: &str) -> Preset {
        Preset { token: token.into(), name: String::new() }
    }

    #[test]
    fn preset_numbers_prefer_tokens_then_positions() {
        let numbered = [p("2"), p("1"), p("3")];
        assert_eq!(resolve(&numbered, 1).as_deref(), Some("1"));
        let named = [p("Preset_A"), p("Preset_B")];
        assert_eq!(resolve(&named, 2).as_deref(), Some("Preset_B"));
        assert_eq!(resolve(&named, 3), None);
        assert_eq!(resolve(&named, 0), None);
        assert_eq!(resolve(&[], 1), None);
    }
}
