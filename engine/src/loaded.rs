//! A model opened once: its files' bytes are sniffed and parsed here and nowhere else, and every
//! front end (the CLI, the browser worker) then works from the one `LoadedModel`: it holds the
//! weights (shared, never copied by a backend), the tokenizer and the adapter in use, opens
//! backends with a typed fallback, and opens trainers.
//!
//! New model formats plug in at `sniff` (recognising the files) and `parse` (making weights).

use std::cell::Cell;
use std::sync::Arc;

use crate::checkpoint;
use crate::config::Config;
use crate::cpu::{CpuBackend, Kernels};
use crate::error::{Error, Result};
use crate::lora::Adapter;
use crate::tokenizer::Tokenizer;
use crate::weights::Weights;

/// One input file, by the name errors should use.
#[derive(Debug, Clone, Copy)]
pub struct NamedFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

impl<'a> NamedFile<'a> {
    pub fn new(name: &'a str, bytes: &'a [u8]) -> NamedFile<'a> {
        NamedFile { name, bytes }
    }
}

/// The format a model was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// A llama2.c checkpoint (v0, v1 or v2): one model file, plus a tokenizer.bin.
    Llama2c(checkpoint::Format),
}

impl ModelFormat {
    /// In words, e.g. "llama2.c v1 (ak42, f32)".
    pub fn describe(&self) -> String {
        match self {
            ModelFormat::Llama2c(f) => f.describe(),
        }
    }
}

/// What the files are: the model's format, which file holds it and which the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub format: ModelFormat,
    pub model: usize,
    pub tokenizer: Option<usize>,
}

/// Recognises the model format and each file's role, from the files' first bytes (and for a
/// llama2.c v0 file, which has no magic number, from its length matching its header). The one
/// place formats are told apart: new formats are recognised here first. When no file is a
/// model, the first one is taken as a llama2.c model, so that parsing says what is wrong with it.
pub fn sniff(files: &[NamedFile]) -> Result<Sniffed> {
    let Some(first) = files.first() else {
        return Err(Error::InvalidSetting("no model file was given".into()));
    };
    let found: Vec<(usize, checkpoint::Format)> =
        files.iter().enumerate().filter_map(|(i, f)| checkpoint::recognise(f.bytes).map(|v| (i, v))).collect();
    let (model, version) = match found.first() {
        Some(&(i, v)) => (i, v),
        None => (0, checkpoint::Format::V0),
    };
    let rest: Vec<usize> = (0..files.len()).filter(|&i| i != model).collect();
    if rest.len() > 1 {
        return Err(Error::InvalidSetting(format!(
            "a llama2.c model is one model file and its tokenizer; {} files were given with {}",
            files.len(),
            first.name
        )));
    }
    Ok(Sniffed { format: ModelFormat::Llama2c(version), model, tokenizer: rest.first().copied() })
}

thread_local! {
    static PARSES: Cell<u64> = const { Cell::new(0) };
}

/// Model files parsed into weights on this thread so far. Tests read it to show that a model is
/// parsed once per load, whatever is done with it afterwards.
pub fn parses_on_this_thread() -> u64 {
    PARSES.with(Cell::get)
}

/// The model file's weights in the format `sniff` found.
fn parse(format: ModelFormat, file: NamedFile) -> Result<(Weights, ModelFormat)> {
    PARSES.with(|p| p.set(p.get() + 1));
    match format {
        ModelFormat::Llama2c(_) => checkpoint::read(file.bytes, file.name).map(|(w, f)| (w, ModelFormat::Llama2c(f))),
    }
}

/// A model, its tokenizer and the adapter in use, parsed once.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    name: String,
    format: ModelFormat,
    weights: Arc<Weights>,
    tokenizer: Option<Tokenizer>,
    tokenizer_name: Option<String>,
    adapter: Option<Arc<Adapter>>,
}

impl LoadedModel {
    /// Sniffs and parses `files` (a model file and optionally its tokenizer, in any order); a
    /// tokenizer must have the model's vocabulary (`Error::VocabMismatch`).
    pub fn open(files: &[NamedFile]) -> Result<LoadedModel> {
        let s = sniff(files)?;
        let file = files[s.model];
        let (weights, format) = parse(s.format, file)?;
        let m = LoadedModel::from_weights(file.name, format, weights);
        match s.tokenizer {
            Some(i) => m.with_tokenizer(files[i]),
            None => Ok(m),
        }
    }

