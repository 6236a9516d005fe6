//! The logit lens on demand: the last inspection's residuals stay in the worker, and the page
//! asks for the positions it shows. Its cost is a classifier matmul per layer and position
//! (stories110M: 0.6 GFLOP a position), far too much for a whole long text at once.

use std::cell::{Cell, RefCell};

use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::trace::{lens_at, lens_flops, Inspection, LensHead};
use tinylm_engine::Config;

use super::super::engine::Engine;
use super::super::host::{now_ms, post, yield_now};
use crate::protocol::inspect::{nearest, InspectNews, LensColumn, LENS_BUDGET_FLOPS};
use crate::protocol::FromWorker;

/// Lens columns are sent at most this often while the page waits for them.
const POST_MS: f64 = 50.0;

/// The residuals of the last inspection (its attention and logits went to the page).
pub struct Kept {
    pub id: u64,
    pub model: u32,
    pub ins: Inspection,
}

/// The final norm and classifier of a GPU model: the GPU keeps no host copy of its weights.
pub struct OwnedHead {
    model: u32,
    config: Config,
    rms: Vec<f32>,
    cls: Vec<f32>,
}

thread_local! {
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
    static HEAD: RefCell<Option<OwnedHead>> = const { RefCell::new(None) };
    /// The newest lens request; older ones end early.
    static SEQ: Cell<u64> = const { Cell::new(0) };
}

pub fn note_request(seq: u64) {
    SEQ.with(|s| s.set(s.get().max(seq)));
}

fn superseded(seq: u64) -> bool {
    SEQ.with(|s| s.get() > seq)
}

pub fn keep(k: Option<Kept>) {
    KEPT.with(|c| *c.borrow_mut() = k);
}

fn take_kept() -> Option<Kept> {
    KEPT.with(|c| c.borrow_mut().take())
}

/// Makes sure a GPU model's lens weights are at hand (parsing the stored model once per model).
pub fn ensure_gpu_head(engine: &Engine, model: u32) -> Result<(), String> {
    if HEAD.with(|h| h.borrow().as_ref().is_some_and(|h| h.model == model)) {
        return Ok(());
    }
    HEAD.with(|h| h.borrow_mut().take());
    let w = engine.weights_of(model)?;
    let head = OwnedHead { model, config: w.config, rms: w.rms_final.clone(), cls: w.classifier().to_vec() };
    HEAD.with(|h| *h.borrow_mut() = Some(head));
    Ok(())
}

/// The lens weights of the active model: borrowed from the CPU backend, or the GPU copy.
pub enum Head<'a> {
    Cpu(LensHead<'a>),
    Gpu(OwnedHead),
}

impl Head<'_> {
    pub fn of(backend: &AnyBackend, model: u32) -> Result<Head<'_>, String> {
        match backend {
            AnyBackend::Cpu(cpu) => Ok(Head::Cpu(LensHead::of(&cpu.weights))),
            AnyBackend::Gpu(_) => match HEAD.with(|h| h.borrow_mut().take()) {
                Some(h) if h.model == model => Ok(Head::Gpu(h)),
                _ => Err("The logit lens lost the model's classifier; inspect again.".into()),
            },
        }
    }

    pub fn column(&self, ins: &Inspection, pos: usize) -> Result<LensColumn, String> {
        let tops = match self {
            Head::Cpu(h) => lens_at(h, ins, pos),
            Head::Gpu(o) => LensHead::new(o.config, &o.rms, &o.cls).and_then(|h| lens_at(&h, ins, pos)),
        };
        tops.map(|tops| LensColumn { pos, tops }).map_err(|e| e.to_string())
    }
}

impl Drop for Head<'_> {
    fn drop(&mut self) {
        if let Head::Gpu(o) = self {
            let o =
                OwnedHead { model: o.model, config: o.config, rms: std::mem::take(&mut o.rms), cls: std::mem::take(&mut o.cls) };
            HEAD.with(|h| *h.borrow_mut() = Some(o));
        }
    }
}

/// The positions whose lens comes with the inspection: all of them within `LENS_BUDGET_FLOPS`,
/// else as many as fit (at least one), nearest `around` first.
pub fn up_front(c: &Config, n: usize, around: usize) -> Vec<usize> {
    let fit = (LENS_BUDGET_FLOPS / lens_flops(c, 1)) as usize;
    nearest(around.min(n.saturating_sub(1)), n).take(fit.clamp(1, n.max(1))).collect()
}

/// Answers `InspectCtl::Lens`: columns in the order asked, sent in small batches, ending early
/// when a newer request comes (it asks again for what is still missing).
pub async fn on_demand(engine: &mut Engine, id: u64, seq: u64, positions: Vec<usize>) {
    let Some(kept) = take_kept() else { return };
    if kept.id == id && engine.active_id() == Some(kept.model) {
        if let Err(e) = answer(engine, &kept, seq, &positions).await {
            web_sys::console::error_1(&e.into());
        }
    }
    keep(Some(kept));
}

async fn answer(engine: &mut Engine, kept: &Kept, seq: u64, positions: &[usize]) -> Result<(), String> {
    let Some((backend, ..)) = engine.active_parts() else { return Ok(()) };
    let head = Head::of(backend, kept.model)?;
    let mut columns = Vec::new();
    let mut last = now_ms();
    for &pos in positions.iter().filter(|&&p| p < kept.ins.len()) {
        columns.push(head.column(&kept.ins, pos)?);
        if now_ms() - last >= POST_MS {
            send(kept.id, &mut columns);
            last = now_ms();
        }
        yield_now().await;
        if superseded(seq) {
            break;
        }
    }
    send(kept.id, &mut columns);
    Ok(())
}

fn send(id: u64, columns: &mut Vec<LensColumn>) {
    if !columns.is_empty() {
        post(&FromWorker::InspectNews(InspectNews::Lens { id, columns: std::mem::take(columns) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::randmodel::named_shape;

    #[test]
    fn the_budget_decides_what_comes_up_front() {
        let (small, _) = named_shape("tiny64").unwrap();
        assert_eq!(up_front(&small, 256, 10).len(), 256);
        // stories110M: 0.59 GFLOP a position, so 6 positions fit in 4 GFLOP.
        let (big, _) = named_shape("s110m").unwrap();
        assert_eq!(up_front(&big, 400, 100), [100, 99, 101, 98, 102, 97]);
        assert_eq!(up_front(&big, 1, 0), [0]);
    }
}
