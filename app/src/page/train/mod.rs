//! The Train view: pick a text, choose settings, train a LoRA adapter in the engine worker and
//! watch it learn; checkpoints and finished adapters are kept on this device.

mod chart;
mod data;
mod form;
mod library;
mod progress;
mod store;

use std::cell::Cell;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::client;
use crate::protocol::ToWorker;
use crate::train::{Checkpoint, Ending, Estimate, StartRun, TrainCmd, TrainEvent};

/// Where the run is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    Running,
    /// Pause or Stop was pressed; the worker ends after its current step.
    Ending,
    Paused,
    Done(Ending),
    Failed(String),
}

impl Phase {
    fn key(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Ending => "ending",
            Phase::Paused => "paused",
            Phase::Done(Ending::Finished) => "finished",
            Phase::Done(_) => "stopped",
            Phase::Failed(_) => "error",
        }
    }
}

/// What the data makes, once the worker has tokenized it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    pub train_tokens: usize,
    pub held_tokens: usize,
    pub train_chars: usize,
    pub windows: usize,
    pub held_windows: usize,
}

/// The current run as stored: its last checkpoint and the text it trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRun {
    pub checkpoint: Checkpoint,
    pub text: String,
    pub data_label: String,
    /// When it was saved (`Date.now()`): of the two files kept, the newer wins.
    #[serde(default)]
    pub saved_ms: f64,
}

#[derive(Clone, Copy)]
pub struct TrainCtx {
    pub data: data::DataSignals,
    pub form: form::FormSignals,
    pub counts: RwSignal<Option<Counts>>,
    pub job: RwSignal<u64>,
    pub phase: RwSignal<Phase>,
    pub losses: RwSignal<Vec<f64>>,
    pub held: RwSignal<Vec<(u32, f64)>>,
    pub step: RwSignal<u32>,
    pub total: RwSignal<u32>,
    pub tokens_per_s: RwSignal<f64>,
    pub ms_per_step: RwSignal<f64>,
    /// Seconds left in the run, as the worker measures it.
    pub eta_s: RwSignal<f64>,
    /// The duration of a run with the form's settings, measured before it starts (None while
    /// measuring or with nothing to measure), and the newest request's id.
    pub estimate: RwSignal<Option<Result<Estimate, String>>>,
    pub estimate_req: RwSignal<u64>,
    /// (step, adapter off, adapter on), newest last.
    pub samples: RwSignal<Vec<(u32, String, String)>>,
    /// The last checkpoint of this run (what Resume continues from).
    pub last: RwSignal<Option<SavedRun>>,
    /// A run found in storage at start-up, not finished: offered for resuming.
    pub interrupted: RwSignal<Option<SavedRun>>,
    pub checkpoints: RwSignal<u32>,
    /// The step of this run's newest checkpoint that reached the device's storage.
    pub saved_step: RwSignal<Option<u32>>,
    /// Why the last checkpoint could not be saved (empty when it was).
    pub save_note: RwSignal<String>,
    pub library: RwSignal<Vec<library::Item>>,
    pub using: RwSignal<Option<String>>,
    pub note: RwSignal<String>,
    /// What trains the current run ("WebGPU" or "CPU (why)").
    pub backend: RwSignal<String>,
    pub logits: RwSignal<String>,
    /// The library's last comparison: (adapter name, story off, story on).
    pub compared: RwSignal<Option<(String, String, String)>>,
}

thread_local! {
    static CTX: Cell<Option<TrainCtx>> = const { Cell::new(None) };
}

impl TrainCtx {
    fn new() -> TrainCtx {
        TrainCtx {
            data: data::DataSignals::new(),
            form: form::FormSignals::new(),
            counts: RwSignal::new(None),
            job: RwSignal::new(0),
            phase: RwSignal::new(Phase::Idle),
            losses: RwSignal::new(Vec::new()),
            held: RwSignal::new(Vec::new()),
            step: RwSignal::new(0),
            total: RwSignal::new(0),
            tokens_per_s: RwSignal::new(0.0),
            ms_per_step: RwSignal::new(0.0),
            eta_s: RwSignal::new(0.0),
            estimate: RwSignal::new(None),
            estimate_req: RwSignal::new(0),
            samples: RwSignal::new(Vec::new()),
            last: RwSignal::new(None),
            interrupted: RwSignal::new(None),
            checkpoints: RwSignal::new(0),
            saved_step: RwSignal::new(None),
            save_note: RwSignal::new(String::new()),
            library: RwSignal::new(Vec::new()),
            using: RwSignal::new(None),
            note: RwSignal::new(String::new()),
            backend: RwSignal::new(String::new()),
            compared: RwSignal::new(None),
            logits: RwSignal::new(String::new()),
        }
    }

