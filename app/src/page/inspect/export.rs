//! Export: the current view's numbers as JSON and the zoomed heatmap as PNG, as downloads.

use js_sys::Array;
use leptos::prelude::*;
use serde_json::{json, Value};
use tinylm_engine::trace::next_tokens;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, HtmlCanvasElement, Url};

use super::data::Data;
use super::state::State;

/// The whole attention tensor goes into the JSON up to this many values (16 MB of text or so).
const FULL_ATTENTION_MAX: usize = 1 << 20;

#[component]
pub fn Buttons(s: State) -> impl IntoView {
    let none = move || s.data.with(Option::is_none);
    view! {
        <button type="button" class="secondary" data-testid="export-json" disabled=none
            on:click=move |_| export_json(s)>"Export numbers (JSON)"</button>
        <button type="button" class="secondary" data-testid="export-png" disabled=none
            on:click=move |_| export_png(s)>"Export heatmap (PNG)"</button>
    }
}

fn export_json(s: State) {
    let Some(d) = s.data.get_untracked() else { return };
    let text = numbers(s, &d).to_string();
    let parts = Array::of1(&text.into());
    let opts = BlobPropertyBag::new();
    opts.set_type("application/json");
    let Ok(blob) = Blob::new_with_str_sequence_and_options(&parts, &opts) else { return };
    let Ok(url) = Url::create_object_url_with_blob(&blob) else { return };
    download(&url, "tinylm-inspect.json");
    let _ = Url::revoke_object_url(&url);
}

fn export_png(s: State) {
    let (l, h) = s.locked.get_untracked();
    let doc = web_sys::window().and_then(|w| w.document());
    let canvas = doc.and_then(|d| d.query_selector("[data-testid=zoom]").ok().flatten());
    let Some(canvas) = canvas.and_then(|c| c.dyn_into::<HtmlCanvasElement>().ok()) else { return };
    if let Ok(url) = canvas.to_data_url() {
        download(&url, &format!("tinylm-attention-layer{}-head{}.png", l + 1, h + 1));
    }
}

fn download(url: &str, name: &str) {
    let doc = web_sys::window().and_then(|w| w.document());
    let Some(a) = doc.and_then(|d| d.create_element("a").ok()).and_then(|a| a.dyn_into::<HtmlAnchorElement>().ok()) else {
        return;
    };
    a.set_href(url);
    a.set_download(name);
    a.click();
}

fn matrix(m: &[f32], n: usize) -> Value {
    Value::Array(m.chunks(n.max(1)).map(|r| json!(r)).collect())
}

/// What the view shows, as numbers: the locked head, the whole attention when small enough,
/// rollout, the logit lens where it was worked out, and the next-token view with the sliders'
/// settings.
fn numbers(s: State, d: &Data) -> Value {
    let (n, layers, heads) = (d.len(), d.layers(), d.heads());
    let (l, h) = s.locked.get_untracked();
    let (t, temp, topp) = (s.pos.get_untracked().min(n - 1), s.temperature.get_untracked(), s.topp.get_untracked());
    let full = (layers * heads * n * n <= FULL_ATTENTION_MAX)
        .then(|| (0..layers).map(|l| (0..heads).map(|h| matrix(d.head(l, h), n)).collect::<Vec<_>>()).collect::<Vec<_>>());
    // Only the positions the lens was worked out for (all of them for small models); null elsewhere.
    let columns = s.lens.get_untracked();
    let lens: Vec<Value> = (0..layers)
        .map(|l| {
            let cell = |t| columns.get(&t).map(|c| c[l]).map(|x| json!({"id": x.id, "piece": d.vocab(x.id), "prob": x.prob}));
            (0..n).map(cell).map(|c| c.unwrap_or(Value::Null)).collect()
        })
        .collect();
    let mut lens_positions: Vec<usize> = columns.keys().copied().collect();
    lens_positions.sort_unstable();
    let next = next_tokens(d.logits_at(t), temp, topp, 20).ok().map(|v| {
        let top: Vec<Value> = v
            .top
            .iter()
            .map(|c| json!({"id": c.id, "piece": d.vocab(c.id), "logit": c.logit, "prob": c.prob, "reshaped": c.reshaped, "kept": c.kept}))
            .collect();
        json!({"position": t, "temperature": temp, "top_p": topp, "kept": v.kept, "kept_mass": v.kept_mass, "top": top})
    });
    json!({
        "backend": d.info.backend,
        "shape": {"layers": layers, "heads": heads, "tokens": n, "vocab": d.info.vocab_size},
        "tokens": d.info.tokens,
        "pieces": d.info.pieces,
        "prompt_tokens": d.info.prompt_len,
        "layer": l,
        "head": h,
        "shared_scale": s.shared_scale.get_untracked(),
        "sqrt_colours": s.sqrt.get_untracked(),
        "attention_head": matrix(d.head(l, h), n),
        "attention": full,
        "rollout_last_layer": matrix(d.rollout(layers - 1), n),
        "logit_lens": lens,
        "logit_lens_positions": lens_positions,
        "next_token": next,
    })
}
