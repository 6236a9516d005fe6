//! The Inspect view: what the model computed for the current text — attention per layer and
//! head, the next-token distribution as the sampler reshapes it, the logit lens, attention
//! rollout and a step-by-step replay. The worker computes; this module only draws.

mod canvas;
mod data;
mod export;
mod grid;
mod lens;
mod next;
mod palette;
mod playback;
mod tokens;
mod zoom;

use std::cell::Cell;
use std::sync::Arc;

use js_sys::{Array, Float32Array};
use leptos::prelude::*;

use super::client::send;
use super::state::Ctx;
use crate::protocol::inspect::{InspectInfo, InspectRequest};
use crate::protocol::{FromWorker, ToWorker};
pub use data::Data;

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    Busy,
    Ready,
    Error(String),
}

impl Phase {
    fn word(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Busy => "busy",
            Phase::Ready => "ready",
            Phase::Error(_) => "error",
        }
    }
}

/// The view's state; signal handles, so `Copy`. Made once by the app, kept across tab switches.
#[derive(Clone, Copy)]
pub struct State {
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
}

thread_local! {
    static STATE: Cell<Option<State>> = const { Cell::new(None) };
}

impl State {
    /// Made under the app's owner so the signals outlive the view.
    pub fn install() {
        let s = State {
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
        };
        STATE.with(|c| c.set(Some(s)));
    }
    pub fn get() -> Option<State> {
        STATE.with(Cell::get)
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

/// Asks the worker to inspect the last story (or the prompt when there is none).
pub fn request(ctx: Ctx, s: State) {
    let id = s.req.get_untracked() + 1;
    s.req.set(id);
    s.phase.set(Phase::Busy);
    s.source.set(Some((ctx.run_id.get_untracked(), ctx.active.get_untracked())));
    let has_run = ctx.run_id.get_untracked() > 0;
    let text = ctx.form.prompt.get_untracked();
    send(&ToWorker::Inspect(InspectRequest { id, last_run: has_run, text }), &[]);
}

/// A reply with binary parts: `[json, attention, logits, rollout]`.
pub fn receive_parts(parts: &Array) {
    let Some(s) = State::get() else { return };
    let Some(msg) = parts.get(0).as_string().and_then(|t| FromWorker::from_json(&t).ok()) else { return };
    let FromWorker::Inspected(info) = msg else { return };
    if info.id != s.req.get_untracked() {
        return;
    }
    let array = |i: u32| Float32Array::new(&parts.get(i)).to_vec();
    match Data::new(*info, array(1), array(2), array(3)) {
        Ok(d) => accept(s, d),
        Err(e) => s.phase.set(Phase::Error(e)),
    }
}

fn accept(s: State, d: Data) {
    let n = d.len();
    let InspectInfo { settings, prompt_len, .. } = &d.info;
    if let Some(st) = settings {
        s.temperature.set(if st.temperature > 0.0 { st.temperature } else { 1.0 });
        s.topp.set(st.topp);
    }
    let (l, h) = s.locked.get_untracked();
    if l >= d.layers() || h >= d.heads() {
        s.locked.set((0, 0));
    }
    s.pos.set(prompt_len.saturating_sub(1).min(n.saturating_sub(1)));
    s.step.set(None);
    s.playing.set(false);
    s.hover.set(None);
    s.focus.set(None);
    s.data.set(Some(Arc::new(d)));
    s.phase.set(Phase::Ready);
}

pub fn failed(id: u64, message: String) {
    let Some(s) = State::get() else { return };
    if id == s.req.get_untracked() {
        s.phase.set(Phase::Error(message));
    }
}

/// The Inspect tab.
pub fn view(ctx: Ctx) -> AnyView {
    let Some(s) = State::get() else { return ().into_any() };
    // Inspect the current story on arrival, and again when it or the model changes.
    Effect::new(move |_| {
        let now = (ctx.run_id.get(), ctx.active.get());
        let idle = ctx.active.with(Option::is_some) && !ctx.running() && !ctx.loading();
        if idle && s.source.get_untracked() != Some(now) {
            request(ctx, s);
        }
    });
    let phase_text = move || match s.phase.get() {
        Phase::Idle => "Waiting for the model…".to_string(),
        Phase::Busy => "Inspecting…".into(),
        Phase::Error(e) => e,
        Phase::Ready => s.data.with(|d| d.as_ref().map(|d| summary(d)).unwrap_or_default()),
    };
    view! {
        <section class="inspect" aria-label="Inspect the model">
            <div class="card inspect-head">
                <p class="inspect-status" data-testid="inspect-status" role="status"
                    data-state=move || s.phase.with(Phase::word)>{phase_text}</p>
                <div class="actions">
                    <button type="button" class="secondary" data-testid="inspect-again"
                        disabled=move || !ctx.can_generate() on:click=move |_| request(ctx, s)>"Inspect again"</button>
                    <export::Buttons s />
                </div>
            </div>
            <Show when=move || s.data.with(Option::is_some)>
                <tokens::Strip s />
                <div class="inspect-grid heads-and-zoom">
                    <grid::Overview s />
                    <zoom::Zoom s />
                </div>
                <playback::Playback s />
                <div class="inspect-grid">
                    <next::NextTokens s />
                    <zoom::Rollout s />
                </div>
                <lens::Lens s />
            </Show>
        </section>
    }
    .into_any()
}

fn summary(d: &Data) -> String {
    let i = &d.info;
    let cut = i.truncated_from.map_or(String::new(), |n| format!(" (the first {} of {n})", d.len()));
    format!("{} tokens{cut} · {} layers × {} heads · {} in {:.0} ms", d.len(), i.n_layers, i.n_heads, i.backend, i.ms)
}
