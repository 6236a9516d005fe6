//! Step-by-step replay of the generated tokens: step, play, pause and scrub. Each step shows
//! the token chosen, the model's probability for it and its rank; the other views follow.

use std::time::Duration;

use leptos::prelude::*;
use tinylm_engine::trace::odds;

use super::state::State;
use crate::page::help::{About, Term};

const TICK_MS: u64 = 700;

/// The positions playback walks over: the generated tokens (all but BOS for a bare prompt).
fn range(s: State) -> (usize, usize) {
    s.data.with(|d| {
        d.as_ref().map_or((1, 0), |d| {
            let n = d.len();
            let first = if d.info.prompt_len < n { d.info.prompt_len.max(1) } else { 1 };
            (first, n.saturating_sub(1))
        })
    })
}

fn go(s: State, t: usize) {
    let (first, last) = range(s);
    let t = t.clamp(first, last.max(first));
    s.step.set(Some(t));
    s.pos.set(t - 1);
}

/// The step "Step back" goes to. From "Show all" (no step), which already shows the whole
/// story, that is the step before the last: going to the last step would change nothing seen.
fn back_from(step: Option<usize>, last: usize) -> usize {
    step.unwrap_or(last).saturating_sub(1)
}

#[component]
pub fn Playback(s: State) -> impl IntoView {
    let handle = StoredValue::new(None::<IntervalHandle>);
    let stop = move || {
        s.playing.set(false);
        if let Some(h) = handle.get_value() {
            h.clear();
        }
        handle.set_value(None);
    };
    let play = move || {
        let (first, last) = range(s);
        if s.step.get_untracked().is_none_or(|t| t >= last) {
            go(s, first);
        }
        s.playing.set(true);
        let tick = move || {
            let (_, last) = range(s);
            match s.step.get_untracked() {
                Some(t) if t < last => go(s, t + 1),
                _ => {
                    s.playing.set(false);
                    if let Some(h) = handle.get_value() {
                        h.clear();
                    }
                }
            }
        };
        handle.set_value(set_interval_with_handle(tick, Duration::from_millis(TICK_MS)).ok());
    };
    on_cleanup(move || {
        if let Some(h) = handle.get_value() {
            h.clear();
        }
    });
    let about = move || {
        let step = s.step.get();
        s.data.with(|d| {
            let (Some(d), Some(t)) = (d.as_ref(), step) else {
                return "Replay the story one token at a time: what the model chose, how likely it found it and its rank."
                    .to_string();
            };
            let id = d.info.tokens[t];
            let who = if t < d.info.prompt_len { "was given" } else { "chose" };
            match odds(d.logits_at(t - 1), id) {
                Ok(o) => format!(
                    "Step {t} of {}: the model {who} “{}” (id {id}) with probability {:.1}%, rank {} of {}.",
                    d.len() - 1,
                    d.piece(t),
                    o.prob * 100.0,
                    o.rank,
                    d.info.vocab_size
                ),
                Err(_) => String::new(),
            }
        })
    };
    let (lo, hi) = (move || range(s).0, move || range(s).1);
    view! {
        <section class="card playback" aria-label="Step-by-step generation">
            <h2>"Step by step"</h2>
            <About>
                <p>
                    "Replay how the story was written: at each step the model picked one " <Term key="token" />
                    ". The views above follow along, and later tokens fade out, because when the model chose this "
                    "token it had not seen them yet."
                </p>
            </About>
            <div class="actions">
                <button type="button" class="secondary" data-testid="step-back"
                    on:click=move |_| { stop(); go(s, back_from(s.step.get_untracked(), hi())) }>
                    <span aria-hidden="true">"◀ "</span>"Step back"</button>
                <button type="button" data-testid="play" aria-pressed=move || s.playing.get().to_string()
                    on:click=move |_| if s.playing.get_untracked() { stop() } else { play() }>
                    {move || if s.playing.get() { "Pause" } else { "Play" }}
                </button>
                <button type="button" class="secondary" data-testid="step-forward"
                    on:click=move |_| { stop(); go(s, s.step.get_untracked().map_or(lo(), |t| t + 1)) }>
                    "Step forward"<span aria-hidden="true">" ▶"</span></button>
                <button type="button" class="secondary" data-testid="step-all"
                    on:click=move |_| { stop(); s.step.set(None) }>"Show all"</button>
                <input type="range" class="scrub" data-testid="scrub" aria-label="Scrub through the steps"
                    min=move || lo().to_string() max=move || hi().to_string() step="1"
                    prop:value=move || s.step.get().unwrap_or(hi()).to_string()
                    on:input=move |e| { stop(); go(s, event_target_value(&e).parse().unwrap_or(0)) } />
            </div>
            <p class="readout" data-testid="step-about" aria-live="polite">{about}</p>
        </section>
    }
}
