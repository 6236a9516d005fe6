//! The Inspect view: what the model computed for the current text — attention per layer and
//! head, the next-token distribution as the sampler reshapes it, the logit lens, attention
//! rollout and a step-by-step replay. The worker computes; this module only draws.

mod axes;
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

mod state;

use std::sync::Arc;

use leptos::prelude::*;

use super::client::Handler;
use super::help::{About, Term};
use super::state::Ctx;
use crate::protocol::inspect::{InspectCtl, InspectInfo, InspectNews, InspectRequest, Inspected, Stage};
use crate::protocol::{FromWorker, ToWorker};
use crate::words;
pub use data::Data;
pub use state::{Phase, State};

/// Makes the view's state (provided as context) and returns its message handler.
pub fn install(ctx: Ctx) -> Handler {
    let s = State::new(ctx);
    provide_context(s);
    let experiments = super::experiments::install(ctx);
    Box::new(move |msg| {
        receive(s, msg);
        experiments(msg);
    })
}

fn receive(s: State, msg: &FromWorker) {
    match msg {
        FromWorker::Inspected(i) => inspected(s, i),
        FromWorker::InspectFailed { id, message } => failed(s, *id, message.clone()),
        FromWorker::InspectNews(n) => news(s, n.clone()),
        _ => {}
    }
}

/// What Inspect reads when no story has been written: the prompt, or this when it is empty
/// (a bare start marker would show one token and nothing to learn from).
pub const STAND_IN: &str = "Once upon a time";

/// Asks the worker to inspect the last story (or the prompt, or `STAND_IN`, when there is none).
pub fn request(s: State) {
    let ctx = s.ctx;
    let id = s.req.get_untracked() + 1;
    s.req.set(id);
    s.phase.set(Phase::Busy);
    s.progress.set(None);
    s.source.set(Some((ctx.run_id.get_untracked(), ctx.active.get_untracked())));
    let has_run = ctx.run_id.get_untracked() > 0;
    let prompt = ctx.form.prompt.get_untracked();
    let text = if prompt.trim().is_empty() { STAND_IN.to_string() } else { prompt };
    lens::cancel_pending(s);
    ctx.send(&ToWorker::Inspect(InspectRequest { id, last_run: has_run, text }));
}

/// Stops the running inspection (the worker sees it between chunks of work).
pub fn stop(s: State) {
    s.ctx.send(&ToWorker::InspectCtl(InspectCtl::Stop { id: s.req.get_untracked() }));
}

/// Progress, a stop, or lens columns from the worker.
fn news(s: State, n: InspectNews) {
    let current = s.req.get_untracked();
    match n {
        InspectNews::Progress { id, stage, done, total } if id == current && s.phase.get_untracked() == Phase::Busy => {
            s.progress.set(Some((stage, done, total)));
        }
        InspectNews::Stopped { id, stage, done, total } if id == current => {
            let kept = if s.data.with_untracked(Option::is_some) { " Showing the last finished inspection." } else { "" };
            s.phase
                .set(Phase::Stopped(format!("Stopped {}.{kept} “Inspect again” starts over.", stage_text(stage, done, total))));
            s.progress.set(None);
        }
        InspectNews::Lens { id, columns } if s.data.with_untracked(|d| d.as_ref().is_some_and(|d| d.info.id == id)) => {
            s.lens.update(|m| m.extend(columns.into_iter().map(|c| (c.pos, c.tops))));
        }
        _ => {}
    }
}

/// "in the forward pass at 120 of 475 tokens", and the like.
fn stage_text(stage: Stage, done: usize, total: usize) -> String {
    match stage {
        Stage::Forward => format!("in the forward pass at {done} of {total} tokens"),
        Stage::Rollout => format!("in the attention rollout at layer {done} of {total}"),
        Stage::Lens => format!("in the logit lens at {done} of {total} positions"),
    }
}

/// A finished inspection: its arrays come into the page's memory once, checked against its shape.
fn inspected(s: State, i: &Inspected) {
    if i.info.id != s.req.get_untracked() {
        return;
    }
    match Data::new(i.info.clone(), i.attention.to_vec(), i.logits.to_vec(), i.rollout.to_vec()) {
        Ok(d) => accept(s, d),
        Err(e) => s.phase.set(Phase::Error(e)),
    }
}

fn accept(s: State, d: Data) {
    let n = d.len();
    let InspectInfo { settings, prompt_len, .. } = &d.info;
    // At temperature 0 the sampler columns would show 100% for the likeliest and nothing for
    // top-p to cut, so the sliders start at 1 and a note says the story's dice were greedy.
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
    s.lens.set(d.info.lens.iter().map(|c| (c.pos, c.tops.clone())).collect());
    s.progress.set(None);
    s.data.set(Some(Arc::new(d)));
    s.phase.set(Phase::Ready);
}

