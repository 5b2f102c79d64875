//! How storage errors look to HTTP clients: the spec's error envelope with the status that
//! fits each kind of error.

use hyper::StatusCode;
use serde_json::json;

use super::response::{self, Resp};
use crate::store::StoreError;

pub fn status_of(e: &StoreError) -> StatusCode {
    match e {
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::Conflict(..) => StatusCode::CONFLICT,
        StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
        StoreError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        StoreError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        StoreError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error envelope; a 409 also carries what is in the way (the active session).
pub fn store_error(e: StoreError) -> Resp {
    let status = status_of(&e);
    let mut body = json!({"status": "error", "error": e.message(), "code": status.as_u16()});
    if let StoreError::Conflict(_, Some(details)) = &e {
        body["session"] = details.clone();
    }
    response::json(status, &body)
}
