//! What the Inspect view asks the worker for and gets back. The big arrays (attention, logits,
//! rollout) travel as transferred `Float32Array` buffers (`Floats`).

use serde::{Deserialize, Serialize};
use tinylm_engine::trace::Top1;

use super::{Floats, Settings};

/// One inspection request: the tokens of the last story (when `last_run` and the worker has
/// them for the active model), else `text` encoded as a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectRequest {
    pub id: u64,
    pub last_run: bool,
    pub text: String,
}

/// A finished inspection: its small part and its arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspected {
    pub info: InspectInfo,
    /// `[L, H, T, T]`.
    pub attention: Floats,
    /// `[T, V]`.
    pub logits: Floats,
    /// `[L, T, T]`.
    pub rollout: Floats,
}

/// The small part of an inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectInfo {
    pub id: u64,
    pub n_layers: usize,
    pub n_heads: usize,
    pub vocab_size: usize,
    pub dim: usize,
    pub tokens: Vec<u32>,
    /// How each token reads in the text (byte-fallback pieces as `<0xHH>`).
    pub pieces: Vec<String>,
    /// Tokens forced by the prompt, BOS included; the model chose the rest.
    pub prompt_len: usize,
    /// The readable piece of every vocabulary id.
    pub vocab: Vec<String>,
    /// Logit lens of the positions computed with the inspection: all of them when that costs
    /// at most `LENS_BUDGET_FLOPS`, else those nearest the first picked position; the page asks
    /// for others (`InspectCtl::Lens`) as the user moves.
    pub lens: Vec<LensColumn>,
    pub backend: String,
    pub ms: f64,
    /// The settings that wrote the story, when it is one.
    pub settings: Option<Settings>,
    /// The text had this many tokens; the view keeps the first `tokens.len()`.
    pub truncated_from: Option<usize>,
    /// Why the view keeps fewer tokens than the text has (shown to the user).
    pub cap_note: Option<String>,
}

/// The logit lens at one position: the top token after each layer, `[L]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensColumn {
    pub pos: usize,
    pub tops: Vec<Top1>,
}

/// The page's control of inspections. `Stop` acts on arrival; `Lens` waits its turn, but a
/// newer `Lens` (higher `seq`) makes an older one end early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InspectCtl {
    /// Stops inspection `id` (and any older one) at its next yield.
    Stop { id: u64 },
    /// The logit lens of inspection `id` at `positions`, in the order given (nearest first).
    Lens { id: u64, seq: u64, positions: Vec<usize> },
}

/// What an inspection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The forward pass, position by position (`done`/`total` in tokens).
    Forward,
    /// Attention rollout (in layers).
    Rollout,
    /// The logit lens computed up front (in positions).
    Lens,
}

impl Stage {
    pub fn word(self) -> &'static str {
        match self {
            Stage::Forward => "forward",
            Stage::Rollout => "rollout",
            Stage::Lens => "lens",
        }
    }
}

/// News of an inspection besides its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InspectNews {
    Progress {
        id: u64,
        stage: Stage,
        done: usize,
        total: usize,
    },
    /// The page stopped it after `done` of `total` tokens of the forward pass.
    Stopped {
        id: u64,
        stage: Stage,
        done: usize,
        total: usize,
    },
    /// Logit lens columns asked for by `InspectCtl::Lens`.
    Lens {
        id: u64,
        columns: Vec<LensColumn>,
    },
}

/// Most f32 values one inspection may hold (attention + logits + rollout + residuals), 192 MB.
/// The worker holds them while it works and the page holds them again after, so an inspection
/// at the cap takes about twice this.
pub const MAX_VALUES: usize = 48 << 20;

/// The whole text's logit lens is computed with the inspection up to this many FLOPs (about a
/// second or two of wasm); past it, only the positions the user looks at, on demand.
pub const LENS_BUDGET_FLOPS: f64 = 4e9;

/// f32 values an inspection of `t` tokens holds: `[L,H,T,T]` attention, `[L,T,T]` rollout,
/// `[T,V]` logits and `[L,T,D]` residuals.
pub fn values(n_layers: usize, n_heads: usize, vocab: usize, dim: usize, t: usize) -> usize {
    n_layers * (n_heads + 1) * t * t + t * vocab + n_layers * t * dim
}

