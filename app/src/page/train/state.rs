//! The Train view's state: signal handles, made once by the app (`install`, provided as
//! context) so they outlive tab switches and hear the worker while another tab is shown.

use std::collections::HashMap;

use leptos::prelude::*;

use super::form::FormSignals;
use super::store::Saver;
pub use crate::page::run_phase::Phase;
use crate::page::state::Ctx;
use crate::protocol::train::{AdapterInfo, BaseId, Estimate, Peft, TrainCmd};
use crate::protocol::ToWorker;
use crate::train::saved::SavedRun;
use crate::train::AdapterMeta;

/// What the data makes, once the worker has tokenized it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    pub train_tokens: usize,
    pub held_tokens: usize,
    pub train_chars: usize,
    pub windows: usize,
    pub held_windows: usize,
}

#[derive(Clone, Copy)]
pub struct TrainCtx {
    /// The page's state (the worker's client among it).
    pub ctx: Ctx,
    pub data: DataSignals,
    pub form: FormSignals,
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
    /// The run's adapter at its lowest held-out loss so far: (step, loss, adapter).
    pub best: RwSignal<Option<(u32, f64, Peft)>, LocalStorage>,
    /// The ended run's name, base model and adapter shape (what its best adapter is kept with).
    pub last_info: RwSignal<Option<(String, BaseId, AdapterInfo)>>,
    /// (step, adapter off, adapter on), newest last.
    pub samples: RwSignal<Vec<(u32, String, String)>>,
    /// The last snapshot of this run (what Resume continues from).
    pub last: RwSignal<Option<SavedRun>, LocalStorage>,
    /// A run found in storage at start-up, not finished: offered for resuming.
    pub interrupted: RwSignal<Option<SavedRun>, LocalStorage>,
    /// Snapshots of this run so far (the page calls them checkpoints).
    pub snapshots: RwSignal<u32>,
    /// The step of this run's newest snapshot that reached the device's storage.
    pub saved_step: RwSignal<Option<u32>>,
    /// Why the last snapshot could not be saved (empty when it was).
    pub save_note: RwSignal<String>,
    /// Writes the run's snapshots to the device.
    pub saver: Saver,
    pub library: RwSignal<Vec<Item>>,
    pub using: RwSignal<Option<String>>,
    pub note: RwSignal<String>,
    /// What trains the current run ("WebGPU" or "CPU (why)").
    pub backend: RwSignal<String>,
    pub logits: RwSignal<String>,
    /// The library's last comparison: (adapter name, story off, story on).
    pub compared: RwSignal<Option<(String, String, String)>>,
    /// Uploads waiting for the worker's check, by request id.
    pub pending: StoredValue<HashMap<u64, (String, Peft)>, LocalStorage>,
    /// The last request id handed out (uploads, logits).
    pub next_req: StoredValue<u64>,
}

impl TrainCtx {
    /// The run's steps; before the first run, the Steps field's (not "0 / 0" next to "Steps 80").
    pub fn planned_steps(&self) -> u32 {
        match self.total.get() {
            0 => self.form.steps.with(|s| s.trim().parse().unwrap_or(0)),
            n => n,
        }
    }

    /// The state of a view whose text starts as the corpus of key `corpus`.
    /// `corpus`: the text chosen first; `name`: the adapter name suggested for it.
    pub fn new(ctx: Ctx, corpus: &str, name: &str) -> TrainCtx {
        TrainCtx {
            ctx,
            data: DataSignals::new(corpus),
            form: FormSignals::new(name),
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
            best: RwSignal::new_local(None),
            last_info: RwSignal::new(None),
            last: RwSignal::new_local(None),
            interrupted: RwSignal::new_local(None),
            snapshots: RwSignal::new(0),
            saved_step: RwSignal::new(None),
            save_note: RwSignal::new(String::new()),
            saver: Saver::new(),
            library: RwSignal::new(Vec::new()),
            using: RwSignal::new(None),
            note: RwSignal::new(String::new()),
            backend: RwSignal::new(String::new()),
            compared: RwSignal::new(None),
            logits: RwSignal::new(String::new()),
            pending: StoredValue::new_local(HashMap::new()),
            next_req: StoredValue::new(0),
        }
    }

    /// Sends a Train view command to the worker.
    pub fn send(&self, cmd: TrainCmd) {
        self.ctx.send(&ToWorker::Train(cmd));
    }

    /// A new request id.
    pub fn next_req(&self) -> u64 {
        self.next_req.update_value(|n| *n += 1);
        self.next_req.get_value()
    }

    pub fn busy(&self) -> bool {
        self.phase.with(Phase::busy)
    }
}

/// An adapter in the library.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub meta: AdapterMeta,
}

/// The training text and where it came from.
#[derive(Clone, Copy)]
pub struct DataSignals {
    /// A corpus key, "paste" or "file".
    pub source: RwSignal<String>,
    pub text: RwSignal<String>,
    /// Where the text came from, in words.
    pub label: RwSignal<String>,
}

impl DataSignals {
    /// Starting with the corpus of key `corpus`.
    pub fn new(corpus: &str) -> DataSignals {
        DataSignals {
            source: RwSignal::new(corpus.into()),
            text: RwSignal::new(String::new()),
            label: RwSignal::new(String::new()),
        }
    }
}
