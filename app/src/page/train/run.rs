//! A run from the page's side: starting or resuming it, and what its news does (snapshots kept
//! on the device, the end, the adapter into the library).

use std::rc::Rc;

use leptos::prelude::*;

use super::library;
use super::state::{Phase, TrainCtx};
use crate::protocol::train::{Ending, Snapshot, StartRun, TrainCmd};
use crate::train::saved::{from_zip, to_zip, SavedRun};

/// A snapshot of the current run: kept on the device (and as what Resume continues from).
pub fn keep_snapshot(t: TrainCtx, snapshot: Snapshot) {
    let saved = SavedRun {
        snapshot,
        text: t.data.text.get_untracked(),
        data_label: t.data.label.get_untracked(),
        saved_ms: js_sys::Date::now(),
    };
    t.snapshots.update(|n| *n += 1);
    t.saver.save(to_zip(&saved), saved.snapshot.step, Rc::new(move |step, result| save_done(t, step, result)));
    t.last.set(Some(saved));
}

/// The run ended (paused, stopped or finished), with its last snapshot.
pub fn ended(t: TrainCtx, ending: Ending, snapshot: Option<Snapshot>) {
    let Some(ck) = snapshot else {
        t.phase.set(Phase::Done(ending));
        return;
    };
    t.losses.set(ck.losses.clone());
    t.held.set(ck.held.clone());
    t.step.set(ck.step);
    match ending {
        Ending::Paused => {
            keep_snapshot(t, ck);
            t.phase.set(Phase::Paused);
        }
        Ending::Stopped | Ending::Finished => {
            // The saved run is forgotten only once its adapter is in the library.
            library::add_trained(t, &ck);
            t.last_info.set(Some((ck.name.clone(), ck.base.clone(), ck.info.clone())));
            t.last.set(None);
            t.phase.set(Phase::Done(ending));
        }
    }
}

/// A snapshot reached storage, or did not (the previous one stays, and the page says so).
fn save_done(t: TrainCtx, step: u32, result: Result<(), String>) {
    match result {
        Ok(()) => {
            t.saved_step.set(Some(step));
            t.save_note.set(String::new());
        }
        Err(e) => {
            let kept = match t.saved_step.get_untracked() {
                Some(s) => format!("The checkpoint at step {s} is kept: after a reload the run resumes from there."),
                None => "No checkpoint of this run is saved yet.".into(),
            };
            t.save_note.set(format!("The checkpoint at step {step} could not be saved. {e} {kept}"));
        }
    }
}

/// Reads what an earlier visit left: the library and an interrupted run.
pub fn restore(t: TrainCtx) {
    wasm_bindgen_futures::spawn_local(async move {
        library::load(t).await;
        let run = t.saver.load(|b| from_zip(b).ok(), |r| r.saved_ms).await;
        if let Some(run) = run.filter(|r| !r.snapshot.finished) {
            t.interrupted.set(Some(run));
        }
    });
}

/// Starts a new run, or continues `from`.
pub fn start(t: TrainCtx, from: Option<SavedRun>) {
    let (settings, text, label, name, resume) = match from {
        Some(run) => {
            // Sending transfers the snapshot's buffers; the saved run keeps its own.
            let ck = run.snapshot.copy();
            t.losses.set(ck.losses.clone());
            t.held.set(ck.held.clone());
            t.step.set(ck.step);
            t.data.text.set(run.text.clone());
            t.data.label.set(run.data_label.clone());
            (ck.settings.clone(), run.text, run.data_label, ck.name.clone(), Some(ck))
        }
        None => match t.form.settings() {
            Ok(s) => {
                t.losses.set(Vec::new());
                t.held.set(Vec::new());
                t.step.set(0);
                t.samples.set(Vec::new());
                t.best.set(None);
                t.snapshots.set(0);
                t.saved_step.set(None);
                t.save_note.set(String::new());
                (s, t.data.text.get_untracked(), t.data.label.get_untracked(), t.form.name.get_untracked(), None)
            }
            Err(e) => return t.phase.set(Phase::Failed(e)),
        },
    };
    if text.trim().is_empty() {
        return t.phase.set(Phase::Failed("Choose a text to train on first.".into()));
    }
    t.data.label.set(label);
    t.interrupted.set(None);
    t.total.set(settings.steps);
    let job = t.job.get_untracked() + 1;
    t.job.set(job);
    t.phase.set(Phase::Running);
    t.ms_per_step.set(0.0);
    let name = if name.trim().is_empty() { "my adapter".to_string() } else { name };
    t.send(TrainCmd::Start(Box::new(StartRun { job, name, text, settings, resume })));
}
