//! The batched forward pass with its activations kept, and the backward pass to the LoRA
//! parameters through the frozen model, as a sequence of `kernels` calls.

use super::data::Batch;
use super::kernels::{self as k, fast, AttnShape, IGNORE};
use super::quant_base::{self as qb, BaseMatrix};
use super::real::{cast, Real};
use super::{Adapter, Target};
use crate::config::Config;
use crate::cpu::Kernels;
use crate::error::Result;
use crate::quant_weights::QuantWeights;
use crate::weights::{Tensor, Weights};

/// The frozen model's tensors as slices of `F`, indexed by `Tensor` (`Wcls` is the classifier,
/// tied or not), and the kernels the f32 path runs on. With `quant`, the matrices are that
/// model's, kept quantized (`quant_base`); the slices then hold only the norms.
#[derive(Debug, Clone, Copy)]
pub struct Base<'a, F> {
    pub config: Config,
    /// `Fast` (SIMD, `cpu::fast`) or the generic reference kernels; f64 always takes the latter.
    pub kernels: Kernels,
    t: [&'a [F]; 12],
    quant: Option<&'a QuantWeights>,
}

impl<'a> Base<'a, f32> {
    /// Borrows the engine's weights (no copy); the fast kernels.
    pub fn new(w: &'a Weights) -> Base<'a, f32> {
        Base { config: w.config, kernels: Kernels::Fast, t: ALL_TENSORS.map(|t| w.get(t)), quant: None }
    }

    /// Borrows a model whose matrices stay quantized: no f32 copy; the fast kernels.
    pub fn quantized(q: &'a QuantWeights) -> Base<'a, f32> {
        let t = ALL_TENSORS.map(|t| match t {
            Tensor::RmsAtt => q.rms_att.as_slice(),
            Tensor::RmsFfn => q.rms_ffn.as_slice(),
            Tensor::RmsFinal => q.rms_final.as_slice(),
            _ => &[][..],
        });
        Base { config: q.config, kernels: Kernels::Fast, t, quant: Some(q) }
    }
}

/// Every tensor in `Tensor` order (the order `Base` indexes them).
pub const ALL_TENSORS: [Tensor; 12] = [
    Tensor::TokEmbeddings,
    Tensor::RmsAtt,
    Tensor::Wq,
    Tensor::Wk,
    Tensor::Wv,
    Tensor::Wo,
    Tensor::RmsFfn,
    Tensor::W1,
    Tensor::W2,
    Tensor::W3,
    Tensor::RmsFinal,
    Tensor::Wcls,
];

impl<'a, F> Base<'a, F> {
    /// Borrows tensors given in `Tensor` order (`Wcls` is the classifier: the embedding table
    /// again when tied), for trainers that own their weights.
    pub fn from_slices(config: Config, kernels: Kernels, t: [&'a [F]; 12]) -> Base<'a, F> {
        Base { config, kernels, t, quant: None }
    }
    /// The same weights on other kernels.
    pub fn with_kernels(self, kernels: Kernels) -> Base<'a, F> {
        Base { kernels, ..self }
    }
    /// The whole tensor.
    pub fn get(&self, t: Tensor) -> &'a [F] {
        self.t[t as usize]
    }
    /// Layer `l`'s block of a per-layer tensor.
    pub fn layer(&self, t: Tensor, l: usize) -> &'a [F] {
        let all = self.get(t);
        let n = all.len() / self.config.n_layers;
        &all[l * n..(l + 1) * n]
    }
    /// Layer `l`'s matrix `t` (the whole matrix for the embedding and the classifier), dense or
    /// kept quantized.
    pub fn matrix(&self, t: Tensor, l: usize) -> BaseMatrix<'a, F> {
        let whole = matches!(t, Tensor::TokEmbeddings | Tensor::Wcls);
        match self.quant {
            Some(q) => BaseMatrix::Quant(q.layer(t, if whole { 0 } else { l })),
            None if whole => BaseMatrix::Dense(self.get(t)),
            None => BaseMatrix::Dense(self.layer(t, l)),
        }
    }
}

/// An owned copy of the weights in another float type (f64 for gradient checks).
#[derive(Debug, Clone)]
pub struct BaseBuf<F> {
    pub config: Config,
    t: Vec<Vec<F>>,
}

