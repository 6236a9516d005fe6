//! The Build view: grow a tiny Llama from random weights on this device (the engine's
//! `pretrain`, as `tinylm pretrain`), and watch it learn: loss curves, samples on one prompt
//! kept as a timeline, and the instruments that show why a run goes right or wrong; two kept
//! models to use or compare, a time estimate before Start, the learning-rate experiment and the
//! warm-up and z-loss one; the form and the newest model kept on this device.
//! Its messages are `protocol::build`'s.

mod built;
mod form;
mod panels;
mod ratechart;
mod run;
mod slots;
mod state;
mod sweep;
mod variants;

use leptos::prelude::*;

use super::client::Handler;
use super::state::Ctx;
use crate::protocol::build::BuildEvent;
use crate::protocol::train::Ending;
use crate::protocol::FromWorker;
use state::BuildCtx;

/// Makes the view's state (provided as context), shows a run kept from an earlier visit, and
/// returns the view's message handler.
pub fn install(ctx: Ctx) -> Handler {
    let b = BuildCtx::new(ctx);
    provide_context(b);
    form::restore(b, run::restore(b));
    slots::restore(b);
    built::restore(b);
    Box::new(move |msg| {
        if let FromWorker::Loaded { .. } = msg {
            built::resolve_link(b);
        }
        if let FromWorker::Build(ev) = msg {
            if !sweep::receive(b, ev) && !slots::receive(b, ev) {
                run::receive(b, ev.clone());
                // A model that ended a run (not a pause) is kept on this device.
                if matches!(ev, BuildEvent::Ended { ending, .. } if *ending != Ending::Paused) {
                    built::save(b);
                }
            }
        }
    })
}

/// The tab's view.
pub fn view() -> AnyView {
    let b = expect_context::<BuildCtx>();
    // Only while the view is shown.
    run::watch_estimate(b);
    view! {
        <section class="card build" aria-label="Build a model" data-testid="build"
            data-form-restored=move || b.form_restored.get().to_string()>
            <h2>"Build a model from nothing"</h2>
            <p class="hint">
                "Start from random numbers and train every weight of a tiny story model on a text, here on this \
                 device. Watch its samples go from noise to words, and the instruments that tell a healthy run \
                 from one that blows up."
            </p>
            <div class="train-grid">
                <panels::ShapePanel b />
                <panels::SettingsPanel b />
            </div>
            <panels::Controls b />
            <panels::Curves b />
            <panels::Timeline b />
            <panels::Instruments b />
            <slots::SlotsPanel b />
            <sweep::SweepPanel b />
            <variants::VariantsPanel b />
        </section>
    }
    .into_any()
}
