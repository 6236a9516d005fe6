//! The fast generation path: sampling on the GPU, one submit and a 4-byte readback per token,
//! several tokens in flight. The sampled id stays on the GPU (tokens[pos + 1]) and feeds the
//! next embedding lookup, so token t+1 is submitted before token t's id has come back.

use std::collections::VecDeque;

use super::backend::GpuBackend;
use super::kernels::Step as GpuStep;
use super::readback::{self, Pending};
use crate::error::Result;
use crate::generate::{clamp_steps, Generation, Generator, Pace, Step};
use crate::sampler::{Rng, Sampler};
use crate::BOS;

/// A sampled token on its way back.
struct Flight {
    slot: usize,
    /// The position whose output was sampled (the token lands at pos + 1).
    pos: usize,
    pending: Pending,
    /// The RNG after this token's coin, for the caller's sampler once the token is accepted.
    rng: Rng,
}

/// The sampler kernel and its settings for `s`, as run.c's `sample` chooses.
fn sampling(s: &Sampler, vocab: usize) -> (GpuStep, &'static str) {
    if s.temperature == 0.0 {
        return (GpuStep::default(), "argmax");
    }
    let mode = if s.topp <= 0.0 || s.topp >= 1.0 { 1 } else { 2 };
    let cutoff = (1.0f32 - s.topp) / (vocab as f32 - 1.0);
    (GpuStep { mode, temperature: s.temperature, topp: s.topp, cutoff, ..GpuStep::default() }, "sample")
}

impl Generator for GpuBackend {
    /// Generates like `generate::Generation` (steps clamped to the context, prompt tokens
    /// forced, stop at BOS) with the prompt prefilled as one batch. `pace` hears every emitted
    /// token and may stop the run (the waits for the GPU are the yields here). `sampler.rng`
    /// ends as the CPU path's would.
    async fn run_async<P: Pace + ?Sized>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        pace: &mut P,
    ) -> Result<Vec<u32>> {
        Generation::new(prompt.to_vec(), steps, &self.config)?;
        let steps = clamp_steps(steps, self.config.seq_len);
        let p = prompt.len();
        let mut tokens = vec![prompt[0]];
        for pos in 0..steps.min(p - 1) {
            let next = prompt[pos + 1];
            if next == BOS {
                return Ok(tokens);
            }
            tokens.push(next);
            if !pace.token(Step { prev: prompt[pos], token: next, pos: pos + 1, from_prompt: true }) {
                return Ok(tokens);
            }
        }
        if steps < p {
            return Ok(tokens);
        }
        let (base, entry) = sampling(sampler, self.config.vocab_size);
        let mut ahead = sampler.rng;
        let mut flights = VecDeque::new();
        let mut failed = None;
        let (mut next, mut slot) = (p - 1, 0);
        let result = loop {
            while flights.len() < self.ring.len() && next < steps {
                let coin = if sampler.temperature == 0.0 { 0.0 } else { ahead.next_f32() };
                let head = GpuStep { coin, ..base };
                let pending = if next == p - 1 {
                    self.submit_prefill(prompt, head, slot, entry)
                } else {
                    self.submit_decode(next, head, slot, entry)
                };
                match pending {
                    Ok(pending) => flights.push_back(Flight { slot, pos: next, pending, rng: ahead }),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                slot = (slot + 1) % self.ring.len();
                next += 1;
            }
            if let Some(e) = failed.take() {
                break Err(e);
            }
            let Some(f) = flights.pop_front() else { break Ok(()) };
            let token = match self.receive(f.pending, f.slot).await {
                Ok(t) => t,
                Err(e) => break Err(e),
            };
            sampler.rng = f.rng;
            if token == BOS {
                break Ok(());
            }
            let prev = tokens[tokens.len() - 1];
            tokens.push(token);
            if !pace.token(Step { prev, token, pos: f.pos + 1, from_prompt: false }) {
                break Ok(());
            }
        };
        // Settle what is still in flight so the ring can be mapped again next time.
        for f in flights {
            let _ = self.receive(f.pending, f.slot).await;
        }
        result.map(|()| tokens)
    }
}

impl GpuBackend {
    /// One submit: prefill the prompt, sample from its last position.
    fn submit_prefill(&mut self, prompt: &[u32], head: GpuStep, slot: usize, entry: &str) -> Result<Pending> {
        let mut enc = self.encoder();
        let mut pass = self.encode_prefill(&mut enc, prompt, head)?;
        let step = (&self.acts.step_bg, self.acts.slot(self.acts.head_slot()));
        self.plan.sample(&self.kernels, &mut pass, entry, step)?;
        drop(pass);
        Ok(self.send(enc, prompt.len() - 1, slot))
    }

    /// One submit: the token at `pos` (already on the GPU) through the model and the sampler.
    fn submit_decode(&mut self, pos: usize, head: GpuStep, slot: usize, entry: &str) -> Result<Pending> {
        self.write_step(0, GpuStep { n_rows: 1, pos0: pos as u32, ..GpuStep::default() });
        let hs = self.acts.head_slot();
        self.write_step(hs, GpuStep { n_rows: 1, pos0: pos as u32, in_row0: 0, ..head });
        let mut enc = self.encoder();
        let step = (&self.acts.step_bg, self.acts.slot(hs));
        let mut pass = self.encode_pass(&mut enc, 0, 1, 1, step, None)?;
        self.plan.sample(&self.kernels, &mut pass, entry, step)?;
        drop(pass);
        Ok(self.send(enc, pos, slot))
    }

    /// Copies tokens[pos + 1] to ring slot `slot`, submits, and starts mapping it.
    fn send(&mut self, mut enc: wgpu::CommandEncoder, pos: usize, slot: usize) -> Pending {
        enc.copy_buffer_to_buffer(&self.acts.tokens, (pos as u64 + 1) * 4, &self.ring[slot], 0, 4);
        let sub = self.submit(enc);
        self.stats.sampled += 1;
        readback::request(&self.ring[slot], 4, sub)
    }

    async fn receive(&mut self, pending: Pending, slot: usize) -> Result<u32> {
        pending.wait(&self.ctx).await?;
        let bytes = readback::take(&self.ring[slot], 4)?;
        self.stats.bytes_read += 4;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}
