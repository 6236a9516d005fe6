//! The CPU path: run.c's forward pass in plain f32, the readable reference for every other path.

pub mod batch;
pub mod fast;
mod heads;
pub mod hugepages;
pub mod ops;

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lora::{Adapter, Target};
use crate::trace::{both, Edits, Hook, StepTrace};
use crate::weights::Weights;
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
    att: Vec<f32>,
    logits: Vec<f32>,
    /// RoPE's (sin, cos) per pair of a head at the current position (fast kernels).
    rope: Vec<(f32, f32)>,
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
            q: vec![0.0; c.dim],
            att: vec![0.0; c.n_heads * c.seq_len],
            logits: vec![0.0; c.vocab_size],
            rope: vec![(0.0, 0.0); c.head_size() / 2],
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

use heads::AttendFn;

/// Which matrix–vector kernel the forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// run.c's scalar loops, the reference.
    Reference,
    /// SIMD and threads (`fast.rs`), tested against the reference.
    Fast,
}

impl Kernels {
    fn matmul(self) -> fn(&mut [f32], &[f32], &[f32]) {
        match self {
            Kernels::Reference => ops::matmul,
            Kernels::Fast => fast::matmul,
        }
    }
    fn attend(self) -> AttendFn {
        match self {
            Kernels::Reference => ops::attend,
            Kernels::Fast => fast::attend,
        }
    }
    fn swiglu(self) -> fn(&mut [f32], &[f32]) {
        match self {
            Kernels::Reference => ops::swiglu,
            Kernels::Fast => fast::swiglu,
        }
    }
    fn rmsnorm(self) -> fn(&mut [f32], &[f32], &[f32]) {
        match self {
            Kernels::Reference => ops::rmsnorm,
            Kernels::Fast => fast::rmsnorm,
        }
    }
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
    mut hook: Option<&mut dyn Hook>,
) -> Result<&'s mut [f32]> {
    let (matmul, attend, swiglu) = (kernels.matmul(), kernels.attend(), kernels.swiglu());
    let rmsnorm = kernels.rmsnorm();
    let lora = |l, t, x: &[f32], y: &mut [f32]| {
        if let Some(a) = adapter {
            a.apply(l, t, x, y);
        }
    };
    let c = &w.config;
    check_step(c, token, pos)?;
    let (dim, kv_dim, hs) = (c.dim, c.kv_dim(), c.head_size());
    s.x.copy_from_slice(&w.tok_embeddings[token as usize * dim..(token as usize + 1) * dim]);
    if kernels == Kernels::Fast {
        rope_table(&mut s.rope, pos, hs);
    }

    for l in 0..c.n_layers {
        let lw = w.layer(l);
        rmsnorm(&mut s.xb, &s.x, lw.rms_att);

        let cache_at = l * c.seq_len * kv_dim + pos * kv_dim;
        matmul(&mut s.q, &s.xb, lw.wq);
        matmul(&mut s.key_cache[cache_at..cache_at + kv_dim], &s.xb, lw.wk);
        matmul(&mut s.value_cache[cache_at..cache_at + kv_dim], &s.xb, lw.wv);
        lora(l, Target::Q, &s.xb, &mut s.q);
        lora(l, Target::K, &s.xb, &mut s.key_cache[cache_at..cache_at + kv_dim]);
        lora(l, Target::V, &s.xb, &mut s.value_cache[cache_at..cache_at + kv_dim]);
        match kernels {
            Kernels::Reference => {
                rope(&mut s.q, pos, hs);
                rope(&mut s.key_cache[cache_at..cache_at + kv_dim], pos, hs);
            }
            Kernels::Fast => {
                rope_turn(&mut s.q, &s.rope);
                rope_turn(&mut s.key_cache[cache_at..cache_at + kv_dim], &s.rope);
            }
        }

        let layer_cache = &s.key_cache[l * c.seq_len * kv_dim..(l + 1) * c.seq_len * kv_dim];
        let layer_values = &s.value_cache[l * c.seq_len * kv_dim..(l + 1) * c.seq_len * kv_dim];
        let parallel = kernels == Kernels::Fast;
        heads::attend_heads(attend, parallel, c, pos, &s.q, layer_cache, layer_values, &mut s.att, &mut s.xb);
        if let Some(k) = hook.as_deref_mut() {
            for h in 0..c.n_heads {
                k.attention(l, h, &s.att[h * c.seq_len..][..=pos]);
            }
        }
        if let Some(k) = hook.as_deref_mut() {
            k.heads(l, pos, &mut s.xb);
        }
        matmul(&mut s.xb2, &s.xb, lw.wo);
        lora(l, Target::O, &s.xb, &mut s.xb2);
        if let Some(k) = hook.as_deref_mut() {
            k.attention_out(l, pos, &mut s.xb2);
        }
        add(&mut s.x, &s.xb2);

        rmsnorm(&mut s.xb, &s.x, lw.rms_ffn);
        matmul(&mut s.hb, &s.xb, lw.w1);
        matmul(&mut s.hb2, &s.xb, lw.w3);
        lora(l, Target::Gate, &s.xb, &mut s.hb);
        lora(l, Target::Up, &s.xb, &mut s.hb2);
        swiglu(&mut s.hb, &s.hb2);
        matmul(&mut s.xb, &s.hb, lw.w2);
        lora(l, Target::Down, &s.hb, &mut s.xb);
        if let Some(k) = hook.as_deref_mut() {
            k.mlp_out(l, pos, &mut s.xb);
        }
        add(&mut s.x, &s.xb);
        if let Some(k) = hook.as_deref_mut() {
            k.resid(l, pos, &mut s.x);
        }
    }
    rmsnorm(&mut s.xb, &s.x, &w.rms_final);
    matmul(&mut s.logits, &s.xb, w.classifier());
    Ok(&mut s.logits)
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// The CPU backend: the weights (shared with whoever loaded them, never copied), an optional
/// unmerged LoRA adapter, and one sequence's state.
pub struct CpuBackend {
    pub weights: Arc<Weights>,
    /// Added after each projection it adapts (`forward_adapted`); `None` runs the plain model.
    pub adapter: Option<Arc<Adapter>>,
    pub kernels: Kernels,
    state: State,
    edits: Option<Edits>,
}

