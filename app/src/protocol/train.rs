//! The Train view's messages: commands from the page (`TrainCmd`), news from the worker
//! (`TrainEvent`), and the values inside them. Adapters and optimizer state are `Bytes`.

use serde::{Deserialize, Serialize};

use super::Bytes;

/// Everything one training run is made of (besides its text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Comma-separated PEFT names (`q_proj,v_proj`) or `all`.
    pub targets: String,
    pub rank: usize,
    pub alpha: f64,
    pub lr: f64,
    pub steps: u32,
    pub batch: usize,
    pub seq: usize,
    /// Seeds the adapter's start and the order of the windows (the CLI's --init-seed and
    /// --data-seed), and the samples.
    #[serde(with = "super::seed")]
    pub seed: u64,
    /// A sample pair (adapter off / on) every this many steps.
    pub sample_every: u32,
    /// A snapshot (the run's state, kept on the device) every this many steps, and on pause.
    pub snapshot_every: u32,
    /// The samples' prompt.
    pub prompt: String,
}

/// The model an adapter belongs to: its name and a hash of the model file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseId {
    pub name: String,
    /// FNV-1a 64 of the model file, as 16 hex digits.
    pub hash: String,
}

/// A PEFT adapter as its two files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peft {
    pub config_json: String,
    pub safetensors: Bytes,
}

impl Peft {
    /// Bytes of the two files together.
    pub fn size(&self) -> u64 {
        (self.config_json.len() + self.safetensors.len()) as u64
    }
    /// A copy with buffers of its own (a sent message transfers its buffers).
    pub fn copy(&self) -> Peft {
        Peft { config_json: self.config_json.clone(), safetensors: self.safetensors.copy() }
    }
}

/// A run's state at a step: enough to resume it exactly, or to keep its adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: String,
    pub settings: TrainSettings,
    pub base: BaseId,
    /// Updates done.
    pub step: u32,
    /// `losses[k]`: the loss on step k's batch before its update (as the CLI's losses.json);
    /// a finished run has one more, after the last update.
    pub losses: Vec<f64>,
    /// (step, held-out loss) pairs.
    pub held: Vec<(u32, f64)>,
    pub adapter: Peft,
    pub info: AdapterInfo,
    /// `optimizer.safetensors` (AdamW's moments and step).
    pub optimizer: Bytes,
    pub finished: bool,
}

impl Snapshot {
    /// A copy with buffers of its own (a sent message transfers its buffers).
    pub fn copy(&self) -> Snapshot {
        Snapshot { adapter: self.adapter.copy(), optimizer: self.optimizer.copy(), ..self.clone() }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    Paused,
    Stopped,
    Finished,
}

/// A run to start (boxed in `TrainCmd`: a snapshot is large).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRun {
    pub job: u64,
    pub name: String,
    pub text: String,
    pub settings: TrainSettings,
    pub resume: Option<Snapshot>,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainCmd {
    /// Trains on `text` (split into training and held-out parts), from scratch or from `resume`.
    Start(Box<StartRun>),
    /// Acted on at once: the run ends after the step in progress, with a snapshot.
    Pause {
        job: u64,
    },
    Stop {
        job: u64,
    },
    /// How many tokens `text` makes for training and held out.
    Count {
        text: String,
    },
    /// Checks an adapter against the active model (for upload).
    Check {
        req: u64,
        adapter: Peft,
    },
    /// Generate uses this adapter (merged into the model) or none; an adapter for another
    /// base model is refused.
    Use {
        adapter: Option<(String, BaseId, Peft)>,
    },
    /// Two stories from the same prompt and seed: the plain model's and with `adapter`
    /// (the library's side-by-side comparison); answered by `Compared`.
    Compare {
        name: String,
        /// The model it was made for (the library's record): another model is refused in words.
        base: BaseId,
        adapter: Peft,
        prompt: String,
        #[serde(with = "super::seed")]
        seed: u64,
    },
    /// Logits at every position of `tokens`, with `adapter` (unmerged) or without.
    Logits {
        req: u64,
        tokens: Vec<u32>,
        adapter: Option<Peft>,
    },
    /// How long a run with these settings on `text` would take here: a few steps, a held-out
    /// pass and a sample are timed on the backend the run would use; answered by `Estimated`.
    Estimate {
        req: u64,
        text: String,
        settings: TrainSettings,
    },
}

/// A run's duration as measured here (see `TrainCmd::Estimate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub seconds: f64,
    pub step_ms: f64,
    /// "WebGPU" or "CPU".
    pub backend: String,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainEvent {
    /// The data as training sees it: the answer to `Count` (job 0), or run `job`'s as it starts.
    Data {
        job: u64,
        train_tokens: usize,
        held_tokens: usize,
        /// Characters (Unicode scalar values) of the text trained on; the rest is held out.
        train_chars: usize,
        windows: usize,
        held_windows: usize,
        base: BaseId,
    },
    /// What trains run `job`: "WebGPU", or "CPU (why)".
    Backend {
        job: u64,
        name: String,
    },
    Step {
        job: u64,
        step: u32,
        loss: f64,
        tokens_per_s: f64,
        ms_per_step: f64,
        /// Seconds left: the remaining steps, held-out checks and samples at their measured cost.
        eta_s: f64,
    },
    Held {
        job: u64,
        step: u32,
        loss: f64,
    },
    /// The adapter at the lowest held-out loss of run `job` so far (sent when it improves).
    Best {
        job: u64,
        step: u32,
        loss: f64,
        adapter: Peft,
    },
    Sample {
        job: u64,
        step: u32,
        off: String,
        on: String,
    },
    Snapshot {
        job: u64,
        snapshot: Snapshot,
    },
    Ended {
        job: u64,
        ending: Ending,
        snapshot: Option<Snapshot>,
    },
    Failed {
        job: u64,
        message: String,
    },
    Checked {
        req: u64,
        result: Result<(AdapterInfo, BaseId), String>,
    },
    /// The adapter Generate now uses (None: none) with its content hash (`train::adapter_hash`),
    /// or why it could not be used.
    Using {
        name: Option<String>,
        hash: Option<String>,
        error: Option<String>,
    },
    Logits {
        req: u64,
        result: Result<Vec<Vec<f32>>, String>,
    },
    /// The answer to `Compare`: (adapter off, adapter on).
    Compared {
        name: String,
        result: Result<(String, String), String>,
    },
    /// The answer to `Estimate`.
    Estimated {
        req: u64,
        result: Result<Estimate, String>,
    },
}

/// What the library shows about an adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterInfo {
    pub rank: usize,
    pub alpha: f64,
    pub targets: Vec<String>,
    pub params: usize,
}
