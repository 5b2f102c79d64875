//! `/<cam>/control/ptz/...`: the camera's pan/tilt/zoom over ONVIF (see `crate::ptz`).
//! Bodies are checked by `ptz::request` (400 naming the field); a device's refusal is 502
//! with its fault reason, its silence 504 after `ptz::CALL_TIMEOUT`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::errors::store_error;
use super::params::read_json;
use super::response::{self, Resp};
use super::route::ControlRoute;
use crate::camera::Camera;
use crate::ptz::{GotoRequest, MoveRequest, PtzError, SetPresetRequest};

/// PTZ bodies are a handful of numbers.
const MAX_BODY: usize = 4 << 10;

pub async fn handle(camera: &Arc<Camera>, route: ControlRoute<'_>, req: &mut Request<Incoming>) -> Resp {
    let config = camera.config().ptz.clone();
    let ptz = &camera.ptz;
    // The body is read first, so one too large is a 413 like everywhere else.
    let json = match route {
        ControlRoute::PtzMove | ControlRoute::PtzGotoPreset | ControlRoute::PtzSetPreset => {
            match read_json(req, MAX_BODY).await {
                Ok(v) => v,
                Err(e) => return store_error(e),
            }
        }
        _ => None,
    };
    let result: Result<Value, PtzError> = match route {
        ControlRoute::PtzMove => match body::<MoveRequest>(json) {
            Ok(m) => ptz.continuous_move(&config, &m).await.map(|()| json!({"message": "Moving"})),
            Err(e) => Err(e),
        },
        ControlRoute::PtzStop => ptz.stop(&config).await.map(|()| json!({"message": "Stopped"})),
        ControlRoute::PtzGotoPreset => match body::<GotoRequest>(json) {
            Ok(g) => ptz
                .goto_preset(&config, &g)
                .await
                .map(|token| json!({"message": "Moving to preset", "preset_token": token})),
            Err(e) => Err(e),
        },
        ControlRoute::PtzSetPreset => match body::<SetPresetRequest>(json) {
            Ok(s) => ptz.set_preset(&config, &s).await.map(|token| json!({"preset_token": token})),
            Err(e) => Err(e),
        },
        ControlRoute::PtzPresets => ptz.presets(&config).await.map(|list| {
            let presets: Vec<Value> = list.iter().map(|p| json!({"token": p.token, "name": p.name})).collect();
            json!({"count": presets.len(), "presets": presets})
        }),
        _ => Err(PtzError::Invalid("not a PTZ route".into())),
    };
    match result {
        Ok(data) => response::success(data),
        Err(e) => {
            if matches!(e, PtzError::Fault { .. } | PtzError::Timeout(_) | PtzError::Unreachable(_) | PtzError::Tls(_))
            {
                tracing::warn!(camera = %camera.id(), "PTZ: {e}");
            }
            response::error(status(&e), &e.to_string())
        }
    }
}

/// The status of a PTZ error: the request's fault (4xx), ours (409: the camera's settings),
/// or the device's (502 refused or unreadable, 504 silent).
pub fn status(e: &PtzError) -> StatusCode {
    match e {
        PtzError::Invalid(_) => StatusCode::BAD_REQUEST,
        PtzError::NoPreset(_) => StatusCode::NOT_FOUND,
        PtzError::NotEnabled(_) | PtzError::Config(_) => StatusCode::CONFLICT,
        PtzError::Unreachable(_) | PtzError::Tls(_) | PtzError::Fault { .. } | PtzError::Protocol(_) => {
            StatusCode::BAD_GATEWAY
        }
        PtzError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// A JSON object body as `T`; an empty body is `{}` (the checks then name what is missing).
fn body<T: DeserializeOwned + Default>(value: Option<Value>) -> Result<T, PtzError> {
    match value {
        None => Ok(T::default()),
        Some(v @ Value::Object(_)) => {
            serde_json::from_value(v).map_err(|e| PtzError::Invalid(format!("request body: {e}")))
        }
        Some(_) => Err(PtzError::Invalid("the request body must be a JSON object".into())),
    }
}
