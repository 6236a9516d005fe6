//! `tinylm bench`: load time, prefill and decode speed, and the GPU's per-token submits and
//! readback bytes, measured the same way for either backend. Native only (wall clock).

use std::time::Instant;

use super::backend::GpuOptions;
use super::choice::{AnyBackend, BackendChoice};
use crate::error::Result;
use crate::generate::Backend;
use crate::randmodel::random_tokens;
use crate::sampler::Sampler;
use crate::weights::Weights;

#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// The backend's name ("cpu …", "gpu (adapter)").
    pub backend: String,
    /// Why this backend (`AnyBackend::open`'s reason; for auto, the GPU error if it fell back).
    pub reason: String,
    pub load_s: f64,
    pub prefill_tokens: usize,
    pub prefill_tok_s: f64,
    pub decode_tokens: usize,
    pub decode_tok_s: f64,
    /// Queue submits per decoded token (GPU fast path; 0 on the CPU).
    pub submits_per_token: f64,
    /// Bytes read back from the GPU per decoded token (0 on the CPU).
    pub bytes_per_token: f64,
}

fn per_second(n: usize, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64().max(1e-9)
}

/// Opens `choice` (timing the load), prefills `prompt_len` random tokens (the GPU as one
/// batch, the CPU position by position), then decodes `decode` tokens greedily from BOS with
/// each backend's generation path. A short warm-up first compiles the GPU's pipelines.
pub fn bench(weights: Weights, choice: BackendChoice, opts: GpuOptions, prompt_len: usize, decode: usize) -> Result<BenchReport> {
    let seq = weights.config.seq_len;
    let prompt = random_tokens(1, prompt_len.clamp(1, seq), weights.config.vocab_size);
    let t = Instant::now();
    let (mut b, why) = AnyBackend::open(weights, choice, opts)?;
    let load_s = t.elapsed().as_secs_f64();
    let mut s = Sampler::new(0.0, 0.9, 1)?;
    b.generate(&[crate::BOS], 3, &mut s, |_| true)?;

    let t = Instant::now();
    match b.gpu() {
        Some(g) => drop(g.prefill(&prompt)?),
        None => {
            for (pos, &tok) in prompt.iter().enumerate() {
                b.forward(tok, pos)?;
            }
        }
    }
    let prefill_tok_s = per_second(prompt.len(), t);

    if let Some(g) = b.gpu() {
        g.reset_stats();
    }
    let t = Instant::now();
    let tokens = b.generate(&[crate::BOS], decode.clamp(1, seq), &mut s, |_| true)?;
    let decoded = tokens.len() - 1;
    let decode_tok_s = per_second(decoded, t);
    let (submits, bytes) = b.gpu().map_or((0, 0), |g| (g.stats().submits, g.stats().bytes_read));
    let n = decoded.max(1) as f64;
    Ok(BenchReport {
        backend: b.name(),
        reason: why,
        load_s,
        prefill_tokens: prompt.len(),
        prefill_tok_s,
        decode_tokens: decoded,
        decode_tok_s,
        submits_per_token: submits as f64 / n,
        bytes_per_token: bytes as f64 / n,
    })
}
