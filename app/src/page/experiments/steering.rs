//! Steering: a direction in the model's numbers from two lists of sentences ("happy" minus
//! "sad"), added after one layer while the story is written; the stories at several strengths
//! side by side with the same seed.

use leptos::prelude::*;

use super::controls::{start, story_settings, SettingsNote, Status};
use super::state::{Kind, State};
use super::story::StoryText;
use crate::protocol::experiments::ExperimentRequest;

/// The strengths written for slider value `s`: away (negative), none, half and all of it.
pub fn strengths(s: f32) -> Vec<f32> {
    vec![-s, 0.0, s / 2.0, s]
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn run(s: State) {
    let (prompt, settings) = match story_settings(s) {
        Ok(x) => x,
        Err(e) => return s.steer_phase.set(super::state::Phase::Error(e)),
    };
    let (toward, away) = (lines(&s.toward.get_untracked()), lines(&s.away.get_untracked()));
    let (layer, strengths) = (s.layer.get_untracked(), strengths(s.strength.get_untracked()));
    start(s, Kind::Steer, |id| ExperimentRequest::Steer { id, prompt, settings, layer, toward, away, strengths });
}

#[component]
pub fn Steering(s: State) -> impl IntoView {
    let layers = move || s.shape().map_or(0, |(l, _)| l);
    // A model with fewer layers than the picked one: the last layer.
    Effect::new(move |_| {
        let n = layers();
        if n > 0 && s.layer.get_untracked() >= n {
            s.layer.set(n - 1);
        }
    });
    let disabled = move || s.busy() || !s.ctx.can_generate();
    let title = |strength: f32| match strength {
        0.0 => "Strength 0 (no push)".to_string(),
        x if x < 0.0 => format!("Strength {x} (pushed toward the second list)"),
        x => format!("Strength {x} (pushed toward the first list)"),
    };
    view! {
        <section class="card ex-card" aria-labelledby="steer-title">
            <h3 id="steer-title">"2. Steering: push the story toward a feeling"</h3>
            <p class="hint">
                "Inside the model every word is a long list of numbers. The model reads the sentences of both "
                "lists; the average numbers of the first list minus those of the second make a direction (say, "
                "from sad to happy). While the story is written, that direction times the strength is added to "
                "every word's numbers after the chosen layer. A negative strength pushes the other way."
            </p>
            <SettingsNote s />
            <div class="steer-lists">
                <label class="field">
                    <span class="name">"Toward (one sentence a line)"</span>
                    <textarea rows="4" data-testid="steer-toward" prop:value=move || s.toward.get()
                        on:input=move |e| s.toward.set(event_target_value(&e))></textarea>
                </label>
                <label class="field">
                    <span class="name">"Away from (one sentence a line)"</span>
                    <textarea rows="4" data-testid="steer-away" prop:value=move || s.away.get()
                        on:input=move |e| s.away.set(event_target_value(&e))></textarea>
                </label>
            </div>
            <div class="steer-knobs">
                <label class="field">
                    <span class="name">"Layer (added after it, counted from 1)"</span>
                    // The options say which is chosen (a select's value set before its options
                    // exist is lost, as in the Build view's menus).
                    <select data-testid="steer-layer"
                        on:change=move |e| { if let Ok(v) = event_target_value(&e).parse::<usize>() { s.layer.set(v) } }>
                        {move || {
                            (0..layers())
                                .map(|l| view! { <option value=l.to_string() prop:selected=move || s.layer.get() == l>{(l + 1).to_string()}</option> })
                                .collect_view()
                        }}
                    </select>
                </label>
                <label class="field">
                    <span class="name">{move || format!("Strength: {}", s.strength.get())}</span>
                    <input type="range" min="0" max="8" step="0.25" data-testid="steer-strength"
                        prop:value=move || s.strength.get().to_string()
                        on:input=move |e| { if let Ok(v) = event_target_value(&e).parse::<f32>() { s.strength.set(v) } } />
                </label>
            </div>
            <p class="hint">{move || {
                let v: Vec<String> = strengths(s.strength.get()).iter().map(|x| x.to_string()).collect();
                format!("Stories at strengths {} (strength 0 must give the unchanged story).", v.join(", "))
            }}</p>
            <div class="actions">
                <button type="button" data-testid="steer-run" disabled=disabled on:click=move |_| run(s)>"Write the steered stories"</button>
            </div>
            <Status s kind=Kind::Steer />
            {move || s.steered.get().map(|k| {
                let runs = k.runs.iter().enumerate().map(|(i, r)| view! {
                    <StoryText story=r.story.clone() first=r.first_difference title=title(r.strength)
                        testid=format!("steer-run-{i}") />
                }).collect_view();
                view! {
                    <div class="ex-result" data-testid="steer-result" data-norm=k.direction_norm.to_string()
                        data-strengths=serde_json::to_string(&k.runs.iter().map(|r| r.strength).collect::<Vec<_>>()).unwrap_or_default()>
                        <p data-testid="steer-words">{format!(
                            "The direction after layer {} has length {:.3} ({}, {:.1} s). The first different token of each story is marked.",
                            k.layer + 1, k.direction_norm, k.backend, k.ms / 1000.0
                        )}</p>
                        <div class="ex-stories">
                            <StoryText story=k.original.clone() first=None title="Unchanged model".into() testid="steer-original".into() />
                            {runs}
                        </div>
                    </div>
                }
            })}
        </section>
    }
}
