//! The Inspect view's Experiments panel: change the model and watch what happens. Knock-outs
//! (heads switched off, blocks skipped) and steering regenerate the story with the same seed
//! beside the unchanged one; activation patching maps which activations carry the difference
//! between two prompts. The worker runs them (`worker::experiments`); this module draws.

mod controls;
mod heatmap;
mod knockout;
mod patching;
mod state;
mod steering;
mod story;

use std::sync::Arc;

use leptos::prelude::*;

use super::client::Handler;
use super::state::Ctx;
use crate::protocol::experiments::ExperimentNews;
use crate::protocol::FromWorker;
use state::{Phase, State};

/// Makes the panel's state (provided as context) and returns its message handler.
pub fn install(ctx: Ctx) -> Handler {
    let s = State::new(ctx);
    provide_context(s);
    Box::new(move |msg| {
        if let FromWorker::Experiment(news) = msg {
            receive(s, news);
        }
    })
}

fn receive(s: State, news: &ExperimentNews) {
    let Some((current, kind)) = s.running.get_untracked() else { return };
    let phase = s.phase(kind);
    let id = match news {
        ExperimentNews::Progress { id, .. } | ExperimentNews::Stopped { id } | ExperimentNews::Failed { id, .. } => *id,
        ExperimentNews::KnockedOut(k) => k.id,
        ExperimentNews::Steered(k) => k.id,
        ExperimentNews::Patched(k) => k.id,
    };
    if id != current {
        return;
    }
    match news {
        ExperimentNews::Progress { what, done, total, .. } => {
            phase.set(Phase::Busy(Some((what.clone(), *done, *total))));
            return;
        }
        ExperimentNews::KnockedOut(k) => {
            // The readout opens where the guess moved that made the first different token: at
            // the token before it (row t holds the odds of the token after t).
            let moved = k.first_difference.map_or(0, |i| i.saturating_sub(1));
            s.ko_pos.set(moved.min(k.changes.len().saturating_sub(1)));
            s.knocked.set(Some(Arc::new((**k).clone())));
            phase.set(Phase::Done);
        }
        ExperimentNews::Steered(k) => {
            s.steered.set(Some(Arc::new((**k).clone())));
            phase.set(Phase::Done);
        }
        ExperimentNews::Patched(k) => {
            s.patched.set(Some(Arc::new((**k).clone())));
            phase.set(Phase::Done);
        }
        ExperimentNews::Stopped { .. } => phase.set(Phase::Stopped),
        ExperimentNews::Failed { message, .. } => phase.set(Phase::Error(message.clone())),
    }
    s.running.set(None);
}

/// The panel, below the Inspect view's figures.
#[component]
pub fn Panel() -> impl IntoView {
    let s = expect_context::<State>();
    view! {
        <section class="experiments" aria-labelledby="experiments-title" data-testid="experiments">
            <div class="card">
                <h2 id="experiments-title">"Experiments: change the model and watch what happens"</h2>
                <p class="hint">
                    "Looking inside shows what the model computed. To find out what a part of it "
                    <em>"does"</em>", change that part and see what changes. Each experiment below works on the "
                    "model you loaded, on this device."
                </p>
            </div>
            <knockout::KnockOut s />
            <steering::Steering s />
            <patching::Patching s />
        </section>
    }
}
