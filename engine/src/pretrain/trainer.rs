//! The full-parameter trainer: settings, one step (loss, gradients of every tensor, clipping,
//! AdamW with decay on matrices only, the schedule's rate) and what each step measured.

use serde::{Deserialize, Serialize};

use super::kernels::LossStats;
use super::params::{decays, Params};
use super::schedule::{Schedule, ScheduleKind};
use super::step::Workspace;
use crate::cpu::Kernels;
use crate::error::{Error, Result};
use crate::lora::kernels::{adamw_tracked, AdamW};
use crate::lora::{Batch, Real};
use crate::weights::{Tensor, Weights};

/// Every setting of a run that shapes its arithmetic (saved with its state, so a resumed run
/// takes the same steps).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub schedule: Schedule,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// AdamW's decoupled weight decay, on tensors of two or more dimensions only.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (torch's `clip_grad_norm_`); `None`: never.
    pub clip: Option<f64>,
    /// `coef` of the z-loss `coef · mean(logsumexp(logits)²)`; 0 turns it off.
    pub z_loss: f64,
}

impl Default for Hyper {
    /// llama2.c `train.py`'s defaults, over 100 steps.
    fn default() -> Hyper {
        Hyper {
            schedule: Schedule { kind: ScheduleKind::Cosine, lr: 5e-4, min_lr: 0.0, warmup: 10, steps: 100 },
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            clip: Some(1.0),
            z_loss: 0.0,
        }
    }
}

impl Hyper {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidSetting(what.to_string()));
        let s = &self.schedule;
        if !(s.lr.is_finite() && s.lr > 0.0) {
            return bad("the learning rate must be a positive number");
        }
        if !(s.min_lr.is_finite() && s.min_lr >= 0.0 && s.min_lr <= s.lr) {
            return bad("the minimum learning rate must be between 0 and the learning rate");
        }
        if s.steps == 0 {
            return bad("a run needs at least one step");
        }
        if !((0.0..1.0).contains(&self.beta1) && (0.0..1.0).contains(&self.beta2)) {
            return bad("AdamW betas must be in [0, 1)");
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("AdamW eps must be a positive number");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight decay must be a non-negative number");
        }
        if self.clip.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return bad("the gradient clipping norm must be a positive number");
        }
        if !(self.z_loss.is_finite() && self.z_loss >= 0.0) {
            return bad("the z-loss coefficient must be a non-negative number");
        }
        Ok(())
    }

    /// AdamW's settings for step `it` (0-based) on tensor `t`.
    pub(crate) fn adamw(&self, it: u32, t: Tensor) -> AdamW {
        let weight_decay = if decays(t) { self.weight_decay } else { 0.0 };
        AdamW { lr: self.schedule.lr(it), beta1: self.beta1, beta2: self.beta2, eps: self.eps, weight_decay }
    }
}

/// What one step measured (the Build view's instruments). Made once and overwritten by each
/// step, so a step allocates nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepMetrics {
    /// Steps done, this one included.
    pub step: u32,
    /// The rate this step's update used.
    pub lr: f64,
    /// Mean cross-entropy over the batch's target positions, before the update.
    pub loss: f64,
    /// The z-loss term added to it (`coef · mean(lse²)`; 0 when off).
    pub z_loss: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// The largest pre-softmax attention logit (`q·k/√hs`) of each layer.
    pub attn_logit_max: Vec<f64>,
    /// Mean and largest output logit over the target positions.
    pub logit_mean: f64,
    pub logit_max: f64,
    /// Mean log-normaliser `logsumexp(logits)` over the target positions.
    pub lse_mean: f64,
    /// `‖Δw‖ / ‖w‖` of this step's update, per tensor (all layers together).
    #[serde(serialize_with = "ratios")]
    pub update_ratio: [Option<f64>; 12],
}

fn ratios<S: serde::Serializer>(r: &[Option<f64>; 12], s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    for (t, v) in crate::lora::ALL_TENSORS.iter().zip(r) {
        if let Some(v) = v {
            m.serialize_entry(t.name(), v)?;
        }
    }
    m.end()
}

