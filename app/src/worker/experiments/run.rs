//! What the experiments share: a ticker (time slices whose progress names the work); seeded
//! stories and inspections on the active backend, paced by it.

use tinylm_engine::generate::{Generator, Pace, Step};
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::trace::{pieces, Inspection};
use tinylm_engine::{Sampler, Tokenizer};

use crate::protocol::experiments::{ExperimentNews, Story};
use crate::protocol::{FromWorker, Settings};
use crate::words;
use crate::worker::cancel::Cancel;
use crate::worker::inspect::{forward, Progress};
use crate::worker::slices::TimeSlices;

/// The experiments' time slices: their progress names what is being done.
pub struct Ticker<'a>(TimeSlices<'a>);

impl<'a> Ticker<'a> {
    pub fn new(id: u64, stop: &'a Cancel) -> Ticker<'a> {
        Ticker(TimeSlices::new(id, stop))
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// After a chunk: progress, a yield when the slice is spent; true when stopped.
    pub async fn tick(&mut self, what: &str, done: usize, total: usize) -> bool {
        let id = self.0.id;
        self.0.tick(|| FromWorker::Experiment(ExperimentNews::Progress { id, what: what.to_string(), done, total })).await
    }

    pub fn stopped(&self) -> bool {
        self.0.stopped()
    }
}

pub fn err(e: tinylm_engine::Error) -> String {
    words::run_error(&e)
}

/// A story with `settings` (the seed fixes it) on the backend as its edits stand; `None` when
/// stopped.
pub async fn story(
    backend: &mut AnyBackend,
    prompt: &[u32],
    settings: &Settings,
    tick: &mut Ticker<'_>,
    what: &str,
) -> Result<Option<Vec<u32>>, String> {
    let mut sampler = Sampler::new(settings.temperature, settings.topp, settings.seed).map_err(err)?;
    let total = if settings.steps == 0 { backend_context(backend) } else { settings.steps };
    let mut pace = Paced { tick, what, done: 0, total, stopped: false };
    let tokens = backend.run_async(prompt, settings.steps, &mut sampler, &mut pace).await.map_err(err)?;
    Ok((!pace.stopped).then_some(tokens))
}

fn backend_context(backend: &AnyBackend) -> usize {
    use tinylm_engine::generate::Backend;
    backend.config().seq_len
}

struct Paced<'a, 'b> {
    tick: &'a mut Ticker<'b>,
    what: &'a str,
    done: usize,
    total: usize,
    stopped: bool,
}

impl Pace for Paced<'_, '_> {
    fn token(&mut self, step: Step) -> bool {
        self.done = step.pos;
        self.stopped |= self.tick.stopped();
        !self.stopped
    }
    async fn between(&mut self) -> bool {
        self.stopped |= self.tick.tick(self.what, self.done, self.total).await;
        !self.stopped
    }
}

/// A story as the page shows it.
pub fn told(tok: &Tokenizer, tokens: Vec<u32>) -> Result<Story, String> {
    let text = String::from_utf8_lossy(&tok.decode_all(&tokens).map_err(err)?).into_owned();
    Ok(Story { pieces: pieces::token_pieces(tok, &tokens), tokens, text })
}

/// The forward pass keeping everything, on the backend as its edits stand: on the CPU a
/// position at a time, on the GPU a batch of positions at a time; `None` when stopped.
pub async fn inspection(
    backend: &mut AnyBackend,
    tokens: &[u32],
    tick: &mut Ticker<'_>,
    what: &str,
) -> Result<Option<Inspection>, String> {
    forward(backend, tokens, &mut Labelled { tick, what }).await
}

/// The experiment's ticker, reporting the forward pass's steps under `what`.
struct Labelled<'t, 'a> {
    tick: &'t mut Ticker<'a>,
    what: &'t str,
}

impl Progress for Labelled<'_, '_> {
    async fn step_done(&mut self, done: usize, total: usize) -> bool {
        self.tick.tick(self.what, done, total).await
    }
}
