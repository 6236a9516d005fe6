//! Model hyper-parameters, as in the llama2.c header plus what Llama-family files add (RoPE
//! base and scaling, RMSNorm epsilon, an explicit head width, BOS/EOS ids), and their validation.

use crate::error::{Error, Result};

/// Largest tensor we accept, in elements. Keeps every size computation far from overflow
/// and refuses hostile headers before anything is allocated.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 32;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(from = "ConfigFields")]
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
    /// Width of one attention head; `dim / n_heads` in llama2.c files, explicit in some HF
    /// configs (`head_dim`), where q is then `n_heads · head_dim` wide, not `dim`.
    pub head_dim: usize,
    /// RoPE base (`rope_theta`; 10000 in llama2.c).
    pub rope_theta: f32,
    /// Llama 3's frequency scaling, when the model uses it.
    pub rope_scaling: Option<Llama3Rope>,
    /// RMSNorm's epsilon (1e-5 in llama2.c).
    pub norm_eps: f32,
    pub bos_id: u32,
    /// `None` for llama2.c files: their models end a story with BOS, and run.c stops there.
    pub eos_id: Option<u32>,
}

/// The product of `factors` if it stays within `max_elements()` (checked at every step).
pub fn elements(factors: &[usize]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f as u64).filter(|&p| p <= max_elements()))
}

/// `MAX_TENSOR_ELEMENTS`, and never more than a `usize` holds (wasm32's is 32 bits), so every
/// size computed from a validated config fits.
fn max_elements() -> u64 {
    MAX_TENSOR_ELEMENTS.min(usize::MAX as u64)
}

/// `rope_scaling` of type `llama3` (Llama 3.1/3.2): low frequencies divided by `factor`, high
/// ones kept, a smooth blend between (wavelengths measured against the original context).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Llama3Rope {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_context: f32,
}

impl Llama3Rope {
    /// The divisor of a pair's frequency `freq` (transformers' and llama.cpp's rule).
    pub fn divisor(&self, freq: f32) -> f32 {
        let wavelen = 2.0 * std::f32::consts::PI / freq;
        let (low_wavelen, high_wavelen) =
            (self.original_context / self.low_freq_factor, self.original_context / self.high_freq_factor);
        if wavelen < high_wavelen {
            1.0
        } else if wavelen > low_wavelen {
            self.factor
        } else {
            let s = (self.original_context / wavelen - self.low_freq_factor) / (self.high_freq_factor - self.low_freq_factor);
            1.0 / ((1.0 - s) / self.factor + s)
        }
    }
}

/// `Config` as stored before the Llama-family fields existed (app storage, tuning files): those
/// fields default to llama2.c's values.
#[derive(serde::Deserialize)]
struct ConfigFields {
    dim: usize,
    hidden_dim: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: usize,
    vocab_size: usize,
    seq_len: usize,
    shared_classifier: bool,
    head_dim: Option<usize>,
    rope_theta: Option<f32>,
    rope_scaling: Option<Llama3Rope>,
    norm_eps: Option<f32>,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
}

impl From<ConfigFields> for Config {
    fn from(f: ConfigFields) -> Config {
        Config {
            dim: f.dim,
            hidden_dim: f.hidden_dim,
            n_layers: f.n_layers,
            n_heads: f.n_heads,
            n_kv_heads: f.n_kv_heads,
            vocab_size: f.vocab_size,
            seq_len: f.seq_len,
            shared_classifier: f.shared_classifier,
            head_dim: f.head_dim.unwrap_or(f.dim / f.n_heads.max(1)),
            rope_theta: f.rope_theta.unwrap_or(LLAMA2C_ROPE_THETA),
            rope_scaling: f.rope_scaling,
            norm_eps: f.norm_eps.unwrap_or(LLAMA2C_NORM_EPS),
            bos_id: f.bos_id.unwrap_or(crate::BOS),
            eos_id: f.eos_id,
        }
    }
}

/// llama2.c's RoPE base and RMSNorm epsilon (run.c's constants).
pub const LLAMA2C_ROPE_THETA: f32 = 10000.0;
pub const LLAMA2C_NORM_EPS: f32 = 1e-5;

