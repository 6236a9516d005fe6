//! Generate: one story through the engine's one generation loop (`AnyBackend::run_async`),
//! paced for the browser: on the CPU path the loop yields to the worker's event loop every time
//! slice (so a Stop is seen), and text streams to the page in batches.

use tinylm_engine::generate::{Generator, Pace, Step};
use tinylm_engine::tokenizer::Utf8Stream;
use tinylm_engine::{Error, Sampler, Tokenizer};

use super::bridge::{now_ms, post, yield_now};
use super::cancel::Cancel;
use super::session::{Session, Story, NO_MODEL};
use crate::protocol::{FromWorker, RunStats, Settings};
use crate::words;

/// CPU work between yields: short enough that Stop feels instant.
const SLICE_MS: f64 = 25.0;
/// Text is sent to the page at most this often (each message costs the page a repaint).
const POST_MS: f64 = 20.0;

pub struct Request {
    pub run: u64,
    pub prompt: String,
    pub settings: Settings,
    /// When the worker received the request (first-token time counts from here).
    pub t0: f64,
}

/// Runs `req` on the active model to its end and tells the page how it went; keeps its tokens.
pub async fn run(s: &mut Session, req: Request, stop: &Cancel) {
    let Ok((stored, active)) = s.active_mut() else {
        return post(&FromWorker::RunFailed { run: req.run, message: NO_MODEL.into() });
    };
    if stop.is_cancelled(req.run) {
        // Stopped before it began.
        return post(&FromWorker::Finished { run: req.run, stats: RunStats::default(), stopped: true });
    }
    let Ok(tokenizer) = stored.model.need_tokenizer() else {
        return post(&FromWorker::RunFailed { run: req.run, message: NO_MODEL.into() });
    };
    let prompt = tokenizer.encode(&req.prompt, true, false);
    let mut pace = Paced { stream: Stream::new(req.run, tokenizer, req.t0), stop, run: req.run, slice: now_ms(), failed: None };
    let result = match Sampler::new(req.settings.temperature, req.settings.topp, req.settings.seed) {
        Ok(mut sampler) => active.backend.run_async(&prompt, req.settings.steps, &mut sampler, &mut pace).await,
        Err(e) => Err(e),
    };
    let Paced { mut stream, failed, .. } = pace;
    stream.finish();
    let stopped = stop.is_cancelled(req.run);
    match failed.map_or(result, Err) {
        Ok(tokens) => {
            post(&FromWorker::Finished { run: req.run, stats: stream.stats(), stopped });
            let prompt_len = prompt.len().min(tokens.len());
            active.story = Some(Story { tokens, prompt_len, settings: req.settings });
        }
        Err(e) => post(&FromWorker::RunFailed { run: req.run, message: words::run_error(&e) }),
    }
}

/// The page's pace: each token is decoded into the stream; between CPU passes the worker yields
/// once a time slice is spent, and the run ends when the page stopped it.
struct Paced<'a> {
    stream: Stream<'a>,
    stop: &'a Cancel,
    run: u64,
    slice: f64,
    failed: Option<Error>,
}

impl Pace for Paced<'_> {
    fn token(&mut self, step: Step) -> bool {
        if let Err(e) = self.stream.push(step) {
            self.failed = Some(e);
            return false;
        }
        self.stream.post_if_due();
        !self.stop.is_cancelled(self.run)
    }

    async fn between(&mut self) -> bool {
        if now_ms() - self.slice >= SLICE_MS {
            yield_now().await;
            self.slice = now_ms();
        }
        !self.stop.is_cancelled(self.run)
    }
}

/// Decoded text waiting to be sent, and the run's figures.
struct Stream<'a> {
    run: u64,
    tokenizer: &'a Tokenizer,
    /// Byte-fallback pieces arrive a byte at a time; this joins them into characters.
    utf8: Utf8Stream,
    prompt: String,
    pieces: Vec<String>,
    t0: f64,
    first: Option<f64>,
    last_token: f64,
    last_post: f64,
    tokens: usize,
    generated: usize,
}

impl<'a> Stream<'a> {
    fn new(run: u64, tokenizer: &'a Tokenizer, t0: f64) -> Self {
        Stream {
            run,
            tokenizer,
            utf8: Utf8Stream::default(),
            prompt: String::new(),
            pieces: Vec::new(),
            t0,
            first: None,
            last_token: t0,
            last_post: t0,
            tokens: 0,
            generated: 0,
        }
    }

    fn push(&mut self, step: Step) -> Result<(), Error> {
        let piece = self.tokenizer.decode(step.prev, step.token)?;
        let text = self.utf8.push(piece.bytes());
        if step.from_prompt {
            self.prompt.push_str(&text);
        } else {
            self.pieces.push(text);
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
        let (prompt, pieces) = (std::mem::take(&mut self.prompt), std::mem::take(&mut self.pieces));
        post(&FromWorker::Text { run: self.run, prompt, pieces, stats: self.stats() });
    }

    /// Sends what is left, an unfinished character included (as U+FFFD).
    fn finish(&mut self) {
        let tail = self.utf8.finish();
        if !tail.is_empty() {
            match self.pieces.last_mut() {
                Some(last) => last.push_str(&tail),
                None => self.pieces.push(tail),
            }
        }
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
