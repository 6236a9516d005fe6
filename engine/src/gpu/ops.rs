//! Each kernel alone on host data, so tests can hold it against its CPU twin (cpu::ops,
//! sampler). Not used by the backend itself; blocking, so native only.

use super::context::GpuContext;
use super::kernels::{buffer, groups, step_buffer, storage, uniform, DecodeKernels, Kernel, Step};
use super::model::Chunked;
use super::packing::WeightFormat;
use super::plan::{attention_dims, rope_dims};
use super::readback::{self, floats};
use super::uniforms::{EmbedDims, MatmulDims, NormDims, SampleDims, SwigluDims};
use super::workgroups::Workgroups;
use crate::config::Config;
use crate::error::Result;

/// The RMSNorm epsilon of the lab's kernels (llama2.c's; they are compared with `cpu::ops`).
const LAB_EPS: f32 = crate::config::LLAMA2C_NORM_EPS;

/// The shape of a `KernelLab::matmul` call.
#[derive(Debug, Clone, Copy)]
pub struct Matmul {
    /// Input width (columns of W).
    pub k: usize,
    /// First row of x read.
    pub in_row0: usize,
    pub rows: usize,
    /// The tiled prefill kernel instead of the one-row `matvec`.
    pub batched: bool,
    /// Largest weight chunk in bytes.
    pub max_bytes: u64,
}

/// A device with the kernels compiled, to run them one at a time.
pub struct KernelLab {
    ctx: GpuContext,
    k: DecodeKernels,
    step: wgpu::Buffer,
    step_bg: wgpu::BindGroup,
}

fn out_buf(ctx: &GpuContext, floats: usize) -> wgpu::Buffer {
    use wgpu::BufferUsages as U;
    buffer(ctx, "out", floats as u64 * 4, U::STORAGE | U::COPY_SRC | U::COPY_DST)
}

/// Which fused decode matvec `KernelLab::fused_matvec` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FusedMatvec {
    /// The layers' kernel (entries `plain`, `norm`, `swiglu`), in the layers' shape.
    Layer,
    /// The classifier's `norm` in the classifier's shape.
    Classifier,
    /// The same over f16 weights (needs a device with SHADER_F16).
    ClassifierF16,
}

impl KernelLab {
    pub fn new() -> Result<KernelLab> {
        Self::with(wgpu::Features::empty(), Workgroups::default())
    }

    /// A lab whose decode kernels have the shapes `wg`, on a device with those of `features`
    /// the adapter offers (SHADER_F16 for `FusedMatvec::ClassifierF16`).
    pub fn with(features: wgpu::Features, wg: Workgroups) -> Result<KernelLab> {
        let ctx = GpuContext::with_features(features)?;
        wg.check(&ctx.limits)?;
        let k = DecodeKernels::new(&ctx, wg, WeightFormat::F32);
        let (step, step_bg) = step_buffer(&ctx, &k, 1);
        ctx.check()?;
        Ok(KernelLab { ctx, k, step, step_bg })
    }

    /// Whether the lab's device has SHADER_F16.
    pub fn has_f16(&self) -> bool {
        self.k.matvec_cls_f16.is_some()
    }

    /// matvec.wgsl's entry `entry` as the decode path runs it: `W · in`, W `[m, k]` (m a multiple
    /// of 4) in chunks of at most `max_bytes`, `in` made from `x` (`[k]`, or `[2k]` for `swiglu`)
    /// and the gains `g`.
    pub fn fused_matvec(
        &self,
        (which, entry): (FusedMatvec, &str),
        (x, g): (&[f32], &[f32]),
        w: &[f32],
        k: usize,
        max_bytes: u64,
    ) -> Result<Vec<f32>> {
        let m = w.len() / k;
        let (kernel, shape, chunks) = match which {
            FusedMatvec::Layer => (&self.k.matvec, self.k.workgroups.layers, Chunked::upload(&self.ctx, "w", w, k, max_bytes)?),
            FusedMatvec::Classifier => {
                let (kernel, shape) = self.k.classifier();
                (kernel, shape, Chunked::upload(&self.ctx, "w", w, k, max_bytes)?)
            }
            FusedMatvec::ClassifierF16 => {
                let (kernel, shape) =
                    self.k.classifier_f16().ok_or_else(|| crate::Error::Gpu("this lab's device has no shader-f16".into()))?;
                (kernel, shape, Chunked::upload_f16(&self.ctx, "w", w, k, max_bytes)?)
            }
        };
        let (xb, gb, o) = (self.input(x), self.input(g), out_buf(&self.ctx, m));
        let dims: Vec<_> = chunks
            .parts
            .iter()
            .map(|(_, r)| uniform(&self.ctx, "d", &MatmulDims::chunk(r.clone(), k, m, false).with_eps(LAB_EPS)))
            .collect();
        let calls: Vec<_> = chunks
            .parts
            .iter()
            .zip(&dims)
            .map(|((b, r), d)| (kernel, entry, vec![&xb, b, &o, d, &gb], [groups(r.len(), shape.rows()), 1, 1]))
            .collect();
        Ok(floats(&self.run(Self::rows(1), &calls, &[&o])?[0]))
    }

