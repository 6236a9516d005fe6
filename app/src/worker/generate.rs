//! One generation: the CPU path in time slices that yield to the worker's event loop, the GPU
//! path through the engine's pipelined `generate_async`. Text streams to the page in batches.

use std::cell::Cell;
use std::rc::Rc;

use tinylm_engine::generate::{Generation, Step};
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::tokenizer::Utf8Stream;
use tinylm_engine::{Error, Sampler, Tokenizer};

use super::host::{now_ms, post, yield_now};
use super::words;
use crate::protocol::{FromWorker, RunStats, Settings};

/// CPU work between yields: short enough that Stop feels instant.
const SLICE_MS: f64 = 25.0;
/// Text is sent to the page at most this often (each message costs the page a repaint).
const POST_MS: f64 = 20.0;

/// The id of the newest run the page asked to stop; runs up to it stop.
pub type StopFlag = Rc<Cell<u64>>;

pub struct Request<'a> {
    pub run: u64,
    pub prompt: &'a str,
    pub settings: Settings,
    pub stop: &'a StopFlag,
    /// When the worker received the request (first-token time counts from here).
    pub t0: f64,
}

/// Runs `req` to its end and tells the page how it went; returns every token (BOS first).
pub async fn generate(backend: &mut AnyBackend, tokenizer: &Tokenizer, req: Request<'_>) -> Vec<u32> {
    let mut out = Stream::new(req.run, tokenizer, req.t0);
    let result = drive(backend, tokenizer, &req, &mut out).await;
    out.finish();
    match result {
        Ok(stopped) => post(&FromWorker::Finished { run: req.run, stats: out.stats(), stopped }),
        Err(e) => post(&FromWorker::RunFailed { run: req.run, message: words::run_error(&e) }),
    }
    out.ids
}

/// Returns whether the page stopped the run.
async fn drive(backend: &mut AnyBackend, tokenizer: &Tokenizer, req: &Request<'_>, out: &mut Stream<'_>) -> Result<bool, Error> {
    let s = req.settings;
    let mut sampler = Sampler::new(s.temperature, s.topp, s.seed)?;
    let tokens = tokenizer.encode(req.prompt, true, false);
    let stopped = || req.stop.get() >= req.run;
    match backend {
        AnyBackend::Gpu(gpu) => {
            let mut failed = None;
            gpu.generate_async(&tokens, s.steps, &mut sampler, |step| match out.push(step) {
                Ok(()) => {
                    out.post_if_due();
                    !stopped()
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            })
            .await?;
            failed.map_or(Ok(stopped()), Err)
        }
        AnyBackend::Cpu(_) => {
            let config = *tinylm_engine::generate::Backend::config(&*backend);
            let mut gen = Generation::new(tokens, s.steps, &config)?;
            let mut slice = now_ms();
            while let Some(step) = gen.step(&mut *backend, &mut sampler)? {
                out.push(step)?;
                if now_ms() - slice >= SLICE_MS {
                    out.post_if_due();
                    yield_now().await;
                    if stopped() {
                        return Ok(true);
                    }
                    slice = now_ms();
                }
            }
            Ok(false)
        }
    }
}

/// Decoded text waiting to be sent, and the run's figures.
struct Stream<'a> {
    run: u64,
    tokenizer: &'a Tokenizer,
    /// Byte-fallback pieces arrive a byte at a time; this joins them into characters.
    utf8: Utf8Stream,
    prompt: String,
    story: String,
    t0: f64,
    first: Option<f64>,
    last_token: f64,
    last_post: f64,
    tokens: usize,
    generated: usize,
    /// Every token so far, BOS first (kept for the Inspect view).
    ids: Vec<u32>,
}

impl<'a> Stream<'a> {
    fn new(run: u64, tokenizer: &'a Tokenizer, t0: f64) -> Self {
        Stream {
            run,
            tokenizer,
            utf8: Utf8Stream::default(),
            prompt: String::new(),
            story: String::new(),
            t0,
            first: None,
            last_token: t0,
            last_post: t0,
            tokens: 0,
            generated: 0,
            ids: vec![tinylm_engine::BOS],
        }
    }

    fn push(&mut self, step: Step) -> Result<(), Error> {
        let piece = self.tokenizer.decode(step.prev, step.token)?;
        self.ids.push(step.token);
        let text = self.utf8.push(piece.bytes());
        if step.from_prompt {
            self.prompt.push_str(&text);
        } else {
            self.story.push_str(&text);
            self.generated += 1;
        }
        let now = now_ms();
        if !step.from_prompt && self.first.is_none() {
            self.first = Some(now);
        }
        self.last_token = now;
        self.tokens = step.pos;
        Ok(())
    }

    fn post_if_due(&mut self) {
        if now_ms() - self.last_post >= POST_MS {
            self.post();
        }
    }

    fn post(&mut self) {
        self.last_post = now_ms();
        let (prompt, story) = (std::mem::take(&mut self.prompt), std::mem::take(&mut self.story));
        post(&FromWorker::Text { run: self.run, prompt, story, stats: self.stats() });
    }

    /// Sends what is left, an unfinished character included (as U+FFFD).
    fn finish(&mut self) {
        let tail = self.utf8.finish();
        self.story.push_str(&tail);
        self.post();
    }

    fn stats(&self) -> RunStats {
        let after_first = self.generated.saturating_sub(1);
        let tok_per_s = self
            .first
            .map(|f| self.last_token - f)
            .filter(|&ms| ms > 0.0 && after_first > 0)
            .map(|ms| after_first as f64 * 1000.0 / ms);
        RunStats {
            tokens: self.tokens,
            generated: self.generated,
            elapsed_ms: self.last_token - self.t0,
            first_token_ms: self.first.map(|f| f - self.t0),
            tok_per_s,
        }
    }
}
