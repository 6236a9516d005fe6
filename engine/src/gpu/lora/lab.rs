//! Each training kernel alone on host data, so tests can hold it against its CPU twin in
//! `lora::kernels`. Not used by the trainer; blocking, so native only. Gradient outputs start
//! from the values passed in (the kernels that add into them add onto those).

use super::model::usage;
use super::ops::{encode, lin, Builder, Lin, Op};
use super::train_kernels::TrainKernels;
use crate::config::Config;
use crate::config::LLAMA2C_NORM_EPS;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{buffer, storage};
use crate::gpu::readback::{self, floats};
use crate::gpu::rope_table;
use crate::lora::kernels::AttnShape;
use crate::lora::AdamW;

/// A device with the training kernels compiled.
pub struct LoraLab {
    ctx: GpuContext,
    kernels: TrainKernels,
}

impl LoraLab {
    pub fn new() -> Result<LoraLab> {
        let ctx = GpuContext::new()?;
        let kernels = TrainKernels::new(&ctx);
        ctx.check()?;
        Ok(LoraLab { ctx, kernels })
    }

    fn b(&self) -> Builder<'_> {
        Builder { ctx: &self.ctx, kernels: &self.kernels }
    }

    fn buf<T: bytemuck::Pod>(&self, data: &[T]) -> wgpu::Buffer {
        if data.is_empty() {
            return buffer(&self.ctx, "lab", 4, usage());
        }
        storage(&self.ctx, "lab", data, wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST)
    }

    /// Runs `ops`, then reads `outs` back.
    fn exec(&self, ops: &[Op], outs: &[&wgpu::Buffer]) -> Result<Vec<Vec<f32>>> {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        encode(&mut enc, ops);
        Ok(readback::submit_and_read(&self.ctx, enc, outs)?.iter().map(|b| floats(b)).collect())
    }

    fn one(&self, op: Result<Op>, out: &wgpu::Buffer) -> Result<Vec<f32>> {
        Ok(self.exec(&[op?], &[out])?.remove(0))
    }

    /// `y (+)= s · x·wᵀ` (`matmul` / `matmul_add_scaled`); `y` gives the start and the length.
    pub fn matmul(&self, y: &[f32], x: &[f32], w: &[f32], n_in: usize, s: f32, acc: bool) -> Result<Vec<f32>> {
        let n_out = w.len() / n_in;
        let (yb, xb, wb) = (self.buf(y), self.buf(x), self.buf(w));
        let l = Lin { s, acc, ..lin(x.len() / n_in, n_in, n_out, acc) };
        self.one(self.b().linear((&xb, 0), (&wb, 0), (&yb, 0), l), &yb)
    }

    /// `dx += s · dy·w` (`matmul_dx`).
    pub fn matmul_dx(&self, dx: &[f32], dy: &[f32], w: &[f32], n_in: usize, s: f32) -> Result<Vec<f32>> {
        let n_out = w.len() / n_in;
        let (db, yb, wb) = (self.buf(dx), self.buf(dy), self.buf(w));
        let l = Lin { s, ..lin(dx.len() / n_in, n_in, n_out, true) };
        self.one(self.b().linear_dx((&yb, 0), (&wb, 0), (&db, 0), l), &db)
    }

    /// `dw += s · dyᵀ·x` (`matmul_dw`).
    pub fn matmul_dw(&self, dw: &[f32], dy: &[f32], x: &[f32], n_in: usize, s: f32) -> Result<Vec<f32>> {
        let n_out = dw.len() / n_in;
        let (db, yb, xb) = (self.buf(dw), self.buf(dy), self.buf(x));
        let l = Lin { s, ..lin(x.len() / n_in, n_in, n_out, true) };
        self.one(self.b().linear_dw((&yb, 0), (&xb, 0), (&db, 0), l), &db)
    }

    /// `rmsnorm` over rows of `g.len()`.
    pub fn rmsnorm(&self, x: &[f32], g: &[f32]) -> Result<Vec<f32>> {
        let (xb, gb, yb) = (self.buf(x), self.buf(g), self.buf(&vec![0f32; x.len()]));
        self.one(self.b().rmsnorm("forward", &xb, (&gb, 0), &xb, &yb, x.len() / g.len(), g.len(), false, LLAMA2C_NORM_EPS), &yb)
    }

    /// `rmsnorm_bwd`: `dx += …`.
    pub fn rmsnorm_bwd(&self, dx: &[f32], x: &[f32], g: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        let (xb, gb, yb, db) = (self.buf(x), self.buf(g), self.buf(dy), self.buf(dx));
        self.one(self.b().rmsnorm("backward", &xb, (&gb, 0), &yb, &db, x.len() / g.len(), g.len(), true, LLAMA2C_NORM_EPS), &db)
    }

    /// `rope` (`backward`: `rope_bwd`) in place on `x [N, width]`.
    pub fn rope(&self, x: &[f32], width: usize, seq: usize, hs: usize, backward: bool) -> Result<Vec<f32>> {
        let c = Config::llama2c([hs, hs, 1, 1, 1, 1, seq], true);
        let (tb, xb) = (self.buf(&rope_table(&c)), self.buf(x));
        let entry = if backward { "backward" } else { "forward" };
        self.one(self.b().rope(entry, &tb, &xb, x.len() / width, width, seq, hs), &xb)
    }

    fn shape(s: AttnShape) -> [usize; 5] {
        [s.batch, s.seq, s.n_heads, s.n_kv_heads, s.head_size]
    }

    /// `attention`: `(out, probs)`.
    pub fn attention(&self, q: &[f32], k: &[f32], v: &[f32], s: AttnShape) -> Result<(Vec<f32>, Vec<f32>)> {
        let (qb, kb, vb) = (self.buf(q), self.buf(k), self.buf(v));
        let (pb, ob) = (self.buf(&vec![0f32; s.probs_len()]), self.buf(&vec![0f32; q.len()]));
        let op = self.b().attention("forward", [&qb, &kb, &vb, &qb], [&pb, &ob], Self::shape(s), s.batch * s.n_heads * s.seq)?;
        let mut out = self.exec(&[op], &[&ob, &pb])?;
        Ok((out.remove(0), out.remove(0)))
    }

    /// `attention_bwd` from zero: `(dq, dk, dv)`.
    pub fn attention_bwd(
        &self,
        dout: &[f32],
        probs: &[f32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        s: AttnShape,
    ) -> Result<[Vec<f32>; 3]> {
        let (gb, pb, qb, kb, vb) = (self.buf(dout), self.buf(probs), self.buf(q), self.buf(k), self.buf(v));
        let (ds, dq) = (self.buf(&vec![0f32; probs.len()]), self.buf(&vec![0f32; q.len()]));
        let (dk, dv) = (self.buf(&vec![0f32; k.len()]), self.buf(&vec![0f32; v.len()]));
        let shape = Self::shape(s);
        let ops = [
            self.b().attention("backward_q", [&gb, &pb, &kb, &vb], [&ds, &dq], shape, s.batch * s.n_heads * s.seq)?,
            self.b().attention("backward_kv", [&gb, &pb, &qb, &ds], [&dk, &dv], shape, k.len())?,
        ];
        let mut out = self.exec(&ops, &[&dq, &dk, &dv])?;
        Ok([out.remove(0), out.remove(0), out.remove(0)])
    }

    /// `swiglu`.
    pub fn swiglu(&self, h1: &[f32], h3: &[f32]) -> Result<Vec<f32>> {
        let (ab, bb, gb, tb) = (self.buf(h1), self.buf(h3), self.buf(&vec![0f32; h1.len()]), self.buf(&vec![0f32; h1.len()]));
        self.one(self.b().swiglu("forward", [&ab, &bb, &ab], [&gb, &tb], h1.len()), &gb)
    }

    /// `swiglu_bwd` from zero: `(dh1, dh3)`.
    pub fn swiglu_bwd(&self, dg: &[f32], h1: &[f32], h3: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let (ab, bb, gb) = (self.buf(h1), self.buf(h3), self.buf(dg));
        let (d1, d3) = (self.buf(&vec![0f32; h1.len()]), self.buf(&vec![0f32; h1.len()]));
        let op = self.b().swiglu("backward", [&ab, &bb, &gb], [&d1, &d3], h1.len())?;
        let mut out = self.exec(&[op], &[&d1, &d3])?;
        Ok((out.remove(0), out.remove(0)))
    }

    /// `cross_entropy` per row and `cross_entropy_bwd`: `(row losses, gradient)`.
    pub fn cross_entropy(&self, logits: &[f32], targets: &[u32], vocab: usize, scale: f32) -> Result<(Vec<f32>, Vec<f32>)> {
        let (tb, lb, rb) = (self.buf(targets), self.buf(logits), self.buf(&vec![0f32; targets.len()]));
        let op = self.b().loss(&tb, &lb, &rb, targets.len(), vocab, scale, true)?;
        let mut out = self.exec(&[op], &[&rb, &lb])?;
        Ok((out.remove(0), out.remove(0)))
    }

    /// The global norm, clipping and `adamw` at `step`: `(p, m, v, norm)`.
    #[allow(clippy::too_many_arguments)]
    pub fn adamw(
        &self,
        p: &[f32],
        g: &[f32],
        m: &[f32],
        v: &[f32],
        step: u32,
        h: &AdamW,
        clip: Option<f64>,
    ) -> Result<[Vec<f32>; 4]> {
        let (gb, pb, mb, vb, nb) = (self.buf(g), self.buf(p), self.buf(m), self.buf(v), self.buf(&[0f32]));
        let dims = buffer(&self.ctx, "adamw", 48, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST);
        self.ctx.queue.write_buffer(&dims, 0, bytemuck::bytes_of(&super::ops::adamw_dims(h, clip, step, p.len())));
        let ops = self.b().adamw([&gb, &pb, &mb, &vb, &nb], &dims, p.len())?;
        let mut out = self.exec(&ops, &[&pb, &mb, &vb, &nb])?;
        Ok([out.remove(0), out.remove(0), out.remove(0), out.remove(0)])
    }
}
