//! LoRA fine-tuning on the CPU: adapters on any of the seven projections, a batched f32
//! forward and backward through the frozen model, AdamW, PEFT adapter files and merging.
//!
//! The model stays in llama2.c layout; adapters are stored in it too. Only PEFT files use the
//! Hugging Face layout, whose `q_proj`/`k_proj` rows are permuted within each head (see `peft`).
//! Everything is generic over the float type ([`Real`]): f32 is the real path, f64 lets the
//! tests check gradients by central differences.

mod adapter;
mod backend;
mod choice;
mod data;
mod hf_rows;
pub mod kernels;
mod model;
mod optstate;
mod peft;
pub mod quant_base;
mod real;
mod train;

pub use adapter::{Adapter, Module};
pub use backend::LoraCpuBackend;
pub use choice::{AnyTrainer, TrainBase, TrainDevice};
pub use data::{even_sample, window_count, Batch, Dataset, HeldOut, HELD_CHUNK};
pub use kernels::AdamW;
pub use model::{forward, forward_into, loss, loss_and_grads, Activations, Base, BaseBuf, LayerActs, ALL_TENSORS};
pub use optstate::{read_optimizer, write_optimizer, OPTIMIZER_FILE};
pub use peft::{hf_tensors, peft_key, read_peft, write_peft, HfTensor, PeftFiles, CONFIG_FILE, WEIGHTS_FILE};
pub use real::{cast, Real};
#[cfg(not(target_arch = "wasm32"))]
pub use train::time_step_ms;
pub use train::{memory_report, MemoryReport, OptimizerState, StepReport, TrainConfig, Trainer};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::weights::Tensor;

/// A projection LoRA can adapt, by its PEFT (Hugging Face Llama) module name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down];

    /// The PEFT module name: `q_proj` … `down_proj`.
    pub fn peft_name(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    /// The llama2.c weight it adapts (gate = w1, up = w3, down = w2).
    pub fn tensor(self) -> Tensor {
        match self {
            Target::Q => Tensor::Wq,
            Target::K => Tensor::Wk,
            Target::V => Tensor::Wv,
            Target::O => Tensor::Wo,
            Target::Gate => Tensor::W1,
            Target::Up => Tensor::W3,
            Target::Down => Tensor::W2,
        }
    }

    /// Accepts the PEFT name or the llama2.c name (`wq`, `w1` …).
    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.peft_name() == name || t.tensor().name() == name)
    }

    /// `(out, in)` of the adapted weight.
    pub fn shape(self, c: &Config) -> (usize, usize) {
        let (d, h, kv, q) = (c.dim, c.hidden_dim, c.kv_dim(), c.q_dim());
        match self {
            Target::Q => (q, d),
            Target::O => (d, q),
            Target::K | Target::V => (kv, d),
            Target::Gate | Target::Up => (h, d),
            Target::Down => (d, h),
        }
    }

    /// The Hugging Face submodule holding it.
    fn hf_block(self) -> &'static str {
        match self {
            Target::Q | Target::K | Target::V | Target::O => "self_attn",
            _ => "mlp",
        }
    }
}

/// Parses a comma-separated target list (`q_proj,v_proj`, `wq,wv`, or `all`).
pub fn parse_targets(list: &str) -> Result<Vec<Target>> {
    if list.trim() == "all" || list.trim() == "all-linear" {
        return Ok(Target::ALL.to_vec());
    }
    list.split(',')
        .map(str::trim)
        .map(|n| {
            Target::parse(n).ok_or_else(|| {
                let known: Vec<_> = Target::ALL.iter().map(|t| t.peft_name()).collect();
                Error::InvalidSetting(format!("unknown LoRA target `{n}`; known: {} (or all)", known.join(", ")))
            })
        })
        .collect()
}

/// LoRA hyper-parameters: rank, alpha, rsLoRA scaling and the adapted projections (every layer).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    /// Scale by `alpha / sqrt(r)` (rsLoRA) instead of `alpha / r`.
    pub rslora: bool,
    /// Sorted in `Target::ALL` order, no repeats.
    pub targets: Vec<Target>,
}

/// Ranks above this are refused before anything is allocated.
pub const MAX_RANK: usize = 1 << 16;

impl LoraConfig {
    /// Checks and normalizes (sorts, de-duplicates) the settings.
    pub fn new(r: usize, alpha: f64, rslora: bool, mut targets: Vec<Target>) -> Result<LoraConfig> {
        if r == 0 || r > MAX_RANK {
            return Err(Error::InvalidSetting(format!("LoRA rank {r} must be between 1 and {MAX_RANK}")));
        }
        if !alpha.is_finite() {
            return Err(Error::InvalidSetting(format!("LoRA alpha {alpha} must be a finite number")));
        }
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return Err(Error::InvalidSetting("LoRA needs at least one target projection".into()));
        }
        Ok(LoraConfig { r, alpha, rslora, targets })
    }

    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    pub fn scaling(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }
}
