//! What the Inspect view's Experiments panel asks the worker for (knock-outs, activation
//! patching, steering) and gets back. The engine's own types (`Intervention`, `Change`,
//! `PatchMaps`) travel as they are.

use serde::{Deserialize, Serialize};
use tinylm_engine::trace::{Change, Intervention, PatchMaps};

use super::Settings;

/// One experiment; `id` grows with every request, so a newer one makes older replies stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExperimentRequest {
    /// The story of `prompt` and `settings`, then again with the heads and blocks knocked out
    /// (same seed), and the changed model's next-token odds over the unchanged story.
    KnockOut { id: u64, prompt: String, settings: Settings, change: Intervention },
    /// The steering direction at `layer` from the two prompt lists, and the story at each
    /// strength (same seed), beside the unchanged one.
    Steer {
        id: u64,
        prompt: String,
        settings: Settings,
        layer: usize,
        toward: Vec<String>,
        away: Vec<String>,
        strengths: Vec<f32>,
    },
    /// Activation patching of two prompts of equal token length (on the CPU whatever the backend).
    Patch { id: u64, clean: String, corrupt: String, clean_answer: String, corrupt_answer: String },
    /// Stops experiment `id` (and older ones) at its next yield; acts on arrival.
    Stop { id: u64 },
}

/// A story: its tokens (BOS and prompt included), how each reads, the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Story {
    pub tokens: Vec<u32>,
    pub pieces: Vec<String>,
    pub text: String,
}

/// One position's change in the next-token odds, with the pieces of the tokens it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub change: Change,
    pub next: Option<String>,
    pub top_before: String,
    pub top_after: String,
}

/// A finished knock-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnockedOut {
    pub id: u64,
    /// What was changed, in the CLI's words ("heads 1.3, 2.0 zeroed": counted from 0, as its
    /// `--ablate` flag), for comparing with `tinylm generate --json`.
    pub description: String,
    /// The same as the page shows it, counted from 1 as the rest of the page (`words::change`).
    pub shown: String,
    pub original: Story,
    pub changed: Story,
    pub first_difference: Option<usize>,
    /// Over the unchanged story's first `changes.len()` tokens (a long story of a big model is
    /// cut to what an inspection may hold).
    pub changes: Vec<ChangeRow>,
    pub backend: String,
    pub ms: f64,
}

/// One steered story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteeredStory {
    pub strength: f32,
    pub story: Story,
    pub first_difference: Option<usize>,
}

/// A finished steering experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steered {
    pub id: u64,
    pub layer: usize,
    /// The direction's length (the CLI's `direction_norm`).
    pub direction_norm: f64,
    pub original: Story,
    pub runs: Vec<SteeredStory>,
    pub backend: String,
    pub ms: f64,
}

/// A finished patching experiment: the maps and how the prompts read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patched {
    pub id: u64,
    pub maps: PatchMaps,
    pub clean_pieces: Vec<String>,
    pub corrupt_pieces: Vec<String>,
    pub clean_answer: String,
    pub corrupt_answer: String,
    pub ms: f64,
}

/// What the worker says about an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExperimentNews {
    /// `what` ("the knocked-out story") is `done` of `total` steps along.
    Progress {
        id: u64,
        what: String,
        done: usize,
        total: usize,
    },
    KnockedOut(Box<KnockedOut>),
    Steered(Box<Steered>),
    Patched(Box<Patched>),
    Stopped {
        id: u64,
    },
    Failed {
        id: u64,
        message: String,
    },
}

/// The most tokens a patching prompt may have: the passes grow with its square (at 32 tokens of
/// stories260K, some 24 000 forward passes).
pub const MAX_PATCH_TOKENS: usize = 32;

/// Most prompts in a steering list, and the most strengths in one experiment.
pub const MAX_STEER_PROMPTS: usize = 16;
pub const MAX_STRENGTHS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::trace::{Ablation, HeadId, Steer};

    /// Through serde's data model (the wire's serializer is serde-wasm-bindgen; JSON here).
    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(m: &T) -> T {
        serde_json::from_str(&serde_json::to_string(m).unwrap()).unwrap()
    }

    #[test]
    fn experiments_survive_the_wire() {
        let settings = Settings { temperature: 1.0, topp: 0.9, seed: u64::MAX, steps: 48 };
        let change = Intervention {
            ablate: vec![HeadId { layer: 1, head: 2 }],
            ablation: Ablation::Mean,
            skip_mlp: vec![4],
            ..Default::default()
        };
        let ko = ExperimentRequest::KnockOut { id: 3, prompt: "Once".into(), settings, change };
        assert_eq!(round_trip(&ko), ko);
        let steer = ExperimentRequest::Steer {
            id: 4,
            prompt: String::new(),
            settings,
            layer: 2,
            toward: vec!["She was happy.".into()],
            away: vec!["She was sad.".into()],
            strengths: vec![-2.0, 0.0, 1.0, 2.0],
        };
        assert_eq!(round_trip(&steer), steer);
        let iv =
            Intervention { steer: Some(Steer { layer: 0, direction: vec![0.5, -1.0], strength: 2.0 }), ..Default::default() };
        assert_eq!(round_trip(&iv), iv);
        let stop = ExperimentRequest::Stop { id: 9 };
        assert_eq!(round_trip(&stop), stop);
    }
}
