//! Live viewing over WebSocket.

pub mod stream;
pub mod upgrade;
