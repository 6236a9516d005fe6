//! A model opened once: its files' bytes are sniffed and parsed here and nowhere else, and every
//! front end (the CLI, the browser worker) then works from the one `LoadedModel`: it holds the
//! weights (shared, never copied by a backend), the tokenizer and the adapter in use, opens
//! backends with a typed fallback, and opens trainers.
//!
//! New model formats plug in at `sniff` (recognising the files) and `parse` (making weights).
//! Formats: llama2.c checkpoints (v0, v1, v2) with a tokenizer.bin; GGUF files (their tokenizer
//! in the metadata); Hugging Face Llama folders (config.json, safetensors, tokenizer.json).

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use crate::checkpoint;
use crate::config::Config;
use crate::cpu::{CpuBackend, Kernels};
use crate::error::{Error, Result};
use crate::formats::{self, gguf, gguf_model, hf};
use crate::lora::Adapter;
use crate::quant_weights::QuantWeights;
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
    /// A GGUF file (v2 or v3): one file, its tokenizer in the metadata.
    Gguf,
    /// A Hugging Face Llama folder: config.json, safetensors (one file or shards) and
    /// tokenizer.json, as files of one folder.
    HfFolder,
}

impl ModelFormat {
    /// In words, e.g. "llama2.c v1 (ak42, f32)" (`LoadedModel::describe` adds the tensor types
    /// of GGUF files and Hugging Face folders).
    pub fn describe(&self) -> String {
        match self {
            ModelFormat::Llama2c(f) => f.describe(),
            ModelFormat::Gguf => "GGUF".into(),
            ModelFormat::HfFolder => "Hugging Face folder".into(),
        }
    }
}

/// What the files are: the model's format, which file holds it (a Hugging Face folder's
/// config.json) and which the tokenizer given beside it (never a folder's own tokenizer.json,
/// which is part of the folder's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub format: ModelFormat,
    pub model: usize,
    pub tokenizer: Option<usize>,
}

/// Recognises the model format and each file's role: a Hugging Face folder by its
/// `config.json` (every file is then one of the folder's), GGUF by its magic number, llama2.c
/// by its magic number (v1, v2) or its length matching its header (v0, which has none). The one
/// place formats are told apart: new formats are recognised here first. When no file is a
/// model, the first one is taken as a llama2.c model, so that parsing says what is wrong with it.
pub fn sniff(files: &[NamedFile]) -> Result<Sniffed> {
    let Some(first) = files.first() else {
        return Err(Error::InvalidSetting("no model file was given".into()));
    };
    if let Some(model) = files.iter().position(|f| formats::base(f.name) == hf::CONFIG) {
        return Ok(Sniffed { format: ModelFormat::HfFolder, model, tokenizer: None });
    }
    let gguf = files.iter().position(|f| f.bytes.starts_with(gguf::MAGIC)).map(|i| (i, ModelFormat::Gguf));
    let llama2c =
        || files.iter().enumerate().find_map(|(i, f)| checkpoint::recognise(f.bytes).map(|v| (i, ModelFormat::Llama2c(v))));
    let (model, format) = gguf.or_else(llama2c).unwrap_or((0, ModelFormat::Llama2c(checkpoint::Format::V0)));
    let rest: Vec<usize> = (0..files.len()).filter(|&i| i != model).collect();
    if rest.len() > 1 {
        let kind = if format == ModelFormat::Gguf { "GGUF" } else { "llama2.c" };
        return Err(Error::InvalidSetting(format!(
            "a {kind} model is one model file and its tokenizer; {} files were given with {}",
            files.len(),
            first.name
        )));
    }
    Ok(Sniffed { format, model, tokenizer: rest.first().copied() })
}

/// Reads a tokenizer file on its own: a Hugging Face `tokenizer.json` (a JSON object) or
/// llama2.c's `tokenizer.bin` (anything else: its reader says what is wrong with it).
pub fn read_tokenizer(file: NamedFile) -> Result<Tokenizer> {
    match file.bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Tokenizer::from_json(file.bytes, file.name),
        _ => Tokenizer::from_bytes(file.bytes, file.name),
    }
}

thread_local! {
    static PARSES: Cell<u64> = const { Cell::new(0) };
}

