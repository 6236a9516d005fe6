//! Full-parameter training on the GPU: the CPU `pretrain::Pretrainer`'s step as WGSL, reusing
//! the LoRA trainer's kernels (shaders/lora_*.wgsl: products, norms, RoPE, attention, SwiGLU,
//! the loss, AdamW) and adding full training's own (shaders/pretrain.wgsl: the embedding lookup
//! and its scatter-add gradient, the gains' gradients, the instruments' reductions).
//!
//! - Weights, gradients and AdamW's moments live on the GPU as flat arrays in `Pretrainer`'s
//!   tensor order (`Layout`); a plan per batch shape holds the activations.
//! - A step is two submits, read back through one staging buffer of its plan (a step makes no
//!   GPU buffer): forward, loss (with the z-loss), the attention measurements,
//!   backward and the gradient norm, then, once the loss read back is finite (a diverged step is
//!   refused before any update, as on the CPU), AdamW tensor by tensor (decay on matrices only)
//!   with each tensor's update and weight norms.
//! - The CPU trainer is the state's home: `to_cpu_async` reads everything back into one, which
//!   saves, samples and resumes as before; `new_async` moves one onto the GPU.

mod flat;
mod layout;
mod plan;

use flat::Flat;
use layout::Layout;
use plan::{Ctx, Plan};

use super::context::GpuContext;
use super::kernels::Kernel;
use super::lora::ops::{adamw_dims, grid, submit_and_read, submit_and_read_via, Builder, Op};
use super::lora::train_kernels::TrainKernels;
use super::registry;
use super::uniforms::{AdamwDims, PretrainDims};
use super::workgroups::Workgroups;
use crate::error::{Error, Result};
use crate::gpu::kernels::buffer;
use crate::gpu::rope_table;
use crate::lora::kernels::IGNORE;
use crate::lora::Batch;
use crate::pretrain::{Hyper, LossStats, Moments, Params, Pretrainer, StepMetrics};

/// AdamW's recorded work: the gradient norm (which ends a step's first submit), then, the
/// weights copied aside, each tensor's update and its update and weight norms; each update with
/// its own small uniform, rewritten before each step.
struct Optimizer {
    dims: Vec<wgpu::Buffer>,
    norm: Op,
    update: Vec<Op>,
}

/// A model being trained on the GPU, every tensor, with AdamW's moments (the twin of
/// `Pretrainer`).
pub struct GpuPretrainer {
    ctx: GpuContext,
    kernels: TrainKernels,
    own: Kernel,
    layout: Layout,
    flat: Flat,
    rope: wgpu::Buffer,
    pub hyper: Hyper,
    step: u32,
    opt: Optimizer,
    plan: Option<Plan>,
    eval: Option<Plan>,
    metrics: StepMetrics,
}

