//! Numbers derived from an `Inspection` for teaching views: the logit lens, attention rollout,
//! and the next-token distribution as the sampler reshapes it. Shared by the worker and the page
//! so the page never re-implements the sampler's rules.

use serde::{Deserialize, Serialize};

use super::Inspection;
use crate::config::Config;
use crate::cpu::{fast, ops, products, Kernels};
use crate::error::{Error, Result};
use crate::quant_weights::{MatrixRef, QuantWeights};
use crate::sampler::{argmax, softmax, topp_keep, Sampler};
use crate::weights::{Tensor, Weights};

/// A token of a distribution and its probability (the likeliest, in `lens_at`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Top1 {
    pub id: u32,
    pub prob: f32,
}

/// What the logit lens needs of a model: the final norm's weights and the classifier `[V, D]`.
/// Borrowed, so a caller without a whole `Weights` (the GPU path) can keep just these.
#[derive(Debug, Clone, Copy)]
pub struct LensHead<'a> {
    config: Config,
    rms_final: &'a [f32],
    /// In f32, or kept quantized (then read by the CPU decode's own classifier kernels).
    classifier: MatrixRef<'a>,
}

impl<'a> LensHead<'a> {
    pub fn of(w: &'a Weights) -> LensHead<'a> {
        LensHead { config: w.config, rms_final: &w.rms_final, classifier: MatrixRef::F32(w.classifier()) }
    }

    /// A quantized model's, with the classifier as kept (no f32 copy).
    pub fn of_quantized(q: &'a QuantWeights) -> LensHead<'a> {
        LensHead { config: q.config, rms_final: &q.rms_final, classifier: q.layer(Tensor::Wcls, 0) }
    }

    /// From copies of `rms_final` and the classifier; checks their sizes against `config`.
    pub fn new(config: Config, rms_final: &'a [f32], classifier: &'a [f32]) -> Result<LensHead<'a>> {
        if rms_final.len() != config.dim || classifier.len() != config.vocab_size * config.dim {
            return Err(Error::InvalidSetting("the logit lens got a norm or classifier of the wrong size".into()));
        }
        Ok(LensHead { config, rms_final, classifier: MatrixRef::F32(classifier) })
    }
}

/// Multiply-adds ×2 of the lens over `positions` positions: every layer's residual through the
/// classifier. The page's budget for computing the whole text's lens at once is stated in these.
pub fn lens_flops(c: &Config, positions: usize) -> f64 {
    2.0 * (c.n_layers * positions) as f64 * (c.vocab_size * c.dim) as f64
}

/// Logit lens at position `t`: the top token after each layer, `[L]`. Reads only `ins.resid`
/// (and the config and length), so a caller may drop the attention and logits it no longer needs.
pub fn lens_at(head: &LensHead, ins: &Inspection, t: usize) -> Result<Vec<Top1>> {
    lens_layers(head, ins, t, |logits| {
        let id = argmax(logits);
        fast::softmax(logits);
        Top1 { id: id as u32, prob: logits[id] }
    })
}

/// Logit lens at position `t` with the `k` likeliest tokens after each layer, `[L][k]`, by
/// probability with ties to the lower id (`tinylm inspect --top k`).
pub fn lens_top_k(head: &LensHead, ins: &Inspection, t: usize, k: usize) -> Result<Vec<Vec<Top1>>> {
    lens_layers(head, ins, t, |logits| {
        fast::softmax(logits);
        top_k(logits, k)
    })
}

/// The `k` largest of `p` with their ids; ties go to the lower id (as `argmax`).
fn top_k(p: &[f32], k: usize) -> Vec<Top1> {
    let mut order: Vec<u32> = (0..p.len() as u32).collect();
    order.sort_by(|&a, &b| p[b as usize].total_cmp(&p[a as usize]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|id| Top1 { id, prob: p[id as usize] }).collect()
}

/// `f` of each layer's lens logits at `t` (final RMSNorm and classifier on its residual).
fn lens_layers<R>(head: &LensHead, ins: &Inspection, t: usize, mut f: impl FnMut(&mut [f32]) -> R) -> Result<Vec<R>> {
    let c = &ins.config;
    if head.config != *c {
        return Err(Error::InvalidSetting("the logit lens needs the weights of the inspected model".into()));
    }
    if t >= ins.len() || ins.resid.len() != c.n_layers * ins.len() * c.dim {
        return Err(Error::InvalidSetting(format!("no residuals at position {t} of {}", ins.len())));
    }
    let (mut xb, mut logits) = (vec![0f32; c.dim], vec![0f32; c.vocab_size]);
    let layer = |l: usize| {
        ops::rmsnorm(&mut xb, ins.resid_at(l, t), head.rms_final);
        products::matvec(Kernels::Fast, head.classifier, &mut logits, &xb);
        f(&mut logits)
    };
    Ok((0..c.n_layers).map(layer).collect())
}

/// Logit lens: the final RMSNorm and the classifier applied to the residual after every layer.
/// Returns `[L, T]` row-major (layer-major). The last layer's row is the model's own output:
/// the same operations on the same numbers as the CPU forward pass.
pub fn logit_lens(w: &Weights, ins: &Inspection) -> Result<Vec<Top1>> {
    let head = LensHead::of(w);
    let (l, n) = (ins.config.n_layers, ins.len());
    let mut out = vec![Top1 { id: 0, prob: 0.0 }; l * n];
    for t in 0..n {
        for (li, top) in lens_at(&head, ins, t)?.into_iter().enumerate() {
            out[li * n + t] = top;
        }
    }
    Ok(out)
}

/// Attention rollout (Abnar & Zuidema, 2020), an approximation of how information flows: each
/// layer's attention averaged over heads and mixed half-and-half with the identity (the residual
/// path), multiplied up through the layers. Returns `[L, T, T]`: row t of layer l says how much
/// of position t after layer l traces back to each input position. Rows sum to 1.
pub fn rollout(ins: &Inspection) -> Vec<f32> {
    let mut r = Rollout::new(ins);
    while !r.advance(ins) {}
    r.finish()
}

/// `rollout` a layer per `advance`, so a single-threaded caller can yield between layers
/// (the work grows with T³).
#[derive(Debug, Clone)]
pub struct Rollout {
    out: Vec<f32>,
    mixed: Vec<f32>,
    next: usize,
}

impl Rollout {
    pub fn new(ins: &Inspection) -> Rollout {
        let n = ins.len();
        Rollout { out: vec![0f32; ins.config.n_layers * n * n], mixed: vec![0f32; n * n], next: 0 }
    }

    /// Layers done so far.
    pub fn done(&self) -> usize {
        self.next
    }

    /// Computes the next layer; returns whether every layer is done.
    pub fn advance(&mut self, ins: &Inspection) -> bool {
        let (l, h, n) = (ins.config.n_layers, ins.config.n_heads, ins.len());
        if self.next >= l {
            return true;
        }
        let li = self.next;
        let mixed = &mut self.mixed;
        mixed.fill(0.0);
        for hi in 0..h {
            for t in 0..n {
                for (m, &a) in mixed[t * n..t * n + t + 1].iter_mut().zip(ins.attn_row(li, hi, t)) {
                    *m += 0.5 * a / h as f32;
                }
            }
        }
        for t in 0..n {
            mixed[t * n + t] += 0.5;
        }
        let (done, rest) = self.out.split_at_mut(li * n * n);
        let cur = &mut rest[..n * n];
        if li == 0 {
            cur.copy_from_slice(mixed);
        } else {
            let prev = &done[(li - 1) * n * n..];
            // Both factors are lower triangular: (A·R)[t][s] sums k over s..=t.
            for t in 0..n {
                for k in 0..=t {
                    let a = mixed[t * n + k];
                    if a == 0.0 {
                        continue;
                    }
                    for s in 0..=k {
                        cur[t * n + s] += a * prev[k * n + s];
                    }
                }
            }
        }
        self.next += 1;
        self.next >= l
    }

    /// `[L, T, T]`; layers not yet advanced are zeros.
    pub fn finish(self) -> Vec<f32> {
        self.out
    }
}

/// One candidate next token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
    /// The model's own probability (temperature 1, no cut).
    pub prob: f32,
    /// The probability the sampler draws it with under the chosen temperature and top-p.
    pub reshaped: f32,
    /// Whether the sampler can choose it at all (survives the top-p cut).
    pub kept: bool,
}

/// The next-token distribution at one position, before and after the sampler's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextTokens {
    /// The `k` likeliest tokens by the model's own probability, likeliest first.
    pub top: Vec<Candidate>,
    /// How many tokens the sampler can choose from.
    pub kept: usize,
    /// Their total probability under the temperature, before renormalising.
    pub kept_mass: f32,
}

