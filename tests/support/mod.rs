//! Shared by the end-to-end tests and benchmarks. Each test binary uses a different subset.
#![allow(dead_code)]

pub mod barcode;
pub mod chromium;
pub mod client;
pub mod harness;
pub mod mqtt;
pub mod onvif;
pub mod pki;
pub mod video;
