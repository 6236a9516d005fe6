//! Every engine call the page makes, with no browser types, so this module can move into a
//! Web Worker later without change.

use tinylm_engine::checkpoint;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::{Backend, Generation};
use tinylm_engine::tokenizer::Utf8Stream;
use tinylm_engine::{Config, Result, Sampler, Tokenizer};

use crate::settings::Settings;

/// Paths relative to the page, so the site also works under a sub-path.
pub const MODEL_FILE: &str = "models/stories260K.bin";
pub const TOKENIZER_FILE: &str = "models/tok512.bin";

/// What the page shows about the loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub config: Config,
    pub format: String,
    pub params: u64,
    pub file_bytes: usize,
    pub backend: String,
}

/// A loaded model and tokenizer, ready to generate.
pub struct Session {
    backend: CpuBackend,
    tokenizer: Tokenizer,
    info: ModelInfo,
}

impl Session {
    /// Parses both files and checks that they belong together.
    pub fn load(model: &[u8], tokenizer: &[u8]) -> Result<Session> {
        let (weights, format) = checkpoint::read(model, MODEL_FILE)?;
        let tokenizer = Tokenizer::from_bytes(tokenizer, TOKENIZER_FILE)?;
        tokenizer.check_vocab(weights.config.vocab_size, TOKENIZER_FILE, MODEL_FILE)?;
        let config = weights.config;
        let backend = CpuBackend::new(weights);
        let info = ModelInfo {
            config,
            format: format.describe(),
            params: config.n_params(),
            file_bytes: model.len(),
            backend: backend.name(),
        };
        Ok(Session { backend, tokenizer, info })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Encodes the prompt (with BOS, as run.c does) and sets up sampling.
    pub fn start(&self, prompt: &str, s: &Settings) -> Result<Run> {
        let sampler = Sampler::new(s.temperature, s.topp, s.seed)?;
        let tokens = self.tokenizer.encode(prompt, true, false);
        let generation = Generation::new(tokens, s.steps, &self.info.config)?;
        Ok(Run { generation, sampler, utf8: Utf8Stream::default() })
    }
}

/// Text produced by one step. Prompt tokens are echoed like run.c prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    pub from_prompt: bool,
}

/// One generation in progress; advance it with `step` to stream text.
pub struct Run {
    generation: Generation,
    sampler: Sampler,
    /// Byte-fallback tokens arrive a byte at a time; this joins them into characters.
    utf8: Utf8Stream,
}

impl Run {
    /// Runs one forward pass. `None` when the run has ended (step limit or BOS).
    pub fn step(&mut self, session: &mut Session) -> Result<Option<Chunk>> {
        let Some(step) = self.generation.step(&mut session.backend, &mut self.sampler)? else {
            return Ok(None);
        };
        let piece = session.tokenizer.decode(step.prev, step.token)?;
        let text = self.utf8.push(piece.bytes());
        Ok(Some(Chunk { text, from_prompt: step.from_prompt }))
    }

    /// Text still held back when the run ends (an unfinished character shows as U+FFFD).
    pub fn finish(&mut self) -> String {
        self.utf8.finish()
    }

    /// Forward passes done so far.
    pub fn positions(&self) -> usize {
        self.generation.positions()
    }
}
