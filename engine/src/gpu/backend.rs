//! `GpuBackend`: weights, KV cache and activations resident on one device; every forward pass
//! (one token, a batch, or a whole prompt) is recorded into one command buffer and one submit.

use super::context::GpuContext;
use super::edits::GpuEdits;
use super::kernels::{buffer, DecodeKernels, Step, STEP_SLOT};
use super::model::{GpuSource, GpuWeights};
use super::packing::WeightFormat;
use super::plan::Plan;
use super::readback::{self, floats};
use super::state::{choose_batch, Acts};
use super::workgroups::Workgroups;
use crate::config::Config;
use crate::cpu::check_step;
use crate::error::{Error, Result};
use crate::quant_weights::QuantWeights;
use crate::trace::{Edits, Inspection, Inspector, StepTrace};
use crate::weights::Weights;

/// Construction settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuOptions {
    /// Largest weight chunk in bytes; `None` means the device's storage-binding limit. A tiny
    /// value forces the row splitting that large embeddings need (tests use it).
    pub max_weight_binding: Option<u64>,
    /// Most positions processed together in a prefill or inspection chunk.
    pub max_batch: usize,
    /// Decode steps kept in flight by `generate` (the readback ring's length).
    pub in_flight: usize,
    /// Fused one-row (decode) dispatches — RMSNorm and SwiGLU folded into the following
    /// matvec, vec4 loads — where the shapes allow; off runs the unfused kernels everywhere.
    pub fused: bool,
    /// With `fused`: plain decoding (one row, no edits, no trace) runs each layer as three
    /// dispatches (q|k|v; attention with the output projection; the whole FFN), the residual
    /// sums split by heads and hidden blocks and completed by the next dispatch (`decode3`),
    /// where the shapes allow; off keeps the five-dispatch fused layer.
    pub three_dispatch: bool,
    /// The decode classifier reads an f16 copy of its weights (half the bytes of the largest
    /// matvec; logits then carry f16 rounding). Needs WebGPU's `shader-f16` and the fused
    /// path; refused with `Error::Gpu` where either is missing. Off by default.
    pub f16_classifier: bool,
    /// Workgroup shapes of the decode kernels (`gpu::tune`'s choice, `Tuning::workgroups_for`);
    /// `None` is the default shapes. Checked against the device's limits at load
    /// (`Error::InvalidSetting` when it cannot run them).
    pub workgroups: Option<Workgroups>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            max_weight_binding: None,
            max_batch: 128,
            in_flight: 4,
            fused: true,
            three_dispatch: true,
            f16_classifier: false,
            workgroups: None,
        }
    }
}

/// Counters for the structural checks and `bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Queue submits.
    pub submits: u64,
    /// Bytes copied from the GPU to the CPU.
    pub bytes_read: u64,
    /// Tokens sampled on the GPU by `generate` (including any discarded after a stop).
    pub sampled: u64,
    /// Prompt positions run through a batched prefill.
    pub prefilled: u64,
}

/// Attention and residual capture buffers (mappable), for `rows` rows per submit.
pub(super) struct Capture {
    pub rows: usize,
    pub att: wgpu::Buffer,
    pub resid: wgpu::Buffer,
}

/// Per-row results of a batch: `[rows, V]` logits, `[L, rows, H, S]` attention, `[L, rows, D]`.
pub(super) struct Rows {
    pub logits: Vec<f32>,
    pub att: Vec<f32>,
    pub resid: Vec<f32>,
}

pub struct GpuBackend {
    pub(super) ctx: GpuContext,
    pub(super) config: Config,
    pub(super) kernels: DecodeKernels,
    pub(super) acts: Acts,
    pub(super) plan: Plan,
    pub(super) opts: GpuOptions,
    pub(super) stats: GpuStats,
    /// `[batch, V]` mappable copy of the logits.
    pub(super) logits_rb: wgpu::Buffer,
    /// Small mappable buffers, one per token in flight.
    pub(super) ring: Vec<wgpu::Buffer>,
    pub(super) capture: Option<Capture>,
    /// Knock-outs and steering in force (`set_edits`).
    edits: Option<GpuEdits>,
    host_logits: Vec<f32>,
    pub(super) weights: GpuWeights,
}

