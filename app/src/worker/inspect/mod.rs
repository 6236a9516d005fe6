//! The Inspect view's work: an inspection of the active model over a text in slices that yield
//! to the worker's event loop (so progress shows and Stop works), attention rollout by layer,
//! and the logit lens: the whole text's when cheap, else the positions the page asks for
//! (`lens`). The big arrays go to the page as binary buffers.

mod lens;

use std::cell::Cell;

use js_sys::{Array, Float32Array};
use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::trace::{pieces, Inspection, Inspector, Rollout};

use super::engine::Engine;
use super::host::{now_ms, post, scope, yield_now};
use super::words;
use crate::protocol::inspect::{cap_note, max_tokens, InspectCtl, InspectInfo, InspectNews, InspectRequest, Stage};
use crate::protocol::{FromWorker, Settings};
use lens::{Head, Kept};

/// CPU work between yields: short enough that Stop feels instant.
const SLICE_MS: f64 = 25.0;
/// Progress is sent at most this often.
const PROGRESS_MS: f64 = 100.0;

/// The tokens of the last story, as the model saw them (re-encoding its text could differ).
#[derive(Debug, Clone)]
pub struct LastRun {
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub settings: Settings,
}

thread_local! {
    /// The newest inspection the page stopped; inspections up to it stop.
    static STOPPED: Cell<u64> = const { Cell::new(0) };
}

fn stopped(id: u64) -> bool {
    STOPPED.with(|s| s.get() >= id)
}

/// Called on arrival (before queueing): a Stop acts at once and is consumed; a lens request
/// marks older ones superseded and then waits its turn.
pub fn control(ctl: &InspectCtl) -> bool {
    match *ctl {
        InspectCtl::Stop { id } => {
            STOPPED.with(|s| s.set(s.get().max(id)));
            true
        }
        InspectCtl::Lens { seq, .. } => {
            lens::note_request(seq);
            false
        }
    }
}

/// A queued control message: the lens at more positions.
pub async fn handle_ctl(engine: &mut Engine, ctl: InspectCtl) {
    if let InspectCtl::Lens { id, seq, positions } = ctl {
        lens::on_demand(engine, id, seq, positions).await;
    }
}

pub async fn handle(engine: &mut Engine, req: InspectRequest) {
    // The last inspection's residuals stay until this one is done: if it is stopped, the page
    // still shows the last one and may ask for its lens.
    match inspect(engine, &req).await {
        Ok(Some((info, parts))) => post_with_parts(&FromWorker::Inspected(Box::new(info)), parts),
        Ok(None) => {}
        Err(message) => post(&FromWorker::InspectFailed { id: req.id, message }),
    }
}

/// Progress reports and yields between chunks of work; says when the page stopped the work.
struct Ticker {
    id: u64,
    slice: f64,
    posted: f64,
}

impl Ticker {
    fn new(id: u64) -> Ticker {
        Ticker { id, slice: now_ms(), posted: f64::NEG_INFINITY }
    }

    /// After a chunk: yields when the time slice is spent; true when stopped (the page is told).
    async fn tick(&mut self, stage: Stage, done: usize, total: usize) -> bool {
        if now_ms() - self.posted >= PROGRESS_MS {
            self.posted = now_ms();
            post(&FromWorker::InspectNews(InspectNews::Progress { id: self.id, stage, done, total }));
        }
        if now_ms() - self.slice >= SLICE_MS {
            yield_now().await;
            self.slice = now_ms();
        }
        if stopped(self.id) {
            post(&FromWorker::InspectNews(InspectNews::Stopped { id: self.id, stage, done, total }));
            return true;
        }
        false
    }
}

type Outcome = Option<(InspectInfo, [Vec<f32>; 3])>;

async fn inspect(engine: &mut Engine, req: &InspectRequest) -> Result<Outcome, String> {
    const NO_MODEL: &str = "No model is loaded yet: wait for it, or load one.";
    let last = if req.last_run { engine.last_run.clone() } else { None };
    let model = engine.active_id().ok_or(NO_MODEL)?;
    if engine.active_parts().is_some_and(|(b, ..)| matches!(b, AnyBackend::Gpu(_))) {
        lens::ensure_gpu_head(engine, model)?;
    }
    let (backend, tokenizer, _) = engine.active_parts().ok_or(NO_MODEL)?;
    let (mut tokens, prompt_len, settings) = match last {
        Some(l) => (l.tokens, l.prompt_len, Some(l.settings)),
        None => {
            let t = tokenizer.encode(&req.text, true, false);
            let n = t.len();
            (t, n, None)
        }
    };
    let c = *backend.config();
    let wanted = tokens.len();
    tokens.truncate(max_tokens(c.n_layers, c.n_heads, c.vocab_size, c.dim, wanted.min(c.seq_len)));
    let n = tokens.len();
    let t0 = now_ms();
    let mut tick = Ticker::new(req.id);
    if tick.tick(Stage::Forward, 0, n).await {
        return Ok(None);
    }
    let Some(ins) = forward(backend, &tokens, &mut tick).await? else { return Ok(None) };
    let Some(roll) = rollout(&ins, &mut tick).await else { return Ok(None) };
    let prompt_len = prompt_len.min(n);
    let head = Head::of(&*backend, model)?;
    let mut lens = Vec::new();
    let first = lens::up_front(&c, n, prompt_len.saturating_sub(1));
    for (i, &pos) in first.iter().enumerate() {
        lens.push(head.column(&ins, pos)?);
        if tick.tick(Stage::Lens, i + 1, first.len()).await {
            return Ok(None);
        }
    }
    drop(head);
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
        backend: backend.name(),
        ms: now_ms() - t0,
        settings,
        truncated_from: (wanted > n).then_some(wanted),
        cap_note: cap_note(&c, wanted, n),
    };
    let Inspection { config, tokens, attn, logits, resid } = ins;
    let ins = Inspection { config, tokens, resid, attn: Vec::new(), logits: Vec::new() };
    lens::keep(Some(Kept { id: req.id, model, ins }));
    Ok(Some((info, [attn, logits, roll])))
}

/// The forward pass keeping everything, with progress and Stop between steps: on the CPU a
/// position at a time, on the GPU a batch of positions (one submit) at a time.
async fn forward(backend: &mut AnyBackend, tokens: &[u32], tick: &mut Ticker) -> Result<Option<Inspection>, String> {
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
        if tick.tick(Stage::Forward, run.done(), n).await {
            return Ok(None);
        }
    }
}

/// Attention rollout a layer at a time (it grows with T³).
async fn rollout(ins: &Inspection, tick: &mut Ticker) -> Option<Vec<f32>> {
    let mut r = Rollout::new(ins);
    while !r.advance(ins) {
        if tick.tick(Stage::Rollout, r.done(), ins.config.n_layers).await {
            return None;
        }
    }
    Some(r.finish())
}

/// Posts `[json, buffers…]`, transferring the buffers (no copy).
fn post_with_parts(msg: &FromWorker, parts: [Vec<f32>; 3]) {
    let data = Array::of1(&msg.to_json().into());
    let transfer = Array::new();
    for p in parts {
        let arr = Float32Array::from(p.as_slice());
        data.push(&arr);
        transfer.push(&arr.buffer());
    }
    if let Err(e) = scope().post_message_with_transfer(&data, &transfer) {
        web_sys::console::error_1(&e);
    }
}
