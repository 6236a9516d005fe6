//! What the model computed, kept for inspection: attention probabilities, residual streams and
//! logits, in the layout of the reference fixtures.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::generate::Backend;

/// Attention rows and residuals of one position.
#[derive(Debug, Clone)]
pub struct StepTrace {
    pub n_heads: usize,
    pub dim: usize,
    pub pos: usize,
    /// `[layer, head, pos + 1]`.
    pub attn: Vec<f32>,
    /// `[layer, dim]`: x after each layer's FFN residual add.
    pub resid: Vec<f32>,
}

impl StepTrace {
    pub fn new(c: &Config, pos: usize) -> StepTrace {
        StepTrace {
            n_heads: c.n_heads,
            dim: c.dim,
            pos,
            attn: vec![0.0; c.n_layers * c.n_heads * (pos + 1)],
            resid: vec![0.0; c.n_layers * c.dim],
        }
    }
    pub fn attn_row(&mut self, layer: usize, head: usize) -> &mut [f32] {
        let n = self.pos + 1;
        let at = (layer * self.n_heads + head) * n;
        &mut self.attn[at..at + n]
    }
    pub fn resid_row(&mut self, layer: usize) -> &mut [f32] {
        &mut self.resid[layer * self.dim..(layer + 1) * self.dim]
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
    let c = *b.config();
    if tokens.is_empty() {
        return Err(Error::InvalidSetting("nothing to inspect: the token list is empty".into()));
    }
    if tokens.len() > c.seq_len {
        return Err(Error::PromptTooLong { tokens: tokens.len(), seq_len: c.seq_len });
    }
    let (n, l, h, d, v) = (tokens.len(), c.n_layers, c.n_heads, c.dim, c.vocab_size);
    let mut out = Inspection {
        config: c,
        tokens: tokens.to_vec(),
        logits: vec![0.0; n * v],
        attn: vec![0.0; l * h * n * n],
        resid: vec![0.0; l * n * d],
    };
    for (pos, &tok) in tokens.iter().enumerate() {
        let mut st = StepTrace::new(&c, pos);
        let logits = b.forward_traced(tok, pos, &mut st)?;
        out.logits[pos * v..(pos + 1) * v].copy_from_slice(logits);
        for li in 0..l {
            for hi in 0..h {
                let row = st.attn_row(li, hi).to_vec();
                let at = ((li * h + hi) * n + pos) * n;
                out.attn[at..at + pos + 1].copy_from_slice(&row);
            }
            let at = (li * n + pos) * d;
            out.resid[at..at + d].copy_from_slice(st.resid_row(li));
        }
    }
    Ok(out)
}

mod views;
pub use views::{logit_lens, next_tokens, odds, rollout, Candidate, NextTokens, Odds, Top1};
