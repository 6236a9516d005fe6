//! An adapter: one `(A, B)` pair per adapted (layer, projection), kept in llama2.c layout.

use super::hf_rows::rows_from_hf;
use super::kernels::{self, LoraPair};
use super::real::{cast, Real};
use super::{LoraConfig, Target};
use crate::config::{Config, MAX_TENSOR_ELEMENTS};
use crate::error::{Error, Result};
use crate::randmodel::det_uniform;
use crate::weights::Weights;

/// One adapted projection: `y = W x + s · B (A x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Module<F = f32> {
    pub layer: usize,
    pub target: Target,
    /// `[r, in]`.
    pub a: Vec<F>,
    /// `[out, r]`, rows in llama2.c order (PEFT files permute q/k rows; see `hf_rows`).
    pub b: Vec<F>,
}

/// A LoRA adapter for one base shape. `modules` is layer-major with targets in config order,
/// so module `(l, t)` sits at `l · targets.len() + position of t`.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter<F = f32> {
    pub config: LoraConfig,
    pub base: Config,
    pub modules: Vec<Module<F>>,
}

/// The HF module path, e.g. `model.layers.0.self_attn.q_proj` (also the init recipe's key).
pub fn module_path(layer: usize, t: Target) -> String {
    format!("model.layers.{layer}.{}.{}", t.hf_block(), t.peft_name())
}

impl<F: Real> Adapter<F> {
    /// All-zero A and B for every layer and target of `config`.
    pub fn zeros(base: &Config, config: LoraConfig) -> Result<Adapter<F>> {
        base.validate().map_err(Error::InvalidSetting)?;
        let per_layer: u64 = config
            .targets
            .iter()
            .map(|t| {
                let (o, i) = t.shape(base);
                (config.r * (o + i)) as u64
            })
            .sum();
        if per_layer * base.n_layers as u64 > MAX_TENSOR_ELEMENTS {
            return Err(Error::InvalidSetting(format!("LoRA rank {} is too large for this model", config.r)));
        }
        let mut modules = Vec::new();
        for layer in 0..base.n_layers {
            for &target in &config.targets {
                let (o, i) = target.shape(base);
                modules.push(Module { layer, target, a: vec![F::ZERO; config.r * i], b: vec![F::ZERO; o * config.r] });
            }
        }
        Ok(Adapter { config, base: *base, modules })
    }

    /// PEFT's default init: A uniform in `±1/sqrt(in)` (Kaiming-uniform with a = √5), B = 0.
    /// A is drawn as in [`Adapter::det`], so it is the same for a given seed.
    pub fn peft_default(base: &Config, config: LoraConfig, seed: u64) -> Result<Adapter<F>> {
        let mut ad = Adapter::zeros(base, config)?;
        for m in &mut ad.modules {
            let path = module_path(m.layer, m.target);
            let n_in = m.a.len() / ad.config.r;
            m.a = cast(&det_uniform(seed, &format!("{path}.lora_A"), m.a.len(), 1.0 / (n_in as f64).sqrt(), 0.0));
        }
        Ok(ad)
    }

    /// The fixture's deterministic init (shared/data/reference/stories260K_lora_qv_r4/README.md):
    /// `A = det_uniform(seed, "<module>.lora_A", ±1/sqrt(in))`, `B = det_uniform(seed,
    /// "<module>.lora_B", ±b_bound)`, both over the HF layout (B's q/k rows are then permuted).
    pub fn det(base: &Config, config: LoraConfig, seed: u64, b_bound: f64) -> Result<Adapter<F>> {
        let mut ad = Adapter::peft_default(base, config, seed)?;
        for m in &mut ad.modules {
            let key = format!("{}.lora_B", module_path(m.layer, m.target));
            let hf: Vec<F> = cast(&det_uniform(seed, &key, m.b.len(), b_bound, 0.0));
            m.b = rows_from_hf(&hf, m.target, base, ad.config.r);
        }
        Ok(ad)
    }

    /// Index of module `(layer, target)`, if adapted.
    pub fn index(&self, layer: usize, target: Target) -> Option<usize> {
        let k = self.config.targets.iter().position(|&t| t == target)?;
        (layer < self.base.n_layers).then(|| layer * self.config.targets.len() + k)
    }

    pub fn module(&self, layer: usize, target: Target) -> Option<&Module<F>> {
        self.index(layer, target).map(|i| &self.modules[i])
    }

    /// The scale `s` in `F`.
    pub fn scaling(&self) -> F {
        F::of(self.config.scaling())
    }

