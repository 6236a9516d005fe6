//! What the Inspect view asks the worker for and gets back. The big arrays (attention, logits,
//! rollout) travel beside the JSON as transferred `Float32Array` buffers, in `Parts` order.

use serde::{Deserialize, Serialize};
use tinylm_engine::trace::Top1;

use super::Settings;

/// One inspection request: the tokens of the last story (when `last_run` and the worker has
/// them for the active model), else `text` encoded as a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectRequest {
    pub id: u64,
    pub last_run: bool,
    pub text: String,
}

/// The small part of an inspection (the rest is in the binary parts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectInfo {
    pub id: u64,
    pub n_layers: usize,
    pub n_heads: usize,
    pub vocab_size: usize,
    pub tokens: Vec<u32>,
    /// How each token reads in the text (byte-fallback pieces as `<0xHH>`).
    pub pieces: Vec<String>,
    /// Tokens forced by the prompt, BOS included; the model chose the rest.
    pub prompt_len: usize,
    /// The readable piece of every vocabulary id.
    pub vocab: Vec<String>,
    /// Logit lens `[L, T]`.
    pub lens: Vec<Top1>,
    pub backend: String,
    pub ms: f64,
    /// The settings that wrote the story, when it is one.
    pub settings: Option<Settings>,
    /// The text had this many tokens; the view keeps the first `tokens.len()`.
    pub truncated_from: Option<usize>,
}

/// The binary parts after the JSON, in this order: `[L,H,T,T]`, `[T,V]`, `[L,T,T]`.
pub const PARTS: [&str; 3] = ["attention", "logits", "rollout"];

/// Most f32 values one inspection may hold (attention + logits + rollout), ~192 MB.
pub const MAX_VALUES: usize = 48 << 20;

/// The most tokens of a model's shape that fit in `MAX_VALUES`.
pub fn max_tokens(n_layers: usize, n_heads: usize, vocab: usize, wanted: usize) -> usize {
    let cost = |t: usize| n_layers * (n_heads + 1) * t * t + t * vocab;
    (1..=wanted).rev().find(|&t| cost(t) <= MAX_VALUES).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget() {
        // stories260K's whole context fits; stories110M's does not.
        assert_eq!(max_tokens(5, 8, 512, 512), 512);
        let t = max_tokens(12, 12, 32000, 1024);
        assert!(t < 1024 && 12 * 13 * t * t + t * 32000 <= MAX_VALUES, "{t}");
    }
}