    fn input<T: bytemuck::Pod>(&self, data: &[T]) -> wgpu::Buffer {
        storage(&self.ctx, "in", data, wgpu::BufferUsages::COPY_SRC)
    }

    /// Dispatches `calls` (kernel, entry, buffers, workgroups) in order with `step`, then reads
    /// `outs` back.
    fn run(
        &self,
        step: Step,
        calls: &[(&Kernel, &str, Vec<&wgpu::Buffer>, [u32; 3])],
        outs: &[&wgpu::Buffer],
    ) -> Result<Vec<Vec<u8>>> {
        self.ctx.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        let groups_bg: Vec<_> = calls.iter().map(|(k, _, b, _)| k.bind(&self.ctx, "lab", b)).collect();
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for ((k, entry, _, g), bg) in calls.iter().zip(&groups_bg) {
                k.dispatch(&mut pass, entry, bg, (&self.step_bg, 0), *g)?;
            }
        }
        readback::submit_and_read(&self.ctx, enc, outs)
    }

    fn rows(n: usize) -> Step {
        Step { n_rows: n as u32, ..Step::default() }
    }

    /// Row-wise RMSNorm of `x` `[rows, g.len()]`.
    pub fn rmsnorm(&self, x: &[f32], g: &[f32]) -> Result<Vec<f32>> {
        let rows = x.len() / g.len();
        let (xb, gb, o) = (self.input(x), self.input(g), out_buf(&self.ctx, x.len()));
        let d = uniform(&self.ctx, "d", &NormDims { dim: g.len() as u32, eps: LAB_EPS, ..NormDims::default() });
        let r = self.run(Self::rows(rows), &[(&self.k.rmsnorm, "main", vec![&xb, &gb, &o, &d], [rows as u32, 1, 1])], &[&o])?;
        Ok(floats(&r[0]))
    }

    /// `init + W · x` per row (`init` zero when `None`), W `[m, k]` split into chunks of at
    /// most `mm.max_bytes`, `mm.rows` rows of `x` read from `mm.in_row0`.
    pub fn matmul(&self, x: &[f32], w: &[f32], init: Option<&[f32]>, mm: Matmul) -> Result<Vec<f32>> {
        let Matmul { k, in_row0, rows, batched, max_bytes } = mm;
        let m = w.len() / k;
        let chunks = Chunked::upload(&self.ctx, "w", w, k, max_bytes)?;
        let xb = self.input(x);
        let o = out_buf(&self.ctx, rows * m);
        if let Some(init) = init {
            self.ctx.queue.write_buffer(&o, 0, bytemuck::cast_slice(init));
        }
        let dims: Vec<_> = chunks
            .parts
            .iter()
            .map(|(_, r)| uniform(&self.ctx, "d", &MatmulDims::chunk(r.clone(), k, m, init.is_some())))
            .collect();
        let calls: Vec<_> = chunks
            .parts
            .iter()
            .zip(&dims)
            .map(|((b, r), d)| {
                let g = if batched { [groups(r.len(), 64), groups(rows, 16), 1] } else { [groups(r.len(), 16), rows as u32, 1] };
                (&self.k.matmul, if batched { "matmul" } else { "matvec" }, vec![&xb, b, &o, d], g)
            })
            .collect();
        let step = Step { n_rows: rows as u32, in_row0: in_row0 as u32, ..Step::default() };
        Ok(floats(&self.run(step, &calls, &[&o])?[0]))
    }

    /// RoPE of `qkv` `[rows, dim + 2 kv_dim]` at positions pos0..: (q `[rows, dim]`, the cache
    /// `[2, seq_len, kv_dim]` starting from `cache`).
    pub fn rope(&self, qkv: &[f32], c: &Config, pos0: usize, cache: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let width = c.q_dim() + 2 * c.kv_dim();
        let rows = qkv.len() / width;
        let (qb, table, kv) = (self.input(qkv), self.input(&super::model::rope_table(c)), self.input(cache));
        let q = out_buf(&self.ctx, rows * c.q_dim());
        let d = uniform(&self.ctx, "d", &rope_dims(c));
        let step = Step { n_rows: rows as u32, pos0: pos0 as u32, ..Step::default() };
        let r = self.run(
            step,
            &[(&self.k.rope, "main", vec![&qb, &table, &q, &kv, &d], [groups(width / 2, 64), rows as u32, 1])],
            &[&q, &kv],
        )?;
        Ok((floats(&r[0]), floats(&r[1])))
    }

    /// Attention of `q` `[rows, dim]` at positions pos0.. over `cache` `[2, seq_len, kv_dim]`:
    /// (probabilities `[rows, n_heads, seq_len]`, output `[rows, dim]`).
    pub fn attention(&self, q: &[f32], cache: &[f32], c: &Config, pos0: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let rows = q.len() / c.q_dim();
        let (qb, kv) = (self.input(q), self.input(cache));
        let att = out_buf(&self.ctx, rows * c.n_heads * c.seq_len);
        let o = out_buf(&self.ctx, rows * c.q_dim());
        let d = uniform(&self.ctx, "d", &attention_dims(c));
        let step = Step { n_rows: rows as u32, pos0: pos0 as u32, ..Step::default() };
        let r = self.run(
            step,
            &[(&self.k.attention, "main", vec![&qb, &kv, &att, &o, &d], [c.n_heads as u32, rows as u32, 1])],
            &[&att, &o],
        )?;
        Ok((floats(&r[0]), floats(&r[1])))
    }

    /// silu(h1) ⊙ h3 for `h` `[rows, 2 hidden]`.
    pub fn swiglu(&self, h: &[f32], hidden: usize) -> Result<Vec<f32>> {
        let rows = h.len() / (2 * hidden);
        let (hb, o) = (self.input(h), out_buf(&self.ctx, rows * hidden));
        let d = uniform(&self.ctx, "d", &SwigluDims { hidden: hidden as u32, ..SwigluDims::default() });
        let r = self.run(
            Self::rows(rows),
            &[(&self.k.swiglu, "main", vec![&hb, &o, &d], [groups(hidden, 64), rows as u32, 1])],
            &[&o],
        )?;
        Ok(floats(&r[0]))
    }

    /// Rows of `table` `[vocab, dim]` for `tokens`, the table split into chunks of `max_bytes`.
    pub fn embed(&self, table: &[f32], dim: usize, tokens: &[u32], max_bytes: u64) -> Result<Vec<f32>> {
        let rows = tokens.len();
        let chunks = Chunked::upload(&self.ctx, "table", table, dim, max_bytes)?;
        let (tb, x) = (self.input(tokens), out_buf(&self.ctx, rows * dim));
        let dims: Vec<_> = chunks
            .parts
            .iter()
            .map(|(_, r)| {
                uniform(&self.ctx, "d", &EmbedDims { row0: r.start as u32, rows: r.len() as u32, dim: dim as u32, _pad: 0 })
            })
            .collect();
        let calls: Vec<_> = chunks
            .parts
            .iter()
            .zip(&dims)
            .map(|((b, _), d)| (&self.k.embed, "main", vec![b, &tb, &x, d], [groups(dim, 64), rows as u32, 1]))
            .collect();
        Ok(floats(&self.run(Self::rows(rows), &calls, &[&x])?[0]))
    }

    /// The GPU sampler on `logits`: argmax at temperature 0, else softmax and multinomial or
    /// top-p with `coin`. Returns (token, the probabilities it computed).
    pub fn sample(&self, logits: &[f32], temperature: f32, topp: f32, coin: f32) -> Result<(u32, Vec<f32>)> {
        let v = logits.len();
        let (lb, probs) = (self.input(logits), out_buf(&self.ctx, v));
        let tokens = out_buf(&self.ctx, 2);
        let d = uniform(&self.ctx, "d", &SampleDims { vocab: v as u32, ..SampleDims::default() });
        let (entry, mode) = match (temperature == 0.0, topp <= 0.0 || topp >= 1.0) {
            (true, _) => ("argmax", 0),
            (false, true) => ("sample", 1),
            (false, false) => ("sample", 2),
        };
        let cutoff = (1.0f32 - topp) / (v as f32 - 1.0);
        let step = Step { mode, coin, temperature, topp, cutoff, ..Step::default() };
        let r = self.run(step, &[(&self.k.sample, entry, vec![&lb, &probs, &tokens, &d], [1, 1, 1])], &[&tokens, &probs])?;
        Ok((u32::from_le_bytes([r[0][4], r[0][5], r[0][6], r[0][7]]), floats(&r[1])))
    }
}
