//! The Train view: pick a text, choose settings, train a LoRA adapter in the engine worker and
//! watch it learn; snapshots of the run and finished adapters are kept on this device. Its
//! messages are `protocol::train`'s.

pub(crate) mod chart;
pub(crate) mod data;
mod form;
mod library;
mod progress;
mod run;
mod state;
pub(crate) mod store;

use leptos::prelude::*;

use super::client::Handler;
use super::help::{About, Term};
use super::state::Ctx;
use crate::protocol::train::{TrainCmd, TrainEvent};
use crate::protocol::FromWorker;
use state::{Counts, Phase, TrainCtx};

/// Makes the view's state (provided as context, so it outlives tab switches and hears the
/// worker while another tab is shown), reads what an earlier visit stored, and returns the
/// view's message handler.
pub fn install(ctx: Ctx) -> Handler {
    let t = TrainCtx::new(ctx, data::CORPORA[0].key, data::CORPORA[0].style);
    provide_context(t);
    run::restore(t);
    data::load_default(t);
    // The model the shown counts were made with: another model has another tokenizer.
    let counted_for = RwSignal::new(None::<u32>);
    Box::new(move |msg| match msg {
        FromWorker::Train(ev) => receive(t, ev.clone()),
        FromWorker::Loaded { active, .. } => {
            // Another model (or a restart): Generate no longer uses an adapter until told again.
            t.using.set(None);
            if counted_for.get_untracked() != Some(*active) && !t.busy() {
                counted_for.set(Some(*active));
                let text = t.data.text.get_untracked();
                if !text.is_empty() {
                    t.counts.set(None);
                    t.send(TrainCmd::Count { text });
                }
            }
        }
        _ => {}
    })
}

/// A message from the worker about training or adapters.
fn receive(t: TrainCtx, ev: TrainEvent) {
    let current = |job: u64| job == t.job.get_untracked();
    match ev {
        // A count (job 0) is shown while no run is going.
        TrainEvent::Data { job, train_tokens, held_tokens, train_chars, windows, held_windows, .. }
            if current(job) || (job == 0 && !t.busy()) =>
        {
            t.counts.set(Some(Counts { train_tokens, held_tokens, train_chars, windows, held_windows }));
        }
        TrainEvent::Step { job, step, loss, tokens_per_s, ms_per_step, eta_s } if current(job) => {
            t.eta_s.set(eta_s);
            t.step.set(step);
            t.losses.update(|l| {
                l.truncate(step as usize - 1);
                l.push(loss);
            });
            t.tokens_per_s.set(tokens_per_s);
            t.ms_per_step.set(ms_per_step);
        }
        TrainEvent::Backend { job, name } if current(job) => t.backend.set(name),
        TrainEvent::Held { job, step, loss } if current(job) => t.held.update(|h| {
            h.retain(|(s, _)| *s != step);
            h.push((step, loss));
        }),
        TrainEvent::Best { job, step, loss, adapter } if current(job) => t.best.set(Some((step, loss, adapter))),
        TrainEvent::Sample { job, step, off, on } if current(job) => t.samples.update(|s| s.push((step, off, on))),
        TrainEvent::Snapshot { job, snapshot } if current(job) => run::keep_snapshot(t, snapshot),
        TrainEvent::Ended { job, ending, snapshot } if current(job) => run::ended(t, ending, snapshot),
        TrainEvent::Failed { job, message } if current(job) => t.phase.set(Phase::Failed(message)),
        TrainEvent::Checked { req, result } => library::checked(t, req, result),
        TrainEvent::Using { name, error, .. } => {
            t.using.set(name);
            match error {
                Some(e) => t.note.set(e),
                // Done: the "Putting … into the model…" note would read as still at work.
                None => t.note.update(|n| {
                    if n.starts_with(library::PUTTING) {
                        n.clear();
                    }
                }),
            }
        }
        TrainEvent::Logits { req, result } => library::logits_ready(t, req, result),
        TrainEvent::Estimated { req, result } if req == t.estimate_req.get_untracked() => t.estimate.set(Some(result)),
        TrainEvent::Compared { name, result } => match result {
            Ok((off, on)) => {
                t.note.set(String::new());
                t.compared.set(Some((name, off, on)));
            }
            Err(e) => t.note.set(e),
        },
        // About a run the page has moved past.
        _ => {}
    }
}

/// The tab's view.
pub fn view() -> AnyView {
    let t = expect_context::<TrainCtx>();
    view! { <TrainView t /> }.into_any()
}

#[component]
fn TrainView(t: TrainCtx) -> impl IntoView {
    let busy = Signal::derive(move || t.busy());
    view! {
        <section class="card train" aria-label="Train" data-testid="train">
            <h2>"Train an adapter"</h2>
            <About>
                <p>
                    "Training nudges the model towards a text's style. With " <Term key="LoRA" /> " the model itself stays as "
                    "it is; a small " <Term key="adapter" /> " of extra numbers learns instead. The chart shows the "
                    <Term key="loss" /> " (how surprised the model is by the text) on the training part and on a "
                    <Term key="held-out" /> " part it never trains on. If the training loss falls while the held-out "
                    "loss rises, the adapter is memorising the text rather than learning its style: "
                    <Term key="overfitting" /> "."
                </p>
            </About>
            <p class="hint">
                "Teach the model a new style with LoRA: a small set of extra weights (an adapter) is \
                 trained on your text while the model itself stays as it is. Everything happens on \
                 this device; nothing is uploaded."
            </p>
            <progress::Interrupted t />
            <div class="train-grid">
                <data::DataPanel t />
                <form::SettingsPanel form=t.form busy train_tokens=Signal::derive(move || t.counts.get().map(|c| c.train_tokens)) />
            </div>
            <progress::RunPanel t />
            <library::LibraryPanel t />
        </section>
    }
}
