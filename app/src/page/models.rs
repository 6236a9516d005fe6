//! The page's model state as the worker reports it: load progress, the menu and the backend
//! once a model is active, a failed load, the remembered models restored one by one, and a
//! worker that died.

use leptos::prelude::*;

use super::state::{Ctx, Progress, Status};
use super::{actions, link_adapter};
use crate::link::AdapterLink;
use crate::protocol::train::TrainEvent;
use crate::protocol::{FromWorker, Source, ToWorker};

/// A worker that keeps dying is not restarted forever.
const MAX_RESTARTS: u32 = 2;

/// Asks the worker for the bundled model.
pub fn load_bundled(ctx: Ctx) {
    ctx.send(&ToWorker::Load { source: Source::Bundled, choice: ctx.choice.get_untracked(), files: Vec::new() });
}

/// The page-wide part of the worker's news.
pub fn receive(ctx: Ctx, msg: &FromWorker) {
    match msg {
        FromWorker::Progress { label, done, total } => {
            // Only a load the reader started shows here (an error message stays up).
            if ctx.loading() {
                ctx.status.set(Status::Loading(label.clone()));
            }
            ctx.progress.set(Some(Progress { label: label.clone(), done: *done, total: *total }));
        }
        FromWorker::Loaded { models, active, backend, parses } => {
            // "Ready: quant.q8_0 (GGUF v3, Q8_0 ×7, F32 ×3). Press Generate.": what was read.
            let name = models.iter().find(|m| m.id == *active).map_or(String::new(), |m| format!("{} ({})", m.name, m.format));
            ctx.models.set(models.clone());
            ctx.active.set(Some(*active));
            ctx.backend.set(Some(backend.clone()));
            // The worker says again if an adapter is still in use (`Using` follows).
            ctx.adapter.set(None);
            ctx.parses.set(*parses);
            ctx.progress.set(None);
            ctx.loading_from(None);
            // A "Ready" line names the model now active: a load that ends after another (a
            // backend switch, then a file picked before it finished) must not leave the first
            // one's name up.
            if ctx.loading() || ctx.status.with_untracked(|s| matches!(s, Status::Ready(_))) {
                ctx.status.set(Status::Ready(format!("Ready: {name}. Press Generate.")));
            }
            restarted(ctx);
            super::memory::save(models, *active);
            continue_restore(ctx);
        }
        FromWorker::Backend { model, backend } if ctx.active.get_untracked() == Some(*model) => {
            ctx.backend.set(Some(backend.clone()));
        }
        FromWorker::Train(TrainEvent::Using { name, hash, error }) => {
            ctx.adapter.set(name.clone().zip(hash.clone()).map(|(name, hash)| AdapterLink { name, hash }));
            link_adapter::using(ctx, hash.as_deref(), error.as_deref());
        }
        FromWorker::LoadFailed { message, active } => {
            ctx.active.set(*active);
            ctx.progress.set(None);
            ctx.load_failed(message.clone());
            continue_restore(ctx);
        }
        _ => {}
    }
}

/// The worker died (out of memory, say): start a fresh one with stories260K, at most twice.
pub fn crashed(ctx: Ctx, what: String) {
    ctx.models.set(Vec::new());
    ctx.active.set(None);
    ctx.progress.set(None);
    if ctx.client.restarts() >= MAX_RESTARTS {
        ctx.status.set(Status::Error(format!("The engine stopped ({what}). Reload the page to try again.")));
        return;
    }
    // Not from inside the dying worker's error handler, which the restart replaces.
    gloo::timers::callback::Timeout::new(0, move || match ctx.client.restart() {
        Ok(_) => load_bundled(ctx),
        Err(e) => ctx.status.set(Status::Error(e)),
    })
    .forget();
    ctx.status.set(Status::Error(format!(
        "The engine stopped unexpectedly ({what}); the model may be too large for this device. {RESTARTING}"
    )));
}

/// The end of the crash message while the new engine loads stories260K, and what replaces it
/// once that model is ready (the message stays up: the reader should know what happened).
const RESTARTING: &str = "Restarting it with stories260K…";
const RESTARTED: &str = "It was restarted with stories260K. Press Generate.";

/// The crash message, told that the restarted engine's model has loaded.
fn restarted(ctx: Ctx) {
    let now = ctx.status.with_untracked(|s| match s {
        Status::Error(m) => m.strip_suffix(RESTARTING).map(|head| format!("{head}{RESTARTED}")),
        _ => None,
    });
    if let Some(message) = now {
        ctx.status.set(Status::Error(message));
    }
}

/// After each load, the next model to restore; at the end, the one to use. A file named by the
/// link can only be asked for.
fn continue_restore(ctx: Ctx) {
    let mut plan = ctx.restore.get_value();
    if !plan.queue.is_empty() {
        let next = plan.queue.remove(0);
        ctx.restore.set_value(plan);
        return actions::load(ctx, next, Vec::new());
    }
    let target = plan.target.take();
    let missing = plan.missing_file.take();
    let shelf = plan.shelf.take();
    let built = plan.built.take();
    let (adapter, run, awaiting) = (plan.adapter.take(), plan.run, plan.awaiting.take());
    ctx.restore.set_value(crate::link::Restore { awaiting, ..Default::default() });
    let found = target.and_then(|t| ctx.models.with_untracked(|ms| ms.iter().find(|m| m.source == t).map(|m| m.id)));
    if let Some(id) = found.filter(|&id| Some(id) != ctx.active.get_untracked()) {
        // Its Loaded reply comes back here with nothing left to do but the note below.
        ctx.restore.set_value(crate::link::Restore { missing_file: missing, adapter, run, ..Default::default() });
        return actions::select(ctx, id, ctx.choice.get_untracked());
    }
    if let Some(name) = missing {
        ctx.status.set(Status::Error(format!(
            "This link was made with the model file “{name}” from the sender's computer. Load that \
             file with “Choose files” to get the same story; until then another model is used."
        )));
        // Not the link's story: nothing runs by itself.
        return;
    }
    if let Some(built) = built {
        // The Build view (which hears this message too) looks for it on this device.
        ctx.restore.set_value(crate::link::Restore { built: Some(built), adapter, run, ..Default::default() });
        return;
    }
    if let Some(name) = shelf {
        // The shelf (which hears this message next) uses it from this device or offers it.
        ctx.restore.set_value(crate::link::Restore { shelf: Some(name), adapter, run, ..Default::default() });
        return;
    }
    link_adapter::restore(ctx, adapter, run);
}
