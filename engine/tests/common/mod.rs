//! Paths to the shared reference data and small loaders used by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use tinylm_engine::{checkpoint, Tokenizer, Weights};

pub fn shared() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p = here.join("../../shared/data");
    assert!(p.exists(), "shared data not found at {}", p.display());
    p
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = shared().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn stories260k() -> Weights {
    checkpoint::read(&read("models/stories260K.bin"), "stories260K.bin").unwrap().0
}

pub fn tok512() -> Tokenizer {
    Tokenizer::from_bytes(&read("tokenizers/tok512.bin"), "tok512.bin").unwrap()
}

pub fn reference_json() -> serde_json::Value {
    serde_json::from_slice(&read("reference/stories260K_reference.json")).unwrap()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Tensors of a safetensors fixture as f32 (int32 tensors converted).
pub fn fixture(rel: &str, key: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = read(rel);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    let vals = match t.dtype() {
        safetensors::Dtype::F32 => t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        safetensors::Dtype::I32 => t.data().chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
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
