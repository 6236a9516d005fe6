//! The CPU path: run.c's forward pass in plain f32, the readable reference for every other path.

pub mod batch;
pub mod blocks;
pub mod fast;
mod heads;
pub mod hugepages;
mod kernels;
pub mod ops;
pub mod products;
pub mod q8;

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lora::{Adapter, Target};
use crate::quant::DType;
use crate::quant_weights::{matrix_shape, MatrixRef, QuantWeights};
use crate::trace::{both, Edits, Hook, StepTrace};
use crate::weights::{Tensor, Weights};
pub use kernels::Kernels;
use ops::{rope, rope_table, rope_turn};

/// Activations and the KV cache for one sequence.
#[derive(Debug, Clone)]
pub struct State {
    x: Vec<f32>,
    xb: Vec<f32>,
    xb2: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    q: Vec<f32>,
    /// Attention output, `[q_dim]` (the input of wo).
    ao: Vec<f32>,
    att: Vec<f32>,
    logits: Vec<f32>,
    /// RoPE's (sin, cos) per pair of a head at the current position (fast kernels).
    rope: Vec<(f32, f32)>,
    /// RoPE's frequency per pair of a head (`Config::rope_freqs`).
    freqs: Vec<f32>,
    /// `[layer, pos, kv_dim]`.
    key_cache: Vec<f32>,
    value_cache: Vec<f32>,
}

impl State {
    pub fn new(c: &Config) -> State {
        let cache = c.n_layers * c.seq_len * c.kv_dim();
        State {
            x: vec![0.0; c.dim],
            xb: vec![0.0; c.dim],
            xb2: vec![0.0; c.dim],
            hb: vec![0.0; c.hidden_dim],
            hb2: vec![0.0; c.hidden_dim],
            q: vec![0.0; c.q_dim()],
            ao: vec![0.0; c.q_dim()],
            att: vec![0.0; c.n_heads * c.seq_len],
            logits: vec![0.0; c.vocab_size],
            rope: vec![(0.0, 0.0); c.head_size() / 2],
            freqs: c.rope_freqs(),
            key_cache: vec![0.0; cache],
            value_cache: vec![0.0; cache],
        }
    }
}

/// Checks a token and position against the model before running it.
pub fn check_step(c: &Config, token: u32, pos: usize) -> Result<()> {
    if token as usize >= c.vocab_size {
        return Err(Error::TokenOutOfRange { id: token as i64, vocab_size: c.vocab_size });
    }
    if pos >= c.seq_len {
        return Err(Error::PromptTooLong { tokens: pos + 1, seq_len: c.seq_len });
    }
    Ok(())
}

/// run.c `forward(token, pos)` with the reference kernels: returns the logits; calls `hook`
/// (a `StepTrace` records attention and residuals; an experiment changes activations) when given.
pub fn forward<'s>(w: &Weights, s: &'s mut State, token: u32, pos: usize, hook: Option<&mut dyn Hook>) -> Result<&'s mut [f32]> {
    forward_with(Kernels::Reference, w, s, token, pos, hook)
}

/// `forward` on the chosen kernels.
pub fn forward_with<'s>(
    kernels: Kernels,
    w: &Weights,
    s: &'s mut State,
    token: u32,
    pos: usize,
    hook: Option<&mut dyn Hook>,
) -> Result<&'s mut [f32]> {
    forward_adapted(kernels, w, None, s, token, pos, hook)
}

/// `forward_with` plus an unmerged LoRA adapter, added after each projection it adapts
/// (`y += s·B(A x)`); with `None` every operation is exactly `forward_with`'s.
pub fn forward_adapted<'s>(
    kernels: Kernels,
    w: &Weights,
    adapter: Option<&Adapter>,
    s: &'s mut State,
    token: u32,
    pos: usize,
    hook: Option<&mut dyn Hook>,
) -> Result<&'s mut [f32]> {
    forward_on(kernels, w, adapter, s, token, pos, hook)
}

