//! Several sequences decoded together on the CPU (fast kernels): each weight matrix is read once
//! a step for all of them, a cache-sized block of rows times every sequence's activations while
//! the block is in cache; one KV cache (`State`) each. A sequence's logits equal its single run's
//! bit for bit: every output row is `fast::rows` over the same rows in blocks of a multiple of 8
//! (as the threaded single run), and every other operation is the single forward's, per sequence.
//!
//! `BatchGeneration` drives one `Generation` per sequence (prompt, stop at BOS, steps as a single
//! run) with its own sampler, so each one's tokens are its single run's.

use super::ops::{rope_table, rope_turn};
use super::{add, check_step, fast, heads, State};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::generate::{clamp_steps, Backend, Generation, Step};
use crate::pool;
use crate::sampler::Sampler;
use crate::trace::StepTrace;
use crate::weights::Weights;

/// Bytes of weights every sequence multiplies before the next rows: half a 32 KiB L1.
const L1_BLOCK: usize = 16 << 10;

/// Sequences a batch may hold (the CLI's and the app's "compare" shows up to 4).
pub const MAX_BATCH: usize = 16;

/// Runs the forward pass of `tokens[i]` at `pos[i]` for every `states[i]`; each state's logits
/// are then those of its own `forward_with(Kernels::Fast, …)`.
pub fn forward_batch(w: &Weights, states: &mut [&mut State], tokens: &[u32], pos: &[usize]) -> Result<()> {
    let c = &w.config;
    if states.len() != tokens.len() || states.len() != pos.len() {
        return Err(Error::InvalidSetting(format!(
            "a batch of {} states needs as many tokens and positions (got {} and {})",
            states.len(),
            tokens.len(),
            pos.len()
        )));
    }
    if states.is_empty() {
        return Ok(());
    }
    for (&t, &p) in tokens.iter().zip(pos) {
        check_step(c, t, p)?;
    }
    let (dim, kv_dim, eps) = (c.dim, c.kv_dim(), c.norm_eps);
    let mut scratch = Vec::new();
    for ((s, &t), &p) in states.iter_mut().zip(tokens).zip(pos) {
        s.x.copy_from_slice(&w.tok_embeddings[t as usize * dim..][..dim]);
        rope_table(&mut s.rope, p, &s.freqs);
    }
    for l in 0..c.n_layers {
        let lw = w.layer(l);
        let cache = |p: usize| l * c.seq_len * kv_dim + p * kv_dim..l * c.seq_len * kv_dim + (p + 1) * kv_dim;
        each(states, |s| fast::rmsnorm_eps(&mut s.xb, &s.x, lw.rms_att, eps));
        matmul_batch(&mut scratch, lw.wq, states, |s| (&mut s.q, &s.xb));
        let mut at = pos.iter();
        matmul_batch(&mut scratch, lw.wk, states, |s| (&mut s.key_cache[cache(*at.next().unwrap())], &s.xb));
        let mut at = pos.iter();
        matmul_batch(&mut scratch, lw.wv, states, |s| (&mut s.value_cache[cache(*at.next().unwrap())], &s.xb));
        for (s, &p) in states.iter_mut().zip(pos) {
            let s = &mut **s;
            rope_turn(&mut s.q, &s.rope);
            rope_turn(&mut s.key_cache[cache(p)], &s.rope);
            let layer = l * c.seq_len * kv_dim..(l + 1) * c.seq_len * kv_dim;
            let (keys, values) = (&s.key_cache[layer.clone()], &s.value_cache[layer]);
            heads::attend_heads(fast::attend, true, c, p, &s.q, keys, values, &mut s.att, &mut s.ao);
        }
        matmul_batch(&mut scratch, lw.wo, states, |s| (&mut s.xb2, &s.ao));
        each(states, |s| add(&mut s.x, &s.xb2));
        each(states, |s| fast::rmsnorm_eps(&mut s.xb, &s.x, lw.rms_ffn, eps));
        matmul_batch(&mut scratch, lw.w1, states, |s| (&mut s.hb, &s.xb));
        matmul_batch(&mut scratch, lw.w3, states, |s| (&mut s.hb2, &s.xb));
        each(states, |s| fast::swiglu(&mut s.hb, &s.hb2));
        matmul_batch(&mut scratch, lw.w2, states, |s| (&mut s.xb, &s.hb));
        each(states, |s| add(&mut s.x, &s.xb));
    }
    each(states, |s| fast::rmsnorm_eps(&mut s.xb, &s.x, &w.rms_final, eps));
    matmul_batch(&mut scratch, w.classifier(), states, |s| (&mut s.logits, &s.xb));
    Ok(())
}

