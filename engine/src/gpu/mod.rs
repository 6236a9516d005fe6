//! The GPU backend: run.c's forward pass as WGSL compute shaders (shaders/*.wgsl) on wgpu —
//! WebGPU in the browser, Vulkan/Metal/DX12 natively (Mesa lavapipe in CI).
//!
//! - Weights are uploaded once, per layer and split in row chunks that fit WebGPU's default
//!   limits (`split`); the KV cache and activations stay on the GPU (`state`).
//! - Bind groups and pipelines are made at load (`kernels`, `plan`); a forward pass over one
//!   token or a batch of positions is one command buffer and one queue submit.
//! - `GpuBackend` implements `generate::Backend` (reads back logits) and offers the fast path
//!   `generate_async` (sampling on the GPU, a 4-byte readback per token, tokens in flight),
//!   a batched `prefill_async` and a batched `inspect_async`.
//! - Every method that waits for the GPU is async (the browser must await); native callers
//!   get blocking twins through pollster.

mod backend;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
mod binds;
mod blocks;
mod choice;
mod context;
mod decode3;
mod edits;
mod kernels;
pub mod lora;
mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod ops;
pub mod packing;
mod pipelined;
mod plan;
pub mod pretrain;
mod readback;
mod registry;
mod sequences;
pub mod split;
mod state;
pub mod tune;
mod uniforms;
mod workgroups;

pub use backend::{GpuBackend, GpuOptions, GpuStats};
pub use choice::{AnyBackend, BackendChoice, Opened, Reason};
pub use context::GpuContext;
pub use lora::{GpuTrainOptions, GpuTrainer, TrainStats};
pub use model::{f16_bits, f16_round, f16_value, int8_format, kept_format, rope_table};
pub use packing::WeightFormat;
pub use pretrain::GpuPretrainer;
pub use sequences::GpuBatchGeneration;
pub use tune::Tuning;
pub use workgroups::{MatvecShape, Workgroups, ATTENTION_CANDIDATES, MATVEC_CANDIDATES};
