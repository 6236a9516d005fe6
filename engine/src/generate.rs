//! The generation loop of run.c: feed the prompt, then sample; stop at the model's stop token
//! (`Config::stop_token`: BOS for llama2.c files, as run.c) or after `steps`.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::trace::StepTrace;

/// A forward pass over a KV cache, on any device.
pub trait Backend {
    fn config(&self) -> &Config;
    /// Short name for reports: "cpu", "gpu (…)".
    fn name(&self) -> String;
    /// Logits for `token` at `pos`, the cache holding positions `0..pos`. The slice may be
    /// overwritten by the caller (the sampler does).
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]>;
    /// As `forward`, also recording attention and residuals.
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]>;
}

/// run.c's rule: 0 or more than the context means the whole context.
pub fn clamp_steps(steps: usize, seq_len: usize) -> usize {
    if steps == 0 || steps > seq_len {
        seq_len
    } else {
        steps
    }
}

/// One emitted token: `token` follows `prev` (decode needs both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub prev: u32,
    pub token: u32,
    pub pos: usize,
    /// True while the token was forced by the prompt rather than sampled.
    pub from_prompt: bool,
}

/// A generation in progress, advanced one token at a time so callers can stream and stop.
#[derive(Debug, Clone)]
pub struct Generation {
    prompt: Vec<u32>,
    steps: usize,
    pos: usize,
    token: u32,
    stop: u32,
    done: bool,
    /// Every token so far, BOS first.
    pub tokens: Vec<u32>,
}

impl Generation {
    /// `prompt` must start with BOS (as `Tokenizer::encode(_, true, false)` gives).
    pub fn new(prompt: Vec<u32>, steps: usize, c: &Config) -> Result<Generation> {
        let Some(&first) = prompt.first() else {
            return Err(Error::InvalidSetting("the prompt must hold at least the BOS token".into()));
        };
        if prompt.len() > c.seq_len {
            return Err(Error::PromptTooLong { tokens: prompt.len(), seq_len: c.seq_len });
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(Error::TokenOutOfRange { id: bad as i64, vocab_size: c.vocab_size });
        }
        let steps = clamp_steps(steps, c.seq_len);
        Ok(Generation { tokens: vec![first], prompt, steps, pos: 0, token: first, stop: c.stop_token(), done: false })
    }

    /// Runs one forward pass and returns the next token, or `None` when finished.
    pub fn step<B: Backend + ?Sized>(&mut self, b: &mut B, sampler: &mut Sampler) -> Result<Option<Step>> {
        if self.done || self.pos >= self.steps {
            self.done = true;
            return Ok(None);
        }
        let logits = b.forward(self.token, self.pos)?;
        let from_prompt = self.pos + 1 < self.prompt.len();
        let next = if from_prompt { self.prompt[self.pos + 1] } else { sampler.sample(logits) };
        self.pos += 1;
        if next == self.stop {
            self.done = true;
            return Ok(None);
        }
        let step = Step { prev: self.token, token: next, pos: self.pos, from_prompt };
        self.token = next;
        self.tokens.push(next);
        Ok(Some(step))
    }

    /// Forward passes run so far (run.c's `pos`).
    pub fn positions(&self) -> usize {
        self.pos
    }
    pub fn is_done(&self) -> bool {
        self.done
    }
}
