//! Activation patching: which activations carry the difference between two prompts.
//!
//! A clean and a corrupted prompt of equal length (names swapped, say) make the model favour
//! different answers; the logit difference `logit(clean answer) − logit(corrupt answer)` at the
//! last position measures which. For every layer × position the corrupted run is repeated with
//! the clean run's residual stream (after that layer, at that position) put in, and, in a
//! second map, for every layer × head × position with that head's clean output put in (before
//! the output projection). Where the difference comes back, that activation carried it.
//!
//! A patch at position t changes nothing before t (attention is causal), so each patched run
//! reuses the corrupted run's KV cache below t and recomputes only positions t..T−1: runs go
//! from the last position down, so the cache rows below each run's start are always the
//! corrupted run's own. Every run computes exactly what a run from scratch would.

use serde::{Deserialize, Serialize};

use super::edits::check_tokens;
use super::{CpuModel, Hook};
use crate::config::Config;
use crate::cpu::State;
use crate::error::{Error, Result};

/// Ready-made prompt pairs (text, encoded by the model's tokenizer with BOS first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PatchExample {
    pub name: &'static str,
    pub clean: &'static str,
    pub corrupt: &'static str,
    /// The answer the clean prompt favours (one token once encoded, e.g. " Ben").
    pub clean_answer: &'static str,
    pub corrupt_answer: &'static str,
    /// What it shows, in words.
    pub about: &'static str,
}

/// Examples measured on stories260K (tok512): equal token counts and clean and corrupted
/// logit differences of opposite sign, several logits apart (figures in tests/suite/interp.rs).
pub const PATCH_EXAMPLES: &[PatchExample] = &[
    PatchExample {
        name: "she-or-he",
        clean: "Once upon a time, there was a little girl. One day,",
        corrupt: "Once upon a time, there was a little boy. One day,",
        clean_answer: "she",
        corrupt_answer: "he",
        about: "Which activations carry \"girl\" forward to the pronoun the model expects?",
    },
    PatchExample {
        name: "he-or-she",
        clean: "The boy was sad. Then",
        corrupt: "The girl was sad. Then",
        clean_answer: "he",
        corrupt_answer: "she",
        about: "The same question in a short sentence: where does \"boy\" reach the last position?",
    },
    PatchExample {
        name: "ball-or-car",
        clean: "Lily had a big red ball. She loved her",
        corrupt: "Lily had a big red car. She loved her",
        clean_answer: "b",
        corrupt_answer: "c",
        about: "Copying a thing named earlier: the answers are the first pieces of \"ball\" and \"car\".",
    },
];

/// The maps of one patching experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchMaps {
    pub clean: Vec<u32>,
    pub corrupt: Vec<u32>,
    pub clean_answer: u32,
    pub corrupt_answer: u32,
    pub n_layers: usize,
    pub n_heads: usize,
    /// The logit difference at the last position of the clean and of the corrupted run.
    pub clean_diff: f32,
    pub corrupt_diff: f32,
    /// `[L, T]`: the difference with the clean residual after layer l at position t put in.
    pub resid: Vec<f32>,
    /// `[L, H, T]`: the difference with head h of layer l's clean output at position t put in.
    pub heads: Vec<f32>,
}

impl PatchMaps {
    pub fn len(&self) -> usize {
        self.clean.len()
    }
    pub fn is_empty(&self) -> bool {
        self.clean.is_empty()
    }
    /// How much of the clean difference a patched run brings back: 0 is the corrupted run's
    /// difference, 1 the clean run's. `None` when the two prompts give the same difference.
    pub fn recovered(&self, diff: f32) -> Option<f32> {
        let gap = self.clean_diff - self.corrupt_diff;
        (gap != 0.0).then(|| (diff - self.corrupt_diff) / gap)
    }
    pub fn resid_at(&self, l: usize, t: usize) -> f32 {
        self.resid[l * self.len() + t]
    }
    pub fn heads_at(&self, l: usize, h: usize, t: usize) -> f32 {
        self.heads[(l * self.n_heads + h) * self.len() + t]
    }
}

/// What one patched run puts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Site {
    Resid { layer: usize },
    Head { layer: usize, head: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Clean,
    Corrupt,
    /// Patched run number `run` (see `Patcher::site`).
    Patch {
        run: usize,
    },
    Done,
}

