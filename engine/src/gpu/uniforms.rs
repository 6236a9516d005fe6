//! The uniform each kernel reads in group 0, one `#[repr(C)]` struct per WGSL struct, field for
//! field in the WGSL's order (padding to 16 bytes included). `registry`'s test holds every
//! struct's size against the WGSL declaration it mirrors.

use bytemuck::{Pod, Zeroable};

/// The per-submit uniform, `Step` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Step {
    pub n_rows: u32,
    pub pos0: u32,
    pub in_row0: u32,
    pub mode: u32,
    pub coin: f32,
    pub temperature: f32,
    pub topp: f32,
    pub cutoff: f32,
    /// 1: each row is its own sequence at `pos0` (`GpuBackend::forward_sequences_async`).
    pub seq_rows: u32,
    /// Floats between one sequence's KV cache and the next in a layer's cache buffer.
    pub kv_stride: u32,
    pub _p0: u32,
    pub _p1: u32,
}

/// embed.wgsl `Dims`: rows `row0 .. row0 + rows` of the table live in this chunk.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EmbedDims {
    pub row0: u32,
    pub rows: u32,
    pub dim: u32,
    pub _pad: u32,
}

/// edit.wgsl `Dims`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EditDims {
    pub dim: u32,
    pub _pad: [u32; 3],
}

/// rmsnorm.wgsl `Dims`; `eps` is the model's RMSNorm epsilon (`Config::norm_eps`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct NormDims {
    pub dim: u32,
    pub eps: f32,
    pub _pad: [u32; 2],
}

/// matmul.wgsl and matvec.wgsl `Dims`: `out[.., col0 + i] (+)= W[i] · x` over this chunk's `m`
/// rows of width `k`, output rows `out_stride` apart. `eps`: the RMSNorm epsilon of matvec's
/// `norm` staging (`with_eps`; matmul.wgsl's padding); `parts`: partial-sum rows the `norm`
/// staging adds to the residual (`with_parts`; matmul.wgsl's padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MatmulDims {
    pub m: u32,
    pub k: u32,
    pub out_stride: u32,
    pub col0: u32,
    pub accumulate: u32,
    pub eps: f32,
    pub parts: u32,
    pub _pad: u32,
}

impl MatmulDims {
    /// A chunk of `rows` rows from `col0`, each `k` wide, into outputs `out_stride` apart.
    pub fn chunk(rows: std::ops::Range<usize>, k: usize, out_stride: usize, accumulate: bool) -> MatmulDims {
        MatmulDims {
            m: rows.len() as u32,
            k: k as u32,
            out_stride: out_stride as u32,
            col0: rows.start as u32,
            accumulate: accumulate as u32,
            eps: 0.0,
            parts: 0,
            _pad: 0,
        }
    }

    /// The same chunk, for a matvec that RMSNorms its input with epsilon `eps`.
    pub fn with_eps(self, eps: f32) -> MatmulDims {
        MatmulDims { eps, ..self }
    }

    /// The same chunk, its `norm` input the residual (row 0) plus `parts` partial-sum rows.
    pub fn with_parts(self, parts: usize) -> MatmulDims {
        MatmulDims { parts: parts as u32, ..self }
    }
}

/// rope_pair.wgsl `RopeDims` (rope.wgsl, matvec_rope.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct RopeDims {
    /// Width of q (`Config::q_dim`).
    pub q_dim: u32,
    pub kv_dim: u32,
    pub head_size: u32,
    pub seq_len: u32,
}

/// attention.wgsl `Dims`; `scale` is sqrt(head_size).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AttentionDims {
    pub n_heads: u32,
    pub head_size: u32,
    pub kv_dim: u32,
    pub kv_mul: u32,
    pub seq_len: u32,
    /// Width of q and of the output (`Config::q_dim`).
    pub q_dim: u32,
    pub scale: f32,
    pub _pad: u32,
}

/// attention_wo.wgsl `WoDims`: the model width (wo's rows, one partial-sum row per head).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct WoDims {
    pub dim: u32,
    pub _pad: [u32; 3],
}

/// layer.wgsl `MlpDims`: FFN width and model width.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MlpDims {
    pub hidden: u32,
    pub dim: u32,
    pub _pad: [u32; 2],
}

/// swiglu.wgsl `Dims`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SwigluDims {
    pub hidden: u32,
    pub _pad: [u32; 3],
}

/// sample.wgsl `Dims`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SampleDims {
    pub vocab: u32,
    pub _pad: [u32; 3],
}

/// lora_matmul.wgsl `Dims`: `C (+)= scale · A·B` with every operand at an offset and strides.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoraMatmulDims {
    pub m: u32,
    pub n: u32,
    pub kk: u32,
    pub accumulate: u32,
    pub a_off: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub scale: f32,
    pub b_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub _p0: u32,
    pub c_off: u32,
    pub c_rs: u32,
    pub _p1: [u32; 2],
}

/// lora_rmsnorm.wgsl `Dims`; `eps` is the model's RMSNorm epsilon.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoraNormDims {
    pub rows: u32,
    pub width: u32,
    pub accumulate: u32,
    pub eps: f32,
    /// Where the gain starts in its buffer (full training keeps every layer's in one).
    pub g_off: u32,
    pub _pad: [u32; 3],
}

/// lora_rope.wgsl `Dims`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoraRopeDims {
    pub rows: u32,
    pub width: u32,
    pub seq: u32,
    pub head_size: u32,
}

/// lora_attention.wgsl `Dims`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoraAttentionDims {
    pub batch: u32,
    pub seq: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub head_size: u32,
    pub _pad: [u32; 3],
}

/// lora_swiglu.wgsl `Dims`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LoraSwigluDims {
    pub len: u32,
    pub _pad: [u32; 3],
}

/// lora_loss.wgsl `Dims`: cross-entropy per row, scaled, its gradient in place when `grad`
/// (with the z-loss's `coef`), each row's statistics after the losses when `stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LossDims {
    pub rows: u32,
    pub vocab: u32,
    pub scale: f32,
    pub grad: u32,
    pub coef: f32,
    pub stats: u32,
    pub _pad: [u32; 2],
}

/// lora_adamw.wgsl `Dims`: AdamW's per-step scalars, formed in f64 as `lora::kernels::adamw`
/// forms them (see `gpu::lora::ops::adamw_dims`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AdamwDims {
    pub len: u32,
    /// Clipping norm, 0 for none.
    pub clip: f32,
    /// 1 − lr · weight_decay.
    pub decay: f32,
    /// 1 − β1.
    pub w1: f32,
    pub b2: f32,
    /// 1 − β2.
    pub w2: f32,
    pub bc2_sqrt: f32,
    /// lr / (1 − β1^t).
    pub step_size: f32,
    pub eps: f32,
    /// The first element updated (`len` from there).
    pub start: u32,
    pub _pad: [u32; 2],
}

/// pretrain.wgsl `Dims`: what full training's own kernels need (each entry reads its part).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct PretrainDims {
    pub rows: u32,
    pub width: u32,
    /// An element offset into the output (`out`).
    pub off: u32,
    pub eps: f32,
    pub batch: u32,
    pub seq: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
}