/// Model files parsed into weights on this thread so far. Tests read it to show that a model is
/// parsed once per load, whatever is done with it afterwards.
pub fn parses_on_this_thread() -> u64 {
    PARSES.with(Cell::get)
}

/// The model `sniff` found in `files`, without a tokenizer given beside it.
fn parse(s: &Sniffed, files: &[NamedFile]) -> Result<LoadedModel> {
    PARSES.with(|p| p.set(p.get() + 1));
    let file = files[s.model];
    let (name, own_tokenizer, opened) = match s.format {
        ModelFormat::Llama2c(_) => {
            let (w, f) = checkpoint::read_quant(file.bytes, file.name)?;
            return Ok(LoadedModel::from_quant(file.name, ModelFormat::Llama2c(f), w));
        }
        ModelFormat::Gguf => (file.name.to_string(), file.name.to_string(), gguf_model::read(file.bytes, file.name)?),
        ModelFormat::HfFolder => {
            let own = files.iter().find(|f| formats::base(f.name) == hf::TOKENIZER).map_or("", |f| f.name);
            let pairs: Vec<(&str, &[u8])> = files.iter().map(|f| (f.name, f.bytes)).collect();
            (folder_of(file.name), own.to_string(), hf::read(&pairs)?)
        }
    };
    let mut m = LoadedModel::from_quant(&name, s.format, opened.weights);
    m.described = opened.format;
    m.file_context = (opened.file_context != m.config().seq_len).then_some(opened.file_context);
    if let Some(t) = opened.tokenizer {
        m.tokenizer = Some(t);
        m.tokenizer_name = Some(own_tokenizer);
    }
    Ok(m)
}

/// The folder a Hugging Face config.json was named in ("models/x/config.json" → "models/x"),
/// the name errors and listings use for the model.
fn folder_of(config: &str) -> String {
    let dir = &config[..config.len() - formats::base(config).len()];
    match dir.trim_end_matches(['/', '\\']) {
        "" => config.to_string(),
        d => d.to_string(),
    }
}

/// How a model's weights are held. A model with quantized matrices (llama2.c v2 files, GGUF
/// Q8_0, Q4_0, Q4_K and Q6_K tensors) keeps them quantized by default: the CPU backend runs them
/// with its quantized kernels (`cpu::q8`, ~1/4 of the f32 bytes; `cpu::blocks`, ~1/7 for Q4_0
/// and Q4_K). The f32 `Weights` are made from them once, on first
/// demand, for the paths that have no quantized kernels yet (training, inspection, conversion), and
/// shared by every clone of the model from then on; the GPU gets a copy for its upload only
/// (`dense_weights`).
#[derive(Debug, Clone)]
enum Held {
    Dense(Arc<Weights>),
    Quant { quant: Arc<QuantWeights>, dense: Arc<OnceLock<Arc<Weights>>> },
}

/// A model, its tokenizer and the adapter in use, parsed once.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    name: String,
    format: ModelFormat,
    /// The format in words, with the tensor types of GGUF and Hugging Face files.
    described: String,
    /// The file's own context length, where the engine capped it (`formats::MAX_CONTEXT`).
    file_context: Option<usize>,
    weights: Held,
    tokenizer: Option<Tokenizer>,
    tokenizer_name: Option<String>,
    adapter: Option<Arc<Adapter>>,
}

impl LoadedModel {
    /// Sniffs and parses `files`: a model file and optionally its tokenizer, in any order (a
    /// tokenizer given beside a GGUF file is used instead of the file's own), or every file of a
    /// Hugging Face folder. A tokenizer must have the model's vocabulary (`Error::VocabMismatch`).
    pub fn open(files: &[NamedFile]) -> Result<LoadedModel> {
        let s = sniff(files)?;
        let m = parse(&s, files)?;
        match s.tokenizer {
            Some(i) => m.with_tokenizer(files[i]),
            None => Ok(m),
        }
    }

