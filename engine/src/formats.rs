//! Model files beyond llama2.c's: GGUF and Hugging Face Llama folders, read from the bytes of
//! named files (a `.gguf`; or a folder's `config.json`, safetensors and `tokenizer.json`) into
//! config, f32 weights and the model's own tokenizer. `loaded::sniff` tells the formats apart and
//! `LoadedModel::open` is the entry point.
//!
//! Weights are dequantized to the engine's f32 `Weights` on load (`quant`). The engine rotates
//! RoPE pairs `(2i, 2i+1)` of a head, as llama2.c and llama.cpp store q and k; Hugging Face
//! rotates `(i, i + head/2)`, so HF q/k rows are reordered on load (`llama::interleave`).

pub mod gguf;
mod gguf_model;
pub mod hf;
pub mod llama;
pub mod write;

use crate::error::Result;
use crate::loaded::NamedFile;
use crate::tokenizer::Tokenizer;
use crate::weights::Weights;

/// Longest context these models get: files name up to 128k positions, and the KV cache is
/// allocated for the whole context up front.
pub const MAX_CONTEXT: usize = 2048;

/// A model read from GGUF or a Hugging Face folder.
#[derive(Debug, Clone)]
pub struct Opened {
    pub weights: Weights,
    /// The model's tokenizer (GGUF metadata or `tokenizer.json`), when it has one.
    pub tokenizer: Option<Tokenizer>,
    /// What was read, in words ("GGUF v3, Q4_K (Q6_K, F32)", "Hugging Face safetensors, BF16").
    pub format: String,
    /// The file's context length, before `MAX_CONTEXT` capped it.
    pub file_context: usize,
}

/// A path's last component.
pub fn base(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Reads a GGUF file (`loaded::sniff` recognised it).
pub fn read_gguf(file: NamedFile) -> Result<Opened> {
    gguf_model::read(file.bytes, file.name)
}

/// Reads a Hugging Face folder from its files (`loaded::sniff` found its config.json).
pub fn read_hf(files: &[NamedFile]) -> Result<Opened> {
    let pairs: Vec<(&str, &[u8])> = files.iter().map(|f| (f.name, f.bytes)).collect();
    hf::read(&pairs)
}
