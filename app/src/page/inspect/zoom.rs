//! The chosen head large, with the causal mask, exact values under the pointer or the keyboard
//! cursor, and a per-head or shared colour scale; and attention rollout drawn the same way.

use leptos::ev::{KeyboardEvent, MouseEvent};
use leptos::html::Canvas;
use leptos::prelude::*;

use super::axes::Axes;
use super::canvas::{cell_at, cell_for, draw, Heat};
use super::data::Data;
use super::palette::viridis;
use super::state::State;
use crate::page::help::{About, Term};

/// About this many pixels a side for the large heatmaps.
const ZOOM_PX: usize = 512;

#[component]
pub fn Zoom(s: State) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    // The cell under the pointer or keyboard cursor: (query, key).
    let cell = RwSignal::new(None::<(usize, usize)>);
    Effect::new(move |_| {
        let (l, h) = s.shown();
        let shared = s.shared_scale.get();
        let curve = s.curve();
        let step = s.step.get();
        s.data.with(|d| {
            let (Some(d), Some(c)) = (d.as_ref(), canvas.get()) else { return };
            let n = d.len();
            let max = if shared { 1.0 } else { d.head_max(l, h) };
            let visible = step.map_or(n, |t| t + 1);
            let heat = Heat { m: d.head(l, h), n, max, visible, cell: cell_for(n, ZOOM_PX), target: ZOOM_PX };
            draw(&c, &heat, &|x| viridis(curve(x)));
        });
    });
    let on_move = move |e: MouseEvent| {
        let (Some(c), n) = (canvas.get_untracked(), len(s)) else { return };
        cell.set(cell_at(&c, e.offset_x(), e.offset_y(), n));
    };
    let on_key = move |e: KeyboardEvent| {
        let n = len(s);
        let (t, k) = cell.get_untracked().unwrap_or((0, 0));
        let next = match e.key().as_str() {
            "ArrowRight" => (t, (k + 1).min(t)),
            "ArrowLeft" => (t, k.saturating_sub(1)),
            "ArrowDown" => ((t + 1).min(n.saturating_sub(1)), k),
            "ArrowUp" => (t.saturating_sub(1), k.min(t.saturating_sub(1))),
            _ => return,
        };
        e.prevent_default();
        cell.set(Some(next));
    };
    let title = move || {
        let (l, h) = s.shown();
        let how = if s.hover.get().is_some() { " (preview)" } else { "" };
        format!("Layer {} · head {}{how}", l + 1, h + 1)
    };
    let readout = move || {
        let (l, h) = s.shown();
        s.data.with(|d| match (d.as_ref(), cell.get()) {
            (Some(d), Some((t, k))) => describe(d, l, h, t, k),
            _ => "Point at a cell (or focus the map and use the arrow keys) for its exact value.".into(),
        })
    };
    let scale_note = move || {
        let (l, h) = s.shown();
        if s.shared_scale.get() {
            "Colour scale 0 – 1 for every head.".to_string()
        } else {
            s.data.with(|d| {
                d.as_ref().map_or(String::new(), |d| {
                    format!(
                        "Colour scale 0 – {:.3} (this head's largest value after the first row, which is always 1).",
                        d.head_max(l, h)
                    )
                })
            })
        }
    };
    view! {
        <section class="card zoom" aria-label="The chosen head">
            <h2 data-testid="zoom-title" data-layer=move || s.shown().0 data-head=move || s.shown().1>{title}</h2>
            <About>
                <p>
                    "One " <Term key="head" /> " large. Read it row by row: the token on the left looks back at the tokens "
                    "along the top, and the brighter the square, the more " <Term key="attention" /> " it pays. Each row "
                    "adds up to 100%. The top-right half is hatched because a token can never look at tokens that come after it."
                </p>
            </About>
            <Axes s cell>
                <canvas node_ref=canvas data-testid="zoom" class="heat" tabindex="0" role="img"
                    aria-label=move || format!("{}: attention of each query token (rows) to earlier tokens (columns). Arrow keys move a cursor.", title())
                    on:mousemove=on_move on:mouseleave=move |_| cell.set(None) on:keydown=on_key></canvas>
            </Axes>
            <p class="readout" data-testid="zoom-readout" aria-live="polite">{readout}</p>
            <label class="check">
                <input type="checkbox" data-testid="shared-scale" prop:checked=move || s.shared_scale.get()
                    on:change=move |e| s.shared_scale.set(event_target_checked(&e)) />
                " Same colour scale for all heads"
            </label>
            <label class="check">
                <input type="checkbox" data-testid="sqrt-scale" prop:checked=move || s.sqrt.get()
                    on:change=move |e| s.sqrt.set(event_target_checked(&e)) />
                " Square-root colours (shows small weights in long texts)"
            </label>
            <p class="hint">{scale_note}" Hatched: the causal mask (a token cannot look ahead)."</p>
        </section>
    }
}