/// The distribution the sampler of run.c draws from for `logits` with `temperature` and `topp`,
/// using its own code: temperature 0 is argmax; top-p in (0, 1) keeps `topp_keep`'s set.
pub fn next_tokens(logits: &[f32], temperature: f32, topp: f32, k: usize) -> Result<NextTokens> {
    if logits.is_empty() {
        return Err(Error::InvalidSetting("no logits to show".into()));
    }
    // NaN would leave the top-p set empty (run.c's sampler then takes the argmax).
    if logits.iter().any(|x| !x.is_finite()) {
        return Err(Error::NotFinite("a logit".into()));
    }
    // The sampler's own checks of its settings.
    Sampler::new(temperature, topp, 0)?;
    let mut model = logits.to_vec();
    softmax(&mut model);
    let (reshaped, kept, kept_mass) = reshape(logits, temperature, topp);
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_by(|&a, &b| model[b as usize].total_cmp(&model[a as usize]).then(a.cmp(&b)));
    let top = order
        .into_iter()
        .take(k)
        .map(|id| {
            let i = id as usize;
            Candidate { id, logit: logits[i], prob: model[i], reshaped: reshaped[i], kept: kept[i] }
        })
        .collect();
    Ok(NextTokens { top, kept: kept.iter().filter(|&&k| k).count(), kept_mass })
}