impl<F: Real> BaseBuf<F> {
    pub fn new(w: &Weights) -> BaseBuf<F> {
        BaseBuf { config: w.config, t: ALL_TENSORS.iter().map(|&t| cast(w.get(t))).collect() }
    }
    pub fn view(&self) -> Base<'_, F> {
        Base { config: self.config, kernels: Kernels::Reference, t: std::array::from_fn(|i| self.t[i].as_slice()), quant: None }
    }
}

/// What one layer's backward needs from its forward; rows `N = batch · seq`.
#[derive(Debug, Clone)]
pub struct LayerActs<F> {
    /// `[N, dim]`: the residual entering the layer.
    pub x: Vec<F>,
    pub xn_att: Vec<F>,
    /// `[N, dim]`, `[N, kv_dim]` × 2: q and k after RoPE, v.
    pub q: Vec<F>,
    pub k: Vec<F>,
    pub v: Vec<F>,
    /// `[batch, heads, seq, seq]`.
    pub probs: Vec<F>,
    /// `[N, dim]`: attention output (wo's input).
    pub att: Vec<F>,
    /// `[N, dim]`: the residual after attention.
    pub x_mid: Vec<F>,
    pub xn_ffn: Vec<F>,
    /// `[N, hidden]`: w1 x, w3 x, and silu(w1 x) ⊙ w3 x.
    pub h1: Vec<F>,
    pub h3: Vec<F>,
    pub g: Vec<F>,
    /// `[N, r]` per adapted target (`A x`), indexed like `Target::ALL`; empty when not adapted.
    pub u: [Vec<F>; 7],
}

/// Everything the backward needs, for one batch.
#[derive(Debug, Clone)]
pub struct Activations<F> {
    pub batch: usize,
    pub seq: usize,
    pub layers: Vec<LayerActs<F>>,
    /// `[N, dim]`: the last layer's output and its final norm.
    pub x_final: Vec<F>,
    pub xn_final: Vec<F>,
    /// `[N, vocab]`.
    pub logits: Vec<F>,
    /// The forward's `[N, dim]` temporary and RoPE's table (`kernels::rope_table`), kept so a
    /// forward into these buffers allocates nothing.
    scratch: Vec<F>,
    rope: Vec<(F, F)>,
}

impl<F> Activations<F> {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        let layer = |a: &LayerActs<F>| {
            [&a.x, &a.xn_att, &a.q, &a.k, &a.v, &a.probs, &a.att, &a.x_mid, &a.xn_ffn, &a.h1, &a.h3, &a.g]
                .iter()
                .map(|v| v.len())
                .sum::<usize>()
                + a.u.iter().map(Vec::len).sum::<usize>()
        };
        let n = self.layers.iter().map(layer).sum::<usize>() + self.x_final.len() + self.xn_final.len() + self.logits.len();
        (n * std::mem::size_of::<F>()) as u64
    }
}

fn attn_shape(c: &Config, batch: usize, seq: usize) -> AttnShape {
    AttnShape { batch, seq, n_heads: c.n_heads, n_kv_heads: c.n_kv_heads, head_size: c.head_size() }
}

/// `y = W x (+ s·B(A x))` for target `t` of layer `l`, keeping `A x` in `u`.
fn project<F: Real>(base: &Base<F>, ad: Option<&Adapter<F>>, l: usize, t: Target, x: &[F], y: &mut [F], u: &mut Vec<F>) {
    let (_, n_in) = t.shape(&base.config);
    qb::matmul(base.kernels, y, x, base.matrix(t.tensor(), l), n_in);
    let Some(ad) = ad else { return };
    if let Some(i) = ad.index(l, t) {
        let rows = y.len() / t.shape(&base.config).0;
        u.resize(rows * ad.config.r, F::ZERO);
        k::lora(y, u, x, ad.pair(i));
    }
}

