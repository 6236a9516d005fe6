//! The layer × head overview: a small heatmap per head in that head's hue. Pointing previews a
//! head in the zoomed view; a click (or Enter) locks it; arrow keys move between heads.

use leptos::ev::KeyboardEvent;
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::canvas::{draw, Heat};
use super::palette::{css, hue, ramp};
use super::state::State;
use crate::page::help::{About, Term};

/// Thumbnails are at most this many pixels a side (max-pooled beyond).
const THUMB: usize = 96;

#[component]
pub fn Overview(s: State) -> impl IntoView {
    let shape = move || s.data.with(|d| d.as_ref().map_or((0, 0), |d| (d.layers(), d.heads())));
    let on_key = move |e: KeyboardEvent| {
        let (layers, heads) = s.data.with_untracked(|d| d.as_ref().map_or((1, 1), |d| (d.layers(), d.heads())));
        let (l, h) = s.locked.get_untracked();
        let next = match e.key().as_str() {
            "ArrowRight" => (l, (h + 1) % heads),
            "ArrowLeft" => (l, (h + heads - 1) % heads),
            "ArrowDown" => ((l + 1) % layers, h),
            "ArrowUp" => ((l + layers - 1) % layers, h),
            _ => return,
        };
        e.prevent_default();
        s.locked.set(next);
        focus_cell(next);
    };
    view! {
        <section class="card overview" aria-label="Attention of every layer and head">
            <h2>"Attention: layers × heads"</h2>
            <About>
                <p>
                    "The model has several " <Term key="layer" text="layers" /> ", one after another, and each layer has several "
                    <Term key="head" text="heads" /> ". Every small square is one head's " <Term key="attention" />
                    ": a row for each token, a column for each earlier token, darker where the row's token looks more "
                    "at the column's. Some heads look at the token just before, some at the start, some at similar words."
                </p>
            </About>
            <p class="hint">"Point at a head to preview it, click to keep it. Arrow keys move between heads."</p>
            <div class="heads" role="group" aria-label="Layers and heads (arrow keys move)" on:keydown=on_key
                on:mouseleave=move |_| s.hover.set(None)>
                {move || {
                    let (layers, heads) = shape();
                    (0..layers).map(|l| view! {
                        <div class="heads-row" role="group" aria-label=format!("Layer {}", l + 1)>
                            <span class="heads-label" aria-hidden="true">{format!("L{}", l + 1)}</span>
                            {(0..heads).map(|h| view! { <Thumb s l h /> }).collect_view()}
                        </div>
                    }).collect_view()
                }}
            </div>
        </section>
    }
}

fn focus_cell((l, h): (usize, usize)) {
    let doc = web_sys::window().and_then(|w| w.document());
    if let Some(el) = doc.and_then(|d| d.get_element_by_id(&format!("head-{l}-{h}"))) {
        if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    }
}

#[component]
fn Thumb(s: State, l: usize, h: usize) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let shared = s.shared_scale.get();
        let curve = s.curve();
        s.data.with(|d| {
            let (Some(d), Some(c)) = (d.as_ref(), canvas.get()) else { return };
            let max = if shared { 1.0 } else { d.head_max(l, h) };
            let heat = Heat { m: d.head(l, h), n: d.len(), max, visible: d.len(), cell: 0, target: THUMB };
            draw(&c, &heat, &|x| ramp(h, curve(x)));
        });
    });
    let locked = move || s.locked.get() == (l, h);
    view! {
        <button type="button" class="thumb" id=format!("head-{l}-{h}")
            data-testid=format!("head-{l}-{h}")
            aria-pressed=move || locked().to_string()
            tabindex=move || if locked() { "0" } else { "-1" }
            class:locked=locked
            style:border-color=css(hue(h))
            on:mouseenter=move |_| s.hover.set(Some((l, h)))
            on:focus=move |_| s.hover.set(None)
            on:click=move |_| { s.locked.set((l, h)); s.hover.set(None); }>
            <canvas node_ref=canvas aria-hidden="true"></canvas>
            <span class="thumb-label" aria-hidden="true">{format!("H{}", h + 1)}</span>
            <span class="visually-hidden">{format!("Layer {}, head {}", l + 1, h + 1)}</span>
        </button>
    }
}
