//! The benchmark page (`bench.html`) asks the worker to time decoding; the worker answers with
//! each run's speed. Measured as `tinylm bench` does: greedy decode of `steps` tokens from BOS
//! after a short warm-up, tokens per second of the whole decode.

use serde::{Deserialize, Serialize};

use super::{BackendKind, Choice};

/// The model to time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BenchModel {
    /// stories260K as shipped with the site.
    Bundled,
    /// A deterministic random model of a named shape (`s15m` …), made in the worker.
    Shape(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRequest {
    pub id: u64,
    pub model: BenchModel,
    pub choice: Choice,
    pub steps: usize,
    pub runs: usize,
    /// WebGPU: measure the decode kernels' workgroup shapes first (gpu::tune) and keep the
    /// result on this device for later loads of a model of this shape.
    #[serde(default)]
    pub tune: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub id: u64,
    /// "stories260K" or "random s15m (seed 15)".
    pub model: String,
    pub kind: BackendKind,
    /// The engine's backend name, e.g. "cpu (simd128)".
    pub backend: String,
    /// The adapter or CPU kernel in words, and why this backend.
    pub detail: String,
    pub reason: String,
    /// Reading or making the weights.
    pub model_ms: f64,
    /// Opening the backend (GPU: device, uploads, pipelines).
    pub start_ms: f64,
    /// Tokens decoded per run.
    pub steps: usize,
    /// Tokens per second of each run, in order.
    pub runs: Vec<f64>,
    pub median_tok_s: f64,
    /// WebGPU: the workgroup shapes decoding used (`None` on the CPU).
    #[serde(default)]
    pub workgroups: Option<tinylm_engine::gpu::Workgroups>,
    /// The tuning this request measured (`tune`), with its table.
    #[serde(default)]
    pub tuning: Option<tinylm_engine::gpu::Tuning>,
}