impl GpuPretrainer {
    /// `cpu`'s weights, moments and settings moved to the GPU (`context`: a device to share,
    /// else a new one).
    pub async fn new_async(cpu: &Pretrainer<f32>, context: Option<GpuContext>) -> Result<GpuPretrainer> {
        let ctx = match context {
            Some(c) => c,
            None => GpuContext::new_async().await?,
        };
        let config = cpu.params.config;
        let layout = Layout::new(config);
        let moments = cpu.moments();
        let (kernels, own, flat, rope) = ctx
            .scoped("loading the model for training", || -> Result<_> {
                let kernels = TrainKernels::new(&ctx);
                let own = Kernel::compile(&ctx, &registry::PRETRAIN, &Workgroups::default(), None);
                let flat = Flat::new(&ctx, &layout, &cpu.params, &moments.m, &moments.v)?;
                Ok((kernels, own, flat, flat::upload(&ctx, "rope table", &rope_table(&config))?))
            })
            .await??;
        let opt = Optimizer::new(&ctx, &kernels, &own, &layout, &flat)?;
        ctx.check()?;
        Ok(GpuPretrainer {
            ctx,
            kernels,
            own,
            layout,
            flat,
            rope,
            hyper: cpu.hyper,
            step: moments.step,
            opt,
            plan: None,
            eval: None,
            metrics: StepMetrics::new(config.n_layers),
        })
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> u32 {
        self.step
    }

    /// The model's shape.
    pub fn config(&self) -> crate::Config {
        self.layout.config
    }

    /// The last step's measurements.
    pub fn metrics(&self) -> &StepMetrics {
        &self.metrics
    }

    /// The device, to share with an inference backend.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The plan for `batch`'s shape in the training (`eval` false) or evaluation slot, made when
    /// the shape changes.
    async fn plan_for(&mut self, batch: &Batch, eval: bool) -> Result<()> {
        batch.check(&self.layout.config)?;
        batch.check_trainable()?;
        let slot = if eval { &self.eval } else { &self.plan };
        if slot.as_ref().is_some_and(|p| (p.batch, p.seq) == (batch.batch, batch.seq)) {
            return Ok(());
        }
        let cx = Ctx {
            b: Builder { ctx: &self.ctx, kernels: &self.kernels },
            own: &self.own,
            layout: &self.layout,
            flat: &self.flat,
            rope: &self.rope,
            config: self.layout.config,
        };
        let z = self.hyper.z_loss;
        let plan = self
            .ctx
            .scoped("preparing the training buffers", || Plan::new(&self.ctx, &cx, batch.batch, batch.seq, z, &self.opt.norm))
            .await??;
        if eval {
            self.eval = Some(plan);
        } else {
            self.plan = Some(plan);
        }
        Ok(())
    }

    /// Uploads the batch's tokens and next-token targets into its plan.
    fn upload(&self, eval: bool, batch: &Batch) -> Result<&Plan> {
        let plan = if eval { &self.eval } else { &self.plan };
        let Some(plan) = plan.as_ref() else { return Err(Error::Gpu("no training plan".into())) };
        let seq = batch.seq;
        let targets: Vec<u32> =
            (0..batch.tokens.len()).map(|n| if n % seq + 1 < seq { batch.tokens[n + 1] } else { IGNORE }).collect();
        self.ctx.queue.write_buffer(&plan.tokens, 0, bytemuck::cast_slice(&batch.tokens));
        self.ctx.queue.write_buffer(&plan.targets, 0, bytemuck::cast_slice(&targets));
        Ok(plan)
    }

    /// One full-batch step. A non-finite loss is refused before any update.
    pub async fn step_async(&mut self, batch: &Batch) -> Result<&StepMetrics> {
        self.plan_for(batch, false).await?;
        let plan = self.upload(false, batch)?;
        let layers = self.layout.config.n_layers;
        let n = batch.tokens.len();
        let reads = [(&plan.row_loss, 4 * n), (&self.flat.norm, 1), (&plan.attn_max, layers)];
        let out = submit_and_read_via(&self.ctx, &plan.step, &reads, &plan.staging).await?;
        // A handle, not a buffer: the second submit reads through the same one.
        let staging = plan.staging.clone();
        let st = loss_stats(&out[0], n, batch.seq);
        let it = self.step;
        self.metrics.set_loss(&st, self.hyper.z_loss, self.layout.config.vocab_size);
        let total = self.metrics.loss + self.metrics.z_loss;
        if !total.is_finite() {
            return Err(Error::InvalidSetting(format!(
                "the loss is {total} at step {}: training diverged; try a lower learning rate",
                it + 1
            )));
        }
        self.opt.set_step(&self.ctx, &self.hyper, &self.layout, it);
        let reads = [(&self.flat.sums, 2 * self.layout.specs.len())];
        let sums = submit_and_read_via(&self.ctx, &self.opt.update, &reads, &staging).await?;
        self.step += 1;
        let m = &mut self.metrics;
        m.step = self.step;
        m.lr = self.hyper.schedule.lr(it);
        m.grad_norm = out[1][0] as f64;
        for (dst, &v) in m.attn_logit_max.iter_mut().zip(&out[2]) {
            *dst = v as f64;
        }
        m.update_ratio = [None; 12];
        for (spec, s) in self.layout.specs.iter().zip(sums[0].chunks_exact(2)) {
            m.update_ratio[spec.tensor as usize] = Some((s[0] as f64 / s[1] as f64).sqrt());
        }
        Ok(&self.metrics)
    }

    /// The loss statistics over `batch` at the current weights (no update).
    pub async fn loss_stats_async(&mut self, batch: &Batch) -> Result<LossStats> {
        self.plan_for(batch, true).await?;
        let plan = self.upload(true, batch)?;
        let n = batch.tokens.len();
        let out = submit_and_read_via(&self.ctx, &plan.eval, &[(&plan.row_loss, 4 * n)], &plan.staging).await?;
        Ok(loss_stats(&out[0], n, batch.seq))
    }

    /// The mean cross-entropy over `batch` at the current weights (no update).
    pub async fn loss_async(&mut self, batch: &Batch) -> Result<f64> {
        let st = self.loss_stats_async(batch).await?;
        Ok(st.ce_sum / st.rows.max(1) as f64)
    }

    /// The mean cross-entropy and the gradients of the training loss (with the z-loss) w.r.t.
    /// every tensor, without updating (for tests).
    pub async fn loss_and_grads_async(&mut self, batch: &Batch) -> Result<(f64, Params<f32>)> {
        self.plan_for(batch, false).await?;
        let plan = self.upload(false, batch)?;
        let n = batch.tokens.len();
        let out =
            submit_and_read(&self.ctx, &plan.grads, &[(&plan.row_loss, 4 * n), (&self.flat.grads, self.layout.len)]).await?;
        let st = loss_stats(&out[0], n, batch.seq);
        let grads = Params::from_tensors(self.layout.config, self.layout.split(&out[1]));
        Ok((st.ce_sum / st.rows.max(1) as f64, grads))
    }

    /// The weights as trained so far (read back; for samples).
    pub async fn weights_async(&self) -> Result<crate::Weights> {
        let out = submit_and_read(&self.ctx, &[], &[(&self.flat.params, self.layout.len)]).await?;
        Ok(Params::from_tensors(self.layout.config, self.layout.split(&out[0])).to_weights())
    }

    /// The weights, moments and settings read back into a CPU trainer (to save, sample or go
    /// on there).
    pub async fn to_cpu_async(&self) -> Result<Pretrainer<f32>> {
        let (f, len) = (&self.flat, self.layout.len);
        let out = submit_and_read(&self.ctx, &[], &[(&f.params, len), (&f.m, len), (&f.v, len)]).await?;
        let c = self.layout.config;
        let p = |i: usize| Params::from_tensors(c, self.layout.split(&out[i]));
        Pretrainer::restore(p(0), self.hyper, Moments { step: self.step, m: p(1), v: p(2) })
    }

    /// Bytes of GPU memory held: weights, gradients, both moments and the copy before the
    /// update, and the plans' buffers.
    pub fn gpu_bytes(&self) -> u64 {
        let plans = [&self.plan, &self.eval].iter().map(|p| p.as_ref().map_or(0, |p| p.bytes)).sum::<u64>();
        self.layout.len as u64 * 4 * 5 + plans
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl GpuPretrainer {
    /// Blocking `new_async`.
    pub fn new(cpu: &Pretrainer<f32>, context: Option<GpuContext>) -> Result<GpuPretrainer> {
        pollster::block_on(Self::new_async(cpu, context))
    }
    /// Blocking `step_async`.
    pub fn step(&mut self, batch: &Batch) -> Result<&StepMetrics> {
        pollster::block_on(self.step_async(batch))
    }
    /// Blocking `loss_async`.
    pub fn loss(&mut self, batch: &Batch) -> Result<f64> {
        pollster::block_on(self.loss_async(batch))
    }
    /// Blocking `loss_and_grads_async`.
    pub fn loss_and_grads(&mut self, batch: &Batch) -> Result<(f64, Params<f32>)> {
        pollster::block_on(self.loss_and_grads_async(batch))
    }
    /// Blocking `to_cpu_async`.
    pub fn to_cpu(&self) -> Result<Pretrainer<f32>> {
        pollster::block_on(self.to_cpu_async())
    }
}

/// The loss statistics from the loss kernel's per-row output (`rows` losses, then (lse, Σ
/// logits, max) per row); a row's last position has no target.
fn loss_stats(out: &[f32], rows: usize, seq: usize) -> LossStats {
    let mut s = LossStats { logit_max: f64::NEG_INFINITY, ..Default::default() };
    for r in (0..rows).filter(|r| r % seq + 1 < seq) {
        let [lse, total, max] = [0, 1, 2].map(|k| out[rows + 3 * r + k] as f64);
        s.rows += 1;
        s.ce_sum += out[r] as f64;
        s.lse_sum += lse;
        s.lse_sq_sum += lse * lse;
        s.logit_sum += total;
        s.logit_max = s.logit_max.max(max);
    }
    s
}

impl Optimizer {
    fn new(ctx: &GpuContext, k: &TrainKernels, own: &Kernel, layout: &Layout, f: &Flat) -> Result<Optimizer> {
        let dims_buf = || {
            let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
            buffer(ctx, "adamw", std::mem::size_of::<AdamwDims>() as u64, usage)
        };
        let bind = |d: &wgpu::Buffer| k.adamw.bind(ctx, "pretrain adamw", &[&f.grads, &f.params, &f.m, &f.v, &f.norm, d]);
        // The norm reads only the length (over every parameter): written once.
        let norm_dims = dims_buf();
        ctx.queue.write_buffer(&norm_dims, 0, bytemuck::bytes_of(&AdamwDims { len: layout.len as u32, ..Default::default() }));
        let norm = Op::Run { pipeline: k.adamw.pipeline("norm_main")?.clone(), bg: bind(&norm_dims), groups: [1, 1, 1] };
        let b = Builder { ctx, kernels: k };
        let mut dims = Vec::new();
        let mut update = vec![Op::Copy { src: f.params.clone(), dst: f.old.clone(), bytes: layout.len as u64 * 4 }];
        for (i, (spec, &start)) in layout.specs.iter().zip(&layout.starts).enumerate() {
            let d = dims_buf();
            update.push(Op::Run {
                pipeline: k.adamw.pipeline("update")?.clone(),
                bg: bind(&d),
                groups: grid(spec.len.div_ceil(64))?,
            });
            dims.push(d);
            let sums = PretrainDims { rows: spec.len as u32, width: i as u32, off: start as u32, ..Default::default() };
            update.push(b.run(own, "seg_sums", &[&f.old, &f.params, &f.old, &f.spare, &f.sums], &sums, [1, 1, 1])?);
        }
        Ok(Optimizer { dims, norm, update })
    }

    /// Rewrites each tensor's uniform for step `it` (0-based): its rate and decay.
    fn set_step(&self, ctx: &GpuContext, h: &Hyper, layout: &Layout, it: u32) {
        let step = it + 1;
        for ((spec, &start), d) in layout.specs.iter().zip(&layout.starts).zip(&self.dims) {
            let dims = AdamwDims { start: start as u32, ..adamw_dims(&h.adamw(it, spec.tensor), h.clip, step, spec.len) };
            ctx.queue.write_buffer(d, 0, bytemuck::bytes_of(&dims));
        }
    }
}