impl State {
    /// The logits of the last forward pass on this state (`forward_batch`'s output).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

fn each(states: &mut [&mut State], f: impl Fn(&mut State)) {
    states.iter_mut().for_each(|s| f(s));
}

/// `out = w · x` for the `(out, x)` that `pick` gives of every state. Blocks of rows are pool
/// tasks; a task multiplies its block by every sequence's `x` into `scratch`
/// (`[block][sequence][row]`), which is then copied to the outputs.
fn matmul_batch<'s>(
    scratch: &mut Vec<f32>,
    w: &[f32],
    states: &'s mut [&mut State],
    mut pick: impl FnMut(&'s mut State) -> (&'s mut [f32], &'s [f32]),
) {
    let (mut outs, xs): (Vec<&mut [f32]>, Vec<&[f32]>) = states.iter_mut().map(|s| pick(s)).unzip();
    let (n_seq, rows, cols) = (xs.len(), outs[0].len(), xs[0].len());
    let pool = pool::current();
    let threads = if rows * cols * n_seq >= fast::PARALLEL_MIN { pool.threads() } else { 1 };
    let block = pool::block_rows(rows, cols, threads);
    scratch.resize(rows * n_seq, 0.0);
    // Within a task, rows in groups that stay in L1 while every sequence uses them (a multiple
    // of 8 rows from the block's start, so each row's sum is still the single run's).
    let group = (L1_BLOCK / (4 * cols.max(1))).max(8) / 8 * 8;
    let task = |b: usize, chunk: &mut [f32]| {
        let len = chunk.len() / n_seq;
        let wb = &w[b * block * cols..][..len * cols];
        let mut outs: Vec<&mut [f32]> = chunk.chunks_exact_mut(len).collect();
        for r0 in (0..len).step_by(group) {
            let r1 = (r0 + group).min(len);
            let wg = &wb[r0 * cols..r1 * cols];
            // Sequences four at a time, then two, then one, sharing each weight load.
            let mut s = 0;
            while s < n_seq {
                s += match (&mut outs[s..], &xs[s..]) {
                    ([a, b, c, d, ..], &[xa, xb, xc, xd, ..]) => {
                        fast::rows_quad([&mut a[r0..r1], &mut b[r0..r1], &mut c[r0..r1], &mut d[r0..r1]], [xa, xb, xc, xd], wg);
                        4
                    }
                    ([a, b, ..], &[xa, xb, ..]) => {
                        fast::rows_pair(&mut a[r0..r1], &mut b[r0..r1], xa, xb, wg);
                        2
                    }
                    ([a, ..], &[x, ..]) => {
                        fast::rows(&mut a[r0..r1], x, wg);
                        1
                    }
                    _ => unreachable!("one output per sequence"),
                };
            }
        }
    };
    let pool: &dyn pool::Pool = if threads > 1 { &*pool } else { &pool::Serial };
    pool::for_chunks(pool, scratch, block * n_seq, task);
    for (b, chunk) in scratch.chunks(block * n_seq).enumerate() {
        let len = chunk.len() / n_seq;
        for (o, part) in outs.iter_mut().zip(chunk.chunks_exact(len)) {
            o[b * block..][..len].copy_from_slice(part);
        }
    }
}

/// Several generations from one prompt decoded together, each with its own sampler (e.g. other
/// temperatures or seeds): `step` advances every unfinished one by a token, exactly as
/// `Generation::step` on its own `CpuBackend` (fast kernels) would.
pub struct BatchGeneration {
    pub generations: Vec<Generation>,
    samplers: Vec<Sampler>,
    states: Vec<State>,
    steps: usize,
}

impl BatchGeneration {
    /// One generation of `prompt` (BOS first) for `steps` forward passes per sampler.
    pub fn new(c: &Config, prompt: &[u32], steps: usize, samplers: Vec<Sampler>) -> Result<BatchGeneration> {
        let (generations, steps) = generations(c, prompt, steps, samplers.len())?;
        let states = samplers.iter().map(|_| State::new(c)).collect();
        Ok(BatchGeneration { generations, samplers, states, steps })
    }

