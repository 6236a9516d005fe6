//! The training loop's pieces: AdamW state over an adapter, optional gradient clipping, the
//! memory one step needs, and a step timer for benchmarks.

use super::data::Batch;
use super::kernels::{adamw, AdamW};
use super::model::{loss_and_grads, Base};
use super::real::Real;
use super::{Adapter, LoraConfig};
use crate::config::Config;
use crate::error::{Error, Result};

/// Optimizer settings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrainConfig {
    pub adamw: AdamW,
    /// Scale the gradients down to this global L2 norm when above it (torch's
    /// `clip_grad_norm_`); `None` (the default) leaves them alone.
    pub clip_norm: Option<f64>,
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let h = &self.adamw;
        let bad = |what: &str| Err(Error::InvalidSetting(what.to_string()));
        if !(h.lr.is_finite() && h.lr > 0.0) {
            return bad("the learning rate must be a positive number");
        }
        if !((0.0..1.0).contains(&h.beta1) && (0.0..1.0).contains(&h.beta2)) {
            return bad("AdamW betas must be in [0, 1)");
        }
        if !(h.eps.is_finite() && h.eps > 0.0) {
            return bad("AdamW eps must be a positive number");
        }
        if !(h.weight_decay.is_finite() && h.weight_decay >= 0.0) {
            return bad("weight decay must be a non-negative number");
        }
        if self.clip_norm.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return bad("the gradient clipping norm must be a positive number");
        }
        Ok(())
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Steps done, this one included.
    pub step: u32,
    /// The loss at the parameters before this step's update.
    pub loss: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
}

/// An adapter being trained, with its AdamW moments.
#[derive(Debug, Clone)]
pub struct Trainer<F = f32> {
    pub adapter: Adapter<F>,
    pub config: TrainConfig,
    m: Adapter<F>,
    v: Adapter<F>,
    step: u32,
}

impl<F: Real> Trainer<F> {
    pub fn new(adapter: Adapter<F>, config: TrainConfig) -> Result<Trainer<F>> {
        config.validate()?;
        let m = adapter.zeros_like();
        let v = adapter.zeros_like();
        Ok(Trainer { adapter, config, m, v, step: 0 })
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> u32 {
        self.step
    }

    /// AdamW's moments and step count, to save beside the adapter for a later resume.
    pub fn optimizer_state(&self) -> OptimizerState<F> {
        OptimizerState { step: self.step, m: self.m.clone(), v: self.v.clone() }
    }

    /// A trainer continuing from `state` (saved by [`Trainer::optimizer_state`]) with `adapter`
    /// at that point: the next step is the same as the saved trainer's next step.
    pub fn restore(adapter: Adapter<F>, config: TrainConfig, state: OptimizerState<F>) -> Result<Trainer<F>> {
        config.validate()?;
        state.check_fits(&adapter)?;
        let OptimizerState { step, m, v } = state;
        Ok(Trainer { adapter, config, m, v, step })
    }

    /// One full-batch step: loss and gradients, optional clipping, AdamW on every A and B.
    pub fn step(&mut self, base: &Base<F>, batch: &Batch) -> Result<StepReport> {
        let (loss, mut grads) = loss_and_grads(base, &self.adapter, batch)?;
        if !loss.is_finite() {
            return Err(Error::InvalidSetting(format!(
                "the loss is {loss} at step {}: training diverged; try a lower learning rate",
                self.step + 1
            )));
        }
        let grad_norm = global_norm(&grads);
        if let Some(max) = self.config.clip_norm {
            clip(&mut grads, grad_norm, max);
        }
        self.step += 1;
        let params = self.adapter.tensors_mut();
        let state = grads.tensors().zip(self.m.tensors_mut()).zip(self.v.tensors_mut());
        for (p, ((g, m), v)) in params.zip(state) {
            adamw(p, g, m, v, self.step, &self.config.adamw);
        }
        Ok(StepReport { step: self.step, loss, grad_norm })
    }
}

/// AdamW's state: the first and second moments (shaped as the adapter, llama2.c layout) and the
/// number of steps taken (the bias corrections depend on it).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState<F = f32> {
    pub step: u32,
    pub m: Adapter<F>,
    pub v: Adapter<F>,
}

impl<F: Real> OptimizerState<F> {
    /// Fresh moments for `adapter`.
    pub fn zeros(adapter: &Adapter<F>) -> OptimizerState<F> {
        OptimizerState { step: 0, m: adapter.zeros_like(), v: adapter.zeros_like() }
    }

