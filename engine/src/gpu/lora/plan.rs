//! One batch shape's buffers (the activations the backward needs, its scratch) and the
//! recorded forward, loss, backward and optimizer work over them, mirroring
//! `lora::model::{forward, backward}` kernel for kernel.

use super::bufs::{LayerActs, Scratch, Sizer};
use super::model::{Frozen, Params};
use super::ops::{adamw_dims, lin, At, Builder, Lin, Op};
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::buffer;
use crate::lora::Target;

pub struct Plan {
    pub batch: usize,
    pub seq: usize,
    /// `x` entering each layer, and the last layer's output at `[n_layers]`.
    pub xs: Vec<wgpu::Buffer>,
    pub targets: wgpu::Buffer,
    pub logits: wgpu::Buffer,
    pub row_loss: wgpu::Buffer,
    /// AdamW's per-step scalars (`adamw_dims`), rewritten before each step.
    pub adamw_dims: wgpu::Buffer,
    pub forward: Vec<Op>,
    /// Cross-entropy without (`[0]`) and with (`[1]`) its gradient.
    pub loss: [Op; 2],
    pub backward: Vec<Op>,
    pub optimizer: Vec<Op>,
    /// Bytes of GPU memory this shape's buffers hold.
    pub bytes: u64,
}

struct Ctx<'a> {
    b: Builder<'a>,
    m: &'a Frozen,
    p: &'a Params,
    rows: usize,
    batch: usize,
    seq: usize,
}

impl Ctx<'_> {
    fn scale(&self) -> f32 {
        self.p.shape.scaling()
    }
    fn module(&self, l: usize, t: Target) -> Option<(usize, usize)> {
        self.p.shape.index(l, t).map(|i| self.p.offsets[i])
    }

    /// `y (+)= W x + s·B(A x)` of target `t` in layer `l`, keeping `A x` in `u`.
    #[allow(clippy::too_many_arguments)]
    fn project(
        &self,
        ops: &mut Vec<Op>,
        l: usize,
        t: Target,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        u: Option<&wgpu::Buffer>,
        acc: bool,
    ) -> Result<()> {
        let (o, i) = t.shape(&self.m.config);
        ops.push(self.b.linear((x, 0), (&self.m.layers[l].w[t as usize], 0), (y, 0), lin(self.rows, i, o, acc))?);
        if let (Some((a_off, b_off)), Some(u)) = (self.module(l, t), u) {
            let r = self.p.shape.config.r;
            ops.push(self.b.linear((x, 0), (&self.p.params, a_off), (u, 0), lin(self.rows, i, r, false))?);
            ops.push(self.b.linear(
                (u, 0),
                (&self.p.params, b_off),
                (y, 0),
                Lin { rows: self.rows, n_in: r, n_out: o, s: self.scale(), acc: true },
            )?);
        }
        Ok(())
    }

    /// LoRA gradients of target `t` (as `lora::kernels::lora_bwd`), and `du·A` into `dx`.
    #[allow(clippy::too_many_arguments)]
    fn project_bwd(
        &self,
        ops: &mut Vec<Op>,
        l: usize,
        t: Target,
        dy: &wgpu::Buffer,
        x: &wgpu::Buffer,
        u: Option<&wgpu::Buffer>,
        du: &wgpu::Buffer,
        dx: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        let (Some((a_off, b_off)), Some(u)) = (self.module(l, t), u) else { return Ok(()) };
        let (o, i) = t.shape(&self.m.config);
        let (r, s, n) = (self.p.shape.config.r, self.scale(), self.rows);
        let (pa, pb): (At, At) = ((&self.p.params, a_off), (&self.p.params, b_off));
        ops.push(self.b.linear_dx((dy, 0), pb, (du, 0), Lin { rows: n, n_in: r, n_out: o, s, acc: false })?);
        ops.push(self.b.linear_dw((dy, 0), (u, 0), (&self.p.grads, b_off), Lin { rows: n, n_in: r, n_out: o, s, acc: false })?);
        ops.push(self.b.linear_dw((du, 0), (x, 0), (&self.p.grads, a_off), lin(n, i, r, false))?);
        if let Some(dx) = dx {
            ops.push(self.b.linear_dx((du, 0), pa, (dx, 0), lin(n, i, r, true))?);
        }
        Ok(())
    }
}

