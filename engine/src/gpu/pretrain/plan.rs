//! One batch shape's buffers and the recorded forward, loss, measurement and backward of full
//! training, mirroring `pretrain::step::Workspace` kernel for kernel. Every weight is read from
//! the flat parameter buffer at its offset (`Layout`), every gradient written to the flat
//! gradient buffer at the same offset.

use super::flat::Flat;
use super::layout::Layout;
use crate::config::Config;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;
use crate::gpu::lora::bufs::{LayerActs, Scratch, Sizer};
use crate::gpu::lora::ops::{grid, lin, staging, At, Builder, Lin, Op};
use crate::gpu::uniforms::{LossDims, PretrainDims};
use crate::lora::Target;
use crate::weights::Tensor;

pub struct Plan {
    pub batch: usize,
    pub seq: usize,
    pub tokens: wgpu::Buffer,
    pub targets: wgpu::Buffer,
    /// Each row's loss, then (lse, Σ logits, max logit) per row.
    pub row_loss: wgpu::Buffer,
    /// The largest attention logit of each layer.
    pub attn_max: wgpu::Buffer,
    /// What a step or a held-out batch reads back goes through this (`ops::staging`).
    pub staging: wgpu::Buffer,
    /// The recorded work, made once: the forward and the loss (held-out batches); the forward,
    /// the loss with its gradient and the backward (the gradients alone); and a step's first
    /// submit, which also measures each layer's largest attention logit and the gradient norm.
    pub eval: Vec<Op>,
    pub grads: Vec<Op>,
    pub step: Vec<Op>,
    /// Bytes of GPU memory this shape's buffers hold.
    pub bytes: u64,
}

struct Bufs {
    tokens: wgpu::Buffer,
    targets: wgpu::Buffer,
    xs: Vec<wgpu::Buffer>,
    acts: Vec<LayerActs>,
    s: Scratch,
    /// Each row's `1 / rms` for the gains' gradients.
    rs: wgpu::Buffer,
    xn_final: wgpu::Buffer,
    logits: wgpu::Buffer,
    row_loss: wgpu::Buffer,
    attn_rows: wgpu::Buffer,
    attn_max: wgpu::Buffer,
    /// Bound where an entry of pretrain.wgsl writes nothing.
    spare: [wgpu::Buffer; 2],
    bytes: u64,
}

impl Bufs {
    fn new(ctx: &GpuContext, c: &Config, batch: usize, seq: usize) -> Result<Bufs> {
        let n = batch * seq;
        let d = c.dim;
        let mut f = Sizer::new(ctx);
        let xs = (0..=c.n_layers).map(|_| f.f("x", n * d)).collect::<Result<Vec<_>>>()?;
        let acts = (0..c.n_layers).map(|_| LayerActs::new(&mut f, c, batch, seq)).collect::<Result<Vec<_>>>()?;
        Ok(Bufs {
            tokens: f.f("tokens", n)?,
            targets: f.f("targets", n)?,
            xs,
            acts,
            s: Scratch::new(&mut f, c, batch, seq)?,
            rs: f.f("rs", n)?,
            xn_final: f.f("xn", n * d)?,
            logits: f.f("the logits", n * c.vocab_size)?,
            row_loss: f.f("loss", n * 4)?,
            attn_rows: f.f("attention rows", batch * c.n_heads * seq)?,
            attn_max: f.f("attention maxima", c.n_layers)?,
            spare: [f.f("spare", 1)?, f.f("spare", 1)?],
            bytes: f.bytes,
        })
    }
}

/// What recording needs: the builders, the layout, the flat buffers and the shape.
pub(super) struct Ctx<'a> {
    pub b: Builder<'a>,
    pub own: &'a Kernel,
    pub layout: &'a Layout,
    pub flat: &'a Flat,
    pub rope: &'a wgpu::Buffer,
    pub config: Config,
}