    /// Adds the tokenizer in `file`, which must have the model's vocabulary
    /// (`Error::VocabMismatch`). For callers that read the tokenizer only once the model is
    /// known to be good (the CLI reports a bad model before a missing tokenizer).
    pub fn with_tokenizer(mut self, file: NamedFile) -> Result<LoadedModel> {
        let tok = Tokenizer::from_bytes(file.bytes, file.name)?;
        tok.check_vocab(self.config().vocab_size, file.name, &self.name)?;
        self.tokenizer = Some(tok);
        self.tokenizer_name = Some(file.name.to_string());
        Ok(self)
    }

    /// A model made in memory (a random one, a merged one), without a tokenizer.
    pub fn from_weights(name: &str, format: ModelFormat, weights: impl Into<Arc<Weights>>) -> LoadedModel {
        LoadedModel {
            name: name.to_string(),
            format,
            weights: weights.into(),
            tokenizer: None,
            tokenizer_name: None,
            adapter: None,
        }
    }

    /// The model file's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn format(&self) -> ModelFormat {
        self.format
    }
    pub fn config(&self) -> &Config {
        &self.weights.config
    }
    /// The weights, shared: backends and trainers hold this same allocation.
    /// The weights, the model given up (no copy while nothing else shares them).
    pub fn into_weights(self) -> Weights {
        Arc::unwrap_or_clone(self.weights)
    }
    pub fn weights(&self) -> &Arc<Weights> {
        &self.weights
    }
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }
    /// The tokenizer's file name, when the model has one.
    pub fn tokenizer_name(&self) -> Option<&str> {
        self.tokenizer_name.as_deref()
    }
    /// The tokenizer, or an error naming the model that has none.
    pub fn need_tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| Error::InvalidSetting(format!("{} was loaded without a tokenizer", self.name)))
    }

    /// The adapter in use: every backend opened from now on applies it.
    pub fn adapter(&self) -> Option<&Arc<Adapter>> {
        self.adapter.as_ref()
    }
    /// Uses `adapter` from now on (or none); `Error::Mismatch` when it was made for another shape.
    pub fn set_adapter(&mut self, adapter: Option<Adapter>) -> Result<()> {
        if let Some(a) = &adapter {
            a.check_base(self.config())?;
        }
        self.adapter = adapter.map(Arc::new);
        Ok(())
    }

    /// The CPU backend (fast kernels) with the adapter in use.
    pub fn cpu(&self) -> CpuBackend {
        self.cpu_with(self.adapter.clone())
    }
    /// The CPU backend with another adapter (or none), e.g. one being trained; it was checked
    /// against the model by whoever made it (`Adapter::check_base`).
    pub fn cpu_with(&self, adapter: Option<Arc<Adapter>>) -> CpuBackend {
        let mut b = CpuBackend::with_kernels(self.weights.clone(), Kernels::Fast);
        b.adapter = adapter;
        b
    }
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use crate::gpu::{AnyBackend, BackendChoice, GpuOptions, Opened};

    impl LoadedModel {
        /// Opens the backend `choice` asks for with the adapter in use (see
        /// `AnyBackend::open_shared`). Nothing is parsed again and the weights are not copied;
        /// after a failure (`Error::NoGpu` when no GPU exists, `Error::Gpu` when one failed) the
        /// caller falls back with another `open_backend_async` on this same model.
        pub async fn open_backend_async(&self, choice: BackendChoice, opts: GpuOptions) -> Result<Opened> {
            AnyBackend::open_shared(&self.weights, self.adapter.as_ref(), choice, opts).await
        }

        /// Blocking `open_backend_async`.
        #[cfg(not(target_arch = "wasm32"))]
        pub fn open_backend(&self, choice: BackendChoice, opts: GpuOptions) -> Result<Opened> {
            pollster::block_on(self.open_backend_async(choice, opts))
        }
    }
}