impl CpuBackend {
    /// The fast kernels (what users run).
    pub fn new(weights: impl Into<Arc<Weights>>) -> CpuBackend {
        CpuBackend::with_kernels(weights, Kernels::Fast)
    }
    /// The scalar reference kernels.
    pub fn reference(weights: impl Into<Arc<Weights>>) -> CpuBackend {
        CpuBackend::with_kernels(weights, Kernels::Reference)
    }
    pub fn with_kernels(weights: impl Into<Arc<Weights>>, kernels: Kernels) -> CpuBackend {
        let weights = weights.into();
        hugepages::advise(&weights);
        let state = State::new(&weights.config);
        CpuBackend { weights, adapter: None, kernels, state, edits: None }
    }
    /// With `adapter` applied unmerged (the PEFT math exactly); fails with `Mismatch` when it
    /// was made for another shape.
    pub fn with_adapter(weights: impl Into<Arc<Weights>>, adapter: Option<Arc<Adapter>>, kernels: Kernels) -> Result<CpuBackend> {
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
            (None, Kernels::Fast) => format!("cpu ({})", fast::kernel_name()),
        }
    }
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        let hook = self.edits.as_mut().map(|e| e as &mut dyn Hook);
        forward_adapted(self.kernels, &self.weights, self.adapter.as_deref(), &mut self.state, token, pos, hook)
    }
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]> {
        let mut hook = both(self.edits.as_mut().map(|e| e as &mut dyn Hook), Some(trace));
        let hook = hook.as_mut().map(|h| h as &mut dyn Hook);
        forward_adapted(self.kernels, &self.weights, self.adapter.as_deref(), &mut self.state, token, pos, hook)
    }
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        self.edits = edits.map(|e| e.check(&self.weights.config).map(|_| e.clone())).transpose()?;
        Ok(())
    }
}
