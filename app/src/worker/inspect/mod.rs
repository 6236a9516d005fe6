//! Inspect: an inspection of the active model over a text in slices that yield to the worker's
//! event loop (so progress shows and Stop works), attention rollout by layer, and the logit lens:
//! the whole text's when cheap, else the positions the page asks for (`lens`). The big arrays go
//! to the page as transferred buffers.

mod lens;

use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::trace::{pieces, Inspection, Inspector, Rollout};

use super::bridge::{now_ms, post};
use super::cancel::Cancel;
use super::session::{Session, NO_MODEL};
use super::slices::TimeSlices;
use crate::protocol::inspect::{cap_note, max_tokens, InspectInfo, InspectNews, InspectRequest, Inspected, Stage};
use crate::protocol::{Floats, FromWorker};
use crate::words;
pub use lens::{on_demand, Kept};

pub async fn run(s: &mut Session, req: InspectRequest, kept: &mut Option<Kept>, stop: &Cancel) {
    // The last inspection's residuals stay until this one is done: if it is stopped, the page
    // still shows the last one and may ask for its lens.
    match inspect(s, &req, stop).await {
        Ok(Some((inspected, k))) => {
            *kept = Some(k);
            post(&FromWorker::Inspected(Box::new(inspected)));
        }
        Ok(None) => {}
        Err(message) => post(&FromWorker::InspectFailed { id: req.id, message }),
    }
}

/// Inspect's time slices: progress names the stage, and a stop is told to the page with how far
/// the work got.
struct Ticker<'a>(TimeSlices<'a>);

impl Ticker<'_> {
    /// After a chunk: progress, a yield when the slice is spent; true when stopped (the page is told).
    async fn tick(&mut self, stage: Stage, done: usize, total: usize) -> bool {
        let id = self.0.id;
        if !self.0.tick(|| FromWorker::InspectNews(InspectNews::Progress { id, stage, done, total })).await {
            return false;
        }
        post(&FromWorker::InspectNews(InspectNews::Stopped { id, stage, done, total }));
        true
    }
}

async fn inspect(s: &mut Session, req: &InspectRequest, stop: &Cancel) -> Result<Option<(Inspected, Kept)>, String> {
    let (stored, active) = s.active_mut()?;
    let model = active.id;
    let tokenizer = stored.model.need_tokenizer().map_err(|_| NO_MODEL.to_string())?;
    let (mut tokens, prompt_len, settings) = match active.story.clone().filter(|_| req.last_run) {
        Some(l) => (l.tokens, l.prompt_len, Some(l.settings)),
        None => {
            let t = tokenizer.encode(&req.text, true, false);
            let n = t.len();
            (t, n, None)
        }
    };
    let c = *stored.model.config();
    let wanted = tokens.len();
    tokens.truncate(max_tokens(c.n_layers, c.n_heads, c.vocab_size, c.dim, wanted.min(c.seq_len)));
    let n = tokens.len();
    let t0 = now_ms();
    let mut tick = Ticker(TimeSlices::new(req.id, stop));
    if tick.tick(Stage::Forward, 0, n).await {
        return Ok(None);
    }
    let Some(ins) = forward(&mut active.backend, &tokens, &mut tick).await? else { return Ok(None) };
    let Some(roll) = rollout(&ins, &mut tick).await else { return Ok(None) };
    let prompt_len = prompt_len.min(n);
    // The lens reads the final norm and the classifier from the loaded model (adapters never
    // change them), whatever backend ran the inspection.
    let head = stored.model.lens_head();
    let mut lens = Vec::new();
    let first = lens::up_front(&c, n, prompt_len.saturating_sub(1));
    for (i, &pos) in first.iter().enumerate() {
        lens.push(lens::column(&head, &ins, pos)?);
        if tick.tick(Stage::Lens, i + 1, first.len()).await {
            return Ok(None);
        }
    }
    let info = InspectInfo {
        id: req.id,
        n_layers: c.n_layers,
        n_heads: c.n_heads,
        vocab_size: c.vocab_size,
        dim: c.dim,
        pieces: pieces::token_pieces(tokenizer, &tokens),
        tokens,
        prompt_len,
        vocab: (0..c.vocab_size as u32).map(|i| tokenizer.piece(i).map(pieces::raw_readable).unwrap_or_default()).collect(),
        lens,
        backend: active.backend.name(),
        ms: now_ms() - t0,
        settings,
        truncated_from: (wanted > n).then_some(wanted),
        cap_note: cap_note(&c, wanted, n),
    };
    let Inspection { config, tokens, attn, logits, resid } = ins;
    let kept = Kept { id: req.id, model, ins: Inspection { config, tokens, resid, attn: Vec::new(), logits: Vec::new() } };
    let inspected = Inspected {
        info,
        attention: Floats::from_slice(&attn),
        logits: Floats::from_slice(&logits),
        rollout: Floats::from_slice(&roll),
    };
    Ok(Some((inspected, kept)))
}

/// Progress and Stop between the steps of `forward`.
pub(crate) trait Progress {
    /// After `done` of `total` positions; true when the page stopped the work.
    async fn step_done(&mut self, done: usize, total: usize) -> bool;
}

impl Progress for Ticker<'_> {
    async fn step_done(&mut self, done: usize, total: usize) -> bool {
        self.tick(Stage::Forward, done, total).await
    }
}

/// The forward pass keeping everything, with progress and Stop between steps: on the CPU a
/// position at a time, on the GPU a batch of positions (one submit) at a time.
pub(crate) async fn forward(
    backend: &mut AnyBackend,
    tokens: &[u32],
    progress: &mut impl Progress,
) -> Result<Option<Inspection>, String> {
    let n = tokens.len();
    let err = |e: tinylm_engine::Error| words::run_error(&e);
    let mut run = Inspector::new(backend.config(), tokens).map_err(err)?;
    loop {
        let finished = match backend {
            AnyBackend::Gpu(g) => g.inspect_advance_async(&mut run).await,
            AnyBackend::Cpu(cpu) => run.advance(cpu, 1),
        };
        if finished.map_err(err)? {
            return run.finish().map(Some).map_err(err);
        }
        if progress.step_done(run.done(), n).await {
            return Ok(None);
        }
    }
}

/// Attention rollout a layer at a time (it grows with T³).
async fn rollout(ins: &Inspection, tick: &mut Ticker<'_>) -> Option<Vec<f32>> {
    let mut r = Rollout::new(ins);
    while !r.advance(ins) {
        if tick.tick(Stage::Rollout, r.done(), ins.config.n_layers).await {
            return None;
        }
    }
    Some(r.finish())
}
