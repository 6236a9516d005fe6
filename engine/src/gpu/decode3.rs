//! The three-dispatch decode layer: one row's layer as q|k|v (RMSNorm, RoPE, cache write;
//! matvec_rope.wgsl), attention with the output projection (attention_wo.wgsl), and the whole
//! FFN (mlp.wgsl). No dispatch waits on another to finish a residual sum: attention_wo writes
//! wo · o as one partial-sum row per head and mlp writes w2 · h as one row per block of hidden
//! units, and the next dispatch adds them to the residual while staging its RMSNorm input
//! (matvec.wgsl `norm` with `parts`), its workgroup 0 writing the finished residual out.
//!
//! The residual ping-pongs between two buffers, each row 0 the residual and rows 1.. pending
//! partial sums: `r1` = [x, mlp blocks…] feeds q|k|v and the classifier; `r2` = [x after
//! attention, heads…] feeds the FFN. A dispatch reads one and writes the other, so no
//! workgroup reads what another workgroup of the same dispatch writes.
//!
//! Used for plain decoding (one row, no edits, no capture); the residual after each layer is
//! not materialised, so traces and edits take the five-dispatch path (`plan`).

use super::binds::{attention_dims, embed_binds, fused_mm, rope_dims, Mm};
use super::context::GpuContext;
use super::kernels::{buffer, groups, uniform, DecodeKernels, Kernel};
use super::model::{Chunked, GpuWeights};
use super::state::Acts;
use super::uniforms::{MatmulDims, MlpDims, WoDims};
use crate::config::Config;
use crate::error::Result;

struct Layer {
    qkv: Vec<Mm>,
    attn_wo: wgpu::BindGroup,
    mlp: wgpu::BindGroup,
}

pub(super) struct Decode3 {
    embed: Vec<wgpu::BindGroup>,
    layers: Vec<Layer>,
    cls: Vec<Mm>,
    /// attention_wo's output blocks (grid y) and mlp's hidden blocks (grid x).
    wo_blocks: u32,
    mlp_blocks: u32,
    n_heads: u32,
    dim: usize,
}

/// The single buffer of a one-chunk matrix, if it is one chunk.
fn single(w: &Chunked) -> Option<&wgpu::Buffer> {
    match w.parts.as_slice() {
        [(buf, _)] => Some(buf),
        _ => None,
    }
}

/// The classifier kernel the plan chose and the weights it reads (f32, or the f16 copy).
pub(super) struct Classifier<'a> {
    pub kernel: &'a Kernel,
    pub weights: &'a Chunked,
}

