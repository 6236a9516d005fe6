//! LoRA training on the GPU: the CPU trainer's (`lora::Trainer`) forward with unmerged
//! adapters, backward to every A and B, and AdamW, as WGSL kernels (shaders/lora_*.wgsl), each
//! the twin of a `lora::kernels` function.
//!
//! - The frozen weights, the LoRA parameters, their gradients and AdamW's moments live on the
//!   GPU; a step uploads the batch (embedding rows gathered on the host, and the targets),
//!   submits forward + loss + backward + optimizer as one command buffer and reads back one
//!   float per row (the losses) and the gradient norm.
//! - Buffers and bind groups are made per batch shape (`plan`) and kept for the next step of
//!   the same shape. Every buffer is checked against WebGPU's default binding limits.
//! - Every method that waits for the GPU is async (the browser awaits it in its worker);
//!   native callers get blocking twins through pollster.

pub(crate) mod bufs;
#[cfg(not(target_arch = "wasm32"))]
pub mod lab;
pub(crate) mod model;
pub(crate) mod ops;
mod plan;
pub(crate) mod train_kernels;

use model::{flatten, unflatten, Frozen, Params};
use ops::{submit_and_read, Builder, Op};
use plan::Plan;
use train_kernels::TrainKernels;

use super::context::GpuContext;
use crate::error::{Error, Result};
use crate::lora::kernels::IGNORE;
use crate::lora::{Adapter, Batch, OptimizerState, StepReport, TrainConfig};
use crate::weights::Weights;

/// Settings of a GPU trainer beyond the CPU trainer's.
#[derive(Default, Clone)]
pub struct GpuTrainOptions {
    /// A device to share (the browser's); `None` opens one.
    pub context: Option<GpuContext>,
    /// AdamW's state to resume from (`Trainer::optimizer_state`, `read_optimizer`).
    pub state: Option<OptimizerState>,
}

/// What a trainer has asked of the GPU so far: queue submits and bytes read back (every submit
/// and readback goes through `GpuTrainer::run`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrainStats {
    pub submits: u64,
    pub bytes_read: u64,
}

/// An adapter being trained on the GPU, with its AdamW moments (the twin of `lora::Trainer`).
pub struct GpuTrainer {
    ctx: GpuContext,
    kernels: TrainKernels,
    model: Frozen,
    params: Params,
    pub config: TrainConfig,
    step: u32,
    plan: Option<Plan>,
    stats: std::sync::Mutex<TrainStats>,
}

impl GpuTrainer {
    /// Uploads the frozen model and the adapter (with fresh moments, or `opts.state`).
    pub async fn new_async(w: &Weights, adapter: Adapter, config: TrainConfig, opts: GpuTrainOptions) -> Result<GpuTrainer> {
        config.validate()?;
        adapter.check_base(&w.config)?;
        let state = opts.state.unwrap_or_else(|| OptimizerState::zeros(&adapter));
        state.check_fits(&adapter)?;
        let ctx = match opts.context {
            Some(c) => c,
            None => GpuContext::new_async().await?,
        };
        let (kernels, model, params) = ctx
            .scoped("loading the model for training", || -> Result<_> {
                let kernels = TrainKernels::new(&ctx);
                let model = Frozen::new(&ctx, w)?;
                let params = Params::new(&ctx, &adapter, &state.m, &state.v)?;
                Ok((kernels, model, params))
            })
            .await??;
        Ok(GpuTrainer { ctx, kernels, model, params, config, step: state.step, plan: None, stats: Default::default() })
    }

    /// Submits and bytes read back since this trainer was made.
    pub fn stats(&self) -> TrainStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> u32 {
        self.step
    }

    /// The device, to share with an inference backend.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The plan for `batch`'s shape, made on first use (after checking the batch).
    async fn plan_for(&mut self, batch: &Batch) -> Result<()> {
        batch.check(&self.model.config)?;
        batch.check_trainable()?;
        if self.plan.as_ref().is_some_and(|p| (p.batch, p.seq) == (batch.batch, batch.seq)) {
            return Ok(());
        }
        self.plan = None;
        let b = Builder { ctx: &self.ctx, kernels: &self.kernels };
        let plan = self
            .ctx
            .scoped("preparing the training buffers", || {
                Plan::new(&self.ctx, b, &self.model, &self.params, batch.batch, batch.seq)
            })
            .await??;
        self.plan = Some(plan);
        Ok(())
    }

