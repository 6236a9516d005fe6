//! The worker's state: the models of this session and the one that is active on a backend.

use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::Tokenizer;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::File;

use super::backends;
use super::fetch::{download, progress, read_file};
use super::host::{post, scope};
use super::inbox::Job;
use super::run::{self, Request, StopFlag};
use super::store::{file_name, Files, Parsed, Store};
use crate::protocol::{BackendInfo, Choice, FromWorker, Settings, Source, ToWorker};

/// The files shipped with the site, next to the page.
pub const BUNDLED_MODEL: &str = "models/stories260K.bin";
pub const BUNDLED_TOKENIZER: &str = "models/tok512.bin";

struct Active {
    id: u32,
    backend: AnyBackend,
    tokenizer: Tokenizer,
    info: BackendInfo,
}

pub struct Engine {
    pub(super) store: Store,
    active: Option<Active>,
    stop: StopFlag,
    /// The tokens of the last story on the active model, for the Inspect view.
    pub(super) last_run: Option<super::inspect::LastRun>,
    /// The adapter the Train view's "Use" merged into the active model: kept here so every
    /// restart of that model (a backend switch, a WebGPU failure falling back to the CPU)
    /// merges it again instead of silently dropping it.
    pub(super) in_use: Option<super::train::InUse>,
}

impl Engine {
    pub fn new(stop: StopFlag) -> Engine {
        Engine { store: Store::default(), active: None, stop, last_run: None, in_use: None }
    }

    pub async fn handle(&mut self, job: Job) {
        match job.msg {
            ToWorker::Load { source, choice } => {
                let result = self.load(source, &job.files, choice).await;
                self.report(result);
            }
            ToWorker::Select { model, choice } => {
                let result = match self.store.open(model) {
                    Ok(parsed) => self.activate(model, parsed, choice).await,
                    Err(e) => Err(e),
                };
                self.report(result);
            }
            ToWorker::Generate { run, prompt, settings } => self.generate(run, &prompt, settings, job.at).await,
            // Stop acts on arrival (see worker::start); here it has nothing left to do.
            ToWorker::Stop { .. } => {}
            ToWorker::Bench(req) => super::bench::handle(req).await,
            ToWorker::Inspect(req) => super::inspect::handle(self, req).await,
            ToWorker::InspectCtl(ctl) => super::inspect::handle_ctl(self, ctl).await,
            ToWorker::Train(cmd) => super::train::handle(self, cmd).await,
        }
    }

    pub(super) fn active_id(&self) -> Option<u32> {
        self.active.as_ref().map(|a| a.id)
    }

    pub(super) fn active_kind(&self) -> Option<crate::protocol::BackendKind> {
        self.active.as_ref().map(|a| a.info.kind)
    }

    pub(super) fn report(&self, result: Result<(), String>) {
        let msg = match (result, &self.active) {
            (Ok(()), Some(a)) => {
                post(&FromWorker::Loaded { models: self.store.entries(), active: a.id, backend: a.info.clone() });
                // After Loaded (which clears the page's mark): the adapter is still on.
                return super::train::announce(self.in_use.as_ref());
            }
            (Ok(()), None) => FromWorker::LoadFailed { message: "No model is active.".into(), active: None },
            (Err(message), a) => FromWorker::LoadFailed { message, active: a.as_ref().map(|a| a.id) },
        };
        post(&msg);
    }

    async fn load(&mut self, source: Source, attached: &[JsValue], choice: Choice) -> Result<(), String> {
        let files = self.gather(&source, attached).await?;
        progress(&format!("Checking {}", files.model_name), 0, None);
        let (id, parsed) = self.store.add(source, files)?;
        self.activate(id, parsed, choice).await
    }

    /// Puts a checked model on the chosen backend, replacing the active one.
    pub(super) async fn activate(&mut self, id: u32, parsed: Parsed, choice: Choice) -> Result<(), String> {
        progress("Starting the backend", 0, None);
        // Free the old backend first: a GPU may not hold two models.
        self.active = None;
        self.last_run = None;
        super::train::keep_for(&mut self.in_use, id);
        let adapter = self.in_use.as_ref();
        let weights = super::train::with_adapter(parsed.weights, adapter)?;
        let store = &self.store;
        let again = || store.open(id).and_then(|p| super::train::with_adapter(p.weights, adapter));
        let (backend, info) = backends::open(weights, choice, again).await?;
        self.active = Some(Active { id, backend, tokenizer: parsed.tokenizer, info });
        Ok(())
    }