impl StepMetrics {
    pub(crate) fn new(layers: usize) -> StepMetrics {
        StepMetrics {
            step: 0,
            lr: 0.0,
            loss: 0.0,
            z_loss: 0.0,
            grad_norm: 0.0,
            attn_logit_max: vec![0.0; layers],
            logit_mean: 0.0,
            logit_max: 0.0,
            lse_mean: 0.0,
            update_ratio: [None; 12],
        }
    }

    pub(crate) fn set_loss(&mut self, st: &LossStats, coef: f64, vocab: usize) {
        let rows = st.rows.max(1) as f64;
        self.loss = st.ce_sum / rows;
        self.z_loss = coef * st.lse_sq_sum / rows;
        self.logit_mean = st.logit_sum / (rows * vocab as f64);
        self.logit_max = st.logit_max;
        self.lse_mean = st.lse_sum / rows;
    }
}

/// AdamW's state: both moments (shaped as the model) and the steps taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Moments<F = f32> {
    pub step: u32,
    pub m: Params<F>,
    pub v: Params<F>,
}

/// A model being trained, every tensor, with AdamW's moments.
pub struct Pretrainer<F: Real = f32> {
    pub params: Params<F>,
    pub hyper: Hyper,
    pub kernels: Kernels,
    opt: Moments<F>,
    grads: Params<F>,
    work: Option<Workspace<F>>,
    eval: Option<Workspace<F>>,
    metrics: StepMetrics,
}

impl<F: Real> Pretrainer<F> {
    /// A trainer starting at `weights` with fresh moments, on the fast kernels.
    pub fn new(weights: &Weights, hyper: Hyper) -> Result<Pretrainer<F>> {
        let params = Params::from_weights(weights);
        let opt = Moments { step: 0, m: params.zeros_like(), v: params.zeros_like() };
        Pretrainer::restore(params, hyper, opt)
    }

    /// A trainer continuing from `params` and `opt` (as `moments` gave them).
    pub fn restore(params: Params<F>, hyper: Hyper, opt: Moments<F>) -> Result<Pretrainer<F>> {
        hyper.validate()?;
        params.config.validate().map_err(Error::InvalidSetting)?;
        if !(params.same_shape(&opt.m) && params.same_shape(&opt.v)) {
            return Err(Error::Mismatch("the optimizer state was saved for a model of another shape".into()));
        }
        let grads = params.zeros_like();
        let metrics = StepMetrics::new(params.config.n_layers);
        Ok(Pretrainer { params, hyper, kernels: Kernels::Fast, opt, grads, work: None, eval: None, metrics })
    }

