//! The page's state: every field is a cheap `Copy` handle (signals, the worker's client),
//! provided to every view through Leptos context (`use_context::<Ctx>()`).

use leptos::prelude::*;

use super::client::Client;
use super::pacing::Reveal;
use crate::link::{AdapterLink, LinkState};
use crate::protocol::{BackendInfo, Choice, ModelEntry, RunStats, ToWorker};
use crate::settings::Form;

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Starting the worker, downloading or checking a model.
    Loading(String),
    Ready(String),
    Running(RunStats),
    Done {
        stats: RunStats,
        stopped: bool,
    },
    Error(String),
}

impl Status {
    /// A stable word for tests and styling.
    pub fn state(&self) -> &'static str {
        match self {
            Status::Loading(_) => "loading",
            Status::Ready(_) => "ready",
            Status::Running(_) => "running",
            Status::Done { .. } => "done",
            Status::Error(_) => "error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Status::Loading(label) => format!("{label}…"),
            Status::Ready(m) | Status::Error(m) => m.clone(),
            Status::Running(s) => format!("Writing… {}", describe(s)),
            Status::Done { stats, stopped: false } => format!("Done: {}", describe(stats)),
            Status::Done { stats, stopped: true } => format!("Stopped: {}", describe(stats)),
        }
    }
}

/// "256 tokens in 0.52 s: the first after 0.04 s, then 493.1 tok/s".
fn describe(s: &RunStats) -> String {
    // The rate is run.c's (after the first token), so it is not tokens ÷ seconds: say so.
    let head = format!("{} tokens in {:.2} s", s.tokens, s.elapsed_ms / 1000.0);
    match (s.first_token_ms, s.tok_per_s) {
        (Some(first), Some(rate)) => format!("{head}: the first after {:.2} s, then {rate:.1} tok/s", first / 1000.0),
        _ => head,
    }
}

/// The model card's controls a reader loads a model with: a load's error is shown beside the
/// one used (as well as on the status line, which on a phone or a laptop is out of sight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPlace {
    /// "Choose files", or files or a folder dropped on the drop zone.
    Files,
    /// "Or from this site": a path typed and Load pressed.
    Site,
}

/// Download or check progress: `done` of `total` bytes (unknown total: a busy bar).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub label: String,
    pub done: u64,
    pub total: Option<u64>,
}

#[derive(Clone, Copy)]
pub struct FormSignals {
    pub prompt: RwSignal<String>,
    pub temperature: RwSignal<String>,
    pub topp: RwSignal<String>,
    pub seed: RwSignal<String>,
    pub steps: RwSignal<String>,
}

impl FormSignals {
    fn new(s: &LinkState) -> Self {
        FormSignals {
            prompt: RwSignal::new(s.prompt.clone()),
            temperature: RwSignal::new(s.temperature.clone()),
            topp: RwSignal::new(s.topp.clone()),
            seed: RwSignal::new(s.seed.clone()),
            steps: RwSignal::new(s.steps.clone()),
        }
    }

    pub fn numbers(&self) -> Form {
        Form {
            temperature: self.temperature.get_untracked(),
            topp: self.topp.get_untracked(),
            seed: self.seed.get_untracked(),
            steps: self.steps.get_untracked(),
        }
    }
}