impl Decode3 {
    /// `None` where the shapes do not allow it: wo, w1|w3 and w2 each one chunk, hidden a
    /// multiple of 4 (mlp.wgsl's vec4 loads), q|k|v within matvec_rope's input limit (checked by
    /// the caller, which only asks when the five-dispatch fused path exists).
    pub fn new(
        ctx: &GpuContext,
        k: &DecodeKernels,
        c: &Config,
        w: &GpuWeights,
        a: &Acts,
        cls: Classifier<'_>,
    ) -> Option<Decode3> {
        if !c.hidden_dim.is_multiple_of(4) || !c.dim.is_multiple_of(4) {
            return None;
        }
        let singles: Option<Vec<_>> = w.layers.iter().map(|l| Some((single(&l.wo)?, single(&l.w13)?, single(&l.w2)?))).collect();
        let singles = singles?;
        let (d, e, nh) = (c.dim, c.norm_eps, c.n_heads);
        let shape = k.workgroups.layers;
        let mlp_blocks = groups(c.hidden_dim, shape.rows());
        let wo_blocks = groups(d / 4, k.workgroups.attention as usize);
        let act = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let r1 = buffer(ctx, "residual and mlp parts", ((1 + mlp_blocks as usize) * d * 4) as u64, act);
        let r2 = buffer(ctx, "residual and head parts", ((1 + nh) * d * 4) as u64, act);
        let blocks = wo_blocks as usize;
        let o = buffer(ctx, "attention out blocks", (blocks * c.q_dim() * 4) as u64, act);
        let att = buffer(ctx, "attention blocks", (blocks * nh * c.seq_len * 4) as u64, act);
        let rope_dims = uniform(ctx, "rope", &rope_dims(c));
        let attn_dims = uniform(ctx, "attention", &attention_dims(c));
        let wo_dims = uniform(ctx, "attention wo", &WoDims { dim: d as u32, ..WoDims::default() });
        let mlp_dims = uniform(ctx, "mlp", &MlpDims { hidden: c.hidden_dim as u32, dim: d as u32, ..MlpDims::default() });
        let ffn = MatmulDims::chunk(0..2 * c.hidden_dim, d, 0, false).with_eps(e).with_parts(nh);
        let ffn_dims = uniform(ctx, "mlp", &ffn);
        let layers = w
            .layers
            .iter()
            .zip(&a.kv)
            .zip(singles)
            .enumerate()
            .map(|(l, ((lw, cache), (wo, w13, w2)))| {
                // Layer 0's residual is the embedding alone; later ones add the last FFN's blocks.
                let parts = if l == 0 { 0 } else { mlp_blocks as usize };
                let qkv = lw
                    .wqkv
                    .parts
                    .iter()
                    .map(|(buf, r)| {
                        let dims = MatmulDims::chunk(r.clone(), lw.wqkv.cols, 0, false).with_eps(e).with_parts(parts);
                        let dims = uniform(ctx, "matvec rope", &dims);
                        let bufs = [&r1, buf, &a.q, &dims, &lw.rms_att, &w.rope, cache, &rope_dims, &r2];
                        Mm { bg: k.matvec_rope.bind(ctx, "matvec rope", &bufs), rows: r.len() }
                    })
                    .collect();
                Layer {
                    qkv,
                    attn_wo: k.attention_wo.bind(ctx, "attention wo", &[&a.q, cache, &att, &o, &attn_dims, wo, &r2, &wo_dims]),
                    mlp: k.mlp.bind(ctx, "mlp", &[&r2, w13, &r1, &ffn_dims, &lw.rms_ffn, w2, &mlp_dims]),
                }
            })
            .collect();
        let embed = embed_binds(ctx, &k.embed, &w.emb, &a.tokens, &r1, d).into_iter().map(|(bg, _)| bg).collect();
        let cls =
            fused_mm(ctx, cls.kernel, (&r1, &w.rms_final), cls.weights, (&a.logits, c.vocab_size, false), e, mlp_blocks as usize);
        Some(Decode3 { embed, layers, cls, wo_blocks, mlp_blocks, n_heads: nh as u32, dim: d })
    }

    /// Dispatches per token besides the sampler: embedding, three per layer (more where
    /// q|k|v is chunked), the classifier's chunks.
    pub fn dispatches(&self) -> usize {
        self.embed.len() + self.layers.iter().map(|l| l.qkv.len() + 2).sum::<usize>() + self.cls.len()
    }

    /// Records the embedding, every layer and the classifier for one row (the head step's
    /// `in_row0` must be 0). `cls`: the classifier's kernel and shape, as `Plan::head` picks.
    pub fn record(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        step: (&wgpu::BindGroup, u32),
        head: (&wgpu::BindGroup, u32),
        cls: (&Kernel, usize),
    ) -> Result<()> {
        for bg in &self.embed {
            k.embed.dispatch(pass, "main", bg, step, [groups(self.dim, 64), 1, 1])?;
        }
        let rows = k.workgroups.layers.rows();
        for l in &self.layers {
            for mm in &l.qkv {
                k.matvec_rope.dispatch(pass, "norm_rope", &mm.bg, step, [groups(mm.rows, rows), 1, 1])?;
            }
            k.attention_wo.dispatch(pass, "attend_wo", &l.attn_wo, step, [self.n_heads, self.wo_blocks, 1])?;
            k.mlp.dispatch(pass, "mlp", &l.mlp, step, [self.mlp_blocks, 1, 1])?;
        }
        for mm in &self.cls {
            cls.0.dispatch(pass, "norm", &mm.bg, head, [groups(mm.rows, cls.1), 1, 1])?;
        }
        Ok(())
    }
}