impl Ctx<'_> {
    fn w(&self, t: Tensor, l: usize) -> At<'_> {
        (&self.flat.params, self.layout.layer(t, l))
    }
    fn dw(&self, t: Tensor, l: usize) -> At<'_> {
        (&self.flat.grads, self.layout.layer(t, l))
    }

    /// One pretrain.wgsl dispatch: `tok`, `a`, `b` read, `c`, `out` written.
    fn own_op(&self, entry: &str, bufs: [&wgpu::Buffer; 5], dims: PretrainDims, groups: [u32; 3]) -> Result<Op> {
        self.b.run(self.own, entry, &bufs, &dims, groups)
    }

    /// `dw (+)= dyᵀ·x` of tensor `t` in layer `l` (grads are cleared before the backward).
    fn weight_grad(&self, t: Tensor, l: usize, dy: &wgpu::Buffer, x: &wgpu::Buffer, l_: Lin) -> Result<Op> {
        self.b.linear_dw((dy, 0), (x, 0), self.dw(t, l), l_)
    }

    /// The gain gradient of RMSNorm tensor `t` (layer `l`) at input `x` given `dy`.
    fn gain_grad(&self, bf: &Bufs, t: Tensor, l: usize, x: &wgpu::Buffer, dy: &wgpu::Buffer, rows: usize) -> Result<[Op; 2]> {
        let d = self.config.dim;
        let dims = PretrainDims {
            rows: rows as u32,
            width: d as u32,
            off: self.layout.layer(t, l) as u32,
            eps: self.config.norm_eps,
            ..Default::default()
        };
        Ok([
            self.own_op("inv_rms", [&bf.tokens, x, x, &bf.rs, &bf.spare[1]], dims, grid(rows.div_ceil(64))?)?,
            self.own_op("gain_grad", [&bf.tokens, x, dy, &bf.rs, &self.flat.grads], dims, grid(d.div_ceil(64))?)?,
        ])
    }

    fn attn_shape(&self, batch: usize, seq: usize) -> [usize; 5] {
        let c = &self.config;
        [batch, seq, c.n_heads, c.n_kv_heads, c.head_size()]
    }

    /// The embedding lookup, the layers, the final norm and the classifier into the logits.
    fn forward(&self, bf: &Bufs, batch: usize, seq: usize) -> Result<Vec<Op>> {
        let (c, n) = (self.config, batch * seq);
        let (d, kv, hd, hs, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.head_size(), c.q_dim());
        let (xs, b) = (&bf.xs, &self.b);
        let p = &self.flat.params;
        let emb = PretrainDims {
            rows: n as u32,
            width: d as u32,
            off: self.layout.at(Tensor::TokEmbeddings) as u32,
            ..Default::default()
        };
        let mut fw = vec![self.own_op("embed", [&bf.tokens, p, p, &bf.spare[0], &xs[0]], emb, grid((n * d).div_ceil(64))?)?];
        let linear = |x: &wgpu::Buffer, t: Target, l: usize, y: &wgpu::Buffer, acc: bool| -> Result<Op> {
            let (o, i) = t.shape(&c);
            b.linear((x, 0), self.w(t.tensor(), l), (y, 0), lin(n, i, o, acc))
        };
        for (l, a) in bf.acts.iter().enumerate() {
            let x = &xs[l];
            fw.push(b.rmsnorm("forward", x, self.w(Tensor::RmsAtt, l), x, &a.xn_att, n, d, false, c.norm_eps)?);
            fw.push(linear(&a.xn_att, Target::Q, l, &a.q, false)?);
            fw.push(linear(&a.xn_att, Target::K, l, &a.k, false)?);
            fw.push(linear(&a.xn_att, Target::V, l, &a.v, false)?);
            fw.push(b.rope("forward", self.rope, &a.q, n, q, seq, hs)?);
            fw.push(b.rope("forward", self.rope, &a.k, n, kv, seq, hs)?);
            let shape = self.attn_shape(batch, seq);
            fw.push(b.attention("forward", [&a.q, &a.k, &a.v, &a.q], [&a.probs, &a.att], shape, batch * c.n_heads * seq)?);
            fw.push(Op::Copy { src: x.clone(), dst: a.x_mid.clone(), bytes: (n * d * 4) as u64 });
            fw.push(linear(&a.att, Target::O, l, &a.x_mid, true)?);
            fw.push(b.rmsnorm("forward", &a.x_mid, self.w(Tensor::RmsFfn, l), &a.x_mid, &a.xn_ffn, n, d, false, c.norm_eps)?);
            fw.push(linear(&a.xn_ffn, Target::Gate, l, &a.h1, false)?);
            fw.push(linear(&a.xn_ffn, Target::Up, l, &a.h3, false)?);
            fw.push(b.swiglu("forward", [&a.h1, &a.h3, &a.h1], [&a.g, &bf.s.dg], n * hd)?);
            fw.push(Op::Copy { src: a.x_mid.clone(), dst: xs[l + 1].clone(), bytes: (n * d * 4) as u64 });
            fw.push(linear(&a.g, Target::Down, l, &xs[l + 1], true)?);
        }
        let x_final = &xs[c.n_layers];
        fw.push(b.rmsnorm("forward", x_final, self.w(Tensor::RmsFinal, 0), x_final, &bf.xn_final, n, d, false, c.norm_eps)?);
        fw.push(b.linear((&bf.xn_final, 0), self.w(Tensor::Wcls, 0), (&bf.logits, 0), lin(n, d, c.vocab_size, false))?);
        Ok(fw)
    }

    /// Each layer's largest pre-softmax attention logit into `attn_max[l]`.
    fn measure(&self, bf: &Bufs, batch: usize, seq: usize) -> Result<Vec<Op>> {
        let c = &self.config;
        let rows = batch * c.n_heads * seq;
        let mut ops = Vec::new();
        for (l, a) in bf.acts.iter().enumerate() {
            let dims = PretrainDims {
                rows: rows as u32,
                width: c.head_size() as u32,
                off: l as u32,
                batch: batch as u32,
                seq: seq as u32,
                n_heads: c.n_heads as u32,
                n_kv_heads: c.n_kv_heads as u32,
                ..Default::default()
            };
            ops.push(self.own_op(
                "attn_rows",
                [&bf.tokens, &a.q, &a.k, &bf.spare[0], &bf.attn_rows],
                dims,
                grid(rows.div_ceil(64))?,
            )?);
            let r = &bf.attn_rows;
            ops.push(self.own_op("max_into", [&bf.tokens, r, r, &bf.spare[0], &bf.attn_max], dims, [1, 1, 1])?);
        }
        Ok(ops)
    }

    /// As `Workspace::backward`: from the logits' gradient to every tensor's, into the flat
    /// gradient buffer (cleared first).
    fn backward(&self, bf: &Bufs, batch: usize, seq: usize) -> Result<Vec<Op>> {
        let (c, n) = (self.config, batch * seq);
        let (d, kv, hd, hs, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.head_size(), c.q_dim());
        let (s, b, xs) = (&bf.s, &self.b, &bf.xs);
        let mut bw = vec![Op::Clear(self.flat.grads.clone())];
        // Classifier (the embedding table's share when tied) and the final norm.
        bw.push(self.weight_grad(Tensor::Wcls, 0, &bf.logits, &bf.xn_final, lin(n, d, c.vocab_size, false))?);
        bw.push(b.linear_dx((&bf.logits, 0), self.w(Tensor::Wcls, 0), (&s.dxn, 0), lin(n, d, c.vocab_size, false))?);
        let x_final = &xs[c.n_layers];
        bw.push(b.rmsnorm("backward", x_final, self.w(Tensor::RmsFinal, 0), &s.dxn, &s.dx, n, d, false, c.norm_eps)?);
        bw.extend(self.gain_grad(bf, Tensor::RmsFinal, 0, x_final, &s.dxn, n)?);
        for l in (0..c.n_layers).rev() {
            let a = &bf.acts[l];
            // FFN; s.dx holds ∂/∂x_out.
            bw.push(self.weight_grad(Tensor::W2, l, &s.dx, &a.g, lin(n, hd, d, false))?);
            bw.push(b.linear_dx((&s.dx, 0), self.w(Tensor::W2, l), (&s.dg, 0), lin(n, hd, d, false))?);
            bw.push(b.swiglu("backward", [&a.h1, &a.h3, &s.dg], [&s.dh1, &s.dh3], n * hd)?);
            bw.push(self.weight_grad(Tensor::W1, l, &s.dh1, &a.xn_ffn, lin(n, d, hd, false))?);
            bw.push(self.weight_grad(Tensor::W3, l, &s.dh3, &a.xn_ffn, lin(n, d, hd, false))?);
            bw.push(b.linear_dx((&s.dh1, 0), self.w(Tensor::W1, l), (&s.dxn, 0), lin(n, d, hd, false))?);
            bw.push(b.linear_dx((&s.dh3, 0), self.w(Tensor::W3, l), (&s.dxn, 0), lin(n, d, hd, true))?);
            bw.extend(self.gain_grad(bf, Tensor::RmsFfn, l, &a.x_mid, &s.dxn, n)?);
            bw.push(b.rmsnorm("backward", &a.x_mid, self.w(Tensor::RmsFfn, l), &s.dxn, &s.dx, n, d, true, c.norm_eps)?);
            // Attention.
            bw.push(self.weight_grad(Tensor::Wo, l, &s.dx, &a.att, lin(n, q, d, false))?);
            bw.push(b.linear_dx((&s.dx, 0), self.w(Tensor::Wo, l), (&s.datt, 0), lin(n, q, d, false))?);
            let shape = self.attn_shape(batch, seq);
            let heads = batch * c.n_heads * seq;
            bw.push(b.attention("backward_q", [&s.datt, &a.probs, &a.k, &a.v], [&s.ds, &s.dq], shape, heads)?);
            bw.push(b.attention("backward_kv", [&s.datt, &a.probs, &a.q, &s.ds], [&s.dk, &s.dv], shape, n * kv)?);
            bw.push(b.rope("backward", self.rope, &s.dq, n, q, seq, hs)?);
            bw.push(b.rope("backward", self.rope, &s.dk, n, kv, seq, hs)?);
            bw.push(self.weight_grad(Tensor::Wq, l, &s.dq, &a.xn_att, lin(n, d, q, false))?);
            bw.push(self.weight_grad(Tensor::Wk, l, &s.dk, &a.xn_att, lin(n, d, kv, false))?);
            bw.push(self.weight_grad(Tensor::Wv, l, &s.dv, &a.xn_att, lin(n, d, kv, false))?);
            bw.push(b.linear_dx((&s.dq, 0), self.w(Tensor::Wq, l), (&s.dxn, 0), lin(n, d, q, false))?);
            bw.push(b.linear_dx((&s.dk, 0), self.w(Tensor::Wk, l), (&s.dxn, 0), lin(n, d, kv, true))?);
            bw.push(b.linear_dx((&s.dv, 0), self.w(Tensor::Wv, l), (&s.dxn, 0), lin(n, d, kv, true))?);
            bw.extend(self.gain_grad(bf, Tensor::RmsAtt, l, &xs[l], &s.dxn, n)?);
            bw.push(b.rmsnorm("backward", &xs[l], self.w(Tensor::RmsAtt, l), &s.dxn, &s.dx, n, d, true, c.norm_eps)?);
        }
        // The lookup: each row's gradient lands on its token's embedding.
        let emb = PretrainDims {
            rows: n as u32,
            width: d as u32,
            off: self.layout.at(Tensor::TokEmbeddings) as u32,
            ..Default::default()
        };
        let g = &self.flat.grads;
        bw.push(self.own_op("embed_grad", [&bf.tokens, &s.dx, &s.dx, &bf.spare[0], g], emb, grid(d.div_ceil(64))?)?);
        Ok(bw)
    }
}

