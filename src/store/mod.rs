//! Storage backends: SQLite files on the panel, the store-and-forward outbox, the central
//! PostgreSQL and the shipper between them. Everything here returns bytes, streams, metadata
//! and domain errors ([`StoreError`]); what a client sees (HTTP status, JSON) is decided in
//! `http`, never here.

pub mod blobs;
pub mod confine;
pub mod error;
pub mod local;
pub mod outbox;
pub mod pg;
pub mod segment;
pub mod shipper;
pub mod sqlite;
pub mod video;

pub use error::StoreError;