impl<F: Real> Activations<F> {
    /// Zeroed buffers for a forward of `batch × seq` tokens through a model of shape `c`.
    pub fn new(c: &Config, batch: usize, seq: usize) -> Activations<F> {
        let n = batch * seq;
        let (d, kv, hd, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.q_dim());
        let z = |len: usize| vec![F::ZERO; len];
        let layer = || LayerActs {
            x: z(n * d),
            xn_att: z(n * d),
            q: z(n * q),
            k: z(n * kv),
            v: z(n * kv),
            probs: z(attn_shape(c, batch, seq).probs_len()),
            att: z(n * q),
            x_mid: z(n * d),
            xn_ffn: z(n * d),
            h1: z(n * hd),
            h3: z(n * hd),
            g: z(n * hd),
            u: Default::default(),
        };
        Activations {
            batch,
            seq,
            layers: (0..c.n_layers).map(|_| layer()).collect(),
            x_final: z(n * d),
            xn_final: z(n * d),
            logits: z(n * c.vocab_size),
            scratch: z(n * d),
            rope: k::rope_table(n, seq, &k::rope_freqs(c)),
        }
    }
}

/// The batched forward pass with the adapter unmerged, keeping what the backward needs.
pub fn forward<F: Real>(base: &Base<F>, ad: Option<&Adapter<F>>, batch: &Batch) -> Result<Activations<F>> {
    let mut acts = Activations::new(&base.config, batch.batch, batch.seq);
    forward_into(base, ad, batch, &mut acts)?;
    Ok(acts)
}

/// `forward` into buffers made by `Activations::new` for this batch shape: with no adapter (or
/// after a first call) it allocates nothing.
pub fn forward_into<F: Real>(base: &Base<F>, ad: Option<&Adapter<F>>, batch: &Batch, acts: &mut Activations<F>) -> Result<()> {
    let c = &base.config;
    batch.check(c)?;
    if let Some(ad) = ad {
        ad.check_base(c)?;
    }
    let seq = batch.seq;
    if (acts.batch, acts.seq, acts.layers.len()) != (batch.batch, seq, c.n_layers)
        || acts.logits.len() != batch.tokens.len() * c.vocab_size
    {
        return Err(crate::error::Error::InvalidSetting("the activation buffers were made for another batch shape".into()));
    }
    let (d, kv, hs, q) = (c.dim, c.kv_dim(), c.head_size(), c.q_dim());
    let eps = F::of(c.norm_eps as f64);
    let Activations { layers, x_final, xn_final, logits, scratch: tmp, rope, .. } = acts;
    let emb = base.matrix(Tensor::TokEmbeddings, 0);
    for (row, &tok) in layers[0].x.chunks_exact_mut(d).zip(&batch.tokens) {
        qb::row(emb, tok as usize, row);
    }
    let kn = base.kernels;
    for l in 0..c.n_layers {
        let (a, rest) = layers[l..].split_first_mut().expect("layer l exists");
        let x_out = match rest.first_mut() {
            Some(next) => &mut next.x,
            None => &mut *x_final,
        };
        let [uq, uk, uv, uo, ug, uu, ud] = &mut a.u;
        fast::rmsnorm(kn, &mut a.xn_att, &a.x, base.layer(Tensor::RmsAtt, l), eps);
        project(base, ad, l, Target::Q, &a.xn_att, &mut a.q, uq);
        project(base, ad, l, Target::K, &a.xn_att, &mut a.k, uk);
        project(base, ad, l, Target::V, &a.xn_att, &mut a.v, uv);
        k::rope_with(&mut a.q, q, seq, hs, rope);
        k::rope_with(&mut a.k, kv, seq, hs, rope);
        fast::attention(kn, &mut a.att, &mut a.probs, &a.q, &a.k, &a.v, attn_shape(c, batch.batch, seq));
        project(base, ad, l, Target::O, &a.att, tmp, uo);
        add(&mut a.x_mid, &a.x, tmp);

        fast::rmsnorm(kn, &mut a.xn_ffn, &a.x_mid, base.layer(Tensor::RmsFfn, l), eps);
        project(base, ad, l, Target::Gate, &a.xn_ffn, &mut a.h1, ug);
        project(base, ad, l, Target::Up, &a.xn_ffn, &mut a.h3, uu);
        fast::swiglu(kn, &mut a.g, &a.h1, &a.h3);
        project(base, ad, l, Target::Down, &a.g, tmp, ud);
        add(x_out, &a.x_mid, tmp);
    }
    fast::rmsnorm(kn, xn_final, x_final, base.get(Tensor::RmsFinal), eps);
    qb::matmul(kn, logits, xn_final, base.matrix(Tensor::Wcls, 0), d);
    Ok(())
}

