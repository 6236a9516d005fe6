//! Running the built `tinylm` and reading the shared reference data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// A fresh directory for a test's outputs.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tinylm-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tensor of a safetensors file: shape and values (int32 as f32).
pub fn tensor(bytes: &[u8], key: &str) -> (Vec<usize>, Vec<f32>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    let vals = match t.dtype() {
        safetensors::Dtype::F32 => t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        safetensors::Dtype::I32 => {
            t.data().chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect()
        }
        d => panic!("{key}: dtype {d:?}"),
    };
    (t.shape().to_vec(), vals)
}

pub fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}
