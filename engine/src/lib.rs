//! TinyLM Lab engine: llama2.c checkpoints and tokenizers, run.c's sampler, and a readable
//! f32 CPU forward pass that reproduces llama2.c `run.c` exactly.
//!
//! Every input is taken as bytes (no file system here) so the same code runs natively and in
//! WebAssembly. Callers name the file they read so errors can say which one is wrong.

mod bytes;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod error;
pub mod formats;
pub mod generate;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod loaded;
pub mod lora;
pub mod memory;
pub mod pool;
pub mod pretrain;
pub mod quant;
pub mod quant_int8;
pub mod quant_weights;
pub mod randmodel;
pub mod sampler;
pub mod shelf;
pub mod tokenizer;
pub mod trace;
pub mod weights;

pub use config::Config;
pub use error::{Error, NoGpu, Result};
pub use loaded::{LoadedModel, NamedFile};
pub use sampler::{Rng, Sampler};
pub use tokenizer::Tokenizer;
pub use weights::Weights;

/// Id of the beginning-of-sequence token in llama2.c vocabularies.
pub const BOS: u32 = 1;
/// Id of the end-of-sequence token.
pub const EOS: u32 = 2;