/// An activation-patching experiment a few forward passes per `advance` (as `Inspector`), so
/// a single-threaded caller can show progress and stop between calls. CPU only.
#[derive(Debug, Clone)]
pub struct Patcher {
    config: Config,
    maps: PatchMaps,
    state: State,
    /// The clean run's residuals `[L, T, dim]` and head outputs `[L, T, q_dim]`.
    clean_resid: Vec<f32>,
    clean_heads: Vec<f32>,
    phase: Phase,
    /// Next position of the current phase's run.
    pos: usize,
    done: usize,
}

/// Records residuals `[L, T, d]` and head outputs `[L, T, q]`.
struct Record<'a> {
    t: usize,
    d: usize,
    q: usize,
    resid: &'a mut [f32],
    heads: &'a mut [f32],
}

impl Hook for Record<'_> {
    fn heads(&mut self, l: usize, pos: usize, o: &mut [f32]) {
        let at = (l * self.t + pos) * self.q;
        self.heads[at..at + self.q].copy_from_slice(o);
    }
    fn resid(&mut self, l: usize, pos: usize, x: &mut [f32]) {
        let at = (l * self.t + pos) * self.d;
        self.resid[at..at + self.d].copy_from_slice(x);
    }
}

/// Puts the clean activation of `site` in at position `at`.
struct Put<'a> {
    site: Site,
    at: usize,
    t: usize,
    d: usize,
    q: usize,
    hs: usize,
    clean_resid: &'a [f32],
    clean_heads: &'a [f32],
}

impl Hook for Put<'_> {
    fn heads(&mut self, l: usize, pos: usize, o: &mut [f32]) {
        if let Site::Head { layer, head } = self.site {
            if layer == l && pos == self.at {
                let at = (l * self.t + pos) * self.q + head * self.hs;
                o[head * self.hs..(head + 1) * self.hs].copy_from_slice(&self.clean_heads[at..at + self.hs]);
            }
        }
    }
    fn resid(&mut self, l: usize, pos: usize, x: &mut [f32]) {
        if self.site == (Site::Resid { layer: l }) && pos == self.at {
            let at = (l * self.t + pos) * self.d;
            x.copy_from_slice(&self.clean_resid[at..at + self.d]);
        }
    }
}

impl Patcher {
    /// Checks the prompts (equal length, in the vocabulary, within the context) and answers.
    pub fn new(c: &Config, clean: &[u32], corrupt: &[u32], clean_answer: u32, corrupt_answer: u32) -> Result<Patcher> {
        check_tokens(c, clean, "the clean prompt")?;
        check_tokens(c, corrupt, "the corrupted prompt")?;
        if clean.len() != corrupt.len() {
            return Err(Error::InvalidSetting(format!(
                "the clean and corrupted prompts must have the same number of tokens ({} and {})",
                clean.len(),
                corrupt.len()
            )));
        }
        for a in [clean_answer, corrupt_answer] {
            if a as usize >= c.vocab_size {
                return Err(Error::TokenOutOfRange { id: a as i64, vocab_size: c.vocab_size });
            }
        }
        let (l, h, t, d) = (c.n_layers, c.n_heads, clean.len(), c.dim);
        let maps = PatchMaps {
            clean: clean.to_vec(),
            corrupt: corrupt.to_vec(),
            clean_answer,
            corrupt_answer,
            n_layers: l,
            n_heads: h,
            clean_diff: 0.0,
            corrupt_diff: 0.0,
            resid: vec![0.0; l * t],
            heads: vec![0.0; l * h * t],
        };
        Ok(Patcher {
            config: *c,
            maps,
            state: State::new(c),
            clean_resid: vec![0.0; l * t * d],
            clean_heads: vec![0.0; l * t * c.q_dim()],
            phase: Phase::Clean,
            pos: 0,
            done: 0,
        })
    }

    fn len(&self) -> usize {
        self.maps.len()
    }

    /// Patched runs per position: one per layer (residual) and one per head.
    fn per_position(&self) -> usize {
        self.config.n_layers * (1 + self.config.n_heads)
    }