impl Config {
    /// A llama2.c shape `[dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len]`
    /// with run.c's constants (not validated: see `from_header`).
    pub fn llama2c(h: [usize; 7], shared_classifier: bool) -> Config {
        Config {
            dim: h[0],
            hidden_dim: h[1],
            n_layers: h[2],
            n_heads: h[3],
            n_kv_heads: h[4],
            vocab_size: h[5],
            seq_len: h[6],
            shared_classifier,
            head_dim: h[0] / h[3].max(1),
            rope_theta: LLAMA2C_ROPE_THETA,
            rope_scaling: None,
            norm_eps: LLAMA2C_NORM_EPS,
            bos_id: crate::BOS,
            eos_id: None,
        }
    }

    /// Builds a config from raw header integers, checking every field before any use.
    /// `file` names the input in errors.
    pub fn from_header(h: [i32; 7], shared_classifier: bool, file: &str) -> Result<Config> {
        let names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (v, name) in h.iter().zip(names) {
            if *v <= 0 {
                return Err(Error::model(file, format!("header field {name} is {v}; it must be positive")));
            }
        }
        if h[0] % h[3] != 0 {
            return Err(Error::model(file, format!("n_heads {} does not divide dim {}", h[3], h[0])));
        }
        let [dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len] = h.map(|v| v as usize);
        let c = Config::llama2c([dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len], shared_classifier);
        c.validate().map_err(|what| Error::model(file, what))?;
        Ok(c)
    }

    /// Checks the shape is one the forward pass can run; returns the reason otherwise.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let c = self;
        if [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len, c.head_dim].contains(&0) {
            return Err("every size in the header must be positive".into());
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
        let sizes: [&[usize]; 6] = [
            &[c.vocab_size, d],
            &[l, d, c.n_heads, c.head_dim],
            &[l, h, d],
            &[l, s, c.n_kv_heads, c.head_dim],
            &[c.n_heads, s],
            &[s, c.head_dim],
        ];
        if sizes.iter().any(|p| elements(p).is_none()) {
            return Err("the sizes in the header are too large for this engine".into());
        }
        if !(c.rope_theta.is_finite() && c.rope_theta > 1.0) {
            return Err(format!("rope_theta {} must be a finite number above 1", c.rope_theta));
        }
        if !(c.norm_eps.is_finite() && c.norm_eps >= 0.0) {
            return Err(format!("rms_norm_eps {} must be a finite number ≥ 0", c.norm_eps));
        }
        if let Some(r) = c.rope_scaling {
            let ok =
                [r.factor, r.low_freq_factor, r.high_freq_factor, r.original_context].iter().all(|v| v.is_finite() && *v > 0.0);
            if !ok || r.high_freq_factor <= r.low_freq_factor {
                return Err(format!("llama3 rope scaling {r:?} needs positive values and high_freq_factor > low_freq_factor"));
            }
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_size(&self) -> usize {
        self.head_dim
    }
    /// Width of q and of the attention output (`n_heads · head_size`; `dim` in llama2.c files).
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.head_size() * self.n_kv_heads
    }

    /// The token that ends a generation: the EOS where the model has one, else BOS (run.c).
    pub fn stop_token(&self) -> u32 {
        self.eos_id.unwrap_or(self.bos_id)
    }

    /// RoPE's angular frequency for each pair `p` of a head: `1 / theta^(2p / head_size)`, in f32
    /// as run.c computes it (bit for bit with theta 10000), divided as llama3 scaling says.
    pub fn rope_freqs(&self) -> Vec<f32> {
        let hs = self.head_size();
        (0..hs / 2)
            .map(|p| {
                let freq = 1.0 / self.rope_theta.powf((2 * p) as f32 / hs as f32);
                match self.rope_scaling {
                    Some(r) => freq / r.divisor(freq),
                    None => freq,
                }
            })
            .collect()
    }
    /// Query heads per kv head (GQA group size).
    pub fn kv_mul(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// Number of parameters the forward pass uses (RoPE tables excluded): the tensors of
    /// `weights::tensor_specs`, counted here so the config does not depend on the weights
    /// (a test there holds the two together).
    pub fn n_params(&self) -> u64 {
        let [d, h, l, q, kv, v] =
            [self.dim, self.hidden_dim, self.n_layers, self.q_dim(), self.kv_dim(), self.vocab_size].map(|n| n as u64);
        // rms_att, rms_ffn; wq, wo (q_dim × dim: dim × dim unless head_dim is set apart); wk, wv;
        // w1, w2, w3.
        let layer = 2 * d + 2 * q * d + 2 * kv * d + 3 * h * d;
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
