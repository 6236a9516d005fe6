//! The GPU path on WebGPU in a real browser (headless Chromium; its SwiftShader adapter),
//! against the CPU path compiled to the same wasm and the stories260K reference. Run with
//! (webdriver.json in engine/ supplies Chromium and --enable-unsafe-webgpu):
//!
//! ```sh
//! WASM_BINDGEN_TEST_TIMEOUT=600 CHROMEDRIVER=/usr/bin/chromedriver \
//!   CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test -p tinylm-engine --target wasm32-unknown-unknown --test gpu_browser
//! ```
//! (About 50 s on 2 cores; SwiftShader is slow, hence the timeout above the runner's 20 s
//! default. Add `-- --nocapture` to see the measured differences.)
#![cfg(target_arch = "wasm32")]

use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::{Generation, Generator, Step};
use tinylm_engine::gpu::{GpuBackend, GpuOptions};
use tinylm_engine::randmodel::random_tokens;
use tinylm_engine::trace::{inspect, steering_direction, Ablation, CpuModel, Edits, HeadId, HeadMeansRun, Intervention, Steer};
use tinylm_engine::{checkpoint, Sampler, Weights};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

#[path = "common/mixed.rs"]
mod mixed;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("../../../shared/data/models/stories260K.bin");
const REFERENCE: &str = include_str!("../../../shared/data/reference/stories260K_reference.json");

fn weights() -> Weights {
    checkpoint::read(MODEL, "stories260K.bin").unwrap().0
}

fn reference_greedy() -> Vec<u32> {
    let v: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    v["greedy_empty_prompt_256_steps"]["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

async fn gpu(w: &Weights) -> GpuBackend {
    GpuBackend::new_async(w, GpuOptions::default()).await.expect("a WebGPU adapter (Chromium needs --enable-unsafe-webgpu)")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| nan_max(m, (x - y).abs()))
}

/// The larger of `m` and `v`, NaN if either is (`f32::max` would skip a NaN result).
fn nan_max(m: f32, v: f32) -> f32 {
    if m.is_nan() || v.is_nan() {
        f32::NAN
    } else {
        m.max(v)
    }
}

#[wasm_bindgen_test]
async fn webgpu_inspection_matches_the_cpu_path() {
    let w = weights();
    let tokens = random_tokens(3, 160, 512);
    let mut g = gpu(&w).await;
    let got = g.inspect_async(&tokens).await.unwrap();
    let want = inspect(&mut CpuBackend::new(w), &tokens).unwrap();
    let tol = 1e-4 * want.logits.iter().fold(1f32, |m, v| m.max(v.abs()));
    let (dl, da) = (max_diff(&got.logits, &want.logits), max_diff(&got.attn, &want.attn));
    console_log!("{}: 160 positions, logits max|Δ| {dl:.2e} (tolerance {tol:.2e}), attention {da:.2e}", g.name());
    assert!(dl <= tol, "logits {dl}");
    assert!(da <= 1e-5, "attention {da}");
}

/// Knock-outs (mean ablation), skipped blocks and steering in one change, on WebGPU's batched
/// and one-token paths against the CPU path with the same change (itself checked against
/// transformers in tests/suite/interp.rs); nothing changed is the unchanged model exactly.
#[wasm_bindgen_test]
async fn webgpu_knockouts_and_steering_match_the_cpu_path() {
    use tinylm_engine::generate::Backend;
    let w = weights();
    let c = w.config;
    let tokens = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];
    let means = HeadMeansRun::run(&CpuModel::new(&w), &tokens).unwrap();
    let happy = inspect(&mut CpuBackend::new(w.clone()), &[1, 338, 286, 393, 426]).unwrap();
    let sad = inspect(&mut CpuBackend::new(w.clone()), &[1, 338, 286, 296, 418, 426]).unwrap();
    let direction = steering_direction(&[happy], &[sad], 2).unwrap();
    let iv = Intervention {
        ablate: vec![HeadId { layer: 0, head: 2 }, HeadId { layer: 3, head: 0 }],
        ablation: Ablation::Mean,
        skip_attn: vec![1],
        skip_mlp: vec![3],
        steer: Some(Steer { layer: 2, direction, strength: 4.0 }),
    };
    let edits = Edits::new(&c, &iv, Some(&means)).unwrap();
    let mut cpu = CpuBackend::new(w.clone());
    cpu.set_edits(Some(&edits)).unwrap();
    let want = inspect(&mut cpu, &tokens).unwrap().logits;
    let mut g = gpu(&w).await;
    let plain = g.inspect_async(&tokens).await.unwrap();
    g.set_edits(Some(&edits)).unwrap();
    let batched = g.inspect_async(&tokens).await.unwrap().logits;
    let mut one = Vec::new();
    for (pos, &t) in tokens.iter().enumerate() {
        one.extend_from_slice(g.forward_async(t, pos, None).await.unwrap());
    }
    let (db, dt) = (max_diff(&batched, &want), max_diff(&one, &want));
    console_log!("{}: knock-outs + skips + steering, logits max|Δ| batched {db:.2e}, per token {dt:.2e}", g.name());
    assert!(db <= 1e-4 && dt <= 1e-4, "batched {db}, per token {dt}");
    assert!(max_diff(&want, &plain.logits) > 0.1, "the change moves the logits");
    g.set_edits(Some(&Edits::new(&c, &Intervention::default(), None).unwrap())).unwrap();
    assert!(g.inspect_async(&tokens).await.unwrap() == plain, "no change is the unchanged model");
}

