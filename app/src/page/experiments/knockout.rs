//! Knock-outs: pick heads to switch off (zeros or their average output) and whole blocks to
//! skip; the story is written again with the same seed beside the unchanged one, and the
//! changed model's next-token odds are compared with the unchanged model's at each position.

use leptos::prelude::*;
use tinylm_engine::trace::{Ablation, HeadId, Intervention};

use super::controls::{start, story_settings, SettingsNote, Status};
use super::state::{Kind, State};
use super::story::StoryText;
use crate::protocol::experiments::{ChangeRow, ExperimentRequest};

fn run(s: State) {
    let (prompt, settings) = match story_settings(s) {
        Ok(x) => x,
        Err(e) => return s.ko_phase.set(super::state::Phase::Error(e)),
    };
    let change = Intervention {
        ablate: s.heads.get_untracked().into_iter().map(|(layer, head)| HeadId { layer, head }).collect(),
        ablation: if s.mean.get_untracked() { Ablation::Mean } else { Ablation::Zero },
        skip_attn: s.skip_attn.get_untracked().into_iter().collect(),
        skip_mlp: s.skip_mlp.get_untracked().into_iter().collect(),
        steer: None,
    };
    start(s, Kind::KnockOut, |id| ExperimentRequest::KnockOut { id, prompt, settings, change });
}

fn clear(s: State) {
    s.heads.update(|h| h.clear());
    s.skip_attn.update(|h| h.clear());
    s.skip_mlp.update(|h| h.clear());
}

#[component]
pub fn KnockOut(s: State) -> impl IntoView {
    let shape = move || s.shape().unwrap_or((0, 0));
    // A grid: the head numbers across the top once, a row of checkboxes per layer (compact
    // enough for 8 heads at 390 px). Layers and heads are counted from 1, as in the attention
    // view (the test ids keep the engine's 0-based indices).
    let heads = move || {
        let (nl, nh) = shape();
        let top = (0..nh).map(|h| view! { <span class="ko-num" aria-hidden="true">{(h + 1).to_string()}</span> }).collect_view();
        let rows = (0..nl)
            .map(|l| {
                let boxes = (0..nh)
                    .map(|h| {
                        let on = move || s.heads.with(|set| set.contains(&(l, h)));
                        view! {
                            <input type="checkbox" data-testid=format!("ko-head-{l}-{h}") title=format!("Layer {}, head {}", l + 1, h + 1)
                                aria-label=format!("Switch off head {} of layer {}", h + 1, l + 1)
                                prop:checked=on
                                on:change=move |_| s.heads.update(|set| if !set.remove(&(l, h)) { set.insert((l, h)); }) />
                        }
                    })
                    .collect_view();
                view! { <span class="ko-layer" aria-hidden="true">{format!("L{}", l + 1)}</span>{boxes} }
            })
            .collect_view();
        view! {
            <div class="ko-grid" style:grid-template-columns=format!("2.4em repeat({nh}, 1.9em)")>
                <span class="ko-num" aria-hidden="true">"head"</span>{top}{rows}
            </div>
        }
    };
    let blocks = move || {
        let (nl, _) = shape();
        (0..nl)
            .map(|l| {
                let attn = move || s.skip_attn.with(|set| set.contains(&l));
                let mlp = move || s.skip_mlp.with(|set| set.contains(&l));
                view! {
                    <div class="ko-row" role="group" aria-label=format!("Blocks of layer {}", l + 1)>
                        <span class="ko-layer" aria-hidden="true">{format!("L{}", l + 1)}</span>
                        <label><input type="checkbox" data-testid=format!("ko-skip-attn-{l}") prop:checked=attn
                            aria-label=format!("Skip the attention block of layer {}", l + 1)
                            on:change=move |_| s.skip_attn.update(|set| if !set.remove(&l) { set.insert(l); }) />" attention"</label>
                        <label><input type="checkbox" data-testid=format!("ko-skip-mlp-{l}") prop:checked=mlp
                            aria-label=format!("Skip the MLP block of layer {}", l + 1)
                            on:change=move |_| s.skip_mlp.update(|set| if !set.remove(&l) { set.insert(l); }) />" MLP"</label>
                    </div>
                }
            })
            .collect_view()
    };
    let disabled = move || s.busy() || !s.ctx.can_generate();
    view! {
        <section class="card ex-card" aria-labelledby="ko-title">
            <h3 id="ko-title">"1. Knock-outs: switch parts of the model off"</h3>
            <p class="hint">
                "Each layer has several attention heads; each head looks back at earlier words and passes "
                "on what it found. Tick heads to switch them off (their output is replaced by zeros, or by "
                "their average output), or skip a whole block (its output is dropped, so the words' numbers "
                "pass through that block unchanged). Then the model writes the same story again."
            </p>
            <SettingsNote s />
            <fieldset class="ko-heads">
                <legend>"Heads to switch off (layer and head, counted from 1)"</legend>
                {heads}
            </fieldset>
            <fieldset class="ko-how">
                <legend>"A switched-off head outputs"</legend>
                <label><input type="radio" name="ko-ablation" data-testid="ko-zero" prop:checked=move || !s.mean.get()
                    on:change=move |_| s.mean.set(false) />" zeros"</label>
                <label><input type="radio" name="ko-ablation" data-testid="ko-mean" prop:checked=move || s.mean.get()
                    on:change=move |_| s.mean.set(true) />" its average output over the story"</label>
            </fieldset>
            <fieldset class="ko-blocks">
                <legend>"Blocks to skip"</legend>
                {blocks}
            </fieldset>
            <div class="actions">
                <button type="button" data-testid="ko-run" disabled=disabled on:click=move |_| run(s)>"Write the story again"</button>
                <button type="button" class="secondary" data-testid="ko-clear" disabled=disabled on:click=move |_| clear(s)>"Switch everything back on"</button>
            </div>
            <Status s kind=Kind::KnockOut />
            {move || s.knocked.get().map(|k| {
                let first = k.first_difference;
                view! {
                    <div class="ex-result" data-testid="ko-result" data-description=k.description.clone()
                        data-first-diff=first.map(|i| i.to_string()).unwrap_or_default()>
                        <p data-testid="ko-changed-words"><strong>"Changed: "</strong>{k.shown.clone()}{format!(" ({}, {:.1} s)", k.backend, k.ms / 1000.0)}</p>
                        <div class="ex-stories">
                            <StoryText story=k.original.clone() first=None title="Unchanged model".into() testid="ko-original".into() />
                            <StoryText story=k.changed.clone() first=first title="With the change".into() testid="ko-changed".into() />
                        </div>
                        <Odds s rows=k.changes.clone() pieces=k.original.pieces.clone() />
                    </div>
                }
            })}
        </section>
    }
}