impl Plan {
    /// `norm`: the optimizer's gradient norm, which ends a step's first submit.
    pub(super) fn new(ctx: &GpuContext, cx: &Ctx<'_>, batch: usize, seq: usize, z_loss: f64, norm: &Op) -> Result<Plan> {
        let bf = Bufs::new(ctx, &cx.config, batch, seq)?;
        let (forward, measure, backward) =
            (cx.forward(&bf, batch, seq)?, cx.measure(&bf, batch, seq)?, cx.backward(&bf, batch, seq)?);
        let (n, vocab) = (batch * seq, cx.config.vocab_size);
        let scale = (1.0 / (batch * (seq - 1)) as f64) as f32;
        let dims = |grad: bool| LossDims { scale, grad: grad as u32, coef: z_loss as f32, stats: 1, ..Default::default() };
        let loss = [
            cx.b.loss_with(&bf.targets, &bf.logits, &bf.row_loss, dims(false), n, vocab)?,
            cx.b.loss_with(&bf.targets, &bf.logits, &bf.row_loss, dims(true), n, vocab)?,
        ];
        let [plain, with_grad] = loss;
        let eval = [&forward[..], &[plain]].concat();
        let grads = [&forward[..], std::slice::from_ref(&with_grad), &backward].concat();
        let step = [&forward[..], &[with_grad], &measure, &backward, std::slice::from_ref(norm)].concat();
        // The larger of a step's two readbacks: the rows' losses and statistics, the gradient
        // norm and the layers' attention maxima; each tensor's two update norms.
        let staging = staging(ctx, (4 * n + 1 + cx.config.n_layers).max(2 * cx.layout.specs.len()));
        let Bufs { tokens, targets, row_loss, attn_max, bytes, .. } = bf;
        Ok(Plan { batch, seq, tokens, targets, row_loss, attn_max, staging, eval, grads, step, bytes })
    }
}
