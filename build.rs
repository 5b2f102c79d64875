//! Release builds abort on panic, so the unwind tables LLVM still emits for Rust code are dead
//! weight: std is precompiled with them and fat LTO carries that into nearly every function,
//! so `-C force-unwind-tables=no` alone leaves ~420 KiB of `.eh_frame` (docs/size.md). A
//! linker script drops them from the binaries of release-profile builds on Linux (the release
//! profile sets panic = "abort"; `CARGO_CFG_PANIC` does not see profile settings). Tests and
//! benchmarks are separate targets that unwind, and keep theirs.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/link/no-rust-unwind-tables.ld");
    let cfg = |name: &str| std::env::var(name).unwrap_or_default();
    if cfg("PROFILE") == "release" && cfg("CARGO_CFG_TARGET_OS") == "linux" {
        let script = format!("{}/scripts/link/no-rust-unwind-tables.ld", cfg("CARGO_MANIFEST_DIR"));
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{script}");
    }
}
