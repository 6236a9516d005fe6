//! What the three experiments share: starting and stopping one, its status line, and the
//! Generate tab's settings their stories use.

use leptos::prelude::*;

use super::state::{Kind, Phase, State};
use crate::protocol::experiments::ExperimentRequest;
use crate::protocol::{Settings, ToWorker};

/// Sends an experiment of `kind` made by `make` from its id, unless one is running.
pub fn start(s: State, kind: Kind, make: impl FnOnce(u64) -> ExperimentRequest) {
    if s.busy() || !s.ctx.can_generate() {
        return;
    }
    let id = s.req.get_untracked() + 1;
    s.req.set(id);
    s.running.set(Some((id, kind)));
    s.phase(kind).set(Phase::Busy(None));
    // The last result of this kind goes: it no longer matches the form, and an error shown
    // above it would read as its own.
    match kind {
        Kind::KnockOut => s.knocked.set(None),
        Kind::Patch => s.patched.set(None),
        Kind::Steer => s.steered.set(None),
    }
    s.ctx.send(&ToWorker::Experiment(make(id)));
}

pub fn stop(s: State) {
    if let Some((id, _)) = s.running.get_untracked() {
        s.ctx.send(&ToWorker::Experiment(ExperimentRequest::Stop { id }));
    }
}

/// The status line of one experiment, with a progress bar and Stop while it runs.
#[component]
pub fn Status(s: State, kind: Kind) -> impl IntoView {
    let phase = s.phase(kind);
    let text = move || match phase.get() {
        Phase::Idle => String::new(),
        Phase::Busy(None) => "Working…".into(),
        Phase::Busy(Some((what, done, total))) => format!("{what}… {done} of {total}"),
        Phase::Done => "Done.".into(),
        Phase::Stopped => "Stopped.".into(),
        Phase::Error(e) => e,
    };
    let value = move || match phase.get() {
        Phase::Busy(Some((_, done, total))) => done as f64 / total.max(1) as f64,
        _ => 0.0,
    };
    let busy = move || phase.with(|p| matches!(p, Phase::Busy(_)));
    view! {
        <div class="ex-status">
            <p role="status" data-testid=format!("{}-status", kind.word()) data-state=move || phase.with(Phase::word)>{text}</p>
            <Show when=busy>
                <progress max="1" value=value aria-label="How far the experiment is"></progress>
                <button type="button" data-testid=format!("{}-stop", kind.word()) on:click=move |_| stop(s)>"Stop"</button>
            </Show>
        </div>
    }
}

/// The Generate tab's prompt and settings, which the knock-out and steering stories use.
pub fn story_settings(s: State) -> Result<(String, Settings), String> {
    let ctx = s.ctx;
    let model = ctx.active_entry().ok_or("No model is loaded yet.")?;
    let settings = ctx.form.numbers().parse(model.config.seq_len)?;
    Ok((ctx.form.prompt.get_untracked(), settings))
}

/// "the prompt “Once”, seed 42, temperature 1, 256 steps", from the Generate tab's form.
#[component]
pub fn SettingsNote(s: State) -> impl IntoView {
    let f = s.ctx.form;
    let text = move || {
        let prompt = f.prompt.get();
        let prompt = if prompt.is_empty() { "no prompt".to_string() } else { format!("the prompt “{prompt}”") };
        format!(
            "The story uses the Generate tab's settings: {prompt}, seed {}, temperature {}, top-p {}, {} steps. \
             The same seed makes the same story, so any difference comes from the change.",
            f.seed.get(),
            f.temperature.get(),
            f.topp.get(),
            f.steps.get()
        )
    };
    view! { <p class="hint" data-testid="ex-settings">{text}</p> }
}
