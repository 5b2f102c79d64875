//! Shared by the end-to-end tests and benchmarks. Each test binary uses a different subset.
#![allow(dead_code)]

pub mod barcode;
pub mod chromium;
pub mod client;
pub mod cwc;
pub mod h264;
pub mod harness;
pub mod mqtt;
pub mod onvif;
pub mod picture;
pub mod pki;
pub mod prefix_proxy;
pub mod static_files;
pub mod video;