    /// Module `i` as the kernels take it.
    pub fn pair(&self, i: usize) -> LoraPair<'_, F> {
        let m = &self.modules[i];
        LoraPair { a: &m.a, b: &m.b, r: self.config.r, s: self.scaling() }
    }

    /// The same adapter in another float type.
    pub fn cast<G: Real>(&self) -> Adapter<G> {
        let modules = self.modules.iter().map(|m| Module { layer: m.layer, target: m.target, a: cast(&m.a), b: cast(&m.b) });
        Adapter { config: self.config.clone(), base: self.base, modules: modules.collect() }
    }

    /// Same shape, all zeros (gradients, optimizer moments).
    pub fn zeros_like(&self) -> Adapter<F> {
        let mut z = self.clone();
        for m in &mut z.modules {
            m.a.fill(F::ZERO);
            m.b.fill(F::ZERO);
        }
        z
    }

    pub fn n_params(&self) -> usize {
        self.modules.iter().map(|m| m.a.len() + m.b.len()).sum()
    }

    /// Every parameter tensor (A then B of each module), for optimizers and norms.
    pub fn tensors(&self) -> impl Iterator<Item = &Vec<F>> {
        self.modules.iter().flat_map(|m| [&m.a, &m.b])
    }
    pub fn tensors_mut(&mut self) -> impl Iterator<Item = &mut Vec<F>> {
        self.modules.iter_mut().flat_map(|m| [&mut m.a, &mut m.b])
    }

    /// Fails with `Mismatch` unless the adapter fits a model of shape `c` (and with an adapter
    /// error if its modules are not laid out as `zeros` lays them out).
    pub fn check_base(&self, c: &Config) -> Result<()> {
        self.check_layout()?;
        let b = &self.base;
        let key = |c: &Config| (c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads);
        if key(b) != key(c) {
            return Err(Error::Mismatch(format!(
                "the adapter was made for a model with dim {}, hidden_dim {}, {} layers, {} heads, {} kv heads; \
                 this model has dim {}, hidden_dim {}, {} layers, {} heads, {} kv heads",
                b.dim,
                b.hidden_dim,
                b.n_layers,
                b.n_heads,
                b.n_kv_heads,
                c.dim,
                c.hidden_dim,
                c.n_layers,
                c.n_heads,
                c.n_kv_heads
            )));
        }
        Ok(())
    }

    /// Module `i` is `(layer i / targets, targets[i mod targets])` with `[r, in]` and `[out, r]`.
    fn check_layout(&self) -> Result<()> {
        let (c, n_t) = (&self.config, self.config.targets.len());
        let ok = n_t > 0
            && self.modules.len() == self.base.n_layers * n_t
            && self.modules.iter().enumerate().all(|(i, m)| {
                let (o, n_in) = m.target.shape(&self.base);
                m.layer == i / n_t && m.target == c.targets[i % n_t] && m.a.len() == c.r * n_in && m.b.len() == o * c.r
            });
        if !ok {
            return Err(Error::adapter("adapter", "its modules do not match its rank, targets and layers"));
        }
        Ok(())
    }
}

impl Adapter<f32> {
    /// `y += s · B (A x)` for one vector `x` if `(layer, target)` is adapted: the hook
    /// `cpu::forward_adapted` calls after each projection.
    pub fn apply(&self, layer: usize, target: Target, x: &[f32], y: &mut [f32]) {
        if let Some(i) = self.index(layer, target) {
            let mut u = vec![0f32; self.config.r];
            kernels::lora(y, &mut u, x, self.pair(i));
        }
    }

    /// Adds `s · B A` to each adapted weight of `w` (PEFT's merge: `W += (B @ A) · s`).
    pub fn merge_into(&self, w: &mut Weights) -> Result<()> {
        self.check_base(&w.config)?;
        let (r, s) = (self.config.r, self.scaling());
        for m in &self.modules {
            let (out, n_in) = m.target.shape(&w.config);
            let block = &mut w.get_mut(m.target.tensor())[m.layer * out * n_in..][..out * n_in];
            for (o, row) in block.chunks_exact_mut(n_in).enumerate() {
                let b_row = &m.b[o * r..(o + 1) * r];
                for (i, wv) in row.iter_mut().enumerate() {
                    let mut acc = 0f32;
                    for (k, &bv) in b_row.iter().enumerate() {
                        acc += bv * m.a[k * n_in + i];
                    }
                    *wv += acc * s;
                }
            }
        }
        Ok(())
    }

    /// A copy of `w` with the adapter merged in, ready for `checkpoint::write_v0/v1`.
    pub fn merged(&self, w: &Weights) -> Result<Weights> {
        let mut out = w.clone();
        self.merge_into(&mut out)?;
        Ok(out)
    }
}
