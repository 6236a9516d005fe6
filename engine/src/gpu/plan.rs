//! The forward pass as bind groups made once at load, and the code that records it into a
//! compute pass for a batch of rows. Nothing here allocates GPU memory per token.

pub(crate) use super::binds::{attention_dims, rope_dims};
use super::binds::{embed_binds, fused_mm, Mm};
use super::context::GpuContext;
use super::decode3::{Classifier, Decode3};
use super::edits::LayerEdit;
use super::kernels::{groups, uniform, DecodeKernels, Kernel};
use super::model::{Chunked, GpuLayer, GpuWeights};
use super::state::Acts;
use super::uniforms::{MatmulDims, NormDims, SampleDims, SwigluDims};
use super::workgroups::MatvecShape;
use crate::config::Config;
use crate::error::Result;

struct LayerPlan {
    rms_att: wgpu::BindGroup,
    qkv: Vec<Mm>,
    rope: wgpu::BindGroup,
    attn: wgpu::BindGroup,
    wo: Vec<Mm>,
    rms_ffn: wgpu::BindGroup,
    w13: Vec<Mm>,
    swiglu: wgpu::BindGroup,
    w2: Vec<Mm>,
}

/// One layer's decode dispatches with producers and consumers fused in (matvec.wgsl): RMSNorm
/// and RoPE with the cache write around the q|k|v matvec, RMSNorm into w1|w3, SwiGLU into w2.
struct FusedLayer {
    qkv: Vec<Mm>,
    wo: Vec<Mm>,
    w13: Vec<Mm>,
    w2: Vec<Mm>,
}

/// The one-row (decode) path: 5 dispatches per layer instead of 9, and the final RMSNorm
/// fused into the classifier.
struct Fused {
    layers: Vec<FusedLayer>,
    cls: Vec<Mm>,
    /// `cls` reads the f16 copy of the classifier (matvec.wgsl over vec4<f16>).
    cls_f16: bool,
}

/// Longest input matvec.wgsl stages in workgroup memory (its MAXK).
pub(crate) const FUSED_MAX_K: usize = 2816;

pub struct Plan {
    config: Config,
    fused: Option<Fused>,
    /// Plain one-row decoding in three dispatches per layer (`decode3`), where the shapes allow.
    decode3: Option<Decode3>,
    embed: Vec<(wgpu::BindGroup, usize)>,
    layers: Vec<LayerPlan>,
    rms_final: wgpu::BindGroup,
    cls: Vec<Mm>,
    sample: wgpu::BindGroup,
}

/// Bind groups of `out (+)= W · x` over every chunk of `w`.
fn matmuls(
    ctx: &GpuContext,
    k: &DecodeKernels,
    x: &wgpu::Buffer,
    w: &Chunked,
    out: &wgpu::Buffer,
    out_stride: usize,
    acc: bool,
) -> Vec<Mm> {
    w.parts
        .iter()
        .map(|(buf, r)| {
            let dims = uniform(ctx, "matmul", &MatmulDims::chunk(r.clone(), w.cols, out_stride, acc));
            Mm { bg: k.matmul.bind(ctx, "matmul", &[x, buf, out, &dims]), rows: r.len() }
        })
        .collect()
}

/// matvec.wgsl needs vec4-aligned chunks and an input that fits its workgroup memory.
pub(crate) fn fusable(w: &Chunked) -> bool {
    w.cols <= FUSED_MAX_K && w.parts.iter().all(|(_, r)| r.len() % 4 == 0)
}

/// Bind groups of matvec_rope.wgsl: q = rope(wq · rmsnorm(x)), k and v into `cache` at pos.
fn qkv_rope(
    ctx: &GpuContext,
    k: &DecodeKernels,
    lw: &GpuLayer,
    (rope, rope_dims): (&wgpu::Buffer, &wgpu::Buffer),
    cache: &wgpu::Buffer,
    a: &Acts,
    eps: f32,
) -> Vec<Mm> {
    let w = &lw.wqkv;
    w.parts
        .iter()
        .map(|(buf, r)| {
            let dims = uniform(ctx, "matvec rope", &MatmulDims::chunk(r.clone(), w.cols, 0, false).with_eps(eps));
            Mm {
                // The residual copy (binding 8) is only read by the three-dispatch layer.
                bg: k.matvec_rope.bind(ctx, "matvec rope", &[&a.x, buf, &a.q, &dims, &lw.rms_att, rope, cache, rope_dims, &a.xn]),
                rows: r.len(),
            }
        })
        .collect()
}

