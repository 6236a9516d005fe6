//! The Inspect view's state: signal handles, so `Copy`, made once by the app (`install`,
//! provided as context) and kept across tab switches.

use std::collections::HashMap;
use std::sync::Arc;

use leptos::prelude::*;
use tinylm_engine::trace::Top1;

use super::data::Data;
use crate::page::state::Ctx;
use crate::protocol::inspect::Stage;

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    Busy,
    Ready,
    /// Stopped by the user; the last finished inspection (if any) is still shown.
    Stopped(String),
    Error(String),
}

impl Phase {
    pub fn word(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Busy => "busy",
            Phase::Ready => "ready",
            Phase::Stopped(_) => "stopped",
            Phase::Error(_) => "error",
        }
    }
}

/// The view's state; signal handles, so `Copy`. Made once by the app (`install`, provided as
/// context), kept across tab switches.
#[derive(Clone, Copy)]
pub struct State {
    /// The page's state (the worker's client among it).
    pub ctx: Ctx,
    pub data: RwSignal<Option<Arc<Data>>>,
    pub phase: RwSignal<Phase>,
    /// The latest request; older replies are dropped.
    pub req: RwSignal<u64>,
    /// The run and model the data belongs to (asked again when they change).
    pub source: RwSignal<Option<(u64, Option<u32>)>>,
    /// The head clicked (locked) in the overview.
    pub locked: RwSignal<(usize, usize)>,
    /// The head under the pointer in the overview (a preview).
    pub hover: RwSignal<Option<(usize, usize)>>,
    /// The token strip shows the mean over the layer's heads instead of one head.
    pub mean: RwSignal<bool>,
    /// The token under the pointer or focus in the strip.
    pub focus: RwSignal<Option<usize>>,
    /// The position whose next token is shown.
    pub pos: RwSignal<usize>,
    /// One colour scale (0–1) for every head instead of each head's own maximum.
    pub shared_scale: RwSignal<bool>,
    /// Colour by the square root of the value, so the small weights of long texts show.
    pub sqrt: RwSignal<bool>,
    pub temperature: RwSignal<f32>,
    pub topp: RwSignal<f32>,
    /// Playback: the generated token being shown (tokens after it are faded).
    pub step: RwSignal<Option<usize>>,
    pub playing: RwSignal<bool>,
    /// Logit lens columns of `data` by position (`[L]` each), as the worker sends them.
    pub lens: RwSignal<HashMap<usize, Vec<Top1>>>,
    /// The running inspection's stage and how far it is.
    pub progress: RwSignal<Option<(Stage, usize, usize)>>,
    /// Numbers the logit lens requests, so the worker can drop an older one.
    pub lens_seq: StoredValue<u64>,
}

impl State {
    pub fn new(ctx: Ctx) -> State {
        State {
            ctx,
            data: RwSignal::new(None),
            phase: RwSignal::new(Phase::Idle),
            req: RwSignal::new(0),
            source: RwSignal::new(None),
            locked: RwSignal::new((0, 0)),
            hover: RwSignal::new(None),
            mean: RwSignal::new(false),
            focus: RwSignal::new(None),
            pos: RwSignal::new(0),
            shared_scale: RwSignal::new(false),
            sqrt: RwSignal::new(false),
            temperature: RwSignal::new(1.0),
            topp: RwSignal::new(0.9),
            step: RwSignal::new(None),
            playing: RwSignal::new(false),
            lens: RwSignal::new(HashMap::new()),
            progress: RwSignal::new(None),
            lens_seq: StoredValue::new(0),
        }
    }
    /// The value-to-colour curve the heatmaps use.
    pub fn curve(&self) -> fn(f32) -> f32 {
        if self.sqrt.get() {
            f32::sqrt
        } else {
            |x| x
        }
    }
    /// The head the zoomed heatmap shows: the previewed one, else the locked one.
    pub fn shown(&self) -> (usize, usize) {
        self.hover.get().unwrap_or_else(|| self.locked.get())
    }
}