/// Per token: the sampling probability and whether it is in the kept set; and the kept mass.
fn reshape(logits: &[f32], temperature: f32, topp: f32) -> (Vec<f32>, Vec<bool>, f32) {
    let n = logits.len();
    let mut p = vec![0f32; n];
    let mut kept = vec![false; n];
    if temperature == 0.0 {
        let i = argmax(logits);
        p[i] = 1.0;
        kept[i] = true;
        return (p, kept, 1.0);
    }
    // As `Sampler::sample`: divide in place, then softmax.
    let mut probs: Vec<f32> = logits.iter().map(|&l| l / temperature).collect();
    softmax(&mut probs);
    if topp <= 0.0 || topp >= 1.0 {
        return (probs.clone(), vec![true; n], 1.0);
    }
    let mut set = Vec::new();
    let (count, mass) = topp_keep(&probs, topp, &mut set);
    for &(i, q) in &set[..count] {
        p[i as usize] = q / mass;
        kept[i as usize] = true;
    }
    (p, kept, mass)
}

/// How the model rated a token it was given or chose.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Odds {
    /// The model's probability (temperature 1).
    pub prob: f32,
    /// 1 for the likeliest token; ties share the better rank.
    pub rank: usize,
}

/// The probability and rank of token `id` under `logits`.
pub fn odds(logits: &[f32], id: u32) -> Result<Odds> {
    let Some(&mine) = logits.get(id as usize) else {
        return Err(Error::TokenOutOfRange { id: id as i64, vocab_size: logits.len() });
    };
    let mut p = logits.to_vec();
    softmax(&mut p);
    let rank = 1 + logits.iter().filter(|&&l| l > mine).count();
    Ok(Odds { prob: p[id as usize], rank })
}

#[cfg(test)]
mod tests {
    use super::{top_k, Top1};

    #[test]
    fn top_k_orders_by_probability_then_id() {
        let t = |id, prob| Top1 { id, prob };
        assert_eq!(top_k(&[0.1, 0.4, 0.4, 0.1], 3), [t(1, 0.4), t(2, 0.4), t(0, 0.1)]);
        assert_eq!(top_k(&[0.5], 4).len(), 1);
    }
}