fn fused(ctx: &GpuContext, k: &DecodeKernels, c: &Config, w: &GpuWeights, a: &Acts, rope_dims: &wgpu::Buffer) -> Option<Fused> {
    let all = w.layers.iter().flat_map(|l| [&l.wqkv, &l.wo, &l.w13, &l.w2]).chain([w.classifier()]);
    if !all.into_iter().all(fusable) {
        return None;
    }
    let (d, e) = (c.dim, c.norm_eps);
    let layers = w
        .layers
        .iter()
        .zip(&a.kv)
        .map(|(lw, cache)| FusedLayer {
            qkv: qkv_rope(ctx, k, lw, (&w.rope, rope_dims), cache, a, e),
            wo: fused_mm(ctx, &k.matvec, (&a.ao, &a.ao), &lw.wo, (&a.x, d, true), e, 0),
            w13: fused_mm(ctx, &k.matvec, (&a.x, &lw.rms_ffn), &lw.w13, (&a.hb, 2 * c.hidden_dim, false), e, 0),
            w2: fused_mm(ctx, &k.matvec, (&a.hb, &a.hb), &lw.w2, (&a.x, d, true), e, 0),
        })
        .collect();
    let (cls, cls_f16) = match (&w.cls_f16, k.classifier_f16()) {
        (Some(half), Some((kh, _))) if fusable(half) => {
            (fused_mm(ctx, kh, (&a.x, &w.rms_final), half, (&a.logits, c.vocab_size, false), e, 0), true)
        }
        _ => {
            (fused_mm(ctx, k.classifier().0, (&a.x, &w.rms_final), w.classifier(), (&a.logits, c.vocab_size, false), e, 0), false)
        }
    };
    Some(Fused { layers, cls, cls_f16 })
}

fn rmsnorm(
    ctx: &GpuContext,
    k: &DecodeKernels,
    x: &wgpu::Buffer,
    g: &wgpu::Buffer,
    o: &wgpu::Buffer,
    c: &Config,
) -> wgpu::BindGroup {
    let dims = uniform(ctx, "rmsnorm", &NormDims { dim: c.dim as u32, eps: c.norm_eps, ..NormDims::default() });
    k.rmsnorm.bind(ctx, "rmsnorm", &[x, g, o, &dims])
}

