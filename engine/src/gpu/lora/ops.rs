//! Recorded work: each training kernel call becomes an `Op` (pipeline, bind group with its own
//! small uniform, workgroups) made once per batch shape; a step replays a list of them.

use super::train_kernels::{Kernel, TrainKernels};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{buffer, uniform};
use crate::gpu::readback::{self, floats};
use crate::gpu::uniforms::{AdamwDims, LoraAttentionDims, LoraMatmulDims, LoraNormDims, LoraRopeDims, LoraSwigluDims, LossDims};

/// One unit of recorded work.
#[derive(Clone)]
pub enum Op {
    Run {
        pipeline: wgpu::ComputePipeline,
        bg: wgpu::BindGroup,
        groups: [u32; 3],
    },
    Copy {
        src: wgpu::Buffer,
        dst: wgpu::Buffer,
        bytes: u64,
    },
    /// Zeroes a whole buffer.
    Clear(wgpu::Buffer),
}

/// Records `ops` in order; consecutive dispatches share one compute pass.
pub fn encode(enc: &mut wgpu::CommandEncoder, ops: &[Op]) {
    let mut i = 0;
    while i < ops.len() {
        match &ops[i] {
            Op::Copy { src, dst, bytes } => {
                enc.copy_buffer_to_buffer(src, 0, dst, 0, *bytes);
                i += 1;
                continue;
            }
            Op::Clear(b) => {
                enc.clear_buffer(b, 0, None);
                i += 1;
                continue;
            }
            Op::Run { .. } => {}
        }
        let mut pass = enc.begin_compute_pass(&Default::default());
        while let Some(Op::Run { pipeline, bg, groups }) = ops.get(i) {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            i += 1;
        }
    }
}

/// Submits `ops`, then copies `reads` (buffer, floats from its start) into one staging buffer
/// and returns them, in order.
pub async fn submit_and_read(ctx: &GpuContext, ops: &[Op], reads: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<f32>>> {
    let total: usize = reads.iter().map(|r| r.1).sum();
    submit_and_read_via(ctx, ops, reads, &staging(ctx, total)).await
}

/// A buffer to read `floats` back through.
pub fn staging(ctx: &GpuContext, floats: usize) -> wgpu::Buffer {
    buffer(ctx, "training readback", floats.max(1) as u64 * 4, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)
}

/// `submit_and_read` through the caller's `staging` buffer (from `staging`, large enough for
/// every read together; unmapped again after), so a step makes no buffer.
pub async fn submit_and_read_via(
    ctx: &GpuContext,
    ops: &[Op],
    reads: &[(&wgpu::Buffer, usize)],
    staging: &wgpu::Buffer,
) -> Result<Vec<Vec<f32>>> {
    let total: usize = reads.iter().map(|r| r.1).sum();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    encode(&mut enc, ops);
    let mut at = 0u64;
    for (b, n) in reads {
        enc.copy_buffer_to_buffer(b, 0, staging, at, *n as u64 * 4);
        at += *n as u64 * 4;
    }
    let sub = ctx.queue.submit([enc.finish()]);
    let all = floats(&readback::read(ctx, staging, total as u64 * 4, sub).await?);
    let mut out = Vec::with_capacity(reads.len());
    let mut at = 0;
    for (_, n) in reads {
        out.push(all[at..at + n].to_vec());
        at += n;
    }
    Ok(out)
}

/// WebGPU's default limit on workgroups per dimension.
const MAX_GROUPS: u32 = 65535;

/// `n` workgroups as an (x, y) grid (the shaders index `y · nx · 64 + x`).
pub fn grid(n: usize) -> Result<[u32; 3]> {
    let n = n.max(1) as u64;
    let x = n.min(MAX_GROUPS as u64);
    let y = n.div_ceil(x);
    if y > MAX_GROUPS as u64 {
        return Err(Error::Gpu(format!("{n} workgroups exceed the GPU's dispatch limits; use a smaller batch")));
    }
    Ok([x as u32, y as u32, 1])
}

/// A buffer and an element offset into it.
pub type At<'a> = (&'a wgpu::Buffer, usize);

/// The shape of a product with a `[n_out, n_in]` weight over `rows` rows, its scale `s`, and
/// whether it adds into its output.
#[derive(Debug, Clone, Copy)]
pub struct Lin {
    pub rows: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub s: f32,
    pub acc: bool,
}

/// `Lin` with scale 1.
pub fn lin(rows: usize, n_in: usize, n_out: usize, acc: bool) -> Lin {
    Lin { rows, n_in, n_out, s: 1.0, acc }
}

/// Builds `Op`s for one device's kernels.
pub struct Builder<'a> {
    pub ctx: &'a GpuContext,
    pub kernels: &'a TrainKernels,
}