    /// Uses the tokenizer in `file` (tokenizer.bin or tokenizer.json, see `read_tokenizer`),
    /// which must have the model's vocabulary (`Error::VocabMismatch`); a Hugging Face one takes
    /// the model's BOS and EOS. For callers that read the tokenizer only once the model is known
    /// to be good (the CLI reports a bad model before a missing tokenizer).
    pub fn with_tokenizer(mut self, file: NamedFile) -> Result<LoadedModel> {
        let mut tok = read_tokenizer(file)?;
        tok.check_vocab(self.config().vocab_size, file.name, &self.name)?;
        if tok.is_hf() {
            let c = self.config();
            tok = tok.with_specials(c.bos_id, c.eos_id);
        }
        self.tokenizer = Some(tok);
        self.tokenizer_name = Some(file.name.to_string());
        Ok(self)
    }

    /// A model made in memory (a random one, a merged one), without a tokenizer.
    pub fn from_weights(name: &str, format: ModelFormat, weights: impl Into<Arc<Weights>>) -> LoadedModel {
        LoadedModel::held(name, format, Held::Dense(weights.into()))
    }

    fn held(name: &str, format: ModelFormat, weights: Held) -> LoadedModel {
        LoadedModel {
            name: name.to_string(),
            format,
            described: format.describe(),
            file_context: None,
            weights,
            tokenizer: None,
            tokenizer_name: None,
            adapter: None,
        }
    }

    /// A model whose quantized or F16/BF16 matrices (if any) stay as read (`Held`); one without
    /// any is held as plain f32 `Weights` (moved, not copied).
    pub fn from_quant(name: &str, format: ModelFormat, weights: QuantWeights) -> LoadedModel {
        if !weights.is_quantized() {
            return LoadedModel::from_weights(name, format, weights.into_dense());
        }
        LoadedModel::held(name, format, Held::Quant { quant: Arc::new(weights), dense: Arc::default() })
    }

    /// The quantized weights, when the model has quantized matrices (the CPU backend runs them).
    pub fn quantized(&self) -> Option<&Arc<QuantWeights>> {
        match &self.weights {
            Held::Quant { quant, .. } => Some(quant),
            Held::Dense(_) => None,
        }
    }