impl Plan {
    /// `fuse`: use matvec.wgsl's fused decode dispatches where the shapes allow; `three`: and
    /// the three-dispatch layer (`decode3`) for plain decoding where they allow that too.
    pub fn new(ctx: &GpuContext, k: &DecodeKernels, c: &Config, w: &GpuWeights, a: &Acts, fuse: bool, three: bool) -> Plan {
        let (d, kv, q) = (c.dim, c.kv_dim(), c.q_dim());
        let rope_dims = uniform(ctx, "rope", &rope_dims(c));
        let attn_dims = uniform(ctx, "attention", &attention_dims(c));
        let swiglu_dims = uniform(ctx, "swiglu", &SwigluDims { hidden: c.hidden_dim as u32, ..SwigluDims::default() });
        let layers = w
            .layers
            .iter()
            .zip(&a.kv)
            .map(|(lw, cache)| LayerPlan {
                rms_att: rmsnorm(ctx, k, &a.x, &lw.rms_att, &a.xn, c),
                qkv: matmuls(ctx, k, &a.xn, &lw.wqkv, &a.qkv, q + 2 * kv, false),
                rope: k.rope.bind(ctx, "rope", &[&a.qkv, &w.rope, &a.q, cache, &rope_dims]),
                attn: k.attention.bind(ctx, "attention", &[&a.q, cache, &a.att, &a.ao, &attn_dims]),
                wo: matmuls(ctx, k, &a.ao, &lw.wo, &a.x, d, true),
                rms_ffn: rmsnorm(ctx, k, &a.x, &lw.rms_ffn, &a.xn, c),
                w13: matmuls(ctx, k, &a.xn, &lw.w13, &a.hb, 2 * c.hidden_dim, false),
                swiglu: k.swiglu.bind(ctx, "swiglu", &[&a.hb, &a.hg, &swiglu_dims]),
                w2: matmuls(ctx, k, &a.hg, &lw.w2, &a.x, d, true),
            })
            .collect();
        let embed = embed_binds(ctx, &k.embed, &w.emb, &a.tokens, &a.x, d);
        let sample_dims = uniform(ctx, "sample", &SampleDims { vocab: c.vocab_size as u32, ..SampleDims::default() });
        let fused = if fuse { fused(ctx, k, c, w, a, &rope_dims) } else { None };
        let decode3 = match &fused {
            Some(f) if three => {
                let (kernel, weights) = match (f.cls_f16, k.classifier_f16(), &w.cls_f16) {
                    (true, Some((kh, _)), Some(half)) => (kh, half),
                    _ => (k.classifier().0, w.classifier()),
                };
                Decode3::new(ctx, k, c, w, a, Classifier { kernel, weights })
            }
            _ => None,
        };
        Plan {
            config: *c,
            fused,
            decode3,
            embed,
            layers,
            rms_final: rmsnorm(ctx, k, &a.x, &w.rms_final, &a.xn, c),
            cls: matmuls(ctx, k, &a.xn, w.classifier(), &a.logits, c.vocab_size, false),
            sample: k.sample.bind(ctx, "sample", &[&a.logits, &a.probs, &a.tokens, &sample_dims]),
        }
    }

    fn matmul(
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        mms: &[Mm],
        rows: usize,
        step: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        for mm in mms {
            if rows == 1 {
                k.matmul.dispatch(pass, "matvec", &mm.bg, step, [groups(mm.rows, 16), 1, 1])?;
            } else {
                k.matmul.dispatch(pass, "matmul", &mm.bg, step, [groups(mm.rows, 64), groups(rows, 16), 1])?;
            }
        }
        Ok(())
    }

    /// Whether one-row passes use the fused dispatches.
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// Whether plain one-row passes use the three-dispatch layer.
    pub fn is_decode3(&self) -> bool {
        self.decode3.is_some()
    }

    /// Records embedding, layers and classifier of a plain one-row pass (no edits, no capture)
    /// in three dispatches per layer; `false` (nothing recorded) where the plan has none.
    pub fn decode3(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        step: (&wgpu::BindGroup, u32),
        head: (&wgpu::BindGroup, u32),
    ) -> Result<bool> {
        let (Some(d3), Some(f)) = (&self.decode3, &self.fused) else {
            return Ok(false);
        };
        let (kernel, shape) = f.cls_f16.then(|| k.classifier_f16()).flatten().unwrap_or_else(|| k.classifier());
        d3.record(k, pass, step, head, (kernel, shape.rows()))?;
        Ok(true)
    }

    /// Dispatches one decoded token records: embedding, layers, head and sampler.
    pub fn decode_dispatches(&self) -> usize {
        if let Some(d3) = &self.decode3 {
            return d3.dispatches() + 1;
        }
        let mats = |q: &[Mm], o: &[Mm], h: &[Mm], d: &[Mm]| q.len() + o.len() + h.len() + d.len();
        let body = match &self.fused {
            // attention besides the four matvecs; the final RMSNorm is in the classifier.
            Some(f) => f.layers.iter().map(|l| mats(&l.qkv, &l.wo, &l.w13, &l.w2) + 1).sum::<usize>() + f.cls.len(),
            // two RMSNorms, rope, attention, SwiGLU; then the final RMSNorm.
            None => self.layers.iter().map(|l| mats(&l.qkv, &l.wo, &l.w13, &l.w2) + 5).sum::<usize>() + 1 + self.cls.len(),
        };
        self.embed.len() + body + 1
    }

    /// Whether the one-row classifier reads f16 weights.
    pub fn is_f16_classifier(&self) -> bool {
        self.fused.as_ref().is_some_and(|f| f.cls_f16)
    }