/// `forward_adapted` over any weights the forward pass can read (f32 `Weights`, or
/// `QuantWeights` with quantized matrices).
pub fn forward_on<'s, W: ForwardWeights + ?Sized>(
    kernels: Kernels,
    w: &W,
    adapter: Option<&Adapter>,
    s: &'s mut State,
    token: u32,
    pos: usize,
    mut hook: Option<&mut dyn Hook>,
) -> Result<&'s mut [f32]> {
    let (attend, swiglu) = (kernels.attend(), kernels.swiglu());
    let matmul = |out: &mut [f32], x: &[f32], t: Tensor, l: usize| products::matvec(kernels, w.matrix(t, l), out, x);
    let norm = kernels.rmsnorm();
    let lora = |l, t, x: &[f32], y: &mut [f32]| {
        if let Some(a) = adapter {
            a.apply(l, t, x, y);
        }
    };
    let c = w.config();
    check_step(c, token, pos)?;
    let (dim, kv_dim) = (c.dim, c.kv_dim());
    let rmsnorm = |o: &mut [f32], x: &[f32], g: &[f32]| norm(o, x, g, c.norm_eps);
    w.embed(token as usize, &mut s.x[..dim]);
    if kernels == Kernels::Fast {
        rope_table(&mut s.rope, pos, &s.freqs);
    }

    for l in 0..c.n_layers {
        rmsnorm(&mut s.xb, &s.x, w.norm(Tensor::RmsAtt, l));

        let cache_at = l * c.seq_len * kv_dim + pos * kv_dim;
        let (k_at, v_at) = (&mut s.key_cache[cache_at..cache_at + kv_dim], &mut s.value_cache[cache_at..cache_at + kv_dim]);
        let qkv = [(w.matrix(Tensor::Wq, l), &mut s.q[..]), (w.matrix(Tensor::Wk, l), k_at), (w.matrix(Tensor::Wv, l), v_at)];
        products::matvecs(kernels, &s.xb, qkv);
        lora(l, Target::Q, &s.xb, &mut s.q);
        lora(l, Target::K, &s.xb, &mut s.key_cache[cache_at..cache_at + kv_dim]);
        lora(l, Target::V, &s.xb, &mut s.value_cache[cache_at..cache_at + kv_dim]);
        match kernels {
            Kernels::Reference => {
                rope(&mut s.q, pos, &s.freqs);
                rope(&mut s.key_cache[cache_at..cache_at + kv_dim], pos, &s.freqs);
            }
            Kernels::Fast => {
                rope_turn(&mut s.q, &s.rope);
                rope_turn(&mut s.key_cache[cache_at..cache_at + kv_dim], &s.rope);
            }
        }

        let layer_cache = &s.key_cache[l * c.seq_len * kv_dim..(l + 1) * c.seq_len * kv_dim];
        let layer_values = &s.value_cache[l * c.seq_len * kv_dim..(l + 1) * c.seq_len * kv_dim];
        let parallel = kernels == Kernels::Fast;
        heads::attend_heads(attend, parallel, c, pos, &s.q, layer_cache, layer_values, &mut s.att, &mut s.ao);
        if let Some(k) = hook.as_deref_mut() {
            for h in 0..c.n_heads {
                k.attention(l, h, &s.att[h * c.seq_len..][..=pos]);
            }
        }
        if let Some(k) = hook.as_deref_mut() {
            k.heads(l, pos, &mut s.ao);
        }
        matmul(&mut s.xb2, &s.ao, Tensor::Wo, l);
        lora(l, Target::O, &s.ao, &mut s.xb2);
        if let Some(k) = hook.as_deref_mut() {
            k.attention_out(l, pos, &mut s.xb2);
        }
        add(&mut s.x, &s.xb2);

        rmsnorm(&mut s.xb, &s.x, w.norm(Tensor::RmsFfn, l));
        let w13 = [(w.matrix(Tensor::W1, l), &mut s.hb[..]), (w.matrix(Tensor::W3, l), &mut s.hb2[..])];
        products::matvecs(kernels, &s.xb, w13);
        lora(l, Target::Gate, &s.xb, &mut s.hb);
        lora(l, Target::Up, &s.xb, &mut s.hb2);
        swiglu(&mut s.hb, &s.hb2);
        matmul(&mut s.xb, &s.hb, Tensor::W2, l);
        lora(l, Target::Down, &s.hb, &mut s.xb);
        if let Some(k) = hook.as_deref_mut() {
            k.mlp_out(l, pos, &mut s.xb);
        }
        add(&mut s.x, &s.xb);
        if let Some(k) = hook.as_deref_mut() {
            k.resid(l, pos, &mut s.x);
        }
    }
    rmsnorm(&mut s.xb, &s.x, w.norm(Tensor::RmsFinal, 0));
    matmul(&mut s.logits, &s.xb, Tensor::Wcls, 0);
    Ok(&mut s.logits)
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// What the forward pass reads from a model: its embedding rows, norms, and products with its
/// matrices, so one forward pass runs f32 `Weights` and quantized `QuantWeights` alike.
pub trait ForwardWeights {
    fn config(&self) -> &Config;
    /// Row `token` of the embedding table, as f32.
    fn embed(&self, token: usize, out: &mut [f32]);
    /// Layer `l`'s norm `t` (RmsAtt, RmsFfn; RmsFinal with `l = 0`).
    fn norm(&self, t: Tensor, l: usize) -> &[f32];
    /// Layer `l`'s matrix `t` (whole tensors: `l = 0`), for `products`.
    fn matrix(&self, t: Tensor, l: usize) -> MatrixRef<'_>;
}

