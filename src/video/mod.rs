//! Video recording without re-encoding: the camera's own H.264 as HLS fMP4 segments (a
//! second FFmpeg output), live HLS, MP4 files assembled from those segments, stores
//! (filesystem, SQLite, PostgreSQL with a durable outbox) and playback.

pub mod access;
pub mod camera;
pub mod export;
pub mod fmp4;
pub mod local;
pub mod mp4file;
pub mod outbox;
pub mod pg;
pub mod pipeline;
pub mod playlist;
pub mod retention;
pub mod segment;
pub mod shipper;