/// How the next-token odds moved at each position of the unchanged story: the tokens shaded by
/// how much the distribution moved, and a readout of the picked one.
#[component]
fn Odds(s: State, rows: Vec<ChangeRow>, pieces: Vec<String>) -> impl IntoView {
    let n = rows.len();
    let most = rows.iter().map(|r| r.change.kl).fold(0f32, f32::max);
    let strip = rows
        .iter()
        .enumerate()
        .map(|(t, r)| {
            let c = &r.change;
            let shade = if most > 0.0 { (c.kl / most).sqrt() } else { 0.0 };
            // The story's pieces as the Tokens view writes them (`trace::pieces`), the start
            // marker included: <s> for llama2.c's tokenizer, the model's own for others.
            let piece = pieces.get(t).cloned().unwrap_or_default().replace("<0x0A>", "↵");
            view! {
                <span class="ko-tok" class:picked=move || s.ko_pos.get() == t
                    style:background-color=format!("rgba(214, 96, 77, {shade:.3})")
                    data-testid=format!("ko-odds-{t}") data-kl=c.kl.to_string()
                    data-before=c.before.map(|o| o.prob.to_string()).unwrap_or_default()
                    data-after=c.after.map(|o| o.prob.to_string()).unwrap_or_default()
                    on:click=move |_| s.ko_pos.set(t)>{piece}</span>
            }
        })
        .collect_view();
    let rows2 = rows.clone();
    let readout = move || {
        let t = s.ko_pos.get().min(n.saturating_sub(1));
        let Some(r) = rows2.get(t) else { return String::new() };
        let c = &r.change;
        let next = match (&r.next, c.before, c.after) {
            (Some(p), Some(b), Some(a)) => format!(
                "The token that came next, “{p}”, had {:.1}% (rank {}) before and {:.1}% (rank {}) after. ",
                b.prob * 100.0,
                b.rank,
                a.prob * 100.0,
                a.rank
            ),
            _ => "This is the last token, so nothing came next. ".into(),
        };
        format!(
            "After token {t} (“{}”): {next}The likeliest next token was “{}” ({:.1}%) and is now “{}” ({:.1}%). \
             The whole distribution moved by {:.4} (KL divergence, 0 means not at all).",
            pieces.get(t).map_or("", |p| p.as_str()),
            r.top_before,
            c.top_before.prob * 100.0,
            r.top_after,
            c.top_after.prob * 100.0,
            c.kl
        )
    };
    view! {
        <div class="ko-odds">
            <h4>"How the next-token odds moved"</h4>
            <p class="hint">
                "Both models read the unchanged story. Each token is shaded by how much the change moved the "
                "model's guess of the token after it: white means not at all, dark red means the most here. "
                "Click a token, or use the slider, to read its numbers."
            </p>
            <div class="ko-strip" data-testid="ko-odds">{strip}</div>
            <label class="field">
                <span class="name">{move || format!("Position: {}", s.ko_pos.get())}</span>
                <input type="range" min="0" max=n.saturating_sub(1).to_string() step="1" data-testid="ko-pos"
                    aria-label="Position in the story whose odds are read out"
                    prop:value=move || s.ko_pos.get().to_string()
                    on:input=move |e| { if let Ok(v) = event_target_value(&e).parse::<usize>() { s.ko_pos.set(v) } } />
            </label>
            <p data-testid="ko-readout" aria-live="polite">{readout}</p>
        </div>
    }
}
