//! Running the built `tinylm` and reading the shared reference data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../engine/tests/common/fixtures.rs"]
mod fixtures;
#[allow(unused_imports)] // not every test binary uses them
pub use fixtures::*;

pub fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data").join(rel);
    assert!(p.exists(), "shared data not found at {}", p.display());
    p
}

pub fn model() -> PathBuf {
    data("models/stories260K.bin")
}
pub fn tok512() -> PathBuf {
    data("tokenizers/tok512.bin")
}

/// Runs `tinylm` with `args`.
pub fn tinylm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinylm")).args(args).output().expect("run tinylm")
}

/// Runs `tinylm`, asserts success and returns stdout.
pub fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = tinylm(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tinylm failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    out.stdout
}

/// Runs `tinylm`, asserts it fails cleanly (status 1, `error:`, no panic) and returns stderr.
/// `tinylm generate` on stories260K with tok512 and `extra`: its stdout.
pub fn generate_260k(extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["generate".to_string(), model().display().to_string()];
    args.extend(["-z".to_string(), tok512().display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    ok(&args)
}

pub fn fails<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = tinylm(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected status 1; stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    err
}

pub fn reference_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data("reference/stories260K_reference.json")).unwrap()).unwrap()
}

/// A fresh directory for a test's outputs.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tinylm-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