#[derive(Clone, Copy)]
pub struct Ctx {
    pub models: RwSignal<Vec<ModelEntry>>,
    pub active: RwSignal<Option<u32>>,
    pub backend: RwSignal<Option<BackendInfo>>,
    pub choice: RwSignal<Choice>,
    pub status: RwSignal<Status>,
    pub progress: RwSignal<Option<Progress>>,
    /// Bumped by Generate; messages of older runs are ignored.
    pub run_id: RwSignal<u64>,
    pub out_prompt: RwSignal<String>,
    pub out_story: RwSignal<String>,
    /// The story shown at the reading pace (its pieces wait there).
    pub reveal: Reveal,
    pub stats: RwSignal<Option<RunStats>>,
    /// The adapter Generate uses with the active model (name and content hash), if any.
    pub adapter: RwSignal<Option<AdapterLink>>,
    /// What became of the adapter a link named, when it is not the one in use.
    pub link_note: RwSignal<Option<String>>,
    /// Models grown in the Build view that joined the menu: (file name, hash), for links.
    pub built: StoredValue<Vec<(String, String)>>,
    pub form: FormSignals,
    pub present: RwSignal<bool>,
    /// The last link made by "Copy link".
    pub link: RwSignal<Option<String>>,
    /// Models to load once the bundled one is ready (remembered ones, the link's).
    pub restore: StoredValue<crate::link::Restore>,
    /// The engine worker.
    pub client: Client,
    /// Model files the worker has parsed since it started (`FromWorker::Loaded`).
    pub parses: RwSignal<u64>,
    /// The files the reader picked or dropped last, by the names the engine sees (the model
    /// first), kept on the device by the Storage view once the worker says they make a model.
    pub picked: StoredValue<Option<Vec<(String, web_sys::File)>>, LocalStorage>,
    /// The Generate view's "Compare settings" section.
    pub compare: super::generate::CompareState,
    /// Which of the model card's controls started the load under way, if one did.
    pub load_from: RwSignal<Option<LoadPlace>>,
    /// The last load's error, shown beside the control that started it.
    pub load_error: RwSignal<Option<(LoadPlace, String)>>,
}

impl Ctx {
    pub fn new(opened: &LinkState, restore: crate::link::Restore, client: Client) -> Ctx {
        let out_story = RwSignal::new(String::new());
        let restore = crate::link::Restore { adapter: opened.adapter.clone(), run: opened.run, ..restore };
        Ctx {
            models: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
            backend: RwSignal::new(None),
            choice: RwSignal::new(opened.backend),
            status: RwSignal::new(Status::Loading("Starting the engine".into())),
            progress: RwSignal::new(None),
            run_id: RwSignal::new(0),
            out_prompt: RwSignal::new(String::new()),
            out_story,
            reveal: Reveal::new(out_story, opened.present),
            stats: RwSignal::new(None),
            adapter: RwSignal::new(None),
            link_note: RwSignal::new(None),
            built: StoredValue::new(Vec::new()),
            form: FormSignals::new(opened),
            present: RwSignal::new(opened.present),
            link: RwSignal::new(None),
            restore: StoredValue::new(restore),
            client,
            parses: RwSignal::new(0),
            picked: StoredValue::new_local(None),
            compare: super::generate::CompareState::new(),
            load_from: RwSignal::new(None),
            load_error: RwSignal::new(None),
        }
    }

    pub fn running(&self) -> bool {
        self.status.with(|s| matches!(s, Status::Running(_)))
    }
    pub fn loading(&self) -> bool {
        self.status.with(|s| matches!(s, Status::Loading(_)))
    }
    pub fn can_generate(&self) -> bool {
        self.active.with(Option::is_some) && !self.running() && !self.loading() && !self.compare.running()
    }
    /// A load failed: the status line says why, and so does the control that started it.
    pub fn load_failed(&self, message: String) {
        if let Some(place) = self.load_from.get_untracked() {
            self.load_from.set(None);
            self.load_error.set(Some((place, message.clone())));
        }
        self.status.set(Status::Error(message));
    }
    /// A load from `place` starts: its last error goes.
    pub fn loading_from(&self, place: Option<LoadPlace>) {
        self.load_from.set(place);
        self.load_error.set(None);
    }
    pub fn send(&self, msg: &ToWorker) {
        self.client.send(msg);
    }
    pub fn active_entry(&self) -> Option<ModelEntry> {
        let id = self.active.get()?;
        self.models.with(|m| m.iter().find(|e| e.id == id).cloned())
    }
}