/// Capture buffers are kept under this size; inspection chunks shrink to fit.
const CAPTURE_BUDGET: u64 = 64 << 20;

impl GpuBackend {
    /// Opens a device and uploads `weights`.
    pub async fn new_async(weights: &Weights, opts: GpuOptions) -> Result<GpuBackend> {
        let want = if opts.f16_classifier { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() };
        let ctx = GpuContext::with_features_async(want).await?;
        Self::with_context(ctx, weights, opts).await
    }

    /// Blocking `new_async` for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(weights: &Weights, opts: GpuOptions) -> Result<GpuBackend> {
        pollster::block_on(Self::new_async(weights, opts))
    }

    /// Opens a device and uploads a model held quantized (or in F16/BF16), keeping it so on the
    /// GPU: halves as read, quantized types in int8 form (`gpu::packing`; the kernels convert
    /// as they read). `Error::Gpu` when its matrices take neither form (`kept_format`; the
    /// caller then uploads the f32 copy).
    pub async fn new_quantized_async(weights: &QuantWeights, opts: GpuOptions) -> Result<GpuBackend> {
        GpuSource::Quantized(weights).format()?;
        // shader-f16 where the adapter has it (F16 matrices are then read as f16), else none.
        let ctx = GpuContext::with_features_async(wgpu::Features::SHADER_F16).await?;
        Self::upload_to(ctx, GpuSource::Quantized(weights), opts).await
    }

    /// Blocking `new_quantized_async` for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_quantized(weights: &QuantWeights, opts: GpuOptions) -> Result<GpuBackend> {
        pollster::block_on(Self::new_quantized_async(weights, opts))
    }

    /// Uploads `weights` to an existing device.
    pub async fn with_context(ctx: GpuContext, weights: &Weights, opts: GpuOptions) -> Result<GpuBackend> {
        Self::upload_to(ctx, GpuSource::F32(weights), opts).await
    }

    async fn upload_to(ctx: GpuContext, weights: GpuSource<'_>, opts: GpuOptions) -> Result<GpuBackend> {
        let c = weights.config();
        let format = on_device(weights.format()?, &ctx);
        c.validate().map_err(Error::InvalidSetting)?;
        let limit = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
        let max_weight = opts.max_weight_binding.map_or(limit, |m| m.min(limit));
        let batch = choose_batch(&c, &ctx.limits, opts.max_batch)?;
        let in_flight = opts.in_flight.max(1);
        if opts.f16_classifier && !ctx.device.features().contains(wgpu::Features::SHADER_F16) {
            return Err(Error::Gpu(format!(
                "the f16 classifier needs WebGPU's shader-f16 feature, which {} does not offer",
                ctx.adapter
            )));
        }
        let wg = opts.workgroups.unwrap_or_default();
        wg.check(&ctx.limits)?;
        let (kernels, gw, acts, plan, logits_rb, ring) = ctx
            .scoped("loading the model onto the GPU", || -> Result<_> {
                let kernels = DecodeKernels::new(&ctx, wg, format);
                let gw = GpuWeights::upload(&ctx, weights, format, max_weight, opts.f16_classifier)?;
                let acts = Acts::new(&ctx, &kernels, &c, batch, 1);
                let plan = Plan::new(&ctx, &kernels, &c, &gw, &acts, opts.fused, opts.three_dispatch);
                let rb = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
                let logits_rb = buffer(&ctx, "logits readback", (batch * c.vocab_size * 4) as u64, rb);
                let ring = (0..in_flight).map(|_| buffer(&ctx, "token readback", 8, rb)).collect();
                Ok((kernels, gw, acts, plan, logits_rb, ring))
            })
            .await??;
        if opts.f16_classifier && !plan.is_f16_classifier() {
            return Err(Error::Gpu(
                "the f16 classifier needs the fused decode path (GpuOptions::fused, vec4-aligned weight chunks)".into(),
            ));
        }
        Ok(GpuBackend {
            ctx,
            config: c,
            kernels,
            acts,
            plan,
            opts: GpuOptions { in_flight, ..opts },
            stats: GpuStats::default(),
            logits_rb,
            ring,
            capture: None,
            edits: None,
            host_logits: vec![0.0; c.vocab_size],
            weights: gw,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    /// "gpu (adapter name (backend))".
    pub fn name(&self) -> String {
        format!("gpu ({})", self.ctx.adapter)
    }
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }
    /// The options in force (`in_flight` at least 1).
    pub fn options(&self) -> GpuOptions {
        self.opts
    }
    /// Whether one-row passes run the fused dispatches (`GpuOptions::fused` and shapes that
    /// allow them: vec4-aligned weight chunks, inputs of at most 2816 floats).
    pub fn is_fused(&self) -> bool {
        self.plan.is_fused()
    }
    /// Whether plain decoding runs three dispatches per layer (`GpuOptions::three_dispatch` and
    /// shapes that allow it: wo, w1|w3 and w2 each one weight chunk, hidden a multiple of 4).
    pub fn is_three_dispatch(&self) -> bool {
        self.plan.is_decode3()
    }
    /// The format the weights are kept in on the GPU.
    pub fn weight_format(&self) -> WeightFormat {
        self.kernels.format
    }
    /// Bytes of GPU memory the weights take (`GpuWeights::bytes`).
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }
    /// The decode kernels' workgroup shapes in use.
    pub fn workgroups(&self) -> Workgroups {
        self.kernels.workgroups
    }
    /// Whether the decode classifier reads f16 weights (`GpuOptions::f16_classifier`).
    pub fn is_f16_classifier(&self) -> bool {
        self.plan.is_f16_classifier()
    }
    /// Compute dispatches in one decoded token's pass (all in one compute pass, one submit).
    pub fn dispatches_per_token(&self) -> usize {
        self.plan.decode_dispatches()
    }
    pub fn stats(&self) -> GpuStats {
        self.stats
    }
    pub fn reset_stats(&mut self) {
        self.stats = GpuStats::default();
    }
    /// Rows per batch chunk actually used (limited by the device).
    pub fn batch(&self) -> usize {
        self.acts.batch
    }

    /// Knock-outs and steering for every later pass (prefill, decode, inspection) until
    /// changed; `None` runs the model unchanged. Uploads a few small buffers; nothing waits.
    pub fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        self.edits = match edits {
            Some(e) => {
                e.check(&self.config)?;
                Some(GpuEdits::new(&self.ctx, &self.kernels, e, &self.acts))
            }
            None => None,
        };
        Ok(())
    }

    pub(super) fn write_step(&self, slot: usize, step: Step) {
        self.ctx.queue.write_buffer(&self.acts.step, slot as u64 * STEP_SLOT, bytemuck::bytes_of(&step));
    }

    pub(super) fn write_tokens(&self, pos0: usize, tokens: &[u32]) {
        self.ctx.queue.write_buffer(&self.acts.tokens, pos0 as u64 * 4, bytemuck::cast_slice(tokens));
    }

    pub(super) fn encoder(&self) -> wgpu::CommandEncoder {
        self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tinylm") })
    }

    pub(super) fn submit(&mut self, enc: wgpu::CommandEncoder) -> wgpu::SubmissionIndex {
        self.stats.submits += 1;
        self.ctx.queue.submit([enc.finish()])
    }

    pub(super) async fn read(&mut self, buf: &wgpu::Buffer, bytes: u64, sub: wgpu::SubmissionIndex) -> Result<Vec<u8>> {
        self.stats.bytes_read += bytes;
        readback::read(&self.ctx, buf, bytes, sub).await
    }

    /// Records embedding and every layer for `rows` rows with the step in `slot`, copying
    /// attention and residuals out after each layer when `capture` is given. Returns the open
    /// pass so the caller can append the head.
    pub(super) fn encode_body(
        &self,
        enc: &mut wgpu::CommandEncoder,
        slot: usize,
        rows: usize,
        capture: Option<&Capture>,
    ) -> Result<wgpu::ComputePass<'static>> {
        let step = (&self.acts.step_bg, self.acts.slot(slot));
        let k = &self.kernels;
        let mut pass = begin(enc);
        self.plan.embed(k, &mut pass, rows, step)?;
        for l in 0..self.config.n_layers {
            self.plan.layer(k, &mut pass, l, rows, step, self.edits.as_ref().map(|e| &e.layers[l]))?;
            if let Some(cap) = capture {
                drop(pass);
                // Dense [L, rows, ...] so a one-row trace reads back only its own row.
                let c = &self.config;
                let att = (rows * c.n_heads * c.seq_len * 4) as u64;
                enc.copy_buffer_to_buffer(&self.acts.att, 0, &cap.att, l as u64 * att, att);
                let x = (rows * c.dim * 4) as u64;
                enc.copy_buffer_to_buffer(&self.acts.x, 0, &cap.resid, l as u64 * x, x);
                pass = begin(enc);
            }
        }
        Ok(pass)
    }

    /// Records a whole pass over `rows` rows with the step in `slot` — embedding, layers (with
    /// `capture`), and the head over `head_rows` rows with the `head` step — into one compute
    /// pass, returned open for the sampler. A plain one-row pass (no capture, no edits) takes
    /// the three-dispatch layer where the plan has it.
    pub(super) fn encode_pass(
        &self,
        enc: &mut wgpu::CommandEncoder,
        slot: usize,
        rows: usize,
        head_rows: usize,
        head: (&wgpu::BindGroup, u32),
        capture: Option<&Capture>,
    ) -> Result<wgpu::ComputePass<'static>> {
        if (rows, head_rows) == (1, 1) && capture.is_none() && self.edits.is_none() {
            let mut pass = begin(enc);
            let step = (&self.acts.step_bg, self.acts.slot(slot));
            if self.plan.decode3(&self.kernels, &mut pass, step, head)? {
                return Ok(pass);
            }
        }
        let mut pass = self.encode_body(enc, slot, rows, capture)?;
        self.plan.head(&self.kernels, &mut pass, rows, head_rows, head)?;
        Ok(pass)
    }

    /// Makes sure capture buffers exist; returns the rows per capturing submit.
    fn ensure_capture(&mut self) -> usize {
        if self.capture.is_none() {
            let c = &self.config;
            let per_row = (c.n_layers * (c.n_heads * c.seq_len + c.dim) * 4) as u64;
            let rows = ((CAPTURE_BUDGET / per_row.max(1)) as usize).clamp(1, self.acts.batch);
            let rb = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
            let att = buffer(&self.ctx, "attention capture", (c.n_layers * rows * c.n_heads * c.seq_len * 4) as u64, rb);
            let resid = buffer(&self.ctx, "residual capture", (c.n_layers * rows * c.dim * 4) as u64, rb);
            self.capture = Some(Capture { rows, att, resid });
        }
        self.capture.as_ref().map_or(1, |c| c.rows)
    }

    /// Runs `tokens` at positions pos0.. as one batch (one submit) and reads back the logits of
    /// every row, plus attention and residuals when `capture`.
    pub(super) async fn run_rows(&mut self, pos0: usize, tokens: &[u32], capture: bool) -> Result<Rows> {
        let c = self.config;
        let rows = tokens.len();
        self.write_tokens(pos0, tokens);
        let last = (pos0 + rows - 1) as u32;
        self.write_step(0, Step { n_rows: rows as u32, pos0: pos0 as u32, ..Step::default() });
        self.write_step(self.acts.head_slot(), Step { n_rows: rows as u32, pos0: last, ..Step::default() });
        let cap = if capture {
            self.capture.as_ref().map(|c| Capture { rows: c.rows, att: c.att.clone(), resid: c.resid.clone() })
        } else {
            None
        };
        let mut enc = self.encoder();
        let head = (&self.acts.step_bg, self.acts.slot(self.acts.head_slot()));
        drop(self.encode_pass(&mut enc, 0, rows, rows, head, cap.as_ref())?);
        let lbytes = (rows * c.vocab_size * 4) as u64;
        enc.copy_buffer_to_buffer(&self.acts.logits, 0, &self.logits_rb, 0, lbytes);
        let sub = self.submit(enc);
        let logits_rb = self.logits_rb.clone();
        let logits = floats(&self.read(&logits_rb, lbytes, sub.clone()).await?);
        let (mut att, mut resid) = (Vec::new(), Vec::new());
        if let Some(cap) = cap {
            let abytes = (c.n_layers * rows * c.n_heads * c.seq_len * 4) as u64;
            att = floats(&self.read(&cap.att, abytes, sub.clone()).await?);
            resid = floats(&self.read(&cap.resid, (c.n_layers * rows * c.dim * 4) as u64, sub).await?);
        }
        self.ctx.check()?;
        Ok(Rows { logits, att, resid })
    }

    /// run.c `forward(token, pos)` on the GPU; fills `trace` when given.
    pub async fn forward_async(&mut self, token: u32, pos: usize, trace: Option<&mut StepTrace>) -> Result<&mut [f32]> {
        check_step(&self.config, token, pos)?;
        let capture = trace.is_some();
        if capture {
            self.ensure_capture();
        }
        let r = self.run_rows(pos, &[token], capture).await?;
        self.host_logits.copy_from_slice(&r.logits[..self.config.vocab_size]);
        if let Some(tr) = trace {
            let c = self.config;
            for l in 0..c.n_layers {
                for h in 0..c.n_heads {
                    let at = (l * c.n_heads + h) * c.seq_len;
                    tr.attn_row(l, h).copy_from_slice(&r.att[at..at + pos + 1]);
                }
                let at = l * c.dim;
                tr.resid_row(l).copy_from_slice(&r.resid[at..at + c.dim]);
            }
        }
        Ok(&mut self.host_logits)
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let c = &self.config;
        if tokens.is_empty() {
            return Err(Error::InvalidSetting("nothing to run: the token list is empty".into()));
        }
        if tokens.len() > c.seq_len {
            return Err(Error::PromptTooLong { tokens: tokens.len(), seq_len: c.seq_len });
        }
        match tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            Some(&bad) => Err(Error::TokenOutOfRange { id: bad as i64, vocab_size: c.vocab_size }),
            None => Ok(()),
        }
    }

    /// The whole of `tokens` (positions 0..) batched, chunk by chunk, keeping everything: the
    /// GPU twin of `trace::inspect`.
    pub async fn inspect_async(&mut self, tokens: &[u32]) -> Result<Inspection> {
        let mut run = Inspector::new(&self.config, tokens)?;
        while !self.inspect_advance_async(&mut run).await? {}
        run.finish()
    }

    /// Runs `run`'s next chunk of positions as one batch (as many rows as the capture buffers
    /// hold), so a caller can show progress and stop between chunks; returns whether every
    /// position has run. As with `Inspector::advance`, nothing else may use the backend until
    /// the inspection finishes (the KV cache holds its earlier positions).
    pub async fn inspect_advance_async(&mut self, run: &mut Inspector) -> Result<bool> {
        let per = self.ensure_capture();
        let c = self.config;
        let (out, next) = run.parts_mut();
        if out.config != c {
            return Err(Error::InvalidSetting("an inspection continues on the model it began on".into()));
        }
        let (start, n) = (*next, out.tokens.len());
        if start == n {
            return Ok(true);
        }
        if start == 0 {
            self.check_tokens(&out.tokens)?;
        }
        let (l, h, d, v, s) = (c.n_layers, c.n_heads, c.dim, c.vocab_size, c.seq_len);
        let rows = per.min(n - start);
        let r = self.run_rows(start, &out.tokens[start..start + rows], true).await?;
        out.logits[start * v..(start + rows) * v].copy_from_slice(&r.logits);
        for li in 0..l {
            for t in 0..rows {
                let pos = start + t;
                for hi in 0..h {
                    let src = ((li * rows + t) * h + hi) * s;
                    let dst = ((li * h + hi) * n + pos) * n;
                    out.attn[dst..dst + pos + 1].copy_from_slice(&r.att[src..src + pos + 1]);
                }
                let src = (li * rows + t) * d;
                let dst = (li * n + pos) * d;
                out.resid[dst..dst + d].copy_from_slice(&r.resid[src..src + d]);
            }
        }
        *next = start + rows;
        Ok(*next == n)
    }

    /// Records a prefill of `tokens` at positions 0.. in batch chunks, ending with the logits of
    /// the last position in logits row 0 (an open pass is returned for the sampler).
    pub(super) fn encode_prefill(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        tokens: &[u32],
        head: Step,
    ) -> Result<wgpu::ComputePass<'static>> {
        let b = self.acts.batch;
        self.write_tokens(0, tokens);
        let n = tokens.len();
        let chunks = n.div_ceil(b);
        let mut last_rows = 0;
        let mut pass = None;
        for (i, start) in (0..n).step_by(b).enumerate() {
            let rows = (n - start).min(b);
            self.write_step(i, Step { n_rows: rows as u32, pos0: start as u32, ..Step::default() });
            drop(pass.take());
            pass = Some(self.encode_body(enc, i, rows, None)?);
            last_rows = rows;
            debug_assert!(i < chunks);
        }
        self.stats.prefilled += n as u64;
        let head = Step { n_rows: 1, pos0: (n - 1) as u32, in_row0: (last_rows - 1) as u32, ..head };
        let slot = self.acts.head_slot();
        self.write_step(slot, head);
        let mut pass = pass.unwrap_or_else(|| begin(enc));
        self.plan.head(&self.kernels, &mut pass, last_rows, 1, (&self.acts.step_bg, self.acts.slot(slot)))?;
        Ok(pass)
    }

    /// Runs `tokens` from position 0 as a batched prefill in one submit; returns the logits of
    /// the last position.
    pub async fn prefill_async(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.check_tokens(tokens)?;
        let mut enc = self.encoder();
        drop(self.encode_prefill(&mut enc, tokens, Step::default())?);
        let bytes = (self.config.vocab_size * 4) as u64;
        enc.copy_buffer_to_buffer(&self.acts.logits, 0, &self.logits_rb, 0, bytes);
        let sub = self.submit(enc);
        let rb = self.logits_rb.clone();
        Ok(floats(&self.read(&rb, bytes, sub).await?))
    }
}

