//! panelcam: the camera gateway of a Siemens WinCC Unified panel. See README.md and
//! docs/ for the architecture; `main.rs` only wires these modules together.

pub mod bus;
pub mod camera;
pub mod cmdline;
pub mod config;
pub mod fault;
pub mod http;
pub mod live;
pub mod media;
pub mod mjpeg;
pub mod mqtt;
pub mod ptz;
pub mod record;
pub mod redact;
pub mod registry;
pub mod rtsp;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod util;
pub mod video;