/// The most tokens of a model's shape that fit in `MAX_VALUES`.
pub fn max_tokens(n_layers: usize, n_heads: usize, vocab: usize, dim: usize, wanted: usize) -> usize {
    (1..=wanted).rev().find(|&t| values(n_layers, n_heads, vocab, dim, t) <= MAX_VALUES).unwrap_or(1)
}

/// `0..n` ordered by distance from `at`, the earlier first on ties: the order the logit lens
/// is computed in, so the picked position comes first.
pub fn nearest(at: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).flat_map(move |d| {
        let before = at.checked_sub(d).filter(|_| d > 0);
        let after = Some(at + d).filter(|&p| p < n);
        before.into_iter().chain(after)
    })
}

/// Why `kept` of `wanted` tokens are shown, or None when all are.
pub fn cap_note(c: &tinylm_engine::Config, wanted: usize, kept: usize) -> Option<String> {
    if kept >= wanted {
        return None;
    }
    if kept == c.seq_len {
        return Some(format!("Showing the first {kept} of {wanted} tokens: the model's context is {} tokens.", c.seq_len));
    }
    let mb = |t: usize| values(c.n_layers, c.n_heads, c.vocab_size, c.dim, t) as f64 * 4.0 / 1e6;
    let all = wanted.min(c.seq_len);
    Some(format!(
        "Showing the first {kept} of {wanted} tokens: the attention maps ({} × {}) grow with the square of the \
         length, and {all} tokens would need {:.0} MB in the engine and as much again in the page; {kept} tokens \
         take {:.0} MB.",
        crate::words::count(c.n_layers, "layer"),
        crate::words::count(c.n_heads, "head"),
        mb(all),
        mb(kept)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget() {
        // stories260K's whole context fits; stories110M's does not.
        assert_eq!(max_tokens(5, 8, 512, 64, 512), 512);
        let t = max_tokens(12, 12, 32000, 768, 1024);
        assert!(t < 1024 && 12 * 13 * t * t + t * 32000 + 12 * t * 768 <= MAX_VALUES, "{t}");
        assert!(values(12, 12, 32000, 768, t + 1) > MAX_VALUES);
        // ~470 tokens of stories110M: 600 MB of attention at 1024 is what the cap prevents.
        assert!((450..500).contains(&t), "{t}");
    }

    #[test]
    fn nearest_first() {
        assert_eq!(nearest(2, 5).collect::<Vec<_>>(), [2, 1, 3, 0, 4]);
        assert_eq!(nearest(0, 3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(nearest(4, 5).collect::<Vec<_>>(), [4, 3, 2, 1, 0]);
        assert_eq!(nearest(9, 0).count(), 0);
    }

    #[test]
    fn the_cap_says_why() {
        let (c, _) = tinylm_engine::randmodel::named_shape("s110m").unwrap();
        let t = max_tokens(c.n_layers, c.n_heads, c.vocab_size, c.dim, 1024);
        let note = cap_note(&c, 2000, t).unwrap();
        assert!(
            note.starts_with(&format!("Showing the first {t} of 2000 tokens: the attention maps (12 layers × 12 heads)")),
            "{note}"
        );
        assert!(note.contains("1024 tokens would need"), "{note}");
        let (c, _) = tinylm_engine::randmodel::named_shape("tiny64").unwrap();
        assert_eq!(cap_note(&c, 600, 256).unwrap(), "Showing the first 256 of 600 tokens: the model's context is 256 tokens.");
        assert_eq!(cap_note(&c, 100, 100), None);
    }

    #[test]
    fn the_cap_counts_one_layer_and_one_head_in_the_singular() {
        let (mut c, _) = tinylm_engine::randmodel::named_shape("s110m").unwrap();
        c.n_layers = 1;
        let note = cap_note(&c, 2000, 100).unwrap();
        assert!(note.contains("the attention maps (1 layer × 12 heads)"), "{note}");
        c.n_heads = 1;
        let note = cap_note(&c, 2000, 100).unwrap();
        assert!(note.contains("the attention maps (1 layer × 1 head)"), "{note}");
    }
}
