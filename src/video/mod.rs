//! Video recording without re-encoding: the camera's own H.264 as HLS fMP4 segments (a
//! second FFmpeg output), live HLS, MP4 files assembled from those segments, and exports.
//! Where the segments end up (SQLite, files, the outbox, PostgreSQL) is the `store` module's.

pub mod camera;
pub mod export;
pub mod fmp4;
pub mod mp4file;
pub mod pipeline;
pub mod playlist;
pub mod segment;
