//! Paths to the shared reference data and small loaders used by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use tinylm_engine::{checkpoint, Tokenizer, Weights};

mod fixtures;
pub mod gradcheck;
pub mod interp;
pub mod mixed;
pub mod pretrain;
#[allow(unused_imports)] // not every test binary uses them
pub use fixtures::*;

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

/// Tensors of a safetensors fixture as f32 (int32 tensors converted).
pub fn fixture(rel: &str, key: &str) -> (Vec<usize>, Vec<f32>) {
    tensor(&read(rel), key)
}

/// The run.c sampling cases with the stdout run.c printed for each.
pub fn run_c_samples() -> Vec<(RunC, Vec<u8>)> {
    let cases = run_c_cases(&String::from_utf8(read("reference/sampling_run_c/cases.psv")).unwrap());
    assert_eq!(cases.len(), 4, "top-p, multinomial, a prompt, a hot temperature");
    cases.into_iter().map(|c| (read(&format!("reference/sampling_run_c/{}.txt", c.name)), c)).map(|(t, c)| (c, t)).collect()
}

/// A fixture of `tests/fixtures/formats` (a file, or every file of a folder), opened as the front
/// ends open models.
pub fn open_format_fixture(rel: &str) -> tinylm_engine::LoadedModel {
    use tinylm_engine::{LoadedModel, NamedFile};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats").join(rel);
    let paths: Vec<_> = match path.is_dir() {
        true => std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()).collect(),
        false => vec![path],
    };
    let files: Vec<(String, Vec<u8>)> = paths.iter().map(|p| (p.display().to_string(), std::fs::read(p).unwrap())).collect();
    LoadedModel::open(&files.iter().map(|(n, b)| NamedFile::new(n, b)).collect::<Vec<_>>()).unwrap()
}