fn failed(s: State, id: u64, message: String) {
    if id == s.req.get_untracked() {
        s.phase.set(Phase::Error(message));
    }
}

/// The Inspect tab.
pub fn view() -> AnyView {
    let s = expect_context::<State>();
    let ctx = s.ctx;
    // Inspect the current story on arrival, and again when it or the model changes.
    Effect::new(move |_| {
        let now = (ctx.run_id.get(), ctx.active.get());
        let idle = ctx.active.with(Option::is_some) && !ctx.running() && !ctx.loading();
        if idle && s.source.get_untracked() != Some(now) {
            request(s);
        }
    });
    let phase_text = move || match s.phase.get() {
        Phase::Idle => "Waiting for the model…".to_string(),
        Phase::Busy => match s.progress.get() {
            Some((stage, done, total)) => format!("Inspecting… {}", stage_text(stage, done, total)),
            None => "Inspecting…".into(),
        },
        Phase::Stopped(e) => e,
        Phase::Error(e) => e,
        Phase::Ready => s.data.with(|d| d.as_ref().map(|d| summary(d)).unwrap_or_default()),
    };
    view! {
        <section class="inspect" aria-label="Inspect the model">
            <div class="card inspect-head">
                <About>
                    <p>
                        "Inspect opens up the model while it reads the text: which earlier " <Term key="token" text="tokens" />
                        " each token pays " <Term key="attention" /> " to, in every " <Term key="layer" /> " and "
                        <Term key="head" /> ", and how sure it is about the next token. Nothing is re-trained here; "
                        "it only shows the numbers the model computed."
                    </p>
                </About>
                <p class="inspect-subject" data-testid="inspect-subject">{move || subject(s)}</p>
                <p class="inspect-status" data-testid="inspect-status" role="status"
                    data-state=move || s.phase.with(Phase::word)>{phase_text}</p>
                <div class="actions">
                    <Show when=move || s.phase.with(|p| *p == Phase::Busy)>
                        <progress data-testid="inspect-progress" max="1" value=move || progress_value(s)></progress>
                        <button type="button" data-testid="inspect-stop" on:click=move |_| stop(s)>"Stop"</button>
                    </Show>
                    <button type="button" class="secondary" data-testid="inspect-again"
                        disabled=move || !ctx.can_generate() on:click=move |_| request(s)>"Inspect again"</button>
                    <export::Buttons s />
                </div>
            </div>
            <Show when=move || s.data.with(|d| d.as_ref().is_some_and(|d| d.info.cap_note.is_some()))>
                <p class="card inspect-cap" data-testid="inspect-cap">
                    {move || s.data.with(|d| d.as_ref().and_then(|d| d.info.cap_note.clone()).unwrap_or_default())}
                </p>
            </Show>
            <Show when=move || s.data.with(Option::is_some)>
                <tokens::Strip s />
                // Past 8 heads the grid is too wide to share a row with the zoomed head.
                <div class="inspect-grid heads-and-zoom" class:many-heads=move || s.data.with(|d| d.as_ref().is_some_and(|d| d.heads() > 8))>
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
            <super::experiments::Panel />
        </section>
    }
    .into_any()
}

/// How far the running inspection is, 0–1: the forward pass is most of the work.
fn progress_value(s: State) -> f64 {
    match s.progress.get() {
        Some((stage, done, total)) => {
            let f = done as f64 / total.max(1) as f64;
            match stage {
                Stage::Forward => 0.9 * f,
                Stage::Rollout => 0.9 + 0.05 * f,
                Stage::Lens => 0.95 + 0.05 * f,
            }
        }
        None => 0.0,
    }
}

/// What is being inspected when it is not a story the model wrote.
fn subject(s: State) -> String {
    let prompt_only = s.data.with(|d| d.as_ref().is_some_and(|d| d.info.settings.is_none()));
    if !prompt_only {
        return String::new();
    }
    if s.ctx.form.prompt.with(|p| p.trim().is_empty()) {
        format!("No story yet, and the prompt is empty: inspecting “{STAND_IN}”. Write a story in Generate to inspect it.")
    } else {
        "No story yet: inspecting the prompt. Write a story in Generate to inspect it.".to_string()
    }
}

fn summary(d: &Data) -> String {
    let i = &d.info;
    let cut = i.truncated_from.map_or(String::new(), |n| format!(" (the first {} of {n})", d.len()));
    let shape = format!("{} × {}", words::count(i.n_layers, "layer"), words::count(i.n_heads, "head"));
    // Generate counts the tokens it wrote; the view has one position more, the start marker.
    let what = match i.pieces.first().map(String::as_str) {
        Some("<s>") => format!("{} positions: <s> and {}", d.len(), words::count(d.len() - 1, "token")),
        _ => words::count(d.len(), "token"),
    };
    format!("{what}{cut} · {shape} · {} in {:.0} ms", i.backend, i.ms)
}
