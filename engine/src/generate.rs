//! The generation loop of run.c: feed the prompt, then sample; stop at the model's stop token
//! (`Config::stop_token`: BOS for llama2.c files, as run.c) or after `steps`.
//! `Pace` is how a caller takes part in any long computation of the engine: it hears each
//! token and may stop, and between units of CPU work it may yield to its event loop.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::trace::Edits;

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
    /// Knock-outs and steering for every later forward pass (and generation) until changed;
    /// `None` runs the model unchanged. Refused by a backend that cannot run them.
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        match edits {
            None => Ok(()),
            Some(_) => Err(Error::InvalidSetting(format!("the {} backend cannot run knock-outs or steering", self.name()))),
        }
    }
}

/// How a caller paces a long computation (a generation, a held-out evaluation): it sees each
/// token and may stop the run; between units of CPU work it may yield (the browser worker
/// awaits its event loop there, so a Stop sent by the page is seen) and may stop. A native
/// caller keeps the defaults; any `FnMut(Step) -> bool` is a pace that only hears tokens.
#[allow(async_fn_in_trait)]
pub trait Pace {
    /// A token was emitted (or forced by the prompt); false stops the run after it.
    fn token(&mut self, _step: Step) -> bool {
        true
    }
    /// Between units of CPU work (a forward pass, a batch of held-out windows); false stops.
    async fn between(&mut self) -> bool {
        true
    }
}

impl<F: FnMut(Step) -> bool> Pace for F {
    fn token(&mut self, step: Step) -> bool {
        self(step)
    }
}

/// A backend with its own best generation loop (the CPU's `Generation`, the GPU's batched
/// prefill and on-GPU sampling). Every loop returns every token, BOS first; a stopped run
/// returns those so far. The callback and blocking forms are written once, here.
pub trait Generator {
    fn run_async<P: Pace + ?Sized>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        pace: &mut P,
    ) -> impl std::future::Future<Output = Result<Vec<u32>>>;

    /// `run_async` with a callback that hears each token and returns false to stop.
    fn generate_async<F: FnMut(Step) -> bool>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        mut on_token: F,
    ) -> impl std::future::Future<Output = Result<Vec<u32>>> {
        async move { self.run_async(prompt, steps, sampler, &mut on_token).await }
    }

    /// Blocking `generate_async`.
    #[cfg(not(target_arch = "wasm32"))]
    fn generate<F: FnMut(Step) -> bool>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        on_token: F,
    ) -> Result<Vec<u32>> {
        block_on(self.generate_async(prompt, steps, sampler, on_token))
    }
}

/// Waits for an engine future natively: the GPU's are driven by pollster; the CPU path never
/// waits, so without the GPU a future is ready at once (a wait would be a bug, reported).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    #[cfg(feature = "gpu")]
    return pollster::block_on(f);
    #[cfg(not(feature = "gpu"))]
    {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::pin!(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => Err(Error::InvalidSetting("a CPU computation had to wait".into())),
        }
    }
}

/// A pace that never stops or yields.
pub struct Unpaced;

impl Pace for Unpaced {}

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

    /// Runs to the end on `b`, telling `pace` each token and asking it between forward passes;
    /// returns every token, BOS first. Stopped by `pace`, it returns the tokens so far.
    pub async fn run<B: Backend + ?Sized, P: Pace + ?Sized>(
        mut self,
        b: &mut B,
        sampler: &mut Sampler,
        pace: &mut P,
    ) -> Result<Vec<u32>> {
        while let Some(step) = self.step(b, sampler)? {
            if !pace.token(step) || !pace.between().await {
                break;
            }
        }
        Ok(self.tokens)
    }

    /// Forward passes run so far (run.c's `pos`).
    pub fn positions(&self) -> usize {
        self.pos
    }
    pub fn is_done(&self) -> bool {
        self.done
    }
}
