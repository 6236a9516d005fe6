//! Full-parameter training of a llama2.c model, from random weights or a checkpoint: gradients
//! of every tensor (embeddings with the lookup's scatter-add and, when tied, the classifier's
//! share; RMSNorm gains; every projection), the mean next-token cross-entropy plus an optional
//! z-loss, global-norm clipping, AdamW with torch's semantics and decay on matrices only, and
//! llama2.c `train.py`'s schedule. It reuses the LoRA trainer's batched forward and kernels
//! (`lora`), so the CPU path here is the reference the GPU trainer is tested against.

mod choice;
mod kernels;
mod params;
mod schedule;
mod state;
mod step;
mod sweep;
mod trainer;

pub use choice::{PretrainBackend, Trainer};
pub use kernels::LossStats;
pub use params::{decays, Params};
pub use schedule::{Schedule, ScheduleKind};
pub use state::{read_state, SavedState, OPTIMIZER_FILE};
pub use step::Workspace;
pub use sweep::{sweep_ways, SweepWay, SWEEP_WAY_NAMES, SWEEP_Z_LOSS};
pub use trainer::{global_norm, Hyper, Moments, Pretrainer, StepMetrics};

/// The pretrain kernels, public for their tests against the generic ones.
pub mod kernel {
    pub use super::kernels::*;
}
