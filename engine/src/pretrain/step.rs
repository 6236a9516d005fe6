//! One step's arithmetic over buffers made once per batch shape: the LoRA trainer's batched
//! forward (`lora::forward_into`), the loss with its z-loss and statistics, and the backward to
//! every tensor. Nothing here allocates once the buffers exist.

use super::kernels::{self as pk, LossStats};
use super::params::Params;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lora::kernels::{self as k, fast, AttnShape, IGNORE};
use crate::lora::{forward_into, Activations, Base, Batch, Real};
use crate::weights::Tensor;

/// The backward's `[N, ·]` gradients, reused across layers.
struct Scratch<F> {
    dx: Vec<F>,
    dxn: Vec<F>,
    datt: Vec<F>,
    dq: Vec<F>,
    dk: Vec<F>,
    dv: Vec<F>,
    dg: Vec<F>,
    dh1: Vec<F>,
    dh3: Vec<F>,
    /// One attention row per sequence (`batch · seq`: a row each when attention splits the
    /// batch over threads).
    ds: Vec<F>,
}

/// Every buffer a step of `batch × seq` tokens needs.
pub struct Workspace<F> {
    pub batch: usize,
    pub seq: usize,
    acts: Activations<F>,
    targets: Vec<u32>,
    lse: Vec<F>,
    rope: Vec<(F, F)>,
    s: Scratch<F>,
    /// The largest attention logit of each layer in the last forward.
    attn_max: Vec<f64>,
}

impl<F: Real> Workspace<F> {
    pub fn new(c: &Config, batch: usize, seq: usize) -> Workspace<F> {
        let n = batch * seq;
        let (d, kv, hd, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.q_dim());
        let z = |len: usize| vec![F::ZERO; len];
        let s = Scratch {
            dx: z(n * d),
            dxn: z(n * d),
            datt: z(n * q),
            dq: z(n * q),
            dk: z(n * kv),
            dv: z(n * kv),
            dg: z(n * hd),
            dh1: z(n * hd),
            dh3: z(n * hd),
            ds: z(n),
        };
        Workspace {
            batch,
            seq,
            acts: Activations::new(c, batch, seq),
            targets: vec![IGNORE; n],
            lse: z(n),
            rope: k::rope_table(n, seq, &k::rope_freqs(c)),
            s,
            attn_max: vec![0.0; c.n_layers],
        }
    }

    /// Whether these buffers fit `batch`'s shape.
    pub fn fits(&self, batch: &Batch) -> bool {
        (self.batch, self.seq) == (batch.batch, batch.seq)
    }

    /// The largest pre-softmax attention logit of each layer, from the last `forward` that
    /// measured them.
    pub fn attention_logit_max(&self) -> &[f64] {
        &self.attn_max
    }

    /// The forward pass and the loss statistics (`measure`: also each layer's largest attention
    /// logit). The logits stay for `backward`.
    pub fn forward(&mut self, base: &Base<F>, batch: &Batch, measure: bool) -> Result<LossStats> {
        batch.check_trainable()?;
        if !self.fits(batch) {
            return Err(Error::InvalidSetting("the training buffers were made for another batch shape".into()));
        }
        forward_into(base, None, batch, &mut self.acts)?;
        let seq = batch.seq;
        for (n, t) in self.targets.iter_mut().enumerate() {
            *t = if n % seq + 1 < seq { batch.tokens[n + 1] } else { IGNORE };
        }
        let c = &base.config;
        if measure {
            let shape = attn_shape(c, batch.batch, seq);
            for (m, a) in self.attn_max.iter_mut().zip(&self.acts.layers) {
                *m = pk::attention_logit_max(base.kernels, &a.q, &a.k, shape);
            }
        }
        Ok(pk::loss_stats(&self.acts.logits, &self.targets, c.vocab_size, &mut self.lse))
    }