async fn generate(g: &mut GpuBackend, steps: usize, s: &mut Sampler) -> Vec<u32> {
    g.generate_async(&[1], steps, s, |_: Step| true).await.unwrap()
}

/// Three sequences in one pass (`forward_sequences_async`), each with its own KV cache, through
/// Chromium's WGSL compiler: each row's logits against that sequence alone on the CPU path.
#[wasm_bindgen_test]
async fn webgpu_sequences_in_one_pass_match_single_runs() {
    use tinylm_engine::generate::Backend;
    let w = weights();
    let mut g = gpu(&w).await;
    g.set_sequences(3).unwrap();
    let seqs: Vec<Vec<u32>> = (0..3).map(|k| random_tokens(k + 21, 16, 512)).collect();
    let mut cpus: Vec<CpuBackend> = (0..3).map(|_| CpuBackend::new(w.clone())).collect();
    let mut worst = 0f32;
    for pos in 0..16 {
        let tokens: Vec<u32> = seqs.iter().map(|s| s[pos]).collect();
        let got = g.forward_sequences_async(&tokens, pos).await.unwrap();
        for (k, cpu) in cpus.iter_mut().enumerate() {
            let want = cpu.forward(tokens[k], pos).unwrap();
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            let err = max_diff(&got[k * 512..(k + 1) * 512], want) / scale;
            assert!(err <= 1e-4, "sequence {k} at position {pos}: {err}");
            worst = nan_max(worst, err);
        }
    }
    console_log!("three sequences in one pass: worst error {worst:.2e} of the largest logit");
}

#[wasm_bindgen_test]
async fn webgpu_greedy_generation_matches_the_reference() {
    let mut g = gpu(&weights()).await;
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    let ids = generate(&mut g, 256, &mut s).await;
    assert_eq!(ids, reference_greedy());
    assert_eq!((g.stats().submits, g.stats().bytes_read), (256, 1024));
}

#[wasm_bindgen_test]
async fn webgpu_sampling_equals_the_cpu_path() {
    let w = weights();
    let mut cs = Sampler::new(1.0, 0.9, 133742).unwrap();
    let mut cpu = CpuBackend::new(w.clone());
    let mut gen = Generation::new(vec![1], 200, &w.config).unwrap();
    while gen.step(&mut cpu, &mut cs).unwrap().is_some() {}
    let mut gs = Sampler::new(1.0, 0.9, 133742).unwrap();
    let got = generate(&mut gpu(&w).await, 200, &mut gs).await;
    assert_eq!(got, gen.tokens);
    assert_eq!(gs.rng, cs.rng);
}