impl Builder<'_> {
    /// One dispatch of `entry` with `buffers` and then `dims` (its uniform) bound.
    pub(crate) fn run<U: bytemuck::Pod>(
        &self,
        k: &Kernel,
        entry: &str,
        buffers: &[&wgpu::Buffer],
        dims: &U,
        groups: [u32; 3],
    ) -> Result<Op> {
        let u = uniform(self.ctx, "lora dims", dims);
        let mut all = buffers.to_vec();
        all.push(&u);
        Ok(Op::Run { pipeline: k.pipeline(entry)?.clone(), bg: k.bind(self.ctx, "lora", &all), groups })
    }

    /// `C (+)= scale · A·B` with strided operands (lora_matmul.wgsl): `a`/`b` give
    /// (buffer, offset, row stride, column stride), `c` (buffer, offset, row stride).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        a: (At, usize, usize),
        b: (At, usize, usize),
        c: (At, usize),
        mnk: [usize; 3],
        scale: f32,
        acc: bool,
    ) -> Result<Op> {
        let [m, n, k] = mnk;
        let gx = n.div_ceil(64);
        let gy = m.div_ceil(64);
        if gx > MAX_GROUPS as usize || gy > MAX_GROUPS as usize {
            return Err(Error::Gpu(format!("a [{m}, {n}] product exceeds the GPU's dispatch limits; use a smaller batch")));
        }
        let u = |v: usize| v as u32;
        let dims = LoraMatmulDims {
            m: u(m),
            n: u(n),
            kk: u(k),
            accumulate: acc as u32,
            a_off: u(a.0 .1),
            a_rs: u(a.1),
            a_cs: u(a.2),
            scale,
            b_off: u(b.0 .1),
            b_rs: u(b.1),
            b_cs: u(b.2),
            c_off: u(c.0 .1),
            c_rs: u(c.1),
            ..LoraMatmulDims::default()
        };
        self.run(&self.kernels.matmul, "main", &[a.0 .0, b.0 .0, c.0 .0], &dims, [u(gx.max(1)), u(gy.max(1)), 1])
    }

    /// `y[rows, out] (+)= s · x[rows, in] · Wᵀ`, `W [out, in]` at `w`.
    pub fn linear(&self, x: At, w: At, y: At, l: Lin) -> Result<Op> {
        self.matmul((x, l.n_in, 1), (w, 1, l.n_in), (y, l.n_out), [l.rows, l.n_out, l.n_in], l.s, l.acc)
    }

    /// `dx[rows, in] (+)= s · dy[rows, out] · W`.
    pub fn linear_dx(&self, dy: At, w: At, dx: At, l: Lin) -> Result<Op> {
        self.matmul((dy, l.n_out, 1), (w, l.n_in, 1), (dx, l.n_in), [l.rows, l.n_in, l.n_out], l.s, l.acc)
    }

    /// `dW[out, in] (+)= s · dy[rows, out]ᵀ · x[rows, in]`.
    pub fn linear_dw(&self, dy: At, x: At, dw: At, l: Lin) -> Result<Op> {
        self.matmul((dy, 1, l.n_out), (x, l.n_in, 1), (dw, l.n_in), [l.n_out, l.n_in, l.rows], l.s, l.acc)
    }

    /// RMSNorm `forward` (y = norm(x)) or `backward` (y (+)= ∂/∂x given dy), lora_rmsnorm.wgsl;
    /// the gain `g` at its offset.
    #[allow(clippy::too_many_arguments)]
    pub fn rmsnorm(
        &self,
        entry: &str,
        x: &wgpu::Buffer,
        g: At,
        dy: &wgpu::Buffer,
        y: &wgpu::Buffer,
        rows: usize,
        width: usize,
        acc: bool,
        eps: f32,
    ) -> Result<Op> {
        let u = |v: usize| v as u32;
        let dims = LoraNormDims { rows: u(rows), width: u(width), accumulate: acc as u32, eps, g_off: u(g.1), _pad: [0; 3] };
        self.run(&self.kernels.rmsnorm, entry, &[x, g.0, dy, y], &dims, grid(rows.div_ceil(64))?)
    }

    #[allow(clippy::too_many_arguments)]
    /// RoPE `forward` or `backward` in place on `x [rows, width]` (lora_rope.wgsl).
    pub fn rope(
        &self,
        entry: &str,
        table: &wgpu::Buffer,
        x: &wgpu::Buffer,
        rows: usize,
        width: usize,
        seq: usize,
        hs: usize,
    ) -> Result<Op> {
        let dims = LoraRopeDims { rows: rows as u32, width: width as u32, seq: seq as u32, head_size: hs as u32 };
        self.run(&self.kernels.rope, entry, &[table, x], &dims, grid((rows * width / 2).div_ceil(64))?)
    }

    /// An attention entry (lora_attention.wgsl) over `invocations` with its 4 inputs, 2
    /// outputs; `shape` is (batch, seq, n_heads, n_kv_heads, head_size).
    pub fn attention(
        &self,
        entry: &str,
        r: [&wgpu::Buffer; 4],
        w: [&wgpu::Buffer; 2],
        shape: [usize; 5],
        invocations: usize,
    ) -> Result<Op> {
        let [batch, seq, n_heads, n_kv_heads, head_size] = shape.map(|v| v as u32);
        let dims = LoraAttentionDims { batch, seq, n_heads, n_kv_heads, head_size, _pad: [0; 3] };
        let b = [r[0], r[1], r[2], r[3], w[0], w[1]];
        self.run(&self.kernels.attention, entry, &b, &dims, grid(invocations.div_ceil(64))?)
    }

    /// SwiGLU `forward` (o1 = g) or `backward` (o1 = dh1, o2 = dh3), lora_swiglu.wgsl.
    pub fn swiglu(&self, entry: &str, ins: [&wgpu::Buffer; 3], outs: [&wgpu::Buffer; 2], len: usize) -> Result<Op> {
        let b = [ins[0], ins[1], ins[2], outs[0], outs[1]];
        let dims = LoraSwigluDims { len: len as u32, _pad: [0; 3] };
        self.run(&self.kernels.swiglu, entry, &b, &dims, grid(len.div_ceil(64))?)
    }

    #[allow(clippy::too_many_arguments)]
    /// Cross-entropy per row, and its gradient in place when `grad` (lora_loss.wgsl).
    pub fn loss(
        &self,
        targets: &wgpu::Buffer,
        logits: &wgpu::Buffer,
        loss: &wgpu::Buffer,
        rows: usize,
        vocab: usize,
        scale: f32,
        grad: bool,
    ) -> Result<Op> {
        self.loss_with(targets, logits, loss, LossDims { scale, grad: grad as u32, ..LossDims::default() }, rows, vocab)
    }

    /// `loss` with every setting of `dims` (a z-loss `coef`, per-row `stats`); its `rows` and
    /// `vocab` are filled in here.
    pub fn loss_with(
        &self,
        targets: &wgpu::Buffer,
        logits: &wgpu::Buffer,
        loss: &wgpu::Buffer,
        dims: LossDims,
        rows: usize,
        vocab: usize,
    ) -> Result<Op> {
        if rows > MAX_GROUPS as usize {
            return Err(Error::Gpu(format!("{rows} rows exceed the GPU's dispatch limits; use a smaller batch")));
        }
        let dims = LossDims { rows: rows as u32, vocab: vocab as u32, ..dims };
        self.run(&self.kernels.loss, "main", &[targets, logits, loss], &dims, [rows as u32, 1, 1])
    }

    /// The AdamW pair (lora_adamw.wgsl): `norm_main` then `update`, sharing `dims`, a uniform the
    /// caller rewrites before each step.
    pub fn adamw(&self, bufs: [&wgpu::Buffer; 5], dims: &wgpu::Buffer, len: usize) -> Result<[Op; 2]> {
        let all = [bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], dims];
        let bg = self.kernels.adamw.bind(self.ctx, "lora", &all);
        let op = |entry: &str, groups| -> Result<Op> {
            Ok(Op::Run { pipeline: self.kernels.adamw.pipeline(entry)?.clone(), bg: bg.clone(), groups })
        };
        Ok([op("norm_main", [1, 1, 1])?, op("update", grid(len.div_ceil(64))?)?])
    }
}

/// lora_adamw.wgsl's `Dims` for step `step` (1-based), formed in f64 as `lora::kernels::adamw`
/// forms them.
pub fn adamw_dims(h: &crate::lora::AdamW, clip: Option<f64>, step: u32, len: usize) -> AdamwDims {
    let bc1 = 1.0 - h.beta1.powf(step as f64);
    let bc2_sqrt = (1.0 - h.beta2.powf(step as f64)).sqrt();
    let g = |v: f64| v as f32;
    AdamwDims {
        len: len as u32,
        clip: g(clip.unwrap_or(0.0)),
        decay: g(1.0 - h.lr * h.weight_decay),
        w1: g(1.0 - h.beta1),
        b2: g(h.beta2),
        w2: g(1.0 - h.beta2),
        bc2_sqrt: g(bc2_sqrt),
        step_size: g(h.lr / bc1),
        eps: g(h.eps),
        start: 0,
        _pad: [0; 2],
    }
}
