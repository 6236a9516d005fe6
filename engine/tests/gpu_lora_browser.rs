//! GPU LoRA training on WebGPU in a real browser (headless Chromium; its SwiftShader adapter):
//! the PEFT fixture's five AdamW steps (shared/data/reference/stories260K_lora_qv_r4) through
//! the async API the Train view's worker uses, against PEFT's losses and the CPU trainer
//! compiled to the same wasm. Run as tests/gpu_browser.rs is run:
//!
//! ```sh
//! WASM_BINDGEN_TEST_TIMEOUT=600 CHROMEDRIVER=/usr/bin/chromedriver \
//!   CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test -p tinylm-engine --target wasm32-unknown-unknown --test gpu_lora_browser
//! ```
#![cfg(target_arch = "wasm32")]

use tinylm_engine::gpu::{GpuTrainOptions, GpuTrainer};
use tinylm_engine::lora::{read_peft, AdamW, Adapter, Base, Batch, TrainConfig, Trainer};
use tinylm_engine::{checkpoint, Weights};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("../../../shared/data/models/stories260K.bin");
const REF: &[u8] = include_bytes!("../../../shared/data/reference/stories260K_lora_qv_r4/lora_reference.safetensors");
const INIT_CFG: &[u8] = include_bytes!("../../../shared/data/reference/stories260K_lora_qv_r4/adapter_init/adapter_config.json");
const INIT_ST: &[u8] =
    include_bytes!("../../../shared/data/reference/stories260K_lora_qv_r4/adapter_init/adapter_model.safetensors");
const FINAL_ST: &[u8] =
    include_bytes!("../../../shared/data/reference/stories260K_lora_qv_r4/adapter_final/adapter_model.safetensors");

fn weights() -> Weights {
    checkpoint::read(MODEL, "stories260K.bin").unwrap().0
}

/// A fixture tensor as f32 (its int32 tensors converted).
fn fixture(key: &str) -> Vec<f32> {
    let st = safetensors::SafeTensors::deserialize(REF).unwrap();
    let t = st.tensor(key).unwrap();
    let four = t.data().chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    match t.dtype() {
        safetensors::Dtype::I32 => four.map(|b| i32::from_le_bytes(b) as f32).collect(),
        _ => four.map(f32::from_le_bytes).collect(),
    }
}

/// The larger of `m` and `v`, NaN if either is (`f32::max` would skip a NaN result).
fn nan_max(m: f32, v: f32) -> f32 {
    if m.is_nan() || v.is_nan() {
        f32::NAN
    } else {
        m.max(v)
    }
}

fn max_rel(a: &Adapter, b: &Adapter) -> f32 {
    let (mut d, mut m) = (0f32, 0f32);
    for (x, y) in a.tensors().flatten().zip(b.tensors().flatten()) {
        d = nan_max(d, (x - y).abs());
        m = nan_max(m, y.abs());
    }
    d / m
}

#[wasm_bindgen_test]
async fn lora_training_on_webgpu_matches_peft_and_the_cpu() {
    let w = weights();
    let ad = read_peft(INIT_CFG, INIT_ST, &w.config, ["adapter_config.json", "adapter_model.safetensors"]).unwrap();
    let batch = Batch::single(fixture("tokens").iter().map(|&v| v as u32).collect()).unwrap();
    let cfg = TrainConfig { adamw: AdamW { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }, clip_norm: None };
    let mut t = GpuTrainer::new_async(&w, ad.clone(), cfg, GpuTrainOptions::default())
        .await
        .expect("a WebGPU adapter (Chromium needs --enable-unsafe-webgpu)");
    let mut losses = Vec::new();
    for _ in 0..5 {
        losses.push(t.step_async(&batch).await.unwrap().loss);
    }
    losses.push(t.loss_async(&batch).await.unwrap());
    let want = fixture("losses");
    for (k, (g, w)) in losses.iter().zip(&want).enumerate() {
        let d = (g - *w as f64).abs() / *w as f64;
        console_log!("loss {k}: WebGPU {g:.6}, PEFT {w:.6}, relative {d:.1e}");
        assert!(d <= 1e-4, "loss {k}: {g} vs PEFT {w}");
    }
    let mut cpu = Trainer::new(ad, cfg).unwrap();
    for _ in 0..5 {
        cpu.step(&Base::new(&w), &batch).unwrap();
    }
    let got = t.adapter_async().await.unwrap();
    let peft = read_peft(INIT_CFG, FINAL_ST, &w.config, ["adapter_config.json", "adapter_model.safetensors"]).unwrap();
    let (gpu_peft, cpu_peft, rel) = (max_rel(&got, &peft), max_rel(&cpu.adapter, &peft), max_rel(&got, &cpu.adapter));
    console_log!(
        "adapter after 5 steps, relative: WebGPU vs PEFT {gpu_peft:.1e}, CPU vs PEFT {cpu_peft:.1e}, WebGPU vs CPU {rel:.1e}"
    );
    // Five AdamW steps amplify rounding where a gradient is near zero (the update is m/√v either
    // way), so the adapters agree less closely than the losses (2.4e-7). Measured in Chromium
    // 2026-12-04: WebGPU vs PEFT 7.1e-4, the CPU trainer (sgemm's simd128 kernel) vs PEFT 1.3e-3,
    // WebGPU vs CPU 2.0e-3. Natively the CPU trainer is held to 1e-3 per tensor (lora_reference).
    assert!(gpu_peft <= 2e-3 && cpu_peft <= 3e-3, "{gpu_peft} {cpu_peft}");
    assert!(rel <= 4e-3, "{rel}");
    let state = t.optimizer_state_async().await.unwrap();
    assert_eq!(state.step, 5);
    assert!(max_rel(&state.v, &cpu.optimizer_state().v) <= 1e-3);
}
