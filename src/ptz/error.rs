//! The one error type of PTZ control. Variants say what went wrong in PTZ terms; `http` and
//! the control channel decide the status codes (502 for a device's no, 504 for its silence).
//! No variant ever carries the ONVIF password: messages are built from URLs without user
//! info, the device's fault text and our own words.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtzError {
    /// The camera has no PTZ (`ptz.enabled` is false).
    NotEnabled(String),
    /// The camera's `ptz` settings cannot be used; the message names the field.
    Config(String),
    /// The request's values are unusable; the message names the field.
    Invalid(String),
    /// No preset matches the request.
    NoPreset(String),
    /// The device could not be reached (connection refused, reset).
    Unreachable(String),
    /// The device did not answer in time.
    Timeout(String),
    /// The device's TLS certificate was refused, or the TLS handshake failed: nothing was sent.
    Tls(String),
    /// The device answered with a SOAP fault.
    Fault { action: &'static str, code: String, reason: String },
    /// The device answered something that is not a usable ONVIF answer (HTTP error page, bad XML).
    Protocol(String),
}

impl fmt::Display for PtzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PtzError::NotEnabled(m)
            | PtzError::Config(m)
            | PtzError::Invalid(m)
            | PtzError::NoPreset(m)
            | PtzError::Unreachable(m)
            | PtzError::Timeout(m)
            | PtzError::Tls(m)
            | PtzError::Protocol(m) => f.write_str(m),
            PtzError::Fault { action, code, reason } => {
                write!(f, "the camera refused ONVIF {action}: {reason} (SOAP fault {code})")
            }
        }
    }
}

impl std::error::Error for PtzError {}
