//! Timings of the CPU path compiled to wasm (not a test: nothing asserts speed). Runs under
//! Node (V8, the engine Chromium runs the app's worker on):
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner WASM_BINDGEN_TEST_TIMEOUT=900 \
//!   cargo test -p tinylm-engine --no-default-features --release --target wasm32-unknown-unknown --test wasm_bench -- --nocapture
//! ```
//! Prints one `BENCH {json}` line per measure: medians of `RUNS` runs of greedy decode
//! (stories260K, 256 tokens; a random s15m-shaped model, 64 tokens, alone and four together), an inspection
//! (`trace::inspect` + `logit_lens` of 256 stories260K tokens) and one LoRA training step of
//! stories260K and of the s15m shape (the Train tab's defaults: q_proj,v_proj, rank 4, batch 4 × 64 tokens). Apart from the
//! batch of four, only APIs that predate the simd128 kernels are used, so the file times an older checkout for before/after.
#![cfg(target_arch = "wasm32")]

use tinylm_engine::cpu::batch::forward_batch;
use tinylm_engine::cpu::{CpuBackend, State};
use tinylm_engine::generate::Backend;
use tinylm_engine::lora::{Adapter, Base, Batch, LoraConfig, Target, TrainConfig, Trainer};
use tinylm_engine::randmodel::{named_shape, random_tokens, random_weights};
use tinylm_engine::sampler::argmax;
use tinylm_engine::trace::{inspect, logit_lens};
use tinylm_engine::{checkpoint, Weights};
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

const MODEL: &[u8] = include_bytes!("../../../shared/data/models/stories260K.bin");
const RUNS: usize = 5;

fn stories260k() -> Weights {
    checkpoint::read(MODEL, "stories260K.bin").unwrap().0
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `RUNS` runs of `f` (after one warm-up run).
fn time(mut f: impl FnMut()) -> (f64, Vec<f64>) {
    f();
    let runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = now_ms();
            f();
            now_ms() - t
        })
        .collect();
    (median(runs.clone()), runs)
}

fn report(what: &str, unit: &str, value: f64, runs: &[f64]) {
    let runs: Vec<String> = runs.iter().map(|r| format!("{r:.1}")).collect();
    console_log!("BENCH {{\"what\":\"{what}\",\"{unit}\":{value:.2},\"runs_ms\":[{}]}}", runs.join(","));
}

/// Greedy decode of `steps` tokens from BOS.
fn greedy(b: &mut CpuBackend, steps: usize) {
    let mut tok = 1u32;
    for pos in 0..steps {
        let logits = b.forward(tok, pos).unwrap();
        tok = (0..logits.len()).fold(0, |m, i| if logits[i] > logits[m] { i } else { m }) as u32;
    }
}

fn decode(name: &str, w: Weights, steps: usize) {
    let mut b = CpuBackend::new(w);
    let (ms, runs) = time(|| greedy(&mut b, steps));
    report(&format!("decode {name} ({steps} tokens, {})", b.name()), "tok_s", steps as f64 * 1e3 / ms, &runs);
}

#[wasm_bindgen_test]
fn decode_stories260k() {
    decode("stories260K", stories260k(), 256);
}

#[wasm_bindgen_test]
fn decode_s15m() {
    let (c, seed) = named_shape("s15m").unwrap();
    decode("s15m", random_weights(&c, seed).unwrap(), 64);
}

/// Four greedy sequences from BOS decoded together (`cpu::batch`, the Compare view's path),
/// `steps` tokens each: tokens/s counts all four.
#[wasm_bindgen_test]
fn decode_s15m_batch_of_four() {
    let (c, seed) = named_shape("s15m").unwrap();
    let w = random_weights(&c, seed).unwrap();
    let steps = 64;
    let mut states: Vec<State> = (0..4).map(|_| State::new(&c)).collect();
    let (ms, runs) = time(|| {
        let mut tokens = vec![1u32; 4];
        for pos in 0..steps {
            let mut s: Vec<&mut State> = states.iter_mut().collect();
            forward_batch(&w, &mut s, &tokens, &[pos; 4]).unwrap();
            for (t, s) in tokens.iter_mut().zip(&s) {
                *t = argmax(s.logits()) as u32;
            }
        }
    });
    report(&format!("decode s15m, batch of 4 ({steps} tokens each)"), "tok_s", 4.0 * steps as f64 * 1e3 / ms, &runs);
}

#[wasm_bindgen_test]
fn inspection_stories260k() {
    let w = stories260k();
    let tokens = random_tokens(7, 256, w.config.vocab_size);
    let mut b = CpuBackend::new(w.clone());
    let (ms, runs) = time(|| {
        let ins = inspect(&mut b, &tokens).unwrap();
        logit_lens(&w, &ins).unwrap();
    });
    report("inspect+lens stories260K (256 tokens)", "ms", ms, &runs);
}

/// One LoRA training step of `w` at the Train tab's defaults (q_proj,v_proj, rank 4, batch 4 × 64).
fn lora_step(name: &str, w: Weights) {
    let c = w.config;
    let lora = LoraConfig::new(4, 8.0, false, vec![Target::Q, Target::V]).unwrap();
    let tokens: Vec<u32> = (0..4).flat_map(|b| random_tokens(b + 1, 64, c.vocab_size)).collect();
    let batch = Batch::new(4, 64, tokens).unwrap();
    let base = Base::new(&w);
    let mut t = Trainer::new(Adapter::<f32>::peft_default(&c, lora, 0).unwrap(), TrainConfig::default()).unwrap();
    let (ms, runs) = time(|| {
        t.step(&base, &batch).unwrap();
    });
    report(&format!("LoRA step {name} (q,v r4, 4x64)"), "ms", ms, &runs);
}

#[wasm_bindgen_test]
fn lora_step_stories260k() {
    lora_step("stories260K", stories260k());
}

#[wasm_bindgen_test]
fn lora_step_s15m() {
    let (c, seed) = named_shape("s15m").unwrap();
    lora_step("s15m", random_weights(&c, seed).unwrap());
}