    /// The same trainer on other kernels (`Kernels::Reference`: the generic ones).
    pub fn with_kernels(mut self, kernels: Kernels) -> Pretrainer<F> {
        self.kernels = kernels;
        self
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> u32 {
        self.opt.step
    }

    /// AdamW's state, to save for a resume.
    pub fn moments(&self) -> &Moments<F> {
        &self.opt
    }

    /// The last step's measurements.
    pub fn metrics(&self) -> &StepMetrics {
        &self.metrics
    }

    /// The gradients of the last `step` or `loss_and_grads` (before clipping).
    pub fn grads(&self) -> &Params<F> {
        &self.grads
    }

    /// Buffers for `batch`'s shape in `slot`, made when the shape changes.
    fn workspace<'a>(slot: &'a mut Option<Workspace<F>>, params: &Params<F>, batch: &Batch) -> &'a mut Workspace<F> {
        if !slot.as_ref().is_some_and(|w| w.fits(batch)) {
            *slot = Some(Workspace::new(&params.config, batch.batch, batch.seq));
        }
        slot.as_mut().expect("just made")
    }

    /// Forward and backward at the current weights; returns the loss statistics.
    fn gradients(&mut self, batch: &Batch) -> Result<LossStats> {
        batch.check(&self.params.config)?;
        let base = self.params.base(self.kernels);
        let work = Self::workspace(&mut self.work, &self.params, batch);
        let stats = work.forward(&base, batch, true)?;
        work.backward(&base, &batch.tokens, &stats, self.hyper.z_loss, &mut self.grads);
        self.metrics.attn_logit_max.copy_from_slice(work.attention_logit_max());
        Ok(stats)
    }

    /// The mean cross-entropy and the gradients of the training loss (cross-entropy plus
    /// z-loss) w.r.t. every tensor, without updating (for tests and the fixture comparison).
    pub fn loss_and_grads(&mut self, batch: &Batch) -> Result<(f64, &Params<F>)> {
        let st = self.gradients(batch)?;
        Ok((st.ce_sum / st.rows.max(1) as f64, &self.grads))
    }

    /// One full-batch step. A non-finite loss is refused before any update.
    pub fn step(&mut self, batch: &Batch) -> Result<&StepMetrics> {
        let st = self.gradients(batch)?;
        let it = self.opt.step;
        self.metrics.set_loss(&st, self.hyper.z_loss, self.params.config.vocab_size);
        let total = self.metrics.loss + self.metrics.z_loss;
        if !total.is_finite() {
            return Err(Error::InvalidSetting(format!(
                "the loss is {total} at step {}: training diverged; try a lower learning rate",
                it + 1
            )));
        }
        let norm = global_norm(&self.grads);
        if let Some(max) = self.hyper.clip {
            clip(&mut self.grads, norm, max);
        }
        self.opt.step += 1;
        let step = self.opt.step;
        let Moments { m, v, .. } = &mut self.opt;
        let slots = self.params.tensors_mut().iter_mut().zip(self.grads.tensors()).zip(m.tensors_mut()).zip(v.tensors_mut());
        self.metrics.update_ratio = [None; 12];
        for ((((p, g), m), v), spec) in slots.zip(self.grads.specs()) {
            let h = self.hyper.adamw(it, spec.tensor);
            let n = adamw_tracked(p, g, m, v, step, &h);
            self.metrics.update_ratio[spec.tensor as usize] = Some((n.delta_sq / n.weight_sq).sqrt());
        }
        self.metrics.step = step;
        self.metrics.lr = self.hyper.schedule.lr(it);
        self.metrics.grad_norm = norm;
        Ok(&self.metrics)
    }

    /// The mean cross-entropy over `batch` at the current weights (no update).
    pub fn loss(&mut self, batch: &Batch) -> Result<f64> {
        let st = self.loss_stats(batch)?;
        Ok(st.ce_sum / st.rows.max(1) as f64)
    }

    /// The loss statistics over `batch` at the current weights (no update).
    pub fn loss_stats(&mut self, batch: &Batch) -> Result<LossStats> {
        batch.check(&self.params.config)?;
        let base = self.params.base(self.kernels);
        let work = Self::workspace(&mut self.eval, &self.params, batch);
        work.forward(&base, batch, false)
    }

    /// The weights as trained so far.
    pub fn weights(&self) -> Weights {
        self.params.to_weights()
    }

    /// Bytes of memory one step holds: weights, gradients, both moments and the buffers of
    /// the current batch shape.
    pub fn memory_bytes(&self) -> u64 {
        let p = self.params.n_params() as u64 * 4 * std::mem::size_of::<F>() as u64;
        p + self.work.as_ref().map_or(0, |w| w.bytes())
    }
}

/// The L2 norm of every gradient together, summed in f64.
pub fn global_norm<F: Real>(g: &Params<F>) -> f64 {
    g.tensors().iter().flatten().map(|v| v.to_f64() * v.to_f64()).sum::<f64>().sqrt()
}

/// torch's `clip_grad_norm_`: scale by `max / (norm + 1e-6)` when that is below 1.
fn clip<F: Real>(g: &mut Params<F>, norm: f64, max: f64) {
    let coef = max / (norm + 1e-6);
    if coef < 1.0 {
        for v in g.tensors_mut().iter_mut().flatten() {
            *v *= F::of(coef);
        }
    }
}
