//! A model's trainable tensors in llama2.c layout (each stacked over layers, `[out, in]`), and
//! values of the same shape: gradients and AdamW's moments.

use crate::config::Config;
use crate::cpu::Kernels;
use crate::lora::{cast, Base, Real, ALL_TENSORS};
use crate::weights::{tensor_specs, Tensor, TensorSpec, Weights};

/// Every tensor of one model shape, in `tensor_specs` order (the classifier only when untied:
/// a tied classifier is the embedding table and gets its gradient there).
#[derive(Debug, Clone)]
pub struct Params<F = f32> {
    pub config: Config,
    specs: Vec<TensorSpec>,
    tensors: Vec<Vec<F>>,
}

impl<F: PartialEq> PartialEq for Params<F> {
    /// Same shape and values (the specs follow from the config).
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && self.tensors == other.tensors
    }
}

impl<F: Real> Params<F> {
    /// The weights of `w` as `F`.
    pub fn from_weights(w: &Weights) -> Params<F> {
        let specs = tensor_specs(&w.config);
        let tensors = specs.iter().map(|s| cast(w.get(s.tensor))).collect();
        Params { config: w.config, specs, tensors }
    }

    /// Tensors given in `tensor_specs(&config)` order, with those lengths (checked by the caller).
    pub(crate) fn from_tensors(config: Config, tensors: Vec<Vec<F>>) -> Params<F> {
        Params { config, specs: tensor_specs(&config), tensors }
    }

    /// All zeros, of this shape.
    pub fn zeros_like(&self) -> Params<F> {
        let tensors = self.tensors.iter().map(|t| vec![F::ZERO; t.len()]).collect();
        Params { config: self.config, specs: self.specs.clone(), tensors }
    }

    /// The tensors' places, in order.
    pub fn specs(&self) -> &[TensorSpec] {
        &self.specs
    }

    fn index(&self, t: Tensor) -> Option<usize> {
        self.specs.iter().position(|s| s.tensor == t)
    }

    /// Tensor `t` (`Wcls` is the embedding table when tied).
    pub fn get(&self, t: Tensor) -> &[F] {
        let t = if t == Tensor::Wcls && self.config.shared_classifier { Tensor::TokEmbeddings } else { t };
        self.index(t).map_or(&[], |i| self.tensors[i].as_slice())
    }

    /// Tensor `t`, to change (`Wcls` is the embedding table when tied).
    pub fn get_mut(&mut self, t: Tensor) -> &mut [F] {
        let t = if t == Tensor::Wcls && self.config.shared_classifier { Tensor::TokEmbeddings } else { t };
        match self.index(t) {
            Some(i) => &mut self.tensors[i],
            None => &mut [],
        }
    }

    /// Layer `l`'s block of a per-layer tensor, to change.
    pub fn layer_mut(&mut self, t: Tensor, l: usize) -> &mut [F] {
        let n_layers = self.config.n_layers;
        let all = self.get_mut(t);
        let n = all.len() / n_layers;
        &mut all[l * n..(l + 1) * n]
    }

    /// Every tensor with its place, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&TensorSpec, &Vec<F>)> {
        self.specs.iter().zip(&self.tensors)
    }
    pub fn tensors(&self) -> &[Vec<F>] {
        &self.tensors
    }
    pub fn tensors_mut(&mut self) -> &mut [Vec<F>] {
        &mut self.tensors
    }

    /// Sets every value to zero (no allocation).
    pub fn fill_zero(&mut self) {
        for t in &mut self.tensors {
            t.fill(F::ZERO);
        }
    }

    pub fn n_params(&self) -> usize {
        self.tensors.iter().map(Vec::len).sum()
    }

    /// The forward pass's view of these weights.
    pub fn base(&self, kernels: Kernels) -> Base<'_, F> {
        Base::from_slices(self.config, kernels, ALL_TENSORS.map(|t| self.get(t)))
    }

    /// The weights as f32 `Weights` (for checkpoints and generation).
    pub fn to_weights(&self) -> Weights {
        Weights::from_tensors(self.config, self.tensors.iter().map(|t| cast(t)).collect())
    }

    /// Whether `other` has this shape.
    pub fn same_shape<G>(&self, other: &Params<G>) -> bool {
        self.config == other.config && self.tensors.iter().zip(&other.tensors).all(|(a, b)| a.len() == b.len())
    }
}

/// Whether AdamW decays tensor `t`: those of two or more dimensions (embeddings, projections,
/// classifier), not the RMSNorm gains, as llama2.c's `train.py` groups them.
pub fn decays(t: Tensor) -> bool {
    !matches!(t, Tensor::RmsAtt | Tensor::RmsFfn | Tensor::RmsFinal)
}
