//! The one error type of the storage layer. Each variant says what went wrong in domain
//! terms; `http` and the control channel map them onto their own status codes.

use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// No such session, frame, segment or job.
    NotFound(String),
    /// The request conflicts with the current state (a session is already active); the value
    /// describes what is in the way (e.g. that session as JSON).
    Conflict(String, Option<Value>),
    /// The request itself is unusable (a malformed or out-of-range parameter).
    Invalid(String),
    /// The request is larger than what it may carry (a body beyond the endpoint's limit).
    TooLarge(String),
    /// The request did not arrive in time (a body sent too slowly).
    TimedOut(String),
    /// Too much at once (export jobs); try again later.
    Busy(String),
    /// The store is shutting down, its writer is gone, or a remote database is unreachable.
    Unavailable(String),
    /// The database or the filesystem said no.
    Database(String),
}

impl StoreError {
    pub fn message(&self) -> &str {
        match self {
            StoreError::NotFound(m)
            | StoreError::Conflict(m, _)
            | StoreError::Invalid(m)
            | StoreError::TooLarge(m)
            | StoreError::TimedOut(m)
            | StoreError::Busy(m)
            | StoreError::Unavailable(m)
            | StoreError::Database(m) => m,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<super::sqlite::DbError> for StoreError {
    fn from(e: super::sqlite::DbError) -> Self {
        StoreError::Database(e.0)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}
