//! Model files beyond llama2.c's: GGUF and Hugging Face Llama folders. One entry point, `open`:
//! the bytes of named files (a `.gguf`; or a folder's `config.json`, safetensors and
//! `tokenizer.json`) → config, f32 weights and the model's own tokenizer.
//!
//! Weights are dequantized to the engine's f32 `Weights` on load (`quant`). The engine rotates
//! RoPE pairs `(2i, 2i+1)` of a head, as llama2.c and llama.cpp store q and k; Hugging Face
//! rotates `(i, i + head/2)`, so HF q/k rows are reordered on load (`llama::interleave`).

pub mod gguf;
mod gguf_model;
mod hf;
pub mod llama;
pub mod write;

use crate::error::{Error, Result};
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

/// Which reader a set of named files needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Llama2c,
    Gguf,
    HfFolder,
}

/// The format of the files: GGUF by its magic, a Hugging Face folder by its `config.json`,
/// llama2.c otherwise (its reader gives the errors for a file that is none of these).
pub fn sniff(files: &[(&str, &[u8])]) -> Kind {
    if files.iter().any(|(name, _)| base(name) == "config.json") {
        Kind::HfFolder
    } else if files.first().is_some_and(|(_, b)| b.starts_with(gguf::MAGIC)) {
        Kind::Gguf
    } else {
        Kind::Llama2c
    }
}

/// A path's last component.
pub fn base(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Reads a GGUF file or a Hugging Face folder (see `sniff`).
pub fn open(files: &[(&str, &[u8])]) -> Result<Opened> {
    match sniff(files) {
        Kind::Gguf => gguf_model::read(files[0].1, files[0].0),
        Kind::HfFolder => hf::read(files),
        Kind::Llama2c => Err(Error::model(
            files.first().map_or("(none)", |f| f.0),
            "is neither GGUF nor a Hugging Face folder (config.json); read llama2.c files with checkpoint::read",
        )),
    }
}
