//! Link settings shared by every bare-metal binary of the workspace.
//!
//! The binaries are built for the host target (`x86_64-unknown-linux-gnu`)
//! with the precompiled `core`/`alloc`, so they must not see glibc, crt files
//! or a dynamic linker. Everything here is emitted with
//! `cargo:rustc-link-arg-bins`, so library crates and host tests of the same
//! package are untouched (see `docs/toolchain.md`).

use std::fs;
use std::path::PathBuf;

/// Libraries that the `libc` crate and rustc ask for on linux-gnu. They are
/// shadowed by empty archives so nothing from glibc can ever be linked in;
/// a missing symbol becomes a hard link error instead of a silent glibc call.
const SHADOWED_LIBS: &[&str] = &[
    "c", "m", "rt", "pthread", "dl", "util", "gcc", "gcc_s", "gcc_eh", "unwind",
];

/// Emits the link arguments for a freestanding static ELF linked with
/// `linker_script` (a path relative to the calling package's manifest dir).
pub fn bare_metal_bins(linker_script: &str) {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let fake = out_dir.join("fake-libs");
    fs::create_dir_all(&fake).expect("create fake-libs dir");
    for lib in SHADOWED_LIBS {
        // A valid, empty `ar` archive.
        fs::write(fake.join(format!("lib{lib}.a")), b"!<arch>\n").expect("write empty archive");
    }
    println!("cargo:rustc-link-search=native={}", fake.display());

    let script = manifest_dir.join(linker_script);
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");

    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=4096",
        "-Wl,-z,norelro",
        "-Wl,--no-eh-frame-hdr",
        "-Wl,--gc-sections",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set (not running under cargo?)"))
}
