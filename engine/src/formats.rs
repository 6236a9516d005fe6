//! Model files beyond llama2.c's: GGUF and Hugging Face Llama folders, read from the bytes of
//! named files (a `.gguf`; or a folder's `config.json`, safetensors and `tokenizer.json`) into
//! config, f32 weights and the model's own tokenizer. `loaded::sniff` tells the formats apart and
//! `LoadedModel::open` is the entry point (`gguf_model::read`, `hf::read` the readers it calls).
//!
//! Weights are dequantized to the engine's f32 `Weights` on load (`quant`). The engine rotates
//! RoPE pairs `(2i, 2i+1)` of a head, as llama2.c and llama.cpp store q and k; Hugging Face
//! rotates `(i, i + head/2)`, so HF q/k rows are reordered on load (`llama::interleave`).

pub mod gguf;
pub(crate) mod gguf_model;
pub mod hf;
pub mod llama;
mod opened;
pub mod write;

pub use opened::{base, Opened, MAX_CONTEXT};
