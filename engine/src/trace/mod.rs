//! What the model computed, kept for inspection: attention probabilities, residual streams and
//! logits, in the layout of the reference fixtures; and experiments that change the
//! computation to see what moves: head and block knock-outs, steering (`edits`), activation
//! patching (`patch`).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::generate::Backend;
/// One position's attention rows and residuals (it lives beside `Backend::forward_traced`).
pub use crate::generate::StepTrace;

/// A `StepTrace` records attention rows and the residual after each layer.
impl Hook for StepTrace {
    fn attention(&mut self, l: usize, h: usize, att: &[f32]) {
        self.attn_row(l, h).copy_from_slice(att);
    }
    fn resid(&mut self, l: usize, _pos: usize, x: &mut [f32]) {
        self.resid_row(l).copy_from_slice(x);
    }
}

/// Everything the model computed over a token sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub config: Config,
    pub tokens: Vec<u32>,
    /// `[T, V]`: row t is the distribution after `tokens[..=t]`.
    pub logits: Vec<f32>,
    /// `[L, H, T, T]` post-softmax; zeros above the diagonal.
    pub attn: Vec<f32>,
    /// `[L, T, D]`.
    pub resid: Vec<f32>,
}

impl Inspection {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
    /// Attention of query position `t` in `(layer, head)`, over key positions `0..T`.
    pub fn attn_row(&self, layer: usize, head: usize, t: usize) -> &[f32] {
        let n = self.len();
        let at = ((layer * self.config.n_heads + head) * n + t) * n;
        &self.attn[at..at + n]
    }
    pub fn logits_at(&self, t: usize) -> &[f32] {
        let v = self.config.vocab_size;
        &self.logits[t * v..(t + 1) * v]
    }
    pub fn resid_at(&self, layer: usize, t: usize) -> &[f32] {
        let (n, d) = (self.len(), self.config.dim);
        let at = (layer * n + t) * d;
        &self.resid[at..at + d]
    }
}

/// Runs `tokens` through the model position by position from a fresh cache, keeping everything.
pub fn inspect<B: Backend + ?Sized>(b: &mut B, tokens: &[u32]) -> Result<Inspection> {
    let mut run = Inspector::new(b.config(), tokens)?;
    run.advance(b, tokens.len())?;
    run.finish()
}

/// An inspection in steps: each `advance` runs a few more positions, so a single-threaded
/// caller (the web worker) can report progress and stop between calls. The backend's cache is
/// written position by position from 0, so nothing else may use the backend until it finishes.
/// Finished, it equals `inspect` exactly (the same calls in the same order).
#[derive(Debug, Clone)]
pub struct Inspector {
    out: Inspection,
    next: usize,
}

impl Inspector {
    pub fn new(c: &Config, tokens: &[u32]) -> Result<Inspector> {
        if tokens.is_empty() {
            return Err(Error::InvalidSetting("nothing to inspect: the token list is empty".into()));
        }
        if tokens.len() > c.seq_len {
            return Err(Error::PromptTooLong { tokens: tokens.len(), seq_len: c.seq_len });
        }
        let (n, l, h, d, v) = (tokens.len(), c.n_layers, c.n_heads, c.dim, c.vocab_size);
        let out = Inspection {
            config: *c,
            tokens: tokens.to_vec(),
            logits: vec![0.0; n * v],
            attn: vec![0.0; l * h * n * n],
            resid: vec![0.0; l * n * d],
        };
        Ok(Inspector { out, next: 0 })
    }

    /// Positions run so far.
    pub fn done(&self) -> usize {
        self.next
    }

    pub fn total(&self) -> usize {
        self.out.len()
    }

    pub fn is_finished(&self) -> bool {
        self.next == self.total()
    }

    /// Runs up to `positions` more positions; returns whether every position has run.
    pub fn advance<B: Backend + ?Sized>(&mut self, b: &mut B, positions: usize) -> Result<bool> {
        if *b.config() != self.out.config {
            return Err(Error::InvalidSetting("an inspection continues on the model it began on".into()));
        }
        let end = (self.next + positions).min(self.total());
        for pos in self.next..end {
            self.step(b, pos)?;
            self.next = pos + 1;
        }
        Ok(self.is_finished())
    }

    fn step<B: Backend + ?Sized>(&mut self, b: &mut B, pos: usize) -> Result<()> {
        let c = self.out.config;
        let (n, l, h, d, v) = (self.total(), c.n_layers, c.n_heads, c.dim, c.vocab_size);
        let out = &mut self.out;
        let mut st = StepTrace::new(&c, pos);
        let logits = b.forward_traced(out.tokens[pos], pos, &mut st)?;
        out.logits[pos * v..(pos + 1) * v].copy_from_slice(logits);
        for li in 0..l {
            for hi in 0..h {
                let at = ((li * h + hi) * n + pos) * n;
                out.attn[at..at + pos + 1].copy_from_slice(st.attn_row(li, hi));
            }
            let at = (li * n + pos) * d;
            out.resid[at..at + d].copy_from_slice(st.resid_row(li));
        }
        Ok(())
    }

    /// What a batched backend (the GPU's `inspect_advance_async`) fills in: the inspection so
    /// far and the next position to run.
    #[cfg(feature = "gpu")]
    pub(crate) fn parts_mut(&mut self) -> (&mut Inspection, &mut usize) {
        (&mut self.out, &mut self.next)
    }

    /// The whole inspection; an error while positions are left to run.
    pub fn finish(self) -> Result<Inspection> {
        if !self.is_finished() {
            return Err(Error::InvalidSetting(format!("the inspection stopped at {} of {} tokens", self.next, self.total())));
        }
        let v = self.out.config.vocab_size;
        if let Some(i) = self.out.logits.iter().position(|x| !x.is_finite()) {
            return Err(Error::NotFinite(format!("the model's output after token {}", i / v + 1)));
        }
        Ok(self.out)
    }
}

mod compare;
mod cpu_model;
mod edits;
mod hook;
mod means;
mod patch;
pub mod pieces;
mod steer;
mod views;
pub use compare::{changes, first_difference, Change};
pub use cpu_model::CpuModel;
pub use edits::{Ablation, Edits, HeadId, HeadMeans, Intervention, LayerEdit, Steer};
pub(crate) use hook::both;
pub use hook::Hook;
pub use means::HeadMeansRun;
pub use patch::{PatchExample, PatchMaps, Patcher, PATCH_EXAMPLES};
pub use steer::steering_direction;
pub use views::{
    lens_at, lens_flops, lens_top_k, logit_lens, next_tokens, odds, rollout, Candidate, LensHead, NextTokens, Odds, Rollout, Top1,
};
