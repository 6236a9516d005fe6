//! AdamW with `torch.optim.AdamW` semantics (single-tensor path).

use crate::lora::real::Real;

/// AdamW hyper-parameters; the defaults are torch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamW {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// One AdamW update of `p` with gradient `g` and moments `m`, `v` at `step` (1-based):
/// decoupled weight decay first, then the bias-corrected Adam step. Scalars are formed in f64
/// as torch does in Python, and each elementwise operation mirrors torch's order.
pub fn adamw<F: Real>(p: &mut [F], g: &[F], m: &mut [F], v: &mut [F], step: u32, h: &AdamW) {
    adamw_tracked(p, g, m, v, step, h);
}

/// What an update did to a tensor: `Σ Δp²` and `Σ p²` before it, in f64 (the
/// update-to-weight ratio is the square root of their quotient).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UpdateNorms {
    pub delta_sq: f64,
    pub weight_sq: f64,
}

/// `adamw`, also measuring the update (the same arithmetic on `p`, `m` and `v`).
pub fn adamw_tracked<F: Real>(p: &mut [F], g: &[F], m: &mut [F], v: &mut [F], step: u32, h: &AdamW) -> UpdateNorms {
    let decay = F::of(1.0 - h.lr * h.weight_decay);
    let w1 = F::of(1.0 - h.beta1);
    let (b2, w2) = (F::of(h.beta2), F::of(1.0 - h.beta2));
    let bc1 = 1.0 - h.beta1.powf(step as f64);
    let bc2_sqrt = F::of((1.0 - h.beta2.powf(step as f64)).sqrt());
    let step_size = F::of(h.lr / bc1);
    let eps = F::of(h.eps);
    let mut norms = UpdateNorms::default();
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let old = *p;
        *p *= decay;
        *m += w1 * (g - *m); // torch: exp_avg.lerp_(grad, 1 - beta1)
        *v = *v * b2 + w2 * g * g;
        let denom = v.sqrt() / bc2_sqrt + eps;
        *p -= step_size * (*m / denom);
        let (o, d) = (old.to_f64(), (*p - old).to_f64());
        norms.weight_sq += o * o;
        norms.delta_sq += d * d;
    }
    norms
}