/// Every buffer of one batch shape.
struct Bufs {
    xs: Vec<wgpu::Buffer>,
    acts: Vec<LayerActs>,
    /// Each layer's `A x` per adapted target (indexed like `Target::ALL`).
    us: Vec<[Option<wgpu::Buffer>; 7]>,
    s: Scratch,
    /// The adapter's input gradient `du` (rank wide).
    du: wgpu::Buffer,
    xn_final: wgpu::Buffer,
    logits: wgpu::Buffer,
    row_loss: wgpu::Buffer,
    targets: wgpu::Buffer,
    /// Their size.
    bytes: u64,
}

impl Bufs {
    fn new(ctx: &GpuContext, m: &Frozen, p: &Params, batch: usize, seq: usize) -> Result<Bufs> {
        let c = m.config;
        let n = batch * seq;
        let (d, r) = (c.dim, p.shape.config.r);
        let mut f = Sizer::new(ctx);
        let xs = (0..=c.n_layers).map(|_| f.f("x", n * d)).collect::<Result<Vec<_>>>()?;
        let acts = (0..c.n_layers).map(|_| LayerActs::new(&mut f, &c, batch, seq)).collect::<Result<Vec<_>>>()?;
        let mut us = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let mut u: [Option<wgpu::Buffer>; 7] = Default::default();
            for &t in &p.shape.config.targets {
                if p.shape.index(l, t).is_some() {
                    u[t as usize] = Some(f.f("u", n * r)?);
                }
            }
            us.push(u);
        }
        let s = Scratch::new(&mut f, &c, batch, seq)?;
        let du = f.f("du", n * r)?;
        let xn_final = f.f("xn", n * d)?;
        let logits = f.f("the logits", n * c.vocab_size)?;
        let row_loss = f.f("loss", n)?;
        let targets = f.f("targets", n)?;
        Ok(Bufs { xs, acts, us, s, du, xn_final, logits, row_loss, targets, bytes: f.bytes })
    }
}

