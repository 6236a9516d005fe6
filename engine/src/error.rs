//! The crate's one error type. Every variant says which input is wrong and how, in words a
//! user can act on; none of them is ever a panic.

use std::fmt;

/// What kind of input an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Model,
    Tokenizer,
    Adapter,
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::Model => "model",
            InputKind::Tokenizer => "tokenizer",
            InputKind::Adapter => "adapter",
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A file whose contents are not what its format requires.
    #[error("{kind} file {file}: {what}")]
    BadFile { kind: InputKind, file: String, what: String },
    /// Two inputs that cannot be used together (e.g. a tokenizer for another model).
    #[error("{0}")]
    Mismatch(String),
    /// A token id outside the vocabulary.
    #[error("token id {id} is out of range: the vocabulary has {vocab_size} tokens")]
    TokenOutOfRange { id: i64, vocab_size: usize },
    /// A prompt that does not fit in the model's context window.
    #[error("the prompt is {tokens} tokens long but the model's context holds only {seq_len}")]
    PromptTooLong { tokens: usize, seq_len: usize },
    /// A setting outside its allowed range.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// A tokenizer whose vocabulary is not the model's.
    #[error("tokenizer {tokenizer} has {tokens} tokens but model {model} expects {vocab}: they do not belong together")]
    VocabMismatch { tokenizer: String, tokens: usize, model: String, vocab: usize },
    /// No GPU can be had here at all: the reason a caller falls back to the CPU.
    #[error("GPU: {0}")]
    NoGpu(NoGpu),
    /// A failure of the GPU backend once a device exists (device lost, out of memory, a feature
    /// or limit the device lacks …).
    #[error("GPU: {0}")]
    Gpu(String),
    /// Reading or writing a file failed.
    #[error("{file}: {what}")]
    Io { file: String, what: String },
    /// The model computed something that is not a number (NaN or infinite), as damaged weights
    /// do: named so the page can say so instead of drawing nothing.
    #[error("{0} is not a number (NaN or infinite): the model's weights look damaged")]
    NotFinite(String),
    /// An allocation the memory has no room for (wasm32's 4 GiB), refused before it is made
    /// (`memory::check_room`).
    #[error("{what} would take {}, but this page's memory has room for {} more", in_words(*needed), in_words(*room))]
    OutOfMemory { what: String, needed: u64, room: u64 },
}

/// "4.87 GB", "683 MB", "12 KB": bytes in a message.
fn in_words(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

/// Why no GPU device could be opened, by kind, so callers choose their words without parsing
/// the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoGpu {
    /// The system or browser offers no adapter (WebGPU switched off, no driver, none at all).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// An adapter exists but would not open a device.
    #[error("could not open the GPU device: {0}")]
    NoDevice(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn model(file: &str, what: impl Into<String>) -> Self {
        Error::BadFile { kind: InputKind::Model, file: file.to_string(), what: what.into() }
    }
    pub fn tokenizer(file: &str, what: impl Into<String>) -> Self {
        Error::BadFile { kind: InputKind::Tokenizer, file: file.to_string(), what: what.into() }
    }
    pub fn adapter(file: &str, what: impl Into<String>) -> Self {
        Error::BadFile { kind: InputKind::Adapter, file: file.to_string(), what: what.into() }
    }
    /// What went wrong on the GPU, without the "GPU: " the message starts with.
    pub fn gpu_detail(&self) -> Option<String> {
        match self {
            Error::NoGpu(n) => Some(n.to_string()),
            Error::Gpu(m) => Some(m.clone()),
            _ => None,
        }
    }
}
