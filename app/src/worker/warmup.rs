//! Auto's WebGPU start beside the CPU: the task that opens the GPU (and compiles a story's
//! pipelines on it) while the CPU writes, and the decode speeds kept on the device per adapter
//! and model shape. Deciding between the two is `speed`'s job; this module knows neither the
//! session nor how failures are worded.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tinylm_engine::generate::{Backend, Generator};
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuOptions};
use tinylm_engine::lora::Adapter;
use tinylm_engine::{Config, Error, Sampler, Weights, BOS};

use super::bridge::now_ms;
use super::inbox::{Inbox, Job, Work};
use crate::speed::{key, Speeds};

/// Where kept measurements live in the Origin Private File System.
const DIR: &str = "tinylm-backend-speed";

/// A WebGPU start Auto asks for: the adapter's description, and speeds kept from an earlier
/// visit (then nothing is measured again).
pub struct Warmup {
    pub adapter: String,
    pub kept: Option<Speeds>,
}

/// A WebGPU backend started for activation `epoch`, or why it did not start.
pub struct Warm {
    epoch: u64,
    pub warmup: Warmup,
    /// The backend and how long it took to open, or why it did not open.
    pub gpu: Result<(AnyBackend, f64), Error>,
}

pub type WarmSlot = Rc<RefCell<Option<Warm>>>;

/// Starts WebGPU for `weights` (with `adapter` merged) in a task of its own; when it is ready, a
/// `Work::GpuReady` job is queued.
pub fn start(epoch: u64, weights: Arc<Weights>, adapter: Option<Arc<Adapter>>, warmup: Warmup, slot: WarmSlot, inbox: Inbox) {
    wasm_bindgen_futures::spawn_local(async move {
        let t0 = now_ms();
        let opts = GpuOptions { workgroups: super::tuning::load(&warmup.adapter, &weights.config).await, ..Default::default() };
        let gpu = match AnyBackend::open_shared(&weights, adapter.as_ref(), BackendChoice::Gpu, opts).await {
            Ok(mut o) if matches!(o.backend, AnyBackend::Gpu(_)) => {
                compile_story_path(&mut o.backend).await.map(|()| (o.backend, now_ms() - t0))
            }
            Ok(o) => Ok((o.backend, now_ms() - t0)),
            Err(e) => Err(e),
        };
        let mut slot = slot.borrow_mut();
        // A start for a newer activation may have finished first: never replace it.
        if slot.as_ref().is_none_or(|w| w.epoch < epoch) {
            *slot = Some(Warm { epoch, warmup, gpu });
        }
        drop(slot);
        inbox.push(Job { msg: Work::GpuReady, at: now_ms() });
    });
}

/// A two-token prompt and one token more on a GPU just opened. Its pipelines are made on first
/// use, so a story's (the batched prompt pass, decode, sampling) compile here: while the page
/// says the backend is starting (inside its "Started in"), or here in Auto's own task, where
/// the CPU goes on writing, not in the first story's or Auto's measurement's wait.
pub async fn compile_story_path(b: &mut AnyBackend) -> tinylm_engine::Result<()> {
    let mut sampler = Sampler::new(0.0, 0.9, 1)?;
    let steps = b.config().seq_len.min(3);
    let prompt = if steps == 3 { &[BOS, BOS][..] } else { &[BOS][..] };
    b.generate_async(prompt, steps, &mut sampler, |_| true).await.map(drop)
}

impl Warm {
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// Speeds kept for this adapter and model shape, if any.
pub async fn kept(adapter: &str, c: &Config) -> Option<Speeds> {
    let text = super::tuning::read(DIR, &key(adapter, c)).await.ok()?;
    serde_json::from_str(&text).ok()
}

pub async fn keep(adapter: &str, c: &Config, s: Speeds) {
    let Ok(text) = serde_json::to_string(&s) else { return };
    if let Err(e) = super::tuning::write(DIR, &key(adapter, c), &text).await {
        web_sys::console::warn_1(&e);
    }
}
