//! `tinylm bench`: load time, prefill and decode speed, and the GPU's per-token submits and
//! readback bytes, measured the same way for either backend. Native only (wall clock).

use std::time::Instant;

use super::backend::{GpuBackend, GpuOptions};
use super::choice::{AnyBackend, BackendChoice};
use crate::cpu::CpuBackend;
use crate::error::Result;
use crate::generate::{Backend, Generation, Generator};
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
    /// Compute dispatches one decoded token records (`GpuBackend::dispatches_per_token`; 0 on
    /// the CPU).
    pub dispatches_per_token: f64,
    /// Bytes read back from the GPU per decoded token (0 on the CPU).
    pub bytes_per_token: f64,
    /// The GPU decode classifier read f16 weights.
    pub f16_classifier: bool,
}

fn per_second(n: usize, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64().max(1e-9)
}

/// A backend `measure` can time: any `Backend`, plus the GPU's batched prefill and
/// submit/readback counters where there is a GPU behind it.
pub trait Benched: Backend {
    fn gpu(&mut self) -> Option<&mut GpuBackend> {
        None
    }
}

impl Benched for AnyBackend {
    fn gpu(&mut self) -> Option<&mut GpuBackend> {
        AnyBackend::gpu(self)
    }
}
impl Benched for CpuBackend {}
impl Benched for crate::lora::LoraCpuBackend {}

/// Opens `choice` (timing the load), then `measure`s it.
pub fn bench(weights: Weights, choice: BackendChoice, opts: GpuOptions, prompt_len: usize, decode: usize) -> Result<BenchReport> {
    let t = Instant::now();
    let (mut b, why) = AnyBackend::open(weights, choice, opts)?;
    let load_s = t.elapsed().as_secs_f64();
    measure(&mut b, why, load_s, prompt_len, decode)
}

/// Times an open backend: after a warm-up of 3 tokens and a 2-token prefill (the GPU compiles
/// its pipelines on first use), prefills `prompt_len` random tokens (the GPU as one batch,
/// otherwise position by position), then decodes `decode` tokens greedily from BOS (the GPU
/// through its pipelined `generate`).
pub fn measure<B: Benched + ?Sized>(
    b: &mut B,
    reason: String,
    load_s: f64,
    prompt_len: usize,
    decode: usize,
) -> Result<BenchReport> {
    let c = *b.config();
    let prompt = random_tokens(1, prompt_len.clamp(1, c.seq_len), c.vocab_size);
    let mut s = Sampler::new(0.0, 0.9, 1)?;
    greedy(b, 3, &mut s)?;
    if let Some(g) = b.gpu() {
        // The batched pass's pipelines, made on first use, are compiled here rather than timed.
        drop(g.prefill(&prompt[..prompt.len().min(2)])?);
    }

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
    let decoded = greedy(b, decode.clamp(1, c.seq_len), &mut s)?;
    let decode_tok_s = per_second(decoded, t);
    let (submits, bytes) = b.gpu().map_or((0, 0), |g| (g.stats().submits, g.stats().bytes_read));
    let n = decoded.max(1) as f64;
    Ok(BenchReport {
        backend: b.name(),
        reason,
        load_s,
        prefill_tokens: prompt.len(),
        prefill_tok_s,
        decode_tokens: decoded,
        decode_tok_s,
        submits_per_token: submits as f64 / n,
        dispatches_per_token: b.gpu().map_or(0.0, |g| g.dispatches_per_token() as f64),
        bytes_per_token: bytes as f64 / n,
        f16_classifier: b.gpu().is_some_and(|g| g.is_f16_classifier()),
    })
}

/// Greedy decode of `steps` tokens from BOS with the backend's best path; how many were decoded.
fn greedy<B: Benched + ?Sized>(b: &mut B, steps: usize, s: &mut Sampler) -> Result<usize> {
    let tokens = match b.gpu() {
        Some(g) => g.generate(&[crate::BOS], steps, s, |_| true)?,
        None => {
            let mut g = Generation::new(vec![crate::BOS], steps, b.config())?;
            while g.step(b, s)?.is_some() {}
            g.tokens
        }
    };
    Ok(tokens.len() - 1)
}
