//! The Experiments panel's state: signal handles, so `Copy`, made once by the Inspect view's
//! `install` and kept across tab switches.

use std::collections::BTreeSet;
use std::sync::Arc;

use leptos::prelude::*;

use crate::page::state::Ctx;
use crate::protocol::experiments::{KnockedOut, Patched, Steered};

/// Which experiment a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    KnockOut,
    Patch,
    Steer,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::KnockOut => "knockout",
            Kind::Patch => "patch",
            Kind::Steer => "steer",
        }
    }
}

/// How one experiment stands, for its status line.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    /// Running; what it is doing and how far (`done` of `total`).
    Busy(Option<(String, usize, usize)>),
    Done,
    Stopped,
    Error(String),
}

impl Phase {
    pub fn word(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Busy(_) => "busy",
            Phase::Done => "done",
            Phase::Stopped => "stopped",
            Phase::Error(_) => "error",
        }
    }
}

/// Default steering lists: short sentences in the model's own simple style.
pub const HAPPY: &str = "She was very happy.\nThey laughed and played all day.\nHe smiled. It was a great day.";
pub const SAD: &str = "She was very sad.\nThey cried and cried all day.\nHe was angry. It was a bad day.";

#[derive(Clone, Copy)]
pub struct State {
    pub ctx: Ctx,
    /// The latest request (of any kind) and which kind it was; older replies are dropped.
    pub req: RwSignal<u64>,
    pub running: RwSignal<Option<(u64, Kind)>>,
    pub ko_phase: RwSignal<Phase>,
    pub patch_phase: RwSignal<Phase>,
    pub steer_phase: RwSignal<Phase>,
    // Knock-outs.
    pub heads: RwSignal<BTreeSet<(usize, usize)>>,
    pub mean: RwSignal<bool>,
    pub skip_attn: RwSignal<BTreeSet<usize>>,
    pub skip_mlp: RwSignal<BTreeSet<usize>>,
    pub knocked: RwSignal<Option<Arc<KnockedOut>>>,
    /// The position whose change in the odds is read out.
    pub ko_pos: RwSignal<usize>,
    // Patching.
    pub clean: RwSignal<String>,
    pub corrupt: RwSignal<String>,
    pub clean_answer: RwSignal<String>,
    pub corrupt_answer: RwSignal<String>,
    pub patched: RwSignal<Option<Arc<Patched>>>,
    // Steering.
    pub toward: RwSignal<String>,
    pub away: RwSignal<String>,
    pub layer: RwSignal<usize>,
    pub strength: RwSignal<f32>,
    pub steered: RwSignal<Option<Arc<Steered>>>,
}

impl State {
    pub fn new(ctx: Ctx) -> State {
        let first = tinylm_engine::trace::PATCH_EXAMPLES[0];
        State {
            ctx,
            req: RwSignal::new(0),
            running: RwSignal::new(None),
            ko_phase: RwSignal::new(Phase::Idle),
            patch_phase: RwSignal::new(Phase::Idle),
            steer_phase: RwSignal::new(Phase::Idle),
            heads: RwSignal::new(BTreeSet::new()),
            mean: RwSignal::new(false),
            skip_attn: RwSignal::new(BTreeSet::new()),
            skip_mlp: RwSignal::new(BTreeSet::new()),
            knocked: RwSignal::new(None),
            ko_pos: RwSignal::new(0),
            clean: RwSignal::new(first.clean.into()),
            corrupt: RwSignal::new(first.corrupt.into()),
            clean_answer: RwSignal::new(first.clean_answer.into()),
            corrupt_answer: RwSignal::new(first.corrupt_answer.into()),
            patched: RwSignal::new(None),
            toward: RwSignal::new(HAPPY.into()),
            away: RwSignal::new(SAD.into()),
            layer: RwSignal::new(2),
            strength: RwSignal::new(2.0),
            steered: RwSignal::new(None),
        }
    }

    pub fn phase(&self, kind: Kind) -> RwSignal<Phase> {
        match kind {
            Kind::KnockOut => self.ko_phase,
            Kind::Patch => self.patch_phase,
            Kind::Steer => self.steer_phase,
        }
    }

    /// Whether any experiment is running (one at a time: the worker does one thing at a time).
    pub fn busy(&self) -> bool {
        self.running.with(Option::is_some)
    }

    /// The active model's (layers, heads), once one is loaded.
    pub fn shape(&self) -> Option<(usize, usize)> {
        self.ctx.active_entry().map(|m| (m.config.n_layers, m.config.n_heads))
    }
}