impl Ctx<'_> {
    /// `[batch, seq, n_heads, n_kv_heads, head_size]` for lora_attention.wgsl.
    fn attn_shape(&self) -> [usize; 5] {
        let c = &self.m.config;
        [self.batch, self.seq, c.n_heads, c.n_kv_heads, c.head_size()]
    }

    /// As `lora::forward`: the layers, the final norm and the classifier into the logits.
    fn forward(&self, bf: &Bufs) -> Result<Vec<Op>> {
        let (m, c, n, seq) = (self.m, self.m.config, self.rows, self.seq);
        let (d, kv, hd, hs) = (c.dim, c.kv_dim(), c.hidden_dim, c.head_size());
        let (xs, b) = (&bf.xs, &self.b);
        let mut fw = Vec::new();
        for (l, a) in bf.acts.iter().enumerate() {
            let (x, lw, u) = (&xs[l], &m.layers[l], |t: Target| bf.us[l][t as usize].as_ref());
            fw.push(b.rmsnorm("forward", x, (&lw.rms_att, 0), x, &a.xn_att, n, d, false, c.norm_eps)?);
            self.project(&mut fw, l, Target::Q, &a.xn_att, &a.q, u(Target::Q), false)?;
            self.project(&mut fw, l, Target::K, &a.xn_att, &a.k, u(Target::K), false)?;
            self.project(&mut fw, l, Target::V, &a.xn_att, &a.v, u(Target::V), false)?;
            fw.push(b.rope("forward", &m.rope, &a.q, n, c.q_dim(), seq, hs)?);
            fw.push(b.rope("forward", &m.rope, &a.k, n, kv, seq, hs)?);
            fw.push(b.attention(
                "forward",
                [&a.q, &a.k, &a.v, &a.q],
                [&a.probs, &a.att],
                self.attn_shape(),
                self.batch * c.n_heads * seq,
            )?);
            // x_mid = x + Wo·att (+ LoRA), accumulated in place.
            fw.push(Op::Copy { src: x.clone(), dst: a.x_mid.clone(), bytes: (n * d * 4) as u64 });
            self.project(&mut fw, l, Target::O, &a.att, &a.x_mid, u(Target::O), true)?;
            fw.push(b.rmsnorm("forward", &a.x_mid, (&lw.rms_ffn, 0), &a.x_mid, &a.xn_ffn, n, d, false, c.norm_eps)?);
            self.project(&mut fw, l, Target::Gate, &a.xn_ffn, &a.h1, u(Target::Gate), false)?;
            self.project(&mut fw, l, Target::Up, &a.xn_ffn, &a.h3, u(Target::Up), false)?;
            fw.push(b.swiglu("forward", [&a.h1, &a.h3, &a.h1], [&a.g, &bf.s.dg], n * hd)?);
            fw.push(Op::Copy { src: a.x_mid.clone(), dst: xs[l + 1].clone(), bytes: (n * d * 4) as u64 });
            self.project(&mut fw, l, Target::Down, &a.g, &xs[l + 1], u(Target::Down), true)?;
        }
        let x_final = &xs[c.n_layers];
        fw.push(b.rmsnorm("forward", x_final, (&m.rms_final, 0), x_final, &bf.xn_final, n, d, false, c.norm_eps)?);
        fw.push(b.linear((&bf.xn_final, 0), (&m.wcls, 0), (&bf.logits, 0), lin(n, d, c.vocab_size, false))?);
        Ok(fw)
    }

    /// As `lora::model::backward`, from the logits' gradient to every A and B.
    fn backward(&self, bf: &Bufs) -> Result<Vec<Op>> {
        let (m, c, n, seq) = (self.m, self.m.config, self.rows, self.seq);
        let (d, kv, hd, hs) = (c.dim, c.kv_dim(), c.hidden_dim, c.head_size());
        let (s, b) = (&bf.s, &self.b);
        let mut bw = Vec::new();
        bw.push(b.linear_dx((&bf.logits, 0), (&m.wcls, 0), (&s.dxn, 0), lin(n, d, c.vocab_size, false))?);
        bw.push(b.rmsnorm("backward", &bf.xs[c.n_layers], (&m.rms_final, 0), &s.dxn, &s.dx, n, d, false, c.norm_eps)?);
        for l in (0..c.n_layers).rev() {
            let (a, lw) = (&bf.acts[l], &m.layers[l]);
            let u = |t: Target| bf.us[l][t as usize].as_ref();
            let w = |t: Target| (&lw.w[t as usize], 0usize);
            // FFN.
            bw.push(b.linear_dx((&s.dx, 0), w(Target::Down), (&s.dg, 0), lin(n, hd, d, false))?);
            self.project_bwd(&mut bw, l, Target::Down, &s.dx, &a.g, u(Target::Down), &bf.du, Some(&s.dg))?;
            bw.push(b.swiglu("backward", [&a.h1, &a.h3, &s.dg], [&s.dh1, &s.dh3], n * hd)?);
            bw.push(b.linear_dx((&s.dh1, 0), w(Target::Gate), (&s.dxn, 0), lin(n, d, hd, false))?);
            bw.push(b.linear_dx((&s.dh3, 0), w(Target::Up), (&s.dxn, 0), lin(n, d, hd, true))?);
            self.project_bwd(&mut bw, l, Target::Gate, &s.dh1, &a.xn_ffn, u(Target::Gate), &bf.du, Some(&s.dxn))?;
            self.project_bwd(&mut bw, l, Target::Up, &s.dh3, &a.xn_ffn, u(Target::Up), &bf.du, Some(&s.dxn))?;
            bw.push(b.rmsnorm("backward", &a.x_mid, (&lw.rms_ffn, 0), &s.dxn, &s.dx, n, d, true, c.norm_eps)?);
            // Attention.
            bw.push(b.linear_dx((&s.dx, 0), w(Target::O), (&s.datt, 0), lin(n, c.q_dim(), d, false))?);
            self.project_bwd(&mut bw, l, Target::O, &s.dx, &a.att, u(Target::O), &bf.du, Some(&s.datt))?;
            let shape = self.attn_shape();
            bw.push(b.attention(
                "backward_q",
                [&s.datt, &a.probs, &a.k, &a.v],
                [&s.ds, &s.dq],
                shape,
                self.batch * c.n_heads * seq,
            )?);
            bw.push(b.attention("backward_kv", [&s.datt, &a.probs, &a.q, &s.ds], [&s.dk, &s.dv], shape, n * kv)?);
            bw.push(b.rope("backward", &m.rope, &s.dq, n, c.q_dim(), seq, hs)?);
            bw.push(b.rope("backward", &m.rope, &s.dk, n, kv, seq, hs)?);
            // The embeddings are frozen: below layer 0 no input gradient is needed.
            let need_dx = l > 0;
            if need_dx {
                bw.push(b.linear_dx((&s.dq, 0), w(Target::Q), (&s.dxn, 0), lin(n, d, c.q_dim(), false))?);
                bw.push(b.linear_dx((&s.dk, 0), w(Target::K), (&s.dxn, 0), lin(n, d, kv, true))?);
                bw.push(b.linear_dx((&s.dv, 0), w(Target::V), (&s.dxn, 0), lin(n, d, kv, true))?);
            }
            for (t, dy) in [(Target::Q, &s.dq), (Target::K, &s.dk), (Target::V, &s.dv)] {
                self.project_bwd(&mut bw, l, t, dy, &a.xn_att, u(t), &bf.du, need_dx.then_some(&s.dxn))?;
            }
            if need_dx {
                bw.push(b.rmsnorm("backward", &bf.xs[l], (&lw.rms_att, 0), &s.dxn, &s.dx, n, d, true, c.norm_eps)?);
            }
        }
        Ok(bw)
    }
}