    /// The bytes of a model and its tokenizer, wherever they come from.
    async fn gather(&self, source: &Source, attached: &[JsValue]) -> Result<Files, String> {
        match source {
            Source::Bundled => Ok(Files {
                model_name: file_name(BUNDLED_MODEL),
                model: download(BUNDLED_MODEL, "Downloading stories260K").await?,
                tokenizer_name: file_name(BUNDLED_TOKENIZER),
                tokenizer: download(BUNDLED_TOKENIZER, "Downloading its tokenizer").await?,
            }),
            Source::Url { model, tokenizer } => {
                same_origin(model)?;
                let model_name = file_name(model);
                let bytes = download(model, &format!("Downloading {model_name}")).await?;
                let (tokenizer_name, tokenizer) = match tokenizer {
                    Some(t) => {
                        same_origin(t)?;
                        (file_name(t), download(t, "Downloading the tokenizer").await?)
                    }
                    None => self.lent_tokenizer()?,
                };
                Ok(Files { model_name, model: bytes, tokenizer_name, tokenizer })
            }
            Source::Files { .. } => {
                let mut files = attached.iter().filter_map(|v| v.clone().dyn_into::<File>().ok());
                let model = files.next().ok_or("No model file was given.")?;
                let bytes = read_file(&model, &format!("Reading {}", model.name())).await?;
                let (tokenizer_name, tokenizer) = match files.next() {
                    Some(t) => (t.name(), read_file(&t, &format!("Reading {}", t.name())).await?),
                    None => self.lent_tokenizer()?,
                };
                Ok(Files { model_name: model.name(), model: bytes, tokenizer_name, tokenizer })
            }
        }
    }

    /// Without a tokenizer, a model gets the bundled tok512 (right for 512-token models).
    fn lent_tokenizer(&self) -> Result<(String, Vec<u8>), String> {
        let (name, bytes) = self.store.bundled_tokenizer().ok_or("Give the model's tokenizer file too.")?;
        Ok((format!("{name} (bundled; no tokenizer was given)"), bytes))
    }

    async fn generate(&mut self, run: u64, prompt: &str, settings: Settings, t0: f64) {
        let Some(active) = self.active.as_mut() else {
            return post(&FromWorker::RunFailed { run, message: "No model is loaded yet: wait for it, or load one.".into() });
        };
        if self.stop.get() >= run {
            // Stopped before it began.
            return post(&FromWorker::Finished { run, stats: Default::default(), stopped: true });
        }
        let req = Request { run, prompt, settings, stop: &self.stop, t0 };
        let tokens = run::generate(&mut active.backend, &active.tokenizer, req).await;
        let prompt_len = active.tokenizer.encode(prompt, true, false).len().min(tokens.len());
        self.last_run = Some(super::inspect::LastRun { tokens, prompt_len, settings });
    }

    /// A stored model's weights, parsed again (the GPU backend keeps no host copy).
    pub(super) fn weights_of(&self, id: u32) -> Result<tinylm_engine::Weights, String> {
        self.store.open(id).map(|p| p.weights)
    }

    /// The active model's backend, tokenizer and id, for the Inspect view.
    pub(super) fn active_parts(&mut self) -> Option<(&mut AnyBackend, &Tokenizer, u32)> {
        self.active.as_mut().map(|a| (&mut a.backend, &a.tokenizer, a.id))
    }
}

/// Privacy: models come only from this site. The check is here as well as in the page, and
/// the CSP's connect-src 'self' enforces it a third time.
fn same_origin(url: &str) -> Result<(), String> {
    let here = scope().location();
    let full = web_sys::Url::new_with_base(url, &here.href()).map_err(|_| format!("“{url}” is not a valid address."))?;
    if full.origin() != here.origin() {
        return Err(format!(
            "“{url}” is on another site. For your privacy this page only loads models from its own \
             site ({}); download the files and pick them with “Choose files” instead.",
            here.origin()
        ));
    }
    Ok(())
}
