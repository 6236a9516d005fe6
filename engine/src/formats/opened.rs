//! What the GGUF and Hugging Face readers give: config, weights (GGUF Q8_0 matrices
//! kept quantized), the model's own tokenizer.

use crate::quant_weights::QuantWeights;
use crate::tokenizer::Tokenizer;

/// Longest context these models get: files name up to 128k positions, and the KV cache is
/// allocated for the whole context up front.
pub const MAX_CONTEXT: usize = 2048;

/// A model read from GGUF or a Hugging Face folder.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Q8_0 matrices of GGUF files kept quantized; everything else f32.
    pub weights: QuantWeights,
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
