//! The model's f32 tensors, each stacked over layers and row-major `[out, in]` as in llama2.c.

use crate::config::Config;

/// Which tensor, in llama2.c v0 file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tensor {
    TokEmbeddings,
    RmsAtt,
    Wq,
    Wk,
    Wv,
    Wo,
    RmsFfn,
    W1,
    W2,
    W3,
    RmsFinal,
    Wcls,
}

impl Tensor {
    /// The v0 tensor name (also the name the random-model recipe hashes).
    pub fn name(self) -> &'static str {
        match self {
            Tensor::TokEmbeddings => "tok_embeddings",
            Tensor::RmsAtt => "rms_att",
            Tensor::Wq => "wq",
            Tensor::Wk => "wk",
            Tensor::Wv => "wv",
            Tensor::Wo => "wo",
            Tensor::RmsFfn => "rms_ffn",
            Tensor::W1 => "w1",
            Tensor::W2 => "w2",
            Tensor::W3 => "w3",
            Tensor::RmsFinal => "rms_final",
            Tensor::Wcls => "wcls",
        }
    }
}

/// A tensor's place in the model: its kind, element count (all layers), and per-layer count.
#[derive(Debug, Clone, Copy)]
pub struct TensorSpec {
    pub tensor: Tensor,
    pub len: usize,
    pub per_layer: usize,
    /// Number of stacked blocks (n_layers for layer tensors, 1 otherwise).
    pub blocks: usize,
}

/// The tensors of a model in llama2.c v0 order (wcls only when untied; no RoPE tables).
pub fn tensor_specs(c: &Config) -> Vec<TensorSpec> {
    let (d, h, l, kv, v, q) = (c.dim, c.hidden_dim, c.n_layers, c.kv_dim(), c.vocab_size, c.q_dim());
    let layer = |tensor, per_layer| TensorSpec { tensor, len: per_layer * l, per_layer, blocks: l };
    let whole = |tensor, len| TensorSpec { tensor, len, per_layer: len, blocks: 1 };
    let mut specs = vec![
        whole(Tensor::TokEmbeddings, v * d),
        layer(Tensor::RmsAtt, d),
        layer(Tensor::Wq, q * d),
        layer(Tensor::Wk, kv * d),
        layer(Tensor::Wv, kv * d),
        layer(Tensor::Wo, d * q),
        layer(Tensor::RmsFfn, d),
        layer(Tensor::W1, h * d),
        layer(Tensor::W2, d * h),
        layer(Tensor::W3, h * d),
        whole(Tensor::RmsFinal, d),
    ];
    if !c.shared_classifier {
        specs.push(whole(Tensor::Wcls, v * d));
    }
    specs
}

#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub config: Config,
    pub tok_embeddings: Vec<f32>,
    pub rms_att: Vec<f32>,
    pub wq: Vec<f32>,
    pub wk: Vec<f32>,
    pub wv: Vec<f32>,
    pub wo: Vec<f32>,
    pub rms_ffn: Vec<f32>,
    pub w1: Vec<f32>,
    pub w2: Vec<f32>,
    pub w3: Vec<f32>,
    pub rms_final: Vec<f32>,
    /// Present only for an untied classifier.
    pub wcls: Option<Vec<f32>>,
}

/// One layer's weights, borrowed.
pub struct LayerWeights<'a> {
    pub rms_att: &'a [f32],
    pub wq: &'a [f32],
    pub wk: &'a [f32],
    pub wv: &'a [f32],
    pub wo: &'a [f32],
    pub rms_ffn: &'a [f32],
    pub w1: &'a [f32],
    pub w2: &'a [f32],
    pub w3: &'a [f32],
}

fn block(t: &[f32], l: usize, n: usize) -> &[f32] {
    &t[l * n..(l + 1) * n]
}