fn layer_slice(t: &[f32], l: usize, n: usize) -> &[f32] {
    &t[l * n..(l + 1) * n]
}

impl ForwardWeights for Weights {
    fn config(&self) -> &Config {
        &self.config
    }
    fn embed(&self, token: usize, out: &mut [f32]) {
        let d = self.config.dim;
        out.copy_from_slice(&self.tok_embeddings[token * d..(token + 1) * d]);
    }
    fn norm(&self, t: Tensor, l: usize) -> &[f32] {
        layer_slice(self.get(t), l, self.config.dim)
    }
    fn matrix(&self, t: Tensor, l: usize) -> MatrixRef<'_> {
        let (rows, cols) = matrix_shape(&self.config, t);
        MatrixRef::F32(layer_slice(self.get(t), l, rows * cols))
    }
}

/// Shared weights, read as the weights themselves (callers hold `Arc`s).
impl<T: ForwardWeights + ?Sized> ForwardWeights for Arc<T> {
    fn config(&self) -> &Config {
        (**self).config()
    }
    fn embed(&self, token: usize, out: &mut [f32]) {
        (**self).embed(token, out)
    }
    fn norm(&self, t: Tensor, l: usize) -> &[f32] {
        (**self).norm(t, l)
    }
    fn matrix(&self, t: Tensor, l: usize) -> MatrixRef<'_> {
        (**self).matrix(t, l)
    }
}

impl ForwardWeights for QuantWeights {
    fn config(&self) -> &Config {
        &self.config
    }
    fn embed(&self, token: usize, out: &mut [f32]) {
        self.layer(Tensor::TokEmbeddings, 0).row_f32(token, out)
    }
    fn norm(&self, t: Tensor, l: usize) -> &[f32] {
        let all = match t {
            Tensor::RmsAtt => &self.rms_att,
            Tensor::RmsFfn => &self.rms_ffn,
            _ => &self.rms_final,
        };
        layer_slice(all, l, self.config.dim)
    }
    fn matrix(&self, t: Tensor, l: usize) -> MatrixRef<'_> {
        self.layer(t, l)
    }
}

/// The weights a CPU backend runs, shared with whoever loaded them (never copied): f32
/// `Weights`, or `QuantWeights` whose quantized matrices run on `cpu::q8`'s and `cpu::blocks`' kernels.
#[derive(Debug, Clone)]
pub struct CpuWeights {
    /// The model's shape (the weights' own, copied for direct access).
    pub config: Config,
    held: Held,
}

#[derive(Debug, Clone)]
enum Held {
    F32(Arc<Weights>),
    Quant(Arc<QuantWeights>),
}

impl CpuWeights {
    /// Bytes of weights held (f32: 4 a parameter; Q8_0: int8 values and scales; blocks: their bytes).
    pub fn size_bytes(&self) -> u64 {
        match &self.held {
            Held::F32(w) => w.size_bytes(),
            Held::Quant(w) => w.size_bytes(),
        }
    }
    /// The quantized weights, when these are them.
    pub fn quantized(&self) -> Option<&Arc<QuantWeights>> {
        match &self.held {
            Held::Quant(w) => Some(w),
            Held::F32(_) => None,
        }
    }
    /// The f32 weights, when these are them.
    pub fn f32(&self) -> Option<&Arc<Weights>> {
        match &self.held {
            Held::F32(w) => Some(w),
            Held::Quant(_) => None,
        }
    }
    fn advise_huge_pages(&self) {
        match &self.held {
            Held::F32(w) => hugepages::advise(w),
            Held::Quant(w) => hugepages::advise_quant(w),
        }
    }
    fn forward<'s>(
        &self,
        k: Kernels,
        a: Option<&Adapter>,
        s: &'s mut State,
        token: u32,
        pos: usize,
        hook: Option<&mut dyn Hook>,
    ) -> Result<&'s mut [f32]> {
        match &self.held {
            Held::F32(w) => forward_on(k, &**w, a, s, token, pos, hook),
            Held::Quant(w) => forward_on(k, &**w, a, s, token, pos, hook),
        }
    }
}