    /// Uploads the batch's embedding rows and next-token targets.
    fn upload(&self, plan: &Plan, batch: &Batch) {
        let d = self.model.config.dim;
        let mut x = Vec::with_capacity(batch.tokens.len() * d);
        for &t in &batch.tokens {
            x.extend_from_slice(&self.model.embeddings[t as usize * d..][..d]);
        }
        let seq = batch.seq;
        let targets: Vec<u32> =
            (0..batch.tokens.len()).map(|n| if n % seq + 1 < seq { batch.tokens[n + 1] } else { IGNORE }).collect();
        self.ctx.queue.write_buffer(&plan.xs[0], 0, bytemuck::cast_slice(&x));
        self.ctx.queue.write_buffer(&plan.targets, 0, bytemuck::cast_slice(&targets));
    }

    /// Submits `ops` and reads back `reads` (`ops::submit_and_read`), counted in `stats`.
    async fn run(&self, ops: &[Op], reads: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<f32>>> {
        if let Ok(mut s) = self.stats.lock() {
            s.submits += 1;
            s.bytes_read += reads.iter().map(|r| r.1 as u64 * 4).sum::<u64>();
        }
        submit_and_read(&self.ctx, ops, reads).await
    }

    /// The mean loss over a batch from its per-row losses (ignored rows are 0).
    fn mean_loss(batch: &Batch, rows: &[f32]) -> f64 {
        let seq = batch.seq;
        let sum: f64 = rows.iter().enumerate().filter(|(n, _)| n % seq + 1 < seq).map(|(_, &v)| v as f64).sum();
        sum / (batch.batch * (seq - 1)) as f64
    }

    /// One full-batch step: loss and gradients, optional clipping, AdamW on every A and B.
    /// Unlike the CPU trainer, the update is already applied when a non-finite loss is
    /// reported (it comes back with the step); restart from a saved adapter after that error.
    pub async fn step_async(&mut self, batch: &Batch) -> Result<StepReport> {
        self.plan_for(batch).await?;
        let Some(plan) = self.plan.as_ref() else { return Err(Error::Gpu("no training plan".into())) };
        self.upload(plan, batch);
        let step = self.step + 1;
        plan.set_step(&self.ctx, &self.config.adamw, self.config.clip_norm, step, self.params.len);
        let ops: Vec<Op> = [&plan.forward[..], std::slice::from_ref(&plan.loss[1]), &plan.backward, &plan.optimizer].concat();
        let n = batch.tokens.len();
        let out = self.run(&ops, &[(&plan.row_loss, n), (&self.params.norm, 1)]).await?;
        let loss = Self::mean_loss(batch, &out[0]);
        self.step = step;
        if !loss.is_finite() {
            return Err(Error::InvalidSetting(format!(
                "the loss is {loss} at step {step}: training diverged; try a lower learning rate"
            )));
        }
        Ok(StepReport { step, loss, grad_norm: out[1][0] as f64 })
    }

    /// The mean next-token loss over `batch` with the current adapter (no update).
    pub async fn loss_async(&mut self, batch: &Batch) -> Result<f64> {
        self.plan_for(batch).await?;
        let Some(plan) = self.plan.as_ref() else { return Err(Error::Gpu("no training plan".into())) };
        self.upload(plan, batch);
        let ops: Vec<Op> = [&plan.forward[..], std::slice::from_ref(&plan.loss[0])].concat();
        let out = self.run(&ops, &[(&plan.row_loss, batch.tokens.len())]).await?;
        Ok(Self::mean_loss(batch, &out[0]))
    }

    /// The loss and the gradients w.r.t. every A and B, without updating (for tests).
    pub async fn loss_and_grads_async(&mut self, batch: &Batch) -> Result<(f64, Adapter)> {
        self.plan_for(batch).await?;
        let Some(plan) = self.plan.as_ref() else { return Err(Error::Gpu("no training plan".into())) };
        self.upload(plan, batch);
        let ops: Vec<Op> = [&plan.forward[..], std::slice::from_ref(&plan.loss[1]), &plan.backward].concat();
        let out = self.run(&ops, &[(&plan.row_loss, batch.tokens.len()), (&self.params.grads, self.params.len)]).await?;
        Ok((Self::mean_loss(batch, &out[0]), unflatten(&self.params.shape, &out[1])))
    }

    /// The logits `[batch · seq, vocab]` of the adapted model over `batch` (teacher-forced).
    pub async fn logits_async(&mut self, batch: &Batch) -> Result<Vec<f32>> {
        self.plan_for(batch).await?;
        let Some(plan) = self.plan.as_ref() else { return Err(Error::Gpu("no training plan".into())) };
        self.upload(plan, batch);
        let out = self.run(&plan.forward, &[(&plan.logits, batch.tokens.len() * self.model.config.vocab_size)]).await?;
        Ok(out.into_iter().next().unwrap_or_default())
    }

    /// The adapter as trained so far (read back).
    pub async fn adapter_async(&self) -> Result<Adapter> {
        let out = self.run(&[], &[(&self.params.params, self.params.len)]).await?;
        Ok(unflatten(&self.params.shape, &out[0]))
    }

    /// AdamW's moments and step count (read back), to save beside the adapter.
    pub async fn optimizer_state_async(&self) -> Result<OptimizerState> {
        let p = &self.params;
        let out = self.run(&[], &[(&p.m, p.len), (&p.v, p.len)]).await?;
        Ok(OptimizerState { step: self.step, m: unflatten(&p.shape, &out[0]), v: unflatten(&p.shape, &out[1]) })
    }

    /// Replaces the adapter's values (same shape), keeping the moments.
    pub fn set_adapter(&self, adapter: &Adapter) -> Result<()> {
        OptimizerState::zeros(adapter).check_fits(&self.params.shape)?;
        self.ctx.queue.write_buffer(&self.params.params, 0, bytemuck::cast_slice(&flatten(adapter)));
        Ok(())
    }

    /// Bytes of GPU memory held: the frozen model, parameters with gradients and moments, and
    /// the current batch shape's activations and scratch.
    pub fn gpu_bytes(&self) -> u64 {
        let c = &self.model.config;
        let frozen = (c.n_params() as usize - c.vocab_size * c.dim * (!c.shared_classifier) as usize) as u64 * 4;
        frozen + self.params.len as u64 * 16 + self.plan.as_ref().map_or(0, |p| p.bytes)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl GpuTrainer {
    /// Blocking `new_async`.
    pub fn new(w: &Weights, adapter: Adapter, config: TrainConfig, opts: GpuTrainOptions) -> Result<GpuTrainer> {
        pollster::block_on(Self::new_async(w, adapter, config, opts))
    }
    /// Blocking `step_async`.
    pub fn step(&mut self, batch: &Batch) -> Result<StepReport> {
        pollster::block_on(self.step_async(batch))
    }
    /// Blocking `loss_async`.
    pub fn loss(&mut self, batch: &Batch) -> Result<f64> {
        pollster::block_on(self.loss_async(batch))
    }
    /// Blocking `adapter_async`.
    pub fn adapter(&self) -> Result<Adapter> {
        pollster::block_on(self.adapter_async())
    }
    /// Blocking `loss_and_grads_async`.
    pub fn loss_and_grads(&mut self, batch: &Batch) -> Result<(f64, Adapter)> {
        pollster::block_on(self.loss_and_grads_async(batch))
    }
    /// Blocking `logits_async`.
    pub fn logits(&mut self, batch: &Batch) -> Result<Vec<f32>> {
        pollster::block_on(self.logits_async(batch))
    }
    /// Blocking `optimizer_state_async`.
    pub fn optimizer_state(&self) -> Result<OptimizerState> {
        pollster::block_on(self.optimizer_state_async())
    }
}