    /// Forward passes in all: the two plain runs, then a run from each patched position on.
    pub fn total(&self) -> usize {
        let t = self.len();
        2 * t + self.per_position() * t * (t + 1) / 2
    }

    /// Forward passes run so far.
    pub fn done(&self) -> usize {
        self.done
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Patched run `run`: its position (last first) and what it puts in.
    fn site(&self, run: usize) -> (usize, Site) {
        let (per, l) = (self.per_position(), self.config.n_layers);
        let at = self.len() - 1 - run / per;
        let k = run % per;
        let site = if k < l {
            Site::Resid { layer: k }
        } else {
            let k = k - l;
            Site::Head { layer: k / self.config.n_heads, head: k % self.config.n_heads }
        };
        (at, site)
    }

    /// Runs up to `passes` more forward passes; returns whether the maps are complete.
    pub fn advance(&mut self, m: &CpuModel, passes: usize) -> Result<bool> {
        m.check(&self.config, "a patching experiment")?;
        for _ in 0..passes {
            if self.phase == Phase::Done {
                break;
            }
            self.step(m)?;
            self.done += 1;
        }
        Ok(self.is_finished())
    }

    /// One forward pass of the current run.
    fn step(&mut self, m: &CpuModel) -> Result<()> {
        let (t, d, q, hs) = (self.len(), self.config.dim, self.config.q_dim(), self.config.head_size());
        let pos = self.pos;
        let last = pos + 1 == t;
        let (a, b) = (self.maps.clean_answer as usize, self.maps.corrupt_answer as usize);
        let diff = |logits: &[f32]| logits[a] - logits[b];
        match self.phase {
            Phase::Clean => {
                let mut rec = Record { t, d, q, resid: &mut self.clean_resid, heads: &mut self.clean_heads };
                let logits = m.forward(&mut self.state, self.maps.clean[pos], pos, Some(&mut rec))?;
                if last {
                    self.maps.clean_diff = diff(logits);
                }
                self.next_phase(last, Phase::Corrupt, 0);
            }
            Phase::Corrupt => {
                let logits = m.forward(&mut self.state, self.maps.corrupt[pos], pos, None)?;
                if last {
                    self.maps.corrupt_diff = diff(logits);
                }
                self.next_phase(last, Phase::Patch { run: 0 }, self.site(0).0);
            }
            Phase::Patch { run } => {
                let (at, site) = self.site(run);
                let mut put = Put { site, at, t, d, q, hs, clean_resid: &self.clean_resid, clean_heads: &self.clean_heads };
                let logits = m.forward(&mut self.state, self.maps.corrupt[pos], pos, Some(&mut put))?;
                if last {
                    let got = diff(logits);
                    match site {
                        Site::Resid { layer } => self.maps.resid[layer * t + at] = got,
                        Site::Head { layer, head } => self.maps.heads[(layer * self.config.n_heads + head) * t + at] = got,
                    }
                    let next = run + 1;
                    if next == self.per_position() * t {
                        self.phase = Phase::Done;
                    } else {
                        self.phase = Phase::Patch { run: next };
                        self.pos = self.site(next).0;
                    }
                } else {
                    self.pos += 1;
                }
            }
            Phase::Done => {}
        }
        Ok(())
    }

    /// Moves to `next` (starting at `start`) after a plain run's last position.
    fn next_phase(&mut self, last: bool, next: Phase, start: usize) {
        if last {
            self.phase = next;
            self.pos = start;
        } else {
            self.pos += 1;
        }
    }

    /// The maps; an error while passes are left to run.
    pub fn finish(self) -> Result<PatchMaps> {
        if !self.is_finished() {
            return Err(Error::InvalidSetting(format!(
                "the patching experiment stopped after {} of {} forward passes",
                self.done,
                self.total()
            )));
        }
        Ok(self.maps)
    }

    /// The whole experiment at once.
    pub fn run(m: &CpuModel, clean: &[u32], corrupt: &[u32], clean_answer: u32, corrupt_answer: u32) -> Result<PatchMaps> {
        let mut p = Patcher::new(m.config(), clean, corrupt, clean_answer, corrupt_answer)?;
        p.advance(m, p.total())?;
        p.finish()
    }
}
