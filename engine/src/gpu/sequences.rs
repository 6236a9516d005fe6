//! Several sequences decoded together on the GPU (issue 22, "several stories in one pass"): each
//! sequence is a row of one batched pass — the products are matrix × matrix over the rows, the
//! weights read once a step for all of them — and each keeps its own KV cache, a slice of every
//! layer's cache buffer (`Step::seq_rows`, `row_pos`/`row_kv` in common.wgsl). Every row is at
//! the same position, as the sequences of one prompt are. A sequence's logits equal its single
//! run's within the GPU's tolerance (the batched kernels sum in another order than the fused
//! one-row ones); `tests/suite/gpu_sequences.rs` holds them against the CPU path.
//!
//! `GpuBatchGeneration` drives one `Generation` per sampler as `cpu::batch::BatchGeneration`
//! does, sampling on the CPU from each row's logits.

use super::backend::GpuBackend;
use super::plan::Plan;
use super::readback::floats;
use super::state::{check_sequences, kv_stride, Acts};
use super::uniforms::Step as GpuStep;
use crate::cpu::batch::{generations, running, Ready};
use crate::cpu::check_step;
use crate::error::{Error, Result};
use crate::generate::{Generation, Step};
use crate::sampler::Sampler;

impl GpuBackend {
    /// Sequences the KV cache holds (1 unless `set_sequences` asked for more).
    pub fn sequences(&self) -> usize {
        self.acts.sequences
    }

    /// Makes room for `n` sequences decoded together (a KV cache each), starting them empty;
    /// 1 is the usual single sequence. Refused in words past the batch or a storage binding.
    pub fn set_sequences(&mut self, n: usize) -> Result<()> {
        check_sequences(&self.config, &self.ctx.limits, self.acts.batch, n)?;
        if n == self.acts.sequences {
            return Ok(());
        }
        let (ctx, k, c) = (&self.ctx, &self.kernels, &self.config);
        let acts = Acts::new(ctx, k, c, self.acts.batch, n);
        let plan = Plan::new(ctx, k, c, &self.weights, &acts, self.opts.fused, self.opts.three_dispatch);
        (self.acts, self.plan) = (acts, plan);
        Ok(())
    }

    /// One forward pass of every sequence: `tokens[i]` of sequence `i`, all at position `pos`;
    /// the logits `[sequences, vocab]`, row `i` sequence `i`'s.
    pub async fn forward_sequences_async(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        let n = tokens.len();
        if n != self.acts.sequences {
            return Err(Error::InvalidSetting(format!("{n} tokens for {} sequences (set_sequences first)", self.acts.sequences)));
        }
        for &t in tokens {
            check_step(&self.config, t, pos)?;
        }
        if n == 1 {
            return Ok(self.forward_async(tokens[0], pos, None).await?.to_vec());
        }
        self.write_tokens(0, tokens);
        let step = GpuStep {
            n_rows: n as u32,
            pos0: pos as u32,
            seq_rows: 1,
            kv_stride: kv_stride(&self.config) as u32,
            ..GpuStep::default()
        };
        self.write_step(0, step);
        self.write_step(self.acts.head_slot(), step);
        let mut enc = self.encoder();
        let head = (&self.acts.step_bg, self.acts.slot(self.acts.head_slot()));
        drop(self.encode_pass(&mut enc, 0, n, n, head, None)?);
        let bytes = (n * self.config.vocab_size * 4) as u64;
        enc.copy_buffer_to_buffer(&self.acts.logits, 0, &self.logits_rb, 0, bytes);
        let sub = self.submit(enc);
        let rb = self.logits_rb.clone();
        let logits = floats(&self.read(&rb, bytes, sub).await?);
        self.ctx.check()?;
        Ok(logits)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl GpuBackend {
    /// Blocking `forward_sequences_async`.
    pub fn forward_sequences(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.forward_sequences_async(tokens, pos))
    }
}

/// Several generations from one prompt decoded together on the GPU, each with its own sampler:
/// `step_async` advances every unfinished one by a token, as `Generation::step` would alone.
pub struct GpuBatchGeneration {
    pub generations: Vec<Generation>,
    samplers: Vec<Sampler>,
    steps: usize,
}

impl GpuBatchGeneration {
    /// One generation of `prompt` (BOS first) for `steps` forward passes per sampler; sets the
    /// backend's sequences to match.
    pub fn new(g: &mut GpuBackend, prompt: &[u32], steps: usize, samplers: Vec<Sampler>) -> Result<GpuBatchGeneration> {
        let (generations, steps) = generations(g.config(), prompt, steps, samplers.len())?;
        g.set_sequences(samplers.len())?;
        Ok(GpuBatchGeneration { generations, samplers, steps })
    }

    fn live(&self, i: usize) -> bool {
        running(&self.generations[i], self.steps)
    }

    /// One pass for every sequence (a finished one's row repeats its last token; its logits are
    /// not used), then each live one's next token (`None` for those finished, now or before).
    pub async fn step_async(&mut self, g: &mut GpuBackend) -> Result<Vec<Option<Step>>> {
        let n = self.generations.len();
        let Some(first) = (0..n).find(|&i| self.live(i)) else { return Ok(vec![None; n]) };
        let pos = self.generations[first].positions();
        let tokens: Vec<u32> = self.generations.iter().map(|gen| *gen.tokens.last().expect("BOS first")).collect();
        let mut logits = g.forward_sequences_async(&tokens, pos).await?;
        let (c, v) = (*g.config(), g.config().vocab_size);
        let mut out = vec![None; n];
        let live: Vec<usize> = (0..n).filter(|&i| self.live(i)).collect();
        for i in live {
            let mut row = Ready { config: &c, logits: &mut logits[i * v..(i + 1) * v] };
            out[i] = self.generations[i].step(&mut row, &mut self.samplers[i])?;
        }
        Ok(out)
    }

    /// True when every generation has finished.
    pub fn is_done(&self) -> bool {
        (0..self.generations.len()).all(|i| !self.live(i))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl GpuBatchGeneration {
    /// Blocking `step_async`.
    pub fn step(&mut self, g: &mut GpuBackend) -> Result<Vec<Option<Step>>> {
        pollster::block_on(self.step_async(g))
    }
}