    /// One forward pass for every generation still running, then each one's next token (`None`
    /// for those finished, now or before).
    pub fn step(&mut self, w: &Weights) -> Result<Vec<Option<Step>>> {
        let live: Vec<usize> = (0..self.generations.len()).filter(|&i| running(&self.generations[i], self.steps)).collect();
        let tokens: Vec<u32> = live.iter().map(|&i| *self.generations[i].tokens.last().expect("BOS first")).collect();
        let pos: Vec<usize> = live.iter().map(|&i| self.generations[i].positions()).collect();
        let mut states: Vec<&mut State> =
            self.states.iter_mut().enumerate().filter(|(i, _)| live.contains(i)).map(|(_, s)| s).collect();
        forward_batch(w, &mut states, &tokens, &pos)?;
        let mut out = vec![None; self.generations.len()];
        for &i in &live {
            let mut logits = Ready { config: &w.config, logits: &mut self.states[i].logits };
            out[i] = self.generations[i].step(&mut logits, &mut self.samplers[i])?;
        }
        Ok(out)
    }

    /// True when every generation has finished.
    pub fn is_done(&self) -> bool {
        !self.generations.iter().any(|g| running(g, self.steps))
    }
}

/// One generation of `prompt` per sequence of a batch of `n` (refused in words outside 1 to
/// `MAX_BATCH`), and the forward passes each may take: `BatchGeneration`'s and the GPU's
/// `GpuBatchGeneration`'s start.
pub(crate) fn generations(c: &Config, prompt: &[u32], steps: usize, n: usize) -> Result<(Vec<Generation>, usize)> {
    if n == 0 || n > MAX_BATCH {
        return Err(Error::InvalidSetting(format!("a batch holds 1 to {MAX_BATCH} sequences, not {n}")));
    }
    let generations = (0..n).map(|_| Generation::new(prompt.to_vec(), steps, c)).collect::<Result<Vec<_>>>()?;
    Ok((generations, clamp_steps(steps, c.seq_len)))
}

/// Whether a batch's generation still takes forward passes (not stopped, under `steps`).
pub(crate) fn running(g: &Generation, steps: usize) -> bool {
    g.positions() < steps && !g.is_done()
}

/// Logits already computed (by `forward_batch`, or a row of the GPU's batch), as the `Backend`
/// that `Generation::step` samples from.
pub(crate) struct Ready<'a> {
    pub(crate) config: &'a Config,
    pub(crate) logits: &'a mut [f32],
}

impl Backend for Ready<'_> {
    fn config(&self) -> &Config {
        self.config
    }
    fn name(&self) -> String {
        "cpu (batch)".into()
    }
    fn forward(&mut self, _token: u32, _pos: usize) -> Result<&mut [f32]> {
        Ok(self.logits)
    }
    fn forward_traced(&mut self, _token: u32, _pos: usize, _trace: &mut StepTrace) -> Result<&mut [f32]> {
        Err(Error::InvalidSetting("batched decode records no trace".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::fast;
    use crate::randmodel::det_uniform;

    #[test]
    fn pairs_and_fours_of_rows_equal_single_rows_bit_for_bit() {
        // Long rows (the shared-load kernel) with every remainder shape, and short ones.
        for (rows, cols) in [(1, 256), (3, 257), (9, 263), (8, 288), (5, 300), (7, 768), (17, 64), (4, 255), (2, 296), (6, 312)] {
            let w = det_uniform(1, "w", rows * cols, 1.0, 0.0);
            let (xa, xb) = (det_uniform(2, "a", cols, 1.0, 0.0), det_uniform(3, "b", cols, 1.0, 0.0));
            let (mut a, mut b, mut pa, mut pb) = (vec![0.0; rows], vec![0.0; rows], vec![0.0; rows], vec![0.0; rows]);
            fast::rows(&mut a, &xa, &w);
            fast::rows(&mut b, &xb, &w);
            fast::rows_pair(&mut pa, &mut pb, &xa, &xb, &w);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!((bits(&pa), bits(&pb)), (bits(&a), bits(&b)), "{rows}x{cols}");
            // Four vectors (two of them again, reversed, so no two outputs are alike).
            let (mut q, mut one) = ([vec![0.0; rows], vec![0.0; rows], vec![0.0; rows], vec![0.0; rows]], vec![0.0; rows]);
            let xs = [&xa[..], &xb[..], &xa[..], &xb[..]].map(|x| x.iter().rev().copied().collect::<Vec<f32>>());
            let xs = [&xa[..], &xb[..], &xs[2][..], &xs[3][..]];
            let [q0, q1, q2, q3] = &mut q;
            fast::rows_quad([q0, q1, q2, q3], xs, &w);
            for (s, x) in xs.iter().enumerate() {
                fast::rows(&mut one, x, &w);
                assert_eq!(bits(&q[s]), bits(&one), "{rows}x{cols}, vector {s} of four");
            }
        }
    }
}
