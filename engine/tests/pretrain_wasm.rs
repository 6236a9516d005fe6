//! The Build view's trainer (`pretrain::Trainer`, one step per call) against the PyTorch run of
//! engine/tests/fixtures/pretrain/random_gqa, with no file access so it also runs compiled to
//! wasm (simd128 kernels, Node) as the browser's worker runs it:
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test -p tinylm-engine --no-default-features --target wasm32-unknown-unknown --test pretrain_wasm
//! ```

use std::future::Future;
use std::task::{Context, Poll, Waker};

use tinylm_engine::lora::Dataset;
use tinylm_engine::pretrain::{Hyper, PretrainBackend, Schedule, ScheduleKind, Trainer};
use tinylm_engine::randmodel::{random_tokens, random_weights};
use tinylm_engine::Config;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[path = "common/fixtures.rs"]
mod fixtures;

const SUMMARY: &str = include_str!("fixtures/pretrain/random_gqa/summary.json");
const REFERENCE: &[u8] = include_bytes!("fixtures/pretrain/random_gqa/reference.safetensors");

/// Polls a future that completes at once (the CPU trainer's; the worker awaits the same calls).
fn ready<T>(f: impl Future<Output = T>) -> T {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn steps_snapshots_and_final_weights_equal_pytorch() {
    let s: serde_json::Value = serde_json::from_str(SUMMARY).unwrap();
    let w = random_weights(&Config::parse("48,128,2,6,2,96,16,untied").unwrap(), 7).unwrap();
    let data = Dataset::from_token_lists(&[random_tokens(11, 300, 96)], 16, &w.config).unwrap();
    let schedule = Schedule { kind: ScheduleKind::Cosine, lr: 3e-3, min_lr: 3e-4, warmup: 2, steps: 5 };
    let hyper = Hyper { schedule, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, clip: Some(1.0), z_loss: 1e-3 };
    let mut t = ready(Trainer::open_async(PretrainBackend::Cpu, &w, hyper, None)).unwrap();
    for (k, want) in s["steps"].as_array().unwrap().iter().enumerate() {
        if k == 3 {
            // Save and restore between calls, as the page does in OPFS.
            let (_, snap) = ready(t.snapshot_async(true)).unwrap();
            t = ready(Trainer::from_snapshot_async(PretrainBackend::Cpu, &snap, "snapshot")).unwrap();
        }
        let m = ready(t.step_async(&data.batch(3, k as u64, 1234).unwrap())).unwrap().clone();
        let want = want["loss"].as_f64().unwrap();
        // The issue's 1e-5 relative; measured natively ≤ 2e-7.
        assert!((m.loss - want).abs() < 1e-5 * want, "step {}: {} vs {want}", k + 1, m.loss);
    }
    let (weights, _) = ready(t.snapshot_async(false)).unwrap();
    for (spec, got) in weights.tensors() {
        let want = fixtures::tensor(REFERENCE, &format!("final.{}", spec.tensor.name())).1;
        let e = fixtures::max_diff(got, &want) / fixtures::max_abs(&want);
        assert!(e < 1e-4, "final {} off by {e:e}", spec.tensor.name());
    }
}