impl From<Weights> for CpuWeights {
    fn from(w: Weights) -> CpuWeights {
        CpuWeights { config: w.config, held: Held::F32(Arc::new(w)) }
    }
}
impl From<Arc<Weights>> for CpuWeights {
    fn from(w: Arc<Weights>) -> CpuWeights {
        CpuWeights { config: w.config, held: Held::F32(w) }
    }
}
impl From<&Arc<Weights>> for CpuWeights {
    fn from(w: &Arc<Weights>) -> CpuWeights {
        CpuWeights { config: w.config, held: Held::F32(w.clone()) }
    }
}
impl From<Arc<QuantWeights>> for CpuWeights {
    fn from(w: Arc<QuantWeights>) -> CpuWeights {
        CpuWeights { config: w.config, held: Held::Quant(w) }
    }
}
impl From<QuantWeights> for CpuWeights {
    fn from(w: QuantWeights) -> CpuWeights {
        CpuWeights { config: w.config, held: Held::Quant(Arc::new(w)) }
    }
}

/// The CPU backend: the weights (shared with whoever loaded them, never copied), an optional
/// unmerged LoRA adapter, and one sequence's state.
pub struct CpuBackend {
    pub weights: CpuWeights,
    /// Added after each projection it adapts (`forward_adapted`); `None` runs the plain model.
    pub adapter: Option<Arc<Adapter>>,
    pub kernels: Kernels,
    state: State,
    edits: Option<Edits>,
}

impl CpuBackend {
    /// Bytes of weights this backend reads (`CpuWeights::size_bytes`).
    pub fn weight_bytes(&self) -> u64 {
        self.weights.size_bytes()
    }
    /// The fast kernels (what users run).
    pub fn new(weights: impl Into<CpuWeights>) -> CpuBackend {
        CpuBackend::with_kernels(weights, Kernels::Fast)
    }
    /// The scalar reference kernels.
    pub fn reference(weights: impl Into<CpuWeights>) -> CpuBackend {
        CpuBackend::with_kernels(weights, Kernels::Reference)
    }
    pub fn with_kernels(weights: impl Into<CpuWeights>, kernels: Kernels) -> CpuBackend {
        let weights = weights.into();
        weights.advise_huge_pages();
        let state = State::new(&weights.config);
        CpuBackend { weights, adapter: None, kernels, state, edits: None }
    }
    /// With `adapter` applied unmerged (the PEFT math exactly); fails with `Mismatch` when it
    /// was made for another shape.
    pub fn with_adapter(weights: impl Into<CpuWeights>, adapter: Option<Arc<Adapter>>, kernels: Kernels) -> Result<CpuBackend> {
        let mut b = CpuBackend::with_kernels(weights, kernels);
        if let Some(a) = &adapter {
            a.check_base(&b.weights.config)?;
        }
        b.adapter = adapter;
        Ok(b)
    }
}

impl crate::generate::Backend for CpuBackend {
    fn config(&self) -> &Config {
        &self.weights.config
    }
    fn name(&self) -> String {
        match (&self.adapter, self.kernels) {
            (Some(a), _) => format!("cpu + LoRA r{}", a.config.r),
            (None, Kernels::Reference) => "cpu (reference)".into(),
            (None, Kernels::Fast) => match self.weights.quantized().map(|q| q.kept_types()) {
                Some(t) if t == [DType::Q8_0] => format!("cpu ({})", q8::kernel_name()),
                Some(t) => {
                    let names: Vec<&str> = t.iter().map(|t| t.name()).collect();
                    format!("cpu ({} {})", names.join("+"), blocks::kernel_name())
                }
                None => format!("cpu ({})", fast::kernel_name()),
            },
        }
    }
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        let hook = self.edits.as_mut().map(|e| e as &mut dyn Hook);
        self.weights.forward(self.kernels, self.adapter.as_deref(), &mut self.state, token, pos, hook)
    }
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]> {
        let mut hook = both(self.edits.as_mut().map(|e| e as &mut dyn Hook), Some(trace));
        let hook = hook.as_mut().map(|h| h as &mut dyn Hook);
        self.weights.forward(self.kernels, self.adapter.as_deref(), &mut self.state, token, pos, hook)
    }
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        self.edits = edits.map(|e| e.check(&self.weights.config).map(|_| e.clone())).transpose()?;
        Ok(())
    }
}