impl Plan {
    pub fn new(ctx: &GpuContext, b: Builder<'_>, m: &Frozen, p: &Params, batch: usize, seq: usize) -> Result<Plan> {
        let bf = Bufs::new(ctx, m, p, batch, seq)?;
        let cx = Ctx { b, m, p, rows: batch * seq, batch, seq };
        let (forward, backward) = (cx.forward(&bf)?, cx.backward(&bf)?);
        let (n, vocab) = (batch * seq, m.config.vocab_size);
        let scale = (1.0 / (batch * (seq - 1)) as f64) as f32;
        let loss = [
            cx.b.loss(&bf.targets, &bf.logits, &bf.row_loss, n, vocab, scale, false)?,
            cx.b.loss(&bf.targets, &bf.logits, &bf.row_loss, n, vocab, scale, true)?,
        ];
        let adamw_dims = buffer(
            ctx,
            "adamw",
            std::mem::size_of::<crate::gpu::uniforms::AdamwDims>() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let optimizer = cx.b.adamw([&p.grads, &p.params, &p.m, &p.v, &p.norm], &adamw_dims, p.len)?.to_vec();
        let Bufs { xs, targets, logits, row_loss, bytes, .. } = bf;
        Ok(Plan { batch, seq, xs, targets, logits, row_loss, adamw_dims, forward, loss, backward, optimizer, bytes })
    }

    /// Rewrites AdamW's scalars for step `step` (1-based).
    pub fn set_step(&self, ctx: &GpuContext, h: &crate::lora::AdamW, clip: Option<f64>, step: u32, len: usize) {
        ctx.queue.write_buffer(&self.adamw_dims, 0, bytemuck::bytes_of(&adamw_dims(h, clip, step, len)));
    }
}
