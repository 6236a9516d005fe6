//! "Compare settings" (the Generate view): one prompt written under up to `MAX_COLUMNS`
//! samplings at once, decoded together on the CPU (`engine::cpu::batch`); each column's text is
//! that setting's own single run.

use serde::{Deserialize, Serialize};

/// Columns the page offers (the engine's batch holds more).
pub const MAX_COLUMNS: usize = 4;

/// One column's sampling (ranges are checked again by the engine's `Sampler`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f32,
    pub topp: f32,
    #[serde(with = "super::seed")]
    pub seed: u64,
}

/// Writes `prompt` for `steps` forward passes (0: the whole context) under each sampling; run
/// ids are Generate's, so `ToWorker::Stop { run }` stops it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRequest {
    pub run: u64,
    pub prompt: String,
    pub steps: usize,
    pub columns: Vec<Sampling>,
}

/// Text since the last message of one column: the prompt's echo and the story's new text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ColumnText {
    pub prompt: String,
    pub story: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CompareNews {
    /// New text of every column (`columns[i]` is the request's column `i`).
    Text {
        run: u64,
        columns: Vec<ColumnText>,
    },
    /// All columns ended (or were stopped); `tokens[i]` counts column `i`'s forward passes.
    Finished {
        run: u64,
        tokens: Vec<usize>,
        elapsed_ms: f64,
        stopped: bool,
    },
    Failed {
        run: u64,
        message: String,
    },
}

impl CompareNews {
    pub fn run(&self) -> u64 {
        match self {
            CompareNews::Text { run, .. } | CompareNews::Finished { run, .. } | CompareNews::Failed { run, .. } => *run,
        }
    }
}