    pub fn busy(&self) -> bool {
        self.phase.with(|p| matches!(p, Phase::Running | Phase::Ending))
    }
}

pub fn send(cmd: TrainCmd) {
    client::send(&ToWorker::Train(cmd), &[]);
}

/// A message from the worker about training or adapters.
pub fn receive(ev: TrainEvent) {
    let Some(t) = CTX.with(Cell::get) else { return };
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
        TrainEvent::Sample { job, step, off, on } if current(job) => t.samples.update(|s| s.push((step, off, on))),
        TrainEvent::Checkpoint { job, checkpoint } if current(job) => keep_checkpoint(t, checkpoint),
        TrainEvent::Ended { job, ending, checkpoint } if current(job) => ended(t, ending, checkpoint),
        TrainEvent::Failed { job, message } if current(job) => t.phase.set(Phase::Failed(message)),
        TrainEvent::Checked { req, result } => library::checked(t, req, result),
        TrainEvent::Using { name, error } => {
            t.using.set(name);
            if let Some(e) = error {
                t.note.set(e);
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

/// The model changed: Generate no longer uses an adapter.
pub fn model_changed() {
    if let Some(t) = CTX.with(Cell::get) {
        t.using.set(None);
    }
}

fn keep_checkpoint(t: TrainCtx, checkpoint: Checkpoint) {
    let saved = SavedRun {
        checkpoint,
        text: t.data.text.get_untracked(),
        data_label: t.data.label.get_untracked(),
        saved_ms: js_sys::Date::now(),
    };
    t.checkpoints.update(|n| *n += 1);
    let json = serde_json::to_string(&saved).unwrap_or_default();
    store::save(json, saved.checkpoint.step, save_done);
    t.last.set(Some(saved));
}

fn ended(t: TrainCtx, ending: Ending, checkpoint: Option<Checkpoint>) {
    let Some(ck) = checkpoint else {
        t.phase.set(Phase::Done(ending));
        return;
    };
    t.losses.set(ck.losses.clone());
    t.held.set(ck.held.clone());
    t.step.set(ck.step);
    match ending {
        Ending::Paused => {
            keep_checkpoint(t, ck);
            t.phase.set(Phase::Paused);
        }
        Ending::Stopped | Ending::Finished => {
            // The saved run is forgotten only once its adapter is in the library.
            library::add_trained(t, &ck);
            t.last.set(None);
            t.phase.set(Phase::Done(ending));
        }
    }
}

/// A checkpoint reached storage, or did not (the previous one stays, and the page says so).
fn save_done(step: u32, result: Result<(), String>) {
    let Some(t) = CTX.with(Cell::get) else { return };
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
fn restore(t: TrainCtx) {
    wasm_bindgen_futures::spawn_local(async move {
        library::load(t).await;
        let parse = |s: &str| serde_json::from_str::<SavedRun>(s).ok();
        let run = store::load(parse, |r| r.saved_ms).await;
        if let Some(run) = run.filter(|r| !r.checkpoint.finished) {
            t.interrupted.set(Some(run));
        }
    });
}

/// Starts a new run, or continues `from`.
pub fn start(t: TrainCtx, from: Option<SavedRun>) {
    let (settings, text, label, name, resume) = match from {
        Some(run) => {
            let ck = run.checkpoint;
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
                t.checkpoints.set(0);
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
    send(TrainCmd::Start(Box::new(StartRun { job, name, text, settings, resume })));
}

/// Makes the Train view's state once, under the app's owner, so it outlives tab switches and
/// hears the worker while another tab is shown; reads what an earlier visit stored.
pub fn install() {
    let t = TrainCtx::new();
    CTX.with(|c| c.set(Some(t)));
    restore(t);
    data::load_default(t);
}

/// The tab's view.
pub fn view(_ctx: super::state::Ctx) -> AnyView {
    match CTX.with(Cell::get) {
        Some(t) => view! { <TrainView t /> }.into_any(),
        None => ().into_any(),
    }
}

#[component]
fn TrainView(t: TrainCtx) -> impl IntoView {
    view! {
        <section class="card train" aria-label="Train" data-testid="train">
            <h2>"Train an adapter"</h2>
            <p class="hint">
                "Teach the model a new style with LoRA: a small set of extra weights (an adapter) is \
                 trained on your text while the model itself stays as it is. Everything happens on \
                 this device; nothing is uploaded."
            </p>
            <progress::Interrupted t />
            <div class="train-grid">
                <data::DataPanel t />
                <form::SettingsPanel t />
            </div>
            <progress::RunPanel t />
            <library::LibraryPanel t />
        </section>
    }
}