/// `out = a + b`.
fn add<F: Real>(out: &mut [F], a: &[F], b: &[F]) {
    for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
        *o = p + q;
    }
}

/// Next-token targets of each row: `tokens[n + 1]`, `IGNORE` at each sequence's last position.
fn targets(batch: &Batch) -> Vec<u32> {
    let seq = batch.seq;
    (0..batch.tokens.len()).map(|n| if n % seq + 1 < seq { batch.tokens[n + 1] } else { IGNORE }).collect()
}

/// Mean next-token cross-entropy over all `batch · (seq − 1)` positions.
pub fn loss<F: Real>(base: &Base<F>, ad: Option<&Adapter<F>>, batch: &Batch) -> Result<f64> {
    batch.check_trainable()?;
    let mut acts = forward(base, ad, batch)?;
    let (sum, count) = fast::cross_entropy(base.kernels, &mut acts.logits, &targets(batch), base.config.vocab_size);
    Ok(sum / count as f64)
}

/// The loss and its gradient w.r.t. every A and B (an adapter-shaped value).
pub fn loss_and_grads<F: Real>(base: &Base<F>, ad: &Adapter<F>, batch: &Batch) -> Result<(f64, Adapter<F>)> {
    batch.check_trainable()?;
    let acts = forward(base, Some(ad), batch)?;
    let mut grads = ad.zeros_like();
    let loss = backward(base, ad, acts, &targets(batch), &mut grads);
    Ok((loss, grads))
}

/// Backward scratch, reused across layers.
pub(crate) struct Scratch<F> {
    dx: Vec<F>,
    dxn: Vec<F>,
    datt: Vec<F>,
    dq: Vec<F>,
    dk: Vec<F>,
    dv: Vec<F>,
    dg: Vec<F>,
    dh1: Vec<F>,
    dh3: Vec<F>,
    du: Vec<F>,
}

impl<F: Real> Scratch<F> {
    pub(crate) fn new(c: &Config, n: usize, r: usize) -> Scratch<F> {
        let z = |len: usize| vec![F::ZERO; len];
        let (d, kv, hd, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.q_dim());
        Scratch {
            dx: z(n * d),
            dxn: z(n * d),
            datt: z(n * q),
            dq: z(n * q),
            dk: z(n * kv),
            dv: z(n * kv),
            dg: z(n * hd),
            dh1: z(n * hd),
            dh3: z(n * hd),
            du: z(n * r),
        }
    }
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        let s = self;
        let n =
            [&s.dx, &s.dxn, &s.datt, &s.dq, &s.dk, &s.dv, &s.dg, &s.dh1, &s.dh3, &s.du].iter().map(|v| v.len()).sum::<usize>();
        (n * std::mem::size_of::<F>()) as u64
    }
}

/// Adds the LoRA gradients of target `t` in layer `l` (if adapted), and `du·A` into `dx`.
#[allow(clippy::too_many_arguments)]
fn project_bwd<F: Real>(
    ad: &Adapter<F>,
    grads: &mut Adapter<F>,
    l: usize,
    t: Target,
    dy: &[F],
    x: &[F],
    u: &[F],
    du: &mut Vec<F>,
    dx: Option<&mut [F]>,
) {
    let Some(i) = ad.index(l, t) else { return };
    let g = &mut grads.modules[i];
    du.resize(u.len(), F::ZERO);
    k::lora_bwd(dx, &mut g.a, &mut g.b, du, dy, x, u, ad.pair(i));
}