/// A compute pass detached from the encoder's borrow (wgpu checks the nesting at run time).
pub(super) fn begin(enc: &mut wgpu::CommandEncoder) -> wgpu::ComputePass<'static> {
    enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None }).forget_lifetime()
}

#[cfg(not(target_arch = "wasm32"))]
impl GpuBackend {
    /// Blocking `prefill_async`.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        pollster::block_on(self.prefill_async(tokens))
    }
    /// Blocking `inspect_async`.
    pub fn inspect(&mut self, tokens: &[u32]) -> Result<Inspection> {
        pollster::block_on(self.inspect_async(tokens))
    }
    /// Blocking `inspect_advance_async`.
    pub fn inspect_advance(&mut self, run: &mut Inspector) -> Result<bool> {
        pollster::block_on(self.inspect_advance_async(run))
    }
}

impl crate::generate::Backend for GpuBackend {
    fn config(&self) -> &Config {
        &self.config
    }
    fn name(&self) -> String {
        GpuBackend::name(self)
    }
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        block(self.forward_async(token, pos, None))
    }
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]> {
        block(self.forward_async(token, pos, Some(trace)))
    }
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        GpuBackend::set_edits(self, edits)
    }
}

/// Waits for a future natively; the browser cannot block, so there the async methods are the API.
#[cfg(not(target_arch = "wasm32"))]
fn block<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    pollster::block_on(f)
}

#[cfg(target_arch = "wasm32")]
fn block<T>(_f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    Err(Error::Gpu("the browser cannot wait for the GPU synchronously: use the *_async methods".into()))
}

/// The format the kernels read on this device: F16 matrices kept two to a word (`Half`) are read
/// as `f16` through shader-f16 where the device has it (the same words: element `i·m + j` either
/// way); each value is widened to f32 exactly, so the sums are those of the unpacked path.
fn on_device(kept: WeightFormat, ctx: &GpuContext) -> WeightFormat {
    let f16 = ctx.device.features().contains(wgpu::Features::SHADER_F16);
    match kept {
        WeightFormat::Half { bf16: false } if f16 => WeightFormat::F16,
        f => f,
    }
}