    /// What the logit lens reads: the final norm and the classifier, as kept (no f32 copy).
    pub fn lens_head(&self) -> crate::trace::LensHead<'_> {
        match &self.weights {
            Held::Quant { quant, .. } => crate::trace::LensHead::of_quantized(quant),
            Held::Dense(w) => crate::trace::LensHead::of(w),
        }
    }

    /// What a CPU trainer reads: the matrices as kept (no f32 copy of a quantized model).
    pub fn train_base(&self) -> crate::lora::TrainBase {
        match &self.weights {
            Held::Quant { quant, .. } => crate::lora::TrainBase::Quant(quant.clone()),
            Held::Dense(w) => crate::lora::TrainBase::Dense(w.clone()),
        }
    }

    /// Bytes of weights held now: the quantized ones, plus f32 ones once something needed them.
    pub fn held_bytes(&self) -> u64 {
        match &self.weights {
            Held::Dense(w) => w.size_bytes(),
            Held::Quant { quant, dense } => quant.size_bytes() + dense.get().map_or(0, |w| w.size_bytes()),
        }
    }

    /// The model file's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn format(&self) -> ModelFormat {
        self.format
    }
    /// The format in words: "llama2.c v1 (ak42, f32)", "GGUF v3, Q4_K ×14, Q6_K ×2, F32 ×9",
    /// "Hugging Face sharded safetensors, BF16 ×19".
    pub fn describe(&self) -> &str {
        &self.described
    }
    /// The context length the file names, when the engine runs a shorter one
    /// (`formats::MAX_CONTEXT`; the KV cache is allocated for the whole context).
    pub fn file_context(&self) -> Option<usize> {
        self.file_context
    }
    pub fn config(&self) -> &Config {
        match &self.weights {
            Held::Dense(w) => &w.config,
            Held::Quant { quant, .. } => &quant.config,
        }
    }
    /// The weights, the model given up (no copy while nothing else shares them).
    pub fn into_weights(self) -> Weights {
        Arc::unwrap_or_clone(self.weights().clone())
    }
    /// The f32 weights, shared: backends and trainers hold this same allocation. For a model
    /// held quantized they are dequantized here once, on the first call.
    pub fn weights(&self) -> &Arc<Weights> {
        match &self.weights {
            Held::Dense(w) => w,
            Held::Quant { quant, dense } => dense.get_or_init(|| Arc::new(quant.dequantize())),
        }
    }

    /// Bytes of the f32 weights (`dense_weights`), counted without making them.
    pub fn dense_bytes(&self) -> u64 {
        4 * self.config().n_params()
    }

    /// The weights as held, for the CPU forward passes of experiments (patching, knock-outs,
    /// head means): a quantized model's own quantized matrices, no f32 copy.
    pub fn forward_weights(&self) -> &dyn crate::cpu::ForwardWeights {
        match &self.weights {
            Held::Dense(w) => &**w,
            Held::Quant { quant, .. } => &**quant,
        }
    }

    /// The f32 weights for a backend without quantized kernels (the GPU): the shared ones when
    /// something made them already, else a copy of its own that is freed with whatever holds it,
    /// so that a GPU that fails to start (or that Auto drops for the CPU) leaves no f32 copy of a
    /// quantized model behind.
    pub fn dense_weights(&self) -> Arc<Weights> {
        match &self.weights {
            Held::Dense(w) => w.clone(),
            Held::Quant { quant, dense } => dense.get().cloned().unwrap_or_else(|| Arc::new(quant.dequantize())),
        }
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
        let mut b = match &self.weights {
            Held::Dense(w) => CpuBackend::with_kernels(w.clone(), Kernels::Fast),
            Held::Quant { quant, .. } => CpuBackend::with_kernels(quant.clone(), Kernels::Fast),
        };
        b.adapter = adapter;
        b
    }
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use crate::gpu::{kept_format, AnyBackend, BackendChoice, GpuBackend, GpuOptions, Opened, Reason};

    impl LoadedModel {
        /// Opens the backend `choice` asks for with the adapter in use (see
        /// `AnyBackend::open_shared`). Nothing is parsed again and the weights are not copied;
        /// after a failure (`Error::NoGpu` when no GPU exists, `Error::Gpu` when one failed) the
        /// caller falls back with another `open_backend_async` on this same model.
        /// A model held quantized runs its quantized weights on the CPU. On the GPU (or `Auto`
        /// trying it) a model whose matrices the GPU can keep as they are stays so there
        /// (`gpu::kept_format`: all F16 or all BF16, or every quantized type in one int8 group
        /// size; no adapter in use);
        /// others get f32 weights (`dense_weights`: held by the GPU backend only, so a failed
        /// start keeps none).
        pub async fn open_backend_async(&self, choice: BackendChoice, opts: GpuOptions) -> Result<Opened> {
            let Some(quant) = self.quantized() else {
                return AnyBackend::open_shared(self.weights(), self.adapter.as_ref(), choice, opts).await;
            };
            let cpu = |reason| Opened { backend: AnyBackend::Cpu(self.cpu()), reason };
            let gpu = async || -> Result<AnyBackend> {
                if self.adapter.is_none() && kept_format(quant).is_some() {
                    return Ok(AnyBackend::Gpu(GpuBackend::new_quantized_async(quant, opts).await?));
                }
                // The f32 copy is made in this memory before its upload: asked first (wasm32).
                crate::memory::check_room("an f32 copy of the weights for the GPU", self.dense_bytes())?;
                let dense = self.dense_weights();
                Ok(AnyBackend::open_shared(&dense, self.adapter.as_ref(), BackendChoice::Gpu, opts).await?.backend)
            };
            Ok(match choice {
                BackendChoice::Cpu => cpu(Reason::Requested),
                BackendChoice::Gpu => Opened { backend: gpu().await?, reason: Reason::Requested },
                BackendChoice::Auto => match gpu().await {
                    Ok(backend) => Opened { backend, reason: Reason::GpuAvailable },
                    Err(e) => cpu(Reason::NoUsableGpu(e)),
                },
            })
        }

        /// Blocking `open_backend_async`.
        #[cfg(not(target_arch = "wasm32"))]
        pub fn open_backend(&self, choice: BackendChoice, opts: GpuOptions) -> Result<Opened> {
            pollster::block_on(self.open_backend_async(choice, opts))
        }
    }
}