fn len(s: State) -> usize {
    s.data.with_untracked(|d| d.as_ref().map_or(0, |d| d.len()))
}

fn describe(d: &Data, l: usize, h: usize, t: usize, k: usize) -> String {
    let n = d.len();
    if k > t {
        return format!("Query {t} “{}” cannot see key {k} “{}” (causal mask).", d.piece(t), d.piece(k));
    }
    let v = d.head(l, h)[t * n + k];
    format!("Layer {} head {}: query {t} “{}” → key {k} “{}”: {v:.6} ({:.2}%)", l + 1, h + 1, d.piece(t), d.piece(k), v * 100.0)
}

#[component]
pub fn Rollout(s: State) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    let layer = RwSignal::new(usize::MAX);
    Effect::new(move |_| {
        let want = layer.get();
        s.data.with(|d| {
            let (Some(d), Some(c)) = (d.as_ref(), canvas.get()) else { return };
            let l = want.min(d.layers() - 1);
            let n = d.len();
            let heat = Heat { m: d.rollout(l), n, max: 1.0, visible: n, cell: cell_for(n, 320), target: 320 };
            draw(&c, &heat, &|x| viridis(x.sqrt()));
        });
    });
    let layers = move || s.data.with(|d| d.as_ref().map_or(1, |d| d.layers()));
    let cell = RwSignal::new(None::<(usize, usize)>);
    let on_move = move |e: MouseEvent| {
        let (Some(c), n) = (canvas.get_untracked(), len(s)) else { return };
        cell.set(cell_at(&c, e.offset_x(), e.offset_y(), n));
    };
    view! {
        <section class="card rollout" aria-label="Attention rollout">
            <h2>"Attention rollout (an approximation)"</h2>
            <About>
                <p>
                    <Term key="rollout" text="Attention rollout" /> " follows attention through all the "
                    <Term key="layer" text="layers" /> " at once: how much of each token (rows) can be traced back to "
                    "each input token (columns). It is only an estimate."
                </p>
            </About>
            <p class="hint">
                "How much of each position (rows) traces back to each input token (columns), multiplying the \
                 heads' mean attention through the layers with the residual path counted as half. It ignores \
                 what the MLPs and values do, so read it as a rough picture. Colour: square root of the share."
            </p>
            <label class="field">
                <span class="name">{move || format!("Through layer {}", layer.get().min(layers() - 1) + 1)}</span>
                <input type="range" min="1" max=move || layers().to_string() step="1" data-testid="rollout-layer"
                    prop:value=move || (layer.get().min(layers() - 1) + 1).to_string()
                    on:input=move |e| layer.set(event_target_value(&e).parse::<usize>().unwrap_or(1).saturating_sub(1)) />
            </label>
            <Axes s cell>
                <canvas node_ref=canvas class="heat small" role="img" data-testid="rollout"
                    aria-label="Attention rollout heatmap" on:mousemove=on_move on:mouseleave=move |_| cell.set(None)></canvas>
            </Axes>
        </section>
    }
}