    /// Fails unless both moments have the adapter's rank, targets and shapes.
    pub fn check_fits(&self, adapter: &Adapter<F>) -> Result<()> {
        let same = |x: &Adapter<F>| {
            x.config == adapter.config
                && x.base == adapter.base
                && x.modules.len() == adapter.modules.len()
                && x.tensors().zip(adapter.tensors()).all(|(p, q)| p.len() == q.len())
        };
        if !(same(&self.m) && same(&self.v)) {
            return Err(Error::Mismatch(
                "the optimizer state was saved for another adapter (rank, targets or model differ)".into(),
            ));
        }
        Ok(())
    }
}

/// The L2 norm of all gradients together.
pub fn global_norm<F: Real>(g: &Adapter<F>) -> f64 {
    g.tensors().flat_map(|t| t.iter()).map(|v| v.to_f64() * v.to_f64()).sum::<f64>().sqrt()
}

/// torch's `clip_grad_norm_`: scale by `max / (norm + 1e-6)` when that is below 1.
fn clip<F: Real>(g: &mut Adapter<F>, norm: f64, max: f64) {
    let coef = max / (norm + 1e-6);
    if coef < 1.0 {
        for v in g.tensors_mut().flat_map(|t| t.iter_mut()) {
            *v *= F::of(coef);
        }
    }
}

/// Bytes one f32 training step holds, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReport {
    /// The frozen model.
    pub base_weights: u64,
    /// A and B, their gradients, and AdamW's two moments.
    pub adapter: u64,
    pub grads: u64,
    pub optimizer: u64,
    /// What the forward keeps for the backward (`Activations::bytes`), logits included.
    pub activations: u64,
    /// The forward's temporary (one `[N, dim]`).
    pub forward_scratch: u64,
    /// The backward's buffers (`[N, ·]` gradients, one attention row).
    pub backward_scratch: u64,
}

impl MemoryReport {
    /// The high-water mark: the activations are alive through the backward, which adds the
    /// gradients and its scratch; the forward's scratch is gone by then.
    pub fn peak(&self) -> u64 {
        self.base_weights
            + self.adapter
            + self.optimizer
            + self.activations
            + self.forward_scratch.max(self.grads + self.backward_scratch)
    }
}

/// The memory of one f32 training step on `batch × seq` tokens (computed, not measured).
pub fn memory_report(c: &Config, lora: &LoraConfig, batch: usize, seq: usize) -> MemoryReport {
    let (d, kv, hd, v, r) = (c.dim as u64, c.kv_dim() as u64, c.hidden_dim as u64, c.vocab_size as u64, lora.r as u64);
    let n = (batch * seq) as u64;
    let probs = (batch * c.n_heads * seq * seq) as u64;
    let per_layer = n * (6 * d + 2 * kv + 3 * hd) + probs + n * r * lora.targets.len() as u64;
    let activations = c.n_layers as u64 * per_layer + n * (2 * d + v);
    let params: u64 = lora
        .targets
        .iter()
        .map(|t| {
            let (o, i) = t.shape(c);
            r * (o + i) as u64
        })
        .sum::<u64>()
        * c.n_layers as u64;
    let f = 4;
    MemoryReport {
        base_weights: c.n_params() * f,
        adapter: params * f,
        grads: params * f,
        optimizer: 2 * params * f,
        activations: activations * f,
        forward_scratch: n * d * f,
        backward_scratch: (n * (4 * d + 2 * kv + 3 * hd + r) + seq as u64) * f,
    }
}

/// Mean milliseconds of one f32 training step on random tokens (after one warm-up step), with
/// a PEFT-default adapter of `lora` (seed 0). For `bench`; nothing asserts speed.
#[cfg(not(target_arch = "wasm32"))]
pub fn time_step_ms(w: &crate::weights::Weights, lora: &LoraConfig, batch: usize, seq: usize, steps: usize) -> Result<f64> {
    let c = &w.config;
    let mut tokens = Vec::with_capacity(batch * seq);
    for b in 0..batch {
        tokens.extend(crate::randmodel::random_tokens(b as u64 + 1, seq, c.vocab_size));
    }
    let batch = Batch::new(batch, seq, tokens)?;
    let base = Base::new(w);
    let mut t = Trainer::new(Adapter::<f32>::peft_default(c, lora.clone(), 0)?, TrainConfig::default())?;
    t.step(&base, &batch)?;
    let start = std::time::Instant::now();
    for _ in 0..steps.max(1) {
        t.step(&base, &batch)?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lora::model::Scratch;
    use crate::lora::Target;

    #[test]
    fn backward_scratch_size_matches_the_allocation() {
        let c = Config::parse("16,40,2,4,2,37,12,untied").unwrap();
        let lora = LoraConfig::new(3, 6.0, false, vec![Target::Q]).unwrap();
        let (batch, seq) = (2, 5);
        let s = Scratch::<f32>::new(&c, batch * seq, lora.r);
        let attention_row = seq as u64 * 4;
        assert_eq!(memory_report(&c, &lora, batch, seq).backward_scratch, s.bytes() + attention_row);
    }
}
