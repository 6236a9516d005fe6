//! Where each tensor lies in the GPU's flat parameter buffer: `tensor_specs` order, back to
//! back, as `pretrain::Params` holds them (so moving between the two is a concatenation).

use crate::config::Config;
use crate::pretrain::Params;
use crate::weights::{tensor_specs, Tensor, TensorSpec};

pub struct Layout {
    pub config: Config,
    pub specs: Vec<TensorSpec>,
    /// Each spec's first element.
    pub starts: Vec<usize>,
    pub len: usize,
}

impl Layout {
    pub fn new(config: Config) -> Layout {
        let specs = tensor_specs(&config);
        let mut starts = Vec::with_capacity(specs.len());
        let mut at = 0;
        for s in &specs {
            starts.push(at);
            at += s.len;
        }
        Layout { config, specs, starts, len: at }
    }

    /// The first element of tensor `t` (`Wcls` is the embedding table when tied).
    pub fn at(&self, t: Tensor) -> usize {
        let t = if t == Tensor::Wcls && self.config.shared_classifier { Tensor::TokEmbeddings } else { t };
        self.specs.iter().position(|s| s.tensor == t).map_or(0, |i| self.starts[i])
    }

    /// The first element of layer `l`'s block of `t` (`l` 0 for whole tensors).
    pub fn layer(&self, t: Tensor, l: usize) -> usize {
        let t = if t == Tensor::Wcls && self.config.shared_classifier { Tensor::TokEmbeddings } else { t };
        let per_layer = self.specs.iter().find(|s| s.tensor == t).map_or(0, |s| s.per_layer);
        self.at(t) + l * per_layer
    }

    /// `p`'s tensors back to back.
    pub fn flatten(&self, p: &Params<f32>) -> Vec<f32> {
        p.tensors().concat()
    }

    /// A flat array cut into this layout's tensors.
    pub fn split(&self, flat: &[f32]) -> Vec<Vec<f32>> {
        self.specs.iter().zip(&self.starts).map(|(s, &at)| flat[at..at + s.len].to_vec()).collect()
    }
}
