//! The batched kernels of LoRA training, each a plain function of its inputs and outputs so a
//! GPU twin can be written and tested against it one by one.
//!
//! Layouts: activations are row-major `[N, width]` with `N = batch · seq` rows, row `n = b·seq + t`
//! (so its position is `n mod seq`); weights are `[out, in]` as in llama2.c. Forward kernels do
//! the f32 operations of `cpu::ops` in the same order, so a batch reproduces `cpu::forward`.
//! Backward kernels named `*_bwd` or `matmul_dx/dw` **add** into their gradient outputs.

mod adamw;
mod attention;
pub mod fast;
pub mod gemm;
mod linear;
mod loss;
mod pointwise;

pub use adamw::{adamw, adamw_tracked, AdamW, UpdateNorms};
pub use attention::{attention, attention_bwd, attention_bwd_with, AttnShape};
pub(crate) use linear::parallel;
pub use linear::{lora, lora_bwd, matmul, matmul_add_scaled, matmul_dw, matmul_dx, LoraPair};
pub use loss::{cross_entropy, cross_entropy_bwd, IGNORE};
pub use pointwise::{
    inv_rms, rmsnorm, rmsnorm_bwd, rmsnorm_bwd_eps, rmsnorm_eps, rope, rope_bwd, rope_bwd_with, rope_freqs, rope_table,
    rope_with, softmax, swiglu, swiglu_bwd, RMS_EPS,
};
