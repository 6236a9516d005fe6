//! Activation patching: a clean and a corrupted prompt of the same length, and the two answers
//! they favour. For every layer × position the clean run's numbers are put into the corrupted
//! run; the maps show how much of the clean answer's lead comes back.

use std::sync::Arc;

use leptos::prelude::*;
use tinylm_engine::trace::PATCH_EXAMPLES;

use super::controls::{start, Status};
use super::heatmap::{Legend, Map};
use super::state::{Kind, State};
use crate::protocol::experiments::{ExperimentRequest, Patched};

fn run(s: State) {
    let (clean, corrupt) = (s.clean.get_untracked(), s.corrupt.get_untracked());
    let (clean_answer, corrupt_answer) = (s.clean_answer.get_untracked(), s.corrupt_answer.get_untracked());
    start(s, Kind::Patch, |id| ExperimentRequest::Patch { id, clean, corrupt, clean_answer, corrupt_answer });
}

fn pick(s: State, name: &str) {
    if let Some(e) = PATCH_EXAMPLES.iter().find(|e| e.name == name) {
        s.clean.set(e.clean.into());
        s.corrupt.set(e.corrupt.into());
        s.clean_answer.set(e.clean_answer.into());
        s.corrupt_answer.set(e.corrupt_answer.into());
    }
}

#[component]
fn Text(label: &'static str, testid: &'static str, value: RwSignal<String>) -> impl IntoView {
    view! {
        <label class="field">
            <span class="name">{label}</span>
            <input type="text" data-testid=testid prop:value=move || value.get() on:input=move |e| value.set(event_target_value(&e)) />
        </label>
    }
}

#[component]
pub fn Patching(s: State) -> impl IntoView {
    let disabled = move || s.busy() || !s.ctx.can_generate();
    let about = move || {
        let (c, x) = (s.clean.get(), s.corrupt.get());
        PATCH_EXAMPLES.iter().find(|e| e.clean == c && e.corrupt == x).map(|e| e.about).unwrap_or("Your own prompts.")
    };
    view! {
        <section class="card ex-card" aria-labelledby="patch-title">
            <h3 id="patch-title">"3. Activation patching: where does the answer travel?"</h3>
            <p class="hint">
                "Two prompts differ in one word: the clean one makes the model expect one answer, the "
                "corrupted one another. The model reads the corrupted prompt again and again; each time, the "
                "numbers of one word after one layer (or one head's output) are copied in from the clean "
                "prompt. Where that brings the clean answer back, those numbers carried the difference."
            </p>
            <p class="hint">"Patching always runs on the CPU, even when WebGPU writes the stories."</p>
            <label class="field">
                <span class="name">"Ready-made example"</span>
                <select data-testid="patch-example" on:change=move |e| pick(s, &event_target_value(&e))>
                    <option value="">"Pick one…"</option>
                    {PATCH_EXAMPLES.iter().map(|e| view! { <option value=e.name>{e.name}</option> }).collect_view()}
                </select>
            </label>
            <p class="hint" data-testid="patch-about">{about}</p>
            <div class="patch-fields">
                <Text label="Clean prompt" testid="patch-clean" value=s.clean />
                <Text label="Corrupted prompt (same number of tokens)" testid="patch-corrupt" value=s.corrupt />
                <Text label="Clean answer (one token)" testid="patch-clean-answer" value=s.clean_answer />
                <Text label="Corrupted answer (one token)" testid="patch-corrupt-answer" value=s.corrupt_answer />
            </div>
            <div class="actions">
                <button type="button" data-testid="patch-run" disabled=disabled on:click=move |_| run(s)>"Patch"</button>
            </div>
            <Status s kind=Kind::Patch />
            {move || s.patched.get().map(result)}
        </section>
    }
}

fn result(p: Arc<Patched>) -> impl IntoView {
    let m = &p.maps;
    let (l, h, t) = (m.n_layers, m.n_heads, m.len());
    let resid: Vec<(String, Vec<f32>)> =
        (0..l).map(|li| (format!("{}", li + 1), (0..t).map(|ti| m.resid_at(li, ti)).collect())).collect();
    let heads: Vec<(String, Vec<f32>)> = (0..l)
        .flat_map(|li| (0..h).map(move |hi| (li, hi)))
        .map(|(li, hi)| (format!("{}.{}", li + 1, hi + 1), (0..t).map(|ti| m.heads_at(li, hi, ti)).collect()))
        .collect();
    let (ca, xa) = (p.clean_answer.trim().to_string(), p.corrupt_answer.trim().to_string());
    let summary = if m.clean_diff == m.corrupt_diff {
        format!(
            "Both prompts give the same lead of “{ca}” over “{xa}” ({:.3}), so there is nothing to bring back: \
             every patched run gives that same lead, shown as 100%.",
            m.clean_diff
        )
    } else {
        format!(
            "How much more the model expects “{ca}” than “{xa}” after the last word (logit difference): \
             clean prompt {:.3}, corrupted prompt {:.3}. 100% in a cell means patching there brings the clean \
             lead all the way back; 0% means it changes nothing.",
            m.clean_diff, m.corrupt_diff
        )
    };
    let read = "How to read the map: each column is a word of the prompt (the changed word shows both \
                versions), each row a layer, the first at the top. Look for where the blue goes: usually it \
                starts at the changed word in the early layers and moves to the last word in later layers — \
                that is the model carrying the information forward to where it answers.";
    view! {
        <div class="ex-result" data-testid="patch-result" data-clean-diff=m.clean_diff.to_string()
            data-corrupt-diff=m.corrupt_diff.to_string() data-tokens=t.to_string()>
            <p data-testid="patch-summary">{summary}{format!(" ({:.1} s)", p.ms / 1000.0)}</p>
            <p class="hint">{read}</p>
            <Legend />
            <Map p=p.clone() caption="Residual stream: the clean numbers after each layer, at each word".into()
                corner="layer" testid="patch-resid" rows=resid />
            <Map p=p.clone() caption="One head at a time: a head's clean output (rows: layer.head), at each word".into()
                corner="head" testid="patch-heads" rows=heads />
        </div>
    }
}
