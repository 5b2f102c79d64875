//! Live viewing over WebSocket.

pub mod control;
pub mod stream;
pub mod upgrade;
