//! The engine worker's CPU threads (issue 20). The threaded build of this worker (compiled with
//! `+atomics` and a shared memory, `scripts/threads-build.sh`) is started by `worker_mt_loader.js`,
//! which makes the pool here (`pool_start`), installs it at once (`pool_install`: until a thread
//! is up the engine's own thread runs its tasks) and starts `threads − 1` Web Workers on the same
//! module and memory (`pool_thread.js`, each calling `pool_serve`). The plain build has none of
//! this and runs one thread; `count` and `why_one` say which and why.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use super::bridge::scope;

/// The CPU path's threads for the backend's details: "2 threads", "1 thread".
pub fn count() -> String {
    match tinylm_engine::pool::current().threads() {
        1 => "1 thread".into(),
        n => format!("{n} threads"),
    }
}

/// Why the CPU path runs on one thread where the browser reports several cores, in words for the
/// backend's `one_thread`; None when it runs on several, or there is one core.
pub fn why_one() -> Option<String> {
    if tinylm_engine::pool::current().threads() > 1 || cores() <= 1 {
        return None;
    }
    let why = if !isolated() {
        "this page is not cross-origin isolated yet (its offline service worker adds that; it cannot run in a private window), so the browser shares no memory between threads"
    } else if wanted() == Some(1) {
        "the CPU threads setting is 1"
    } else {
        "the threaded engine is not running (it is not started again after a crash)"
    };
    Some(format!("The CPU path runs on one of this device's {} cores: {why}.", cores()))
}

/// `crossOriginIsolated`: whether this worker may share memory with threads.
fn isolated() -> bool {
    Reflect::get(&scope(), &JsValue::from_str("crossOriginIsolated")).is_ok_and(|v| v.is_truthy())
}

/// `navigator.hardwareConcurrency`.
fn cores() -> usize {
    scope().navigator().hardware_concurrency() as usize
}

/// The thread setting the loader was started with (`?threads=N` on its URL), if any.
fn wanted() -> Option<usize> {
    let url = web_sys::Url::new(&scope().location().href()).ok()?;
    url.search_params().get("threads")?.parse().ok()
}

#[cfg(target_feature = "atomics")]
mod hosted {
    use std::sync::Arc;

    use tinylm_engine::pool::{self, Workers};
    use wasm_bindgen::prelude::wasm_bindgen;

    /// A pool of `threads` in all whose workers are yet to start; the loader keeps the handle.
    #[wasm_bindgen]
    pub fn pool_start(threads: usize) -> usize {
        Arc::into_raw(Arc::new(Workers::hosted(threads))) as usize
    }

    /// The pool of a handle from `pool_start` (which keeps its own reference for ever).
    fn pool(handle: usize) -> Arc<Workers> {
        let ptr = handle as *const Workers;
        // SAFETY: `handle` came from `Arc::into_raw` in `pool_start` and that reference is never
        // released, so the pool is alive; this adds the reference the returned Arc drops.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// Runs this Web Worker as one of the pool's threads; returns only if the pool stops.
    #[wasm_bindgen]
    pub fn pool_serve(handle: usize) {
        pool(handle).serve();
    }

    /// Makes the pool the engine's (at once: it works before its threads are up).
    #[wasm_bindgen]
    pub fn pool_install(handle: usize) {
        pool::set_default(pool(handle));
    }

    /// A pool thread's host saw it stop (a trap): a caller waiting on its task fails instead of
    /// hanging.
    #[wasm_bindgen]
    pub fn pool_thread_lost(handle: usize) {
        pool(handle).thread_lost();
    }
}
