//! Video recording without re-encoding: the camera's own H.264 as HLS fMP4 segments (a
//! second FFmpeg output), live HLS, MP4 files assembled from those segments, stores
//! (filesystem, SQLite, PostgreSQL with a durable outbox) and playback.

pub mod fmp4;
