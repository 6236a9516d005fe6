//! Bind groups and uniforms the decode plans share (`plan`'s five-dispatch and unfused
//! layers, `decode3`'s three-dispatch one).

use super::context::GpuContext;
use super::kernels::{uniform, Kernel};
use super::model::Chunked;
use super::uniforms::{AttentionDims, EmbedDims, MatmulDims, RopeDims};
use crate::config::Config;

/// One matmul over one weight chunk.
pub(super) struct Mm {
    pub bg: wgpu::BindGroup,
    pub rows: usize,
}

/// Bind groups of matvec.wgsl (`out (+)= W · in`, `in` made from `x` and the gains `g`).
/// `out` is (buffer, row stride, accumulate); `parts`: partial-sum rows of `x` the `norm`
/// staging adds to its row 0.
pub(super) fn fused_mm(
    ctx: &GpuContext,
    k: &Kernel,
    (x, g): (&wgpu::Buffer, &wgpu::Buffer),
    w: &Chunked,
    out: (&wgpu::Buffer, usize, bool),
    eps: f32,
    parts: usize,
) -> Vec<Mm> {
    let (out, out_stride, acc) = out;
    w.parts
        .iter()
        .map(|(buf, r)| {
            let dims = MatmulDims::chunk(r.clone(), w.cols, out_stride, acc).with_eps(eps).with_parts(parts);
            let dims = uniform(ctx, "matvec", &dims);
            Mm { bg: k.bind(ctx, "matvec", &[x, buf, out, &dims, g]), rows: r.len() }
        })
        .collect()
}

/// rope_pair.wgsl's sizes for `c`.
pub(crate) fn rope_dims(c: &Config) -> RopeDims {
    RopeDims { q_dim: c.q_dim() as u32, kv_dim: c.kv_dim() as u32, head_size: c.head_size() as u32, seq_len: c.seq_len as u32 }
}

/// attention.wgsl's sizes for `c`.
pub(crate) fn attention_dims(c: &Config) -> AttentionDims {
    let hs = c.head_size();
    AttentionDims {
        n_heads: c.n_heads as u32,
        head_size: hs as u32,
        kv_dim: c.kv_dim() as u32,
        kv_mul: c.kv_mul() as u32,
        seq_len: c.seq_len as u32,
        q_dim: c.q_dim() as u32,
        scale: (hs as f32).sqrt(),
        _pad: 0,
    }
}

/// One embedding bind group per chunk of the table `emb`, with the chunk's row count: the rows
/// of `tokens` looked up into `out` (width `dim`).
pub(super) fn embed_binds(
    ctx: &GpuContext,
    k: &Kernel,
    emb: &Chunked,
    tokens: &wgpu::Buffer,
    out: &wgpu::Buffer,
    dim: usize,
) -> Vec<(wgpu::BindGroup, usize)> {
    let bind = |(buf, r): &(wgpu::Buffer, std::ops::Range<usize>)| {
        let dims = uniform(ctx, "embed", &EmbedDims { row0: r.start as u32, rows: r.len() as u32, dim: dim as u32, _pad: 0 });
        (k.bind(ctx, "embed", &[buf, tokens, out, &dims]), r.len())
    };
    emb.parts.iter().map(bind).collect()
}