/// Consumes the activations (logits become their gradient) and fills `grads`; returns the loss.
pub(crate) fn backward<F: Real>(
    base: &Base<F>,
    ad: &Adapter<F>,
    mut acts: Activations<F>,
    targets: &[u32],
    grads: &mut Adapter<F>,
) -> f64 {
    let c = &base.config;
    let (seq, n) = (acts.seq, acts.batch * acts.seq);
    let (d, kv, hd, q, hs) = (c.dim, c.kv_dim(), c.hidden_dim, c.q_dim(), c.head_size());
    let eps = F::of(c.norm_eps as f64);
    let kn = base.kernels;
    let (sum, count) = fast::cross_entropy_and_bwd(kn, &mut acts.logits, targets, c.vocab_size);
    let mut s = Scratch::new(c, n, ad.config.r);
    qb::matmul_dx(kn, &mut s.dxn, &acts.logits, base.matrix(Tensor::Wcls, 0), d, F::ONE);
    k::rmsnorm_bwd_eps(&mut s.dx, &acts.x_final, base.get(Tensor::RmsFinal), &s.dxn, eps);

    for l in (0..c.n_layers).rev() {
        let a = &acts.layers[l];
        let w = |t: Tensor| base.layer(t, l);
        let m = |t: Tensor| base.matrix(t, l);
        let u = |t: Target| &a.u[t as usize];
        // FFN: x_out = x_mid + W2·(silu(W1 xn) ⊙ W3 xn); s.dx holds ∂/∂x_out.
        zero(&mut s.dg);
        qb::matmul_dx(kn, &mut s.dg, &s.dx, m(Tensor::W2), hd, F::ONE);
        project_bwd(ad, grads, l, Target::Down, &s.dx, &a.g, u(Target::Down), &mut s.du, Some(&mut s.dg));
        zero(&mut s.dh1);
        zero(&mut s.dh3);
        k::swiglu_bwd(&mut s.dh1, &mut s.dh3, &s.dg, &a.h1, &a.h3);
        zero(&mut s.dxn);
        qb::matmul_dx(kn, &mut s.dxn, &s.dh1, m(Tensor::W1), d, F::ONE);
        qb::matmul_dx(kn, &mut s.dxn, &s.dh3, m(Tensor::W3), d, F::ONE);
        project_bwd(ad, grads, l, Target::Gate, &s.dh1, &a.xn_ffn, u(Target::Gate), &mut s.du, Some(&mut s.dxn));
        project_bwd(ad, grads, l, Target::Up, &s.dh3, &a.xn_ffn, u(Target::Up), &mut s.du, Some(&mut s.dxn));
        k::rmsnorm_bwd_eps(&mut s.dx, &a.x_mid, w(Tensor::RmsFfn), &s.dxn, eps);

        // Attention: x_mid = x + Wo·attention(rope(Wq xn), rope(Wk xn), Wv xn).
        zero(&mut s.datt);
        qb::matmul_dx(kn, &mut s.datt, &s.dx, m(Tensor::Wo), q, F::ONE);
        project_bwd(ad, grads, l, Target::O, &s.dx, &a.att, u(Target::O), &mut s.du, Some(&mut s.datt));
        zero(&mut s.dq);
        zero(&mut s.dk);
        zero(&mut s.dv);
        fast::attention_bwd(
            kn,
            &mut s.dq,
            &mut s.dk,
            &mut s.dv,
            &s.datt,
            &a.probs,
            &a.q,
            &a.k,
            &a.v,
            attn_shape(c, acts.batch, seq),
        );
        k::rope_bwd_with(&mut s.dq, q, seq, hs, &acts.rope);
        k::rope_bwd_with(&mut s.dk, kv, seq, hs, &acts.rope);
        // The embeddings are frozen: below layer 0 no input gradient is needed.
        let need_dx = l > 0;
        zero(&mut s.dxn);
        if need_dx {
            qb::matmul_dx(kn, &mut s.dxn, &s.dq, m(Tensor::Wq), d, F::ONE);
            qb::matmul_dx(kn, &mut s.dxn, &s.dk, m(Tensor::Wk), d, F::ONE);
            qb::matmul_dx(kn, &mut s.dxn, &s.dv, m(Tensor::Wv), d, F::ONE);
        }
        for (t, dy) in [(Target::Q, &s.dq), (Target::K, &s.dk), (Target::V, &s.dv)] {
            let dx = need_dx.then_some(s.dxn.as_mut_slice());
            project_bwd(ad, grads, l, t, dy, &a.xn_att, u(t), &mut s.du, dx);
        }
        if need_dx {
            k::rmsnorm_bwd_eps(&mut s.dx, &a.x, w(Tensor::RmsAtt), &s.dxn, eps);
        }
    }
    sum / count as f64
}

fn zero<F: Real>(v: &mut [F]) {
    v.fill(F::ZERO);
}