    /// `shape`: the kernel's workgroup shape, which sets the rows per workgroup.
    fn fused_mm(
        k: &Kernel,
        shape: MatvecShape,
        pass: &mut wgpu::ComputePass<'_>,
        mms: &[Mm],
        entry: &str,
        step: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        for mm in mms {
            k.dispatch(pass, entry, &mm.bg, step, [groups(mm.rows, shape.rows()), 1, 1])?;
        }
        Ok(())
    }

    /// x = embedding of the `rows` tokens at positions pos0.. (the step slot says which).
    pub fn embed(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        rows: usize,
        step: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        for (bg, _) in &self.embed {
            k.embed.dispatch(pass, "main", bg, step, [groups(self.config.dim, 64), rows as u32, 1])?;
        }
        Ok(())
    }

    /// One transformer layer over `rows` rows: x += attention(x); x += ffn(x); with `edit`'s
    /// knock-outs (after attention), skipped blocks (their output never added) and steering.
    pub fn layer(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        l: usize,
        rows: usize,
        step: (&wgpu::BindGroup, u32),
        edit: Option<&LayerEdit>,
    ) -> Result<()> {
        let c = &self.config;
        let lp = &self.layers[l];
        let r = rows as u32;
        let (attn, mlp) = edit.map_or((true, true), |e| (!e.skip_attn, !e.skip_mlp));
        if let (Some(f), 1) = (&self.fused, rows) {
            let (fl, s) = (&f.layers[l], k.workgroups.layers);
            Self::fused_mm(&k.matvec_rope, s, pass, &fl.qkv, "norm_rope", step)?;
            k.attention.dispatch(pass, "main", &lp.attn, step, [c.n_heads as u32, 1, 1])?;
            if let Some(e) = edit {
                e.replace(k, pass, rows, step)?;
            }
            if attn {
                Self::fused_mm(&k.matvec, s, pass, &fl.wo, "plain", step)?;
            }
            if mlp {
                Self::fused_mm(&k.matvec, s, pass, &fl.w13, "norm", step)?;
                Self::fused_mm(&k.matvec, s, pass, &fl.w2, "swiglu", step)?;
            }
        } else {
            k.rmsnorm.dispatch(pass, "main", &lp.rms_att, step, [r, 1, 1])?;
            Self::matmul(k, pass, &lp.qkv, rows, step)?;
            k.rope.dispatch(pass, "main", &lp.rope, step, [groups((c.q_dim() + 2 * c.kv_dim()) / 2, 64), r, 1])?;
            k.attention.dispatch(pass, "main", &lp.attn, step, [c.n_heads as u32, r, 1])?;
            if let Some(e) = edit {
                e.replace(k, pass, rows, step)?;
            }
            if attn {
                Self::matmul(k, pass, &lp.wo, rows, step)?;
            }
            if mlp {
                k.rmsnorm.dispatch(pass, "main", &lp.rms_ffn, step, [r, 1, 1])?;
                Self::matmul(k, pass, &lp.w13, rows, step)?;
                k.swiglu.dispatch(pass, "main", &lp.swiglu, step, [groups(c.hidden_dim, 64), r, 1])?;
                Self::matmul(k, pass, &lp.w2, rows, step)?;
            }
        }
        if let Some(e) = edit {
            e.add(k, pass, rows, step)?;
        }
        Ok(())
    }

    /// xn = rmsnorm(x) over `rows` rows, then logits = classifier · xn for the head step's rows.
    pub fn head(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        rows: usize,
        head_rows: usize,
        head: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        if let (Some(f), 1, 1) = (&self.fused, rows, head_rows) {
            let (kernel, shape) = f.cls_f16.then(|| k.classifier_f16()).flatten().unwrap_or_else(|| k.classifier());
            return Self::fused_mm(kernel, shape, pass, &f.cls, "norm", head);
        }
        k.rmsnorm.dispatch(pass, "main", &self.rms_final, head, [rows as u32, 1, 1])?;
        Self::matmul(k, pass, &self.cls, head_rows, head)
    }

    /// The next token from logits row 0 into tokens[pos0 + 1] (`argmax` or `sample`).
    pub fn sample(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        entry: &str,
        head: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        k.sample.dispatch(pass, entry, &self.sample, head, [1, 1, 1])
    }
}
