//! What every feature works on: the models loaded this session (`Store`) and the one active on
//! a backend, with the tokens of its last story. Starting a model on a backend (a load, a
//! switch, a restart with an adapter) and telling the page about it happen here.

use tinylm_engine::gpu::AnyBackend;

use super::backends;
use super::bridge::post;
use super::fetch::progress;
use super::inbox::Inbox;
use super::store::{parses, Store, Stored};
use super::warmup::{self, Warm, WarmSlot};
use crate::protocol::train::TrainEvent;
use crate::protocol::{BackendInfo, BackendKind, Choice, FromWorker, Settings};

pub const NO_MODEL: &str = "No model is loaded yet: wait for it, or load one.";

/// The tokens of the last story, as the model saw them (re-encoding its text could differ).
#[derive(Debug, Clone)]
pub struct Story {
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub settings: Settings,
}

/// The model on a backend.
pub struct Active {
    pub id: u32,
    pub backend: AnyBackend,
    pub info: BackendInfo,
    /// What the reader chose (a restart with an adapter chooses the same).
    pub choice: Choice,
    /// The last story written with this backend, for the Inspect view.
    pub story: Option<Story>,
}

pub struct Session {
    pub store: Store,
    pub active: Option<Active>,
    /// Counts activations: a GPU warmed for an older one is stale (`speed`).
    epoch: u64,
    /// Where Auto's WebGPU start leaves its backend, and the inbox that hears it is ready.
    warm: WarmSlot,
    inbox: Inbox,
}

impl Session {
    pub fn new(inbox: Inbox) -> Session {
        Session { store: Store::default(), active: None, epoch: 0, warm: WarmSlot::default(), inbox }
    }

    /// The GPU warmed for the current activation, if it is ready (a stale one is dropped).
    pub fn take_warm(&mut self) -> Option<Warm> {
        self.warm.borrow_mut().take().filter(|w| w.epoch() == self.epoch)
    }

    /// The active model and its backend.
    pub fn active(&self) -> Result<(&Stored, &Active), String> {
        let a = self.active.as_ref().ok_or(NO_MODEL)?;
        Ok((self.store.get(a.id)?, a))
    }

    /// The same, the backend mutable.
    pub fn active_mut(&mut self) -> Result<(&Stored, &mut Active), String> {
        let a = self.active.as_mut().ok_or(NO_MODEL)?;
        Ok((self.store.get(a.id)?, a))
    }

    pub fn active_kind(&self) -> Option<BackendKind> {
        self.active.as_ref().map(|a| a.info.kind)
    }

    /// Puts model `id` (with the adapter in use with it) on the chosen backend, replacing the
    /// active one. Adapters in use with other models are dropped, and the page told why.
    pub async fn activate(&mut self, id: u32, choice: Choice) -> Result<(), String> {
        progress("Starting the backend", 0, None);
        // Free the old backend first: a GPU may not hold two models.
        self.active = None;
        self.epoch += 1;
        self.warm.borrow_mut().take();
        for other in self.store.others_mut(id) {
            other.adapter_hash = None;
            if let Some(name) = other.adapter_name.take() {
                let _ = other.model.set_adapter(None);
                post(&FromWorker::Train(TrainEvent::Using {
                    name: None,
                    hash: None,
                    error: Some(format!("Generate no longer uses the adapter “{name}”: another model was loaded.")),
                }));
            }
        }
        let model = &self.store.get(id)?.model;
        let opened = backends::open(model, choice).await?;
        if let Some(w) = opened.warmup {
            let (weights, adapter) = (model.dense_weights(), model.adapter().cloned());
            warmup::start(self.epoch, weights, adapter, w, self.warm.clone(), self.inbox.clone());
        }
        self.active = Some(Active { id, backend: opened.backend, info: opened.info, choice, story: None });
        Ok(())
    }

    /// Tells the page how a load or switch went: the menu and the backend, or why not (the
    /// model that was active, if any, still is).
    pub fn report(&self, result: Result<(), String>) {
        let msg = match (result, &self.active) {
            (Ok(()), Some(a)) => {
                let models = self.store.entries();
                post(&FromWorker::Loaded { models, active: a.id, backend: a.info.clone(), parses: parses() });
                // After Loaded (which clears the page's mark): the adapter is still on.
                if let Ok(Some((name, hash))) = self.store.get(a.id).map(|m| m.adapter_name.clone().zip(m.adapter_hash.clone())) {
                    post(&FromWorker::Train(TrainEvent::Using { name: Some(name), hash: Some(hash), error: None }));
                }
                return;
            }
            (Ok(()), None) => FromWorker::LoadFailed { message: "No model is active.".into(), active: None },
            // Say which model Generate still uses, or that none is, so a refused file is not
            // mistaken for a loaded one (nor a model named that never loaded).
            (Err(message), active) => {
                let id = active.as_ref().map(|a| a.id);
                FromWorker::LoadFailed { message: message + " " + &self.in_use_now(), active: id }
            }
        };
        post(&msg);
    }

    /// After a refused load: the model Generate still uses, or that there is none, and what to do.
    fn in_use_now(&self) -> String {
        match self.active.as_ref().map(|a| self.store.get(a.id)) {
            Some(Ok(m)) => format!("The model in use is still {}.", m.entry.name),
            _ if self.store.is_empty() => {
                "No model is loaded yet: load one with “Choose files”, or reload the page to try stories260K again.".into()
            }
            _ => "No model is in use now: choose one in the “Model in use” menu, or load another.".into(),
        }
    }
}
