//! Auto's WebGPU start beside the CPU: the task that opens the GPU while the CPU writes, and the
//! decode speeds kept on the device per adapter and model shape. Deciding between the two is
//! `speed`'s job; this module knows neither the session nor how failures are worded.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuOptions};
use tinylm_engine::lora::Adapter;
use tinylm_engine::{Config, Error, Weights};

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
        let opened = AnyBackend::open_shared(&weights, adapter.as_ref(), BackendChoice::Gpu, opts).await;
        let gpu = opened.map(|o| (o.backend, now_ms() - t0));
        let mut slot = slot.borrow_mut();
        // A start for a newer activation may have finished first: never replace it.
        if slot.as_ref().is_none_or(|w| w.epoch < epoch) {
            *slot = Some(Warm { epoch, warmup, gpu });
        }
        drop(slot);
        inbox.push(Job { msg: Work::GpuReady, at: now_ms() });
    });
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