impl Weights {
    /// Builds weights from tensors given in `tensor_specs` order; lengths must match.
    pub fn from_tensors(config: Config, mut tensors: Vec<Vec<f32>>) -> Weights {
        let specs = tensor_specs(&config);
        assert_eq!(tensors.len(), specs.len(), "tensor count");
        for (t, s) in tensors.iter().zip(&specs) {
            assert_eq!(t.len(), s.len, "length of {}", s.tensor.name());
        }
        let wcls = if config.shared_classifier { None } else { tensors.pop() };
        let mut it = tensors.into_iter();
        let mut next = || it.next().unwrap_or_default();
        Weights {
            config,
            tok_embeddings: next(),
            rms_att: next(),
            wq: next(),
            wk: next(),
            wv: next(),
            wo: next(),
            rms_ffn: next(),
            w1: next(),
            w2: next(),
            w3: next(),
            rms_final: next(),
            wcls,
        }
    }

    /// The tensor of the given kind (`Wcls` gives the embedding table when tied).
    pub fn get(&self, t: Tensor) -> &[f32] {
        match t {
            Tensor::TokEmbeddings => &self.tok_embeddings,
            Tensor::RmsAtt => &self.rms_att,
            Tensor::Wq => &self.wq,
            Tensor::Wk => &self.wk,
            Tensor::Wv => &self.wv,
            Tensor::Wo => &self.wo,
            Tensor::RmsFfn => &self.rms_ffn,
            Tensor::W1 => &self.w1,
            Tensor::W2 => &self.w2,
            Tensor::W3 => &self.w3,
            Tensor::RmsFinal => &self.rms_final,
            Tensor::Wcls => self.classifier(),
        }
    }

    pub fn get_mut(&mut self, t: Tensor) -> &mut Vec<f32> {
        match t {
            Tensor::TokEmbeddings => &mut self.tok_embeddings,
            Tensor::RmsAtt => &mut self.rms_att,
            Tensor::Wq => &mut self.wq,
            Tensor::Wk => &mut self.wk,
            Tensor::Wv => &mut self.wv,
            Tensor::Wo => &mut self.wo,
            Tensor::RmsFfn => &mut self.rms_ffn,
            Tensor::W1 => &mut self.w1,
            Tensor::W2 => &mut self.w2,
            Tensor::W3 => &mut self.w3,
            Tensor::RmsFinal => &mut self.rms_final,
            Tensor::Wcls => match &mut self.wcls {
                Some(w) => w,
                None => &mut self.tok_embeddings,
            },
        }
    }

    /// The classifier matrix `[vocab, dim]`.
    pub fn classifier(&self) -> &[f32] {
        self.wcls.as_deref().unwrap_or(&self.tok_embeddings)
    }

    pub fn layer(&self, l: usize) -> LayerWeights<'_> {
        let c = &self.config;
        let (d, h, kv, q) = (c.dim, c.hidden_dim, c.kv_dim(), c.q_dim());
        LayerWeights {
            rms_att: block(&self.rms_att, l, d),
            wq: block(&self.wq, l, q * d),
            wk: block(&self.wk, l, kv * d),
            wv: block(&self.wv, l, kv * d),
            wo: block(&self.wo, l, d * q),
            rms_ffn: block(&self.rms_ffn, l, d),
            w1: block(&self.w1, l, h * d),
            w2: block(&self.w2, l, d * h),
            w3: block(&self.w3, l, h * d),
        }
    }

    /// Tensors in v0 order, as `tensor_specs` lists them.
    pub fn tensors(&self) -> Vec<(TensorSpec, &[f32])> {
        tensor_specs(&self.config).into_iter().map(|s| (s, self.get(s.tensor))).collect()
    }

    /// Bytes of f32 weights held.
    pub fn size_bytes(&self) -> u64 {
        self.config.n_params() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_counts_the_parameters_of_every_tensor() {
        // stories260K (GQA), stories15M's shape, and a small untied one.
        for h in [[64, 172, 5, 8, 4, 512, 512], [288, 768, 6, 6, 6, 32000, 256], [16, 40, 2, 4, 2, 64, 32]] {
            for shared in [true, false] {
                let c = Config::from_header(h, shared, "x").unwrap();
                let specs: u64 = tensor_specs(&c).iter().map(|t| t.len as u64).sum();
                assert_eq!(c.n_params(), specs, "{h:?}, shared classifier {shared}");
            }
        }
    }
}