    /// The gradient of `mean(ce) + coef · mean(lse²)` w.r.t. every tensor of `base` into `g`
    /// (overwritten), after `forward` on `tokens` gave `stats`. Consumes the logits.
    pub fn backward(&mut self, base: &Base<F>, tokens: &[u32], stats: &LossStats, coef: f64, g: &mut Params<F>) {
        let c = base.config;
        let (seq, kn) = (self.seq, base.kernels);
        let (d, kv, hd, hs, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.head_size(), c.q_dim());
        let eps = F::of(c.norm_eps as f64);
        let (acts, s) = (&mut self.acts, &mut self.s);
        g.fill_zero();
        let scale = F::of(1.0 / stats.rows.max(1) as f64);
        pk::loss_bwd(kn, &mut acts.logits, &self.targets, c.vocab_size, scale, coef, &self.lse);
        // Classifier (the embedding table's share when tied) and the final norm.
        pk::matmul_dw(kn, g.get_mut(Tensor::Wcls), &acts.logits, &acts.xn_final, d);
        zero(&mut s.dxn);
        fast::matmul_dx(kn, &mut s.dxn, &acts.logits, base.get(Tensor::Wcls), d, F::ONE);
        zero(&mut s.dx);
        k::rmsnorm_bwd_eps(&mut s.dx, &acts.x_final, base.get(Tensor::RmsFinal), &s.dxn, eps);
        pk::rmsnorm_bwd_gain(g.get_mut(Tensor::RmsFinal), &acts.x_final, &s.dxn, eps);

        for l in (0..c.n_layers).rev() {
            let a = &acts.layers[l];
            let w = |t: Tensor| base.layer(t, l);
            // FFN: x_out = x_mid + W2·(silu(W1 xn) ⊙ W3 xn); s.dx holds ∂/∂x_out.
            pk::matmul_dw(kn, g.layer_mut(Tensor::W2, l), &s.dx, &a.g, hd);
            zero(&mut s.dg);
            fast::matmul_dx(kn, &mut s.dg, &s.dx, w(Tensor::W2), hd, F::ONE);
            zero(&mut s.dh1);
            zero(&mut s.dh3);
            k::swiglu_bwd(&mut s.dh1, &mut s.dh3, &s.dg, &a.h1, &a.h3);
            pk::matmul_dw(kn, g.layer_mut(Tensor::W1, l), &s.dh1, &a.xn_ffn, d);
            pk::matmul_dw(kn, g.layer_mut(Tensor::W3, l), &s.dh3, &a.xn_ffn, d);
            zero(&mut s.dxn);
            fast::matmul_dx(kn, &mut s.dxn, &s.dh1, w(Tensor::W1), d, F::ONE);
            fast::matmul_dx(kn, &mut s.dxn, &s.dh3, w(Tensor::W3), d, F::ONE);
            pk::rmsnorm_bwd_gain(g.layer_mut(Tensor::RmsFfn, l), &a.x_mid, &s.dxn, eps);
            k::rmsnorm_bwd_eps(&mut s.dx, &a.x_mid, w(Tensor::RmsFfn), &s.dxn, eps);

            // Attention: x_mid = x + Wo·attention(rope(Wq xn), rope(Wk xn), Wv xn).
            pk::matmul_dw(kn, g.layer_mut(Tensor::Wo, l), &s.dx, &a.att, q);
            zero(&mut s.datt);
            fast::matmul_dx(kn, &mut s.datt, &s.dx, w(Tensor::Wo), q, F::ONE);
            zero(&mut s.dq);
            zero(&mut s.dk);
            zero(&mut s.dv);
            let shape = attn_shape(&c, self.batch, seq);
            fast::attention_bwd_into(kn, &mut s.dq, &mut s.dk, &mut s.dv, &s.datt, &a.probs, &a.q, &a.k, &a.v, shape, &mut s.ds);
            k::rope_bwd_with(&mut s.dq, q, seq, hs, &self.rope);
            k::rope_bwd_with(&mut s.dk, kv, seq, hs, &self.rope);
            pk::matmul_dw(kn, g.layer_mut(Tensor::Wq, l), &s.dq, &a.xn_att, d);
            pk::matmul_dw(kn, g.layer_mut(Tensor::Wk, l), &s.dk, &a.xn_att, d);
            pk::matmul_dw(kn, g.layer_mut(Tensor::Wv, l), &s.dv, &a.xn_att, d);
            zero(&mut s.dxn);
            fast::matmul_dx(kn, &mut s.dxn, &s.dq, w(Tensor::Wq), d, F::ONE);
            fast::matmul_dx(kn, &mut s.dxn, &s.dk, w(Tensor::Wk), d, F::ONE);
            fast::matmul_dx(kn, &mut s.dxn, &s.dv, w(Tensor::Wv), d, F::ONE);
            pk::rmsnorm_bwd_gain(g.layer_mut(Tensor::RmsAtt, l), &a.x, &s.dxn, eps);
            k::rmsnorm_bwd_eps(&mut s.dx, &a.x, w(Tensor::RmsAtt), &s.dxn, eps);
        }
        // The lookup: each row's gradient lands on its token's embedding.
        pk::embedding_bwd(g.get_mut(Tensor::TokEmbeddings), &s.dx, tokens, d);
    }

    /// Bytes these buffers hold.
    pub fn bytes(&self) -> u64 {
        let s = &self.s;
        let scratch = [&s.dx, &s.dxn, &s.datt, &s.dq, &s.dk, &s.dv, &s.dg, &s.dh1, &s.dh3, &s.ds, &self.lse]
            .iter()
            .map(|v| v.len())
            .sum::<usize>();
        self.acts.bytes() + ((scratch + self.targets.len()) * std::mem::size_of::<F>()) as u64
    }
}

fn attn_shape(c: &Config, batch: usize, seq: usize) -> AttnShape {
    AttnShape { batch, seq, n_heads: c.n_heads, n_kv_heads: c.n_kv_heads, head_size: c.head_size() }
}

fn zero<F: Real>(v: &mut [F]) {
    v.fill(F::ZERO);
}
