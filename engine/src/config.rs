//! Model hyper-parameters, as in the llama2.c header, and their validation.

use crate::error::{Error, Result};

/// Largest tensor we accept, in elements. Keeps every size computation far from overflow
/// and refuses hostile headers before anything is allocated.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub seq_len: usize,
    /// The classifier is the token embedding table (llama2.c: positive vocab_size in v0).
    pub shared_classifier: bool,
}

/// The product of `parts`, or None when it overflows u64.
fn elements(parts: &[usize]) -> Option<u64> {
    parts.iter().try_fold(1u64, |n, &p| n.checked_mul(p as u64))
}

/// `MAX_TENSOR_ELEMENTS`, and never more than a `usize` holds (wasm32's is 32 bits), so every
/// size computed from a validated config fits.
fn max_elements() -> u64 {
    MAX_TENSOR_ELEMENTS.min(usize::MAX as u64)
}

impl Config {
    /// Builds a config from raw header integers, checking every field before any use.
    /// `file` names the input in errors.
    pub fn from_header(h: [i32; 7], shared_classifier: bool, file: &str) -> Result<Config> {
        let names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (v, name) in h.iter().zip(names) {
            if *v <= 0 {
                return Err(Error::model(file, format!("header field {name} is {v}; it must be positive")));
            }
        }
        let c = Config {
            dim: h[0] as usize,
            hidden_dim: h[1] as usize,
            n_layers: h[2] as usize,
            n_heads: h[3] as usize,
            n_kv_heads: h[4] as usize,
            vocab_size: h[5] as usize,
            seq_len: h[6] as usize,
            shared_classifier,
        };
        c.validate().map_err(|what| Error::model(file, what))?;
        Ok(c)
    }

    /// Checks the shape is one the forward pass can run; returns the reason otherwise.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let c = self;
        if [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len].contains(&0) {
            return Err("every size in the header must be positive".into());
        }
        if !c.dim.is_multiple_of(c.n_heads) {
            return Err(format!("n_heads {} does not divide dim {}", c.n_heads, c.dim));
        }
        if !c.n_heads.is_multiple_of(c.n_kv_heads) {
            return Err(format!("n_kv_heads {} does not divide n_heads {}", c.n_kv_heads, c.n_heads));
        }
        if !c.head_size().is_multiple_of(2) {
            return Err(format!("head size {} is odd; RoPE rotates pairs", c.head_size()));
        }
        // Every size the engine derives from the header, multiplied with overflow checks (the
        // fields come from a file: two of them near 2^31 overflow even u64).
        let (l, d, s, h) = (c.n_layers, c.dim, c.seq_len, c.hidden_dim);
        let sizes: [&[usize]; 6] =
            [&[c.vocab_size, d], &[l, d, d], &[l, h, d], &[l, s, c.kv_dim()], &[c.n_heads, s], &[s, c.head_size()]];
        if sizes.iter().any(|p| elements(p).is_none_or(|n| n > max_elements())) {
            return Err("the sizes in the header are too large for this engine".into());
        }
        Ok(())
    }

    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }
    pub fn kv_dim(&self) -> usize {
        self.head_size() * self.n_kv_heads
    }
    /// Query heads per kv head (GQA group size).
    pub fn kv_mul(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// Number of parameters the forward pass uses (RoPE tables excluded): the tensors of
    /// `weights::tensor_specs`, counted here so the config does not depend on the weights
    /// (a test there holds the two together).
    pub fn n_params(&self) -> u64 {
        let [d, h, l, kv, v] = [self.dim, self.hidden_dim, self.n_layers, self.kv_dim(), self.vocab_size].map(|n| n as u64);
        // rms_att, rms_ffn; wq, wo; wk, wv; w1, w2, w3.
        let layer = 2 * d + 2 * d * d + 2 * kv * d + 3 * h * d;
        let classifier = if self.shared_classifier { 0 } else { v * d };
        v * d + l * layer + d + classifier
    }

    /// Parses "dim,hidden,layers,heads,kv_heads,vocab,seq[,untied]".
    pub fn parse(spec: &str) -> Result<Config> {
        let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
        let bad =
            || Error::InvalidSetting(format!("config `{spec}` must be dim,hidden,layers,heads,kv_heads,vocab,seq[,untied]"));
        if parts.len() != 7 && parts.len() != 8 {
            return Err(bad());
        }
        let mut h = [0i32; 7];
        for (slot, p) in h.iter_mut().zip(&parts) {
            *slot = p.parse().map_err(|_| bad())?;
        }
        let shared = match parts.get(7) {
            None | Some(&"tied") => true,
            Some(&"untied") => false,
            Some(_) => return Err(bad()),
        };
        Config::from_header(h, shared, "--config").map_err(|e| Error::InvalidSetting(e.to_string()))
    }
}