/// Quantized weights kept quantized on WebGPU (`gpu::packing`'s int8 form for Q8_0, the files' own
/// blocks for Q4_K_M and the Q5 mix; Chromium's own WGSL compiler, stricter than naga's): the
/// GGUF Q8_0, Q4_K_M, Q5 mix, F16 and BF16 fixtures' logits against
/// transformers on gguf's dequantized weights, batched and per token, and a llama2.c v2 Q8_0
/// file's greedy story against the CPU path on its dequantized weights. (tests/suite/gpu_quantized.rs
/// checks every decode path on lavapipe.)
#[wasm_bindgen_test]
async fn webgpu_keeps_quantized_weights_quantized() {
    use tinylm_engine::gpu::WeightFormat;
    use tinylm_engine::{LoadedModel, NamedFile};
    let cases: [(&str, &[u8], &[u8], WeightFormat); 5] = [
        (
            "quant.q8_0.gguf",
            include_bytes!("fixtures/formats/gguf/quant.q8_0.gguf"),
            include_bytes!("fixtures/formats/reference/quant.q8_0.gguf.safetensors"),
            WeightFormat::Int8 { group: 32, mins: false },
        ),
        (
            "quant.q4_k_m.gguf",
            include_bytes!("fixtures/formats/gguf/quant.q4_k_m.gguf"),
            include_bytes!("fixtures/formats/reference/quant.q4_k_m.gguf.safetensors"),
            WeightFormat::Blocks,
        ),
        // Q5_0, Q5_1 and Q4_1 mixed in one chunk, in their own blocks.
        (
            "quant.q5_mix.gguf",
            include_bytes!("fixtures/formats/gguf/quant.q5_mix.gguf"),
            include_bytes!("fixtures/formats/reference/quant.q5_mix.gguf.safetensors"),
            WeightFormat::Blocks,
        ),
        // F16 and BF16 kept as read, two to a word.
        (
            "gqa_untied.f16.gguf",
            include_bytes!("fixtures/formats/gguf/gqa_untied.f16.gguf"),
            include_bytes!("fixtures/formats/reference/gqa_untied.f16.gguf.safetensors"),
            WeightFormat::Half { bf16: false },
        ),
        (
            "gqa_untied.bf16.gguf",
            include_bytes!("fixtures/formats/gguf/gqa_untied.bf16.gguf"),
            include_bytes!("fixtures/formats/reference/gqa_untied.bf16.gguf.safetensors"),
            WeightFormat::Half { bf16: true },
        ),
    ];
    // F16 matrices are read as f16 through shader-f16 where the adapter offers it.
    let f16 = tinylm_engine::gpu::GpuContext::with_features_async(wgpu::Features::empty()).await.unwrap().offers_shader_f16();
    console_log!("the adapter offers shader-f16: {f16}");
    for (name, file, reference, format) in cases {
        let format = match format {
            WeightFormat::Half { bf16: false } if f16 => WeightFormat::F16,
            f => f,
        };
        let m = LoadedModel::open(&[NamedFile::new(name, file)]).unwrap();
        let st = safetensors::SafeTensors::deserialize(reference).unwrap();
        let floats = |key: &str| -> Vec<f32> {
            let t = st.tensor(key).unwrap();
            match t.dtype() {
                safetensors::Dtype::F32 => t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
                _ => t.data().chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
            }
        };
        let tokens: Vec<u32> = floats("tokens").iter().map(|&t| t as u32).collect();
        let want = floats("logits");
        let mut g = GpuBackend::new_quantized_async(m.quantized().unwrap(), GpuOptions::default()).await.unwrap();
        assert_eq!(g.weight_format(), format);
        let tol = 1e-4 * want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let batched = g.inspect_async(&tokens).await.unwrap().logits;
        let mut decoded = Vec::new();
        for (p, &t) in tokens.iter().enumerate() {
            decoded.extend_from_slice(g.forward_async(t, p, None).await.unwrap());
        }
        for (path, got) in [("batched", batched), ("decode", decoded)] {
            let d = max_diff(&got, &want);
            console_log!("{name} on {}, {path}: logits max|Δ| {d:.2e} (tolerance {tol:.2e})", g.name());
            assert!(d <= tol, "{name} {path}: {d}");
        }
    }

    // Held Q8_0 (int8 values, f32 scales) beside Q4_0, Q4_K, Q6_K and Q5_0 blocks, as in a real
    // SmolLM2 Q4_K_M file (tests/suite/gpu_quantized.rs builds the same mix): against the CPU path on
    // the dequantized weights, per token.
    {
        use tinylm_engine::generate::Backend;
        let open = |name: &str, bytes: &[u8]| LoadedModel::open(&[NamedFile::new(name, bytes)]).unwrap();
        let q8 = open("quant.q8_0.gguf", include_bytes!("fixtures/formats/gguf/quant.q8_0.gguf"));
        let q4 = open("quant.q4_0.gguf", include_bytes!("fixtures/formats/gguf/quant.q4_0.gguf"));
        let km = open("quant.q4_k_m.gguf", include_bytes!("fixtures/formats/gguf/quant.q4_k_m.gguf"));
        let q5 = open("quant.q5_mix.gguf", include_bytes!("fixtures/formats/gguf/quant.q5_mix.gguf"));
        let mixed = mixed::held_q8_among_blocks(&q8, &q4, &km, &q5);
        let base = &mixed;
        let mut cpu = CpuBackend::new(mixed.dequantize());
        let mut g = GpuBackend::new_quantized_async(&mixed, GpuOptions::default()).await.unwrap();
        assert_eq!(g.weight_format(), WeightFormat::Blocks);
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for (p, t) in (0..12u32).map(|i| (i * 37 + 5) % base.config.vocab_size as u32).enumerate() {
            want.extend_from_slice(cpu.forward(t, p).unwrap());
            got.extend_from_slice(g.forward_async(t, p, None).await.unwrap());
        }
        let tol = 1e-4 * want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let d = max_diff(&got, &want);
        console_log!("held Q8_0 among blocks on {}: logits max|Δ| {d:.2e} (tolerance {tol:.2e})", g.name());
        assert!(d <= tol, "held Q8_0 among blocks: {d}");
    }

    // stories260K as a v2 Q8_0 file in groups of 4 (whole groups in every row).
    let v2 = checkpoint::write_v2(&weights(), 4).unwrap();
    let m = LoadedModel::open(&[NamedFile::new("stories260K_q8.bin", &v2)]).unwrap();
    let dense = m.quantized().unwrap().dequantize();
    let mut cpu = CpuBackend::new(dense.clone());
    let mut gen = Generation::new(vec![1], 200, &dense.config).unwrap();
    let mut cs = Sampler::new(0.0, 0.9, 1).unwrap();
    while gen.step(&mut cpu, &mut cs).unwrap().is_some() {}
    let mut g = GpuBackend::new_quantized_async(m.quantized().unwrap(), GpuOptions::default()).await.unwrap();
    let got = generate(&mut g, 200, &mut Sampler::new(0.0, 0.9, 1).unwrap()).await;
    assert_eq!(got, gen.tokens);
}
