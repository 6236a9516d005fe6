//! Q8_0 weights kept Q8_0 on the GPU (`gpu::packing`; lavapipe here, Chromium's WebGPU in
//! gpu_browser.rs): the kernels dequantize as they read. Against the dequantized reference, on
//! every decode path (three dispatches, five fused, unfused, batched) and with weight chunks
//! split small: the GGUF Q8_0 fixture against transformers on gguf's dequantized weights, and
//! llama2.c v2 files against the CPU reference on their dequantized weights; greedy tokens
//! identical; the GPU holds about 30% of the f32 weights' bytes. Other quantized models' f32
//! copy for the GPU is refused in words when the memory has no room for it.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{max_abs, max_diff, stories260k, tensor};
use tinylm_engine::checkpoint::write_v2;
use tinylm_engine::cpu::{self, Kernels, State};
use tinylm_engine::generate::{Backend, Generator};
use tinylm_engine::gpu::{q8_format, BackendChoice, GpuBackend, GpuOptions, WeightFormat};
use tinylm_engine::sampler::argmax;
use tinylm_engine::{LoadedModel, NamedFile, Sampler, Weights};

/// The GPU tolerance, relative to max(1, max|logit|).
const GPU_TOL: f32 = 1e-4;

fn open(name: &str, bytes: &[u8]) -> LoadedModel {
    let m = LoadedModel::open(&[NamedFile::new(name, bytes)]).unwrap();
    assert!(m.quantized().is_some(), "{name} is kept quantized");
    m
}

/// The decode paths to check, each with its options.
fn variants() -> Vec<(&'static str, GpuOptions)> {
    let d = GpuOptions::default();
    vec![
        ("three dispatches", d),
        ("five fused", GpuOptions { three_dispatch: false, ..d }),
        ("unfused", GpuOptions { fused: false, ..d }),
        // Chunks of 64 rows (f32-sized): the classifier, embedding and stacked q|k|v split.
        ("split chunks", GpuOptions { max_weight_binding: Some(64 * 4 * 256), ..d }),
    ]
}

/// Logits at every position, per token (decode) and in one batch (prefill / inspect).
fn gpu_logits(g: &mut GpuBackend, tokens: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let decoded = tokens.iter().enumerate().flat_map(|(p, &t)| g.forward(t, p).unwrap().to_vec()).collect();
    (decoded, g.inspect(tokens).unwrap().logits)
}

fn check(what: &str, m: &LoadedModel, tokens: &[u32], want: &[f32]) {
    let q = m.quantized().unwrap();
    let group = match q8_format(q) {
        Some(WeightFormat::Q8 { group }) => group,
        f => panic!("{what}: {f:?}"),
    };
    let scale = max_abs(want).max(1.0);
    for (name, opts) in variants() {
        let mut g = GpuBackend::new_q8(q, opts).expect("a GPU adapter (lavapipe)");
        assert_eq!(g.weight_format(), WeightFormat::Q8 { group });
        let (decoded, batched) = gpu_logits(&mut g, tokens);
        for (path, got) in [("decode", decoded), ("batched", batched)] {
            let err = max_diff(&got, want) / scale;
            println!("{what}, {name}, {path}: max error {err:.2e} (relative)");
            assert!(err <= GPU_TOL, "{what}, {name}, {path}: {err:e}");
        }
    }
}

/// Bytes the f32 GPU upload takes, against Q8_0's.
fn bytes_ratio(m: &LoadedModel) -> f64 {
    let q8 = GpuBackend::new_q8(m.quantized().unwrap(), GpuOptions::default()).unwrap().weight_bytes();
    let f32 = GpuBackend::new(&m.dense_weights(), GpuOptions::default()).unwrap().weight_bytes();
    q8 as f64 / f32 as f64
}

#[test]
fn gguf_q8_0_on_the_gpu_matches_transformers() {
    let m = open("quant.q8_0.gguf", &read_fixture("gguf/quant.q8_0.gguf"));
    let r = read_fixture("reference/quant.q8_0.gguf.safetensors");
    let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
    check("GGUF Q8_0", &m, &tokens, &tensor(&r, "logits").1);

    // Greedy tokens after the prompt: transformers' continuation.
    let want: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
    let mut g = GpuBackend::new_q8(m.quantized().unwrap(), GpuOptions::default()).unwrap();
    let mut got = Vec::new();
    let mut logits = g.prefill(&tokens).unwrap();
    for pos in tokens.len()..tokens.len() + want.len() {
        let next = argmax(&logits) as u32;
        got.push(next);
        logits = g.forward(next, pos).unwrap().to_vec();
    }
    assert_eq!(got, want);

    let ratio = bytes_ratio(&m);
    println!("GGUF Q8_0 on the GPU: {ratio:.3} of the f32 weights' bytes");
    assert!(ratio <= 0.30, "{ratio}");
}

/// The CPU reference's logits on the dequantized weights.
fn reference(w: &Weights, tokens: &[u32]) -> Vec<f32> {
    let mut s = State::new(&w.config);
    tokens
        .iter()
        .enumerate()
        .flat_map(|(p, &t)| cpu::forward_with(Kernels::Reference, w, &mut s, t, p, None).unwrap().to_vec())
        .collect()
}

#[test]
fn llama2c_v2_q8_on_the_gpu_matches_the_dequantized_reference() {
    // Groups of 4 divide every row of stories260K (dim 64, hidden 172).
    let bytes = write_v2(&stories260k(), 4).unwrap();
    let m = open("stories260K_q8.bin", &bytes);
    let dense = m.quantized().unwrap().dequantize();
    let prompt: Vec<u32> = vec![1, 403, 407, 261, 378, 22, 261, 499, 365, 267, 260, 426];
    check("v2 Q8_0 (groups of 4)", &m, &prompt, &reference(&dense, &prompt));

    // 200 greedy steps on the GPU (sampling there, tokens in flight) = the CPU on the f32 copy.
    let mut g = GpuBackend::new_q8(m.quantized().unwrap(), GpuOptions::default()).unwrap();
    let gpu = g.generate(&prompt, 200, &mut Sampler::new(0.0, 0.9, 1).unwrap(), |_| true).unwrap();
    let mut b = tinylm_engine::cpu::CpuBackend::new(dense.clone());
    let mut want = prompt.clone();
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    let mut logits = Vec::new();
    for (p, &t) in prompt.iter().enumerate() {
        logits = b.forward(t, p).unwrap().to_vec();
    }
    while want.len() < gpu.len() {
        let next = s.sample(&mut logits);
        want.push(next);
        logits = b.forward(next, want.len() - 1).unwrap().to_vec();
    }
    assert_eq!(gpu, want);

    // Through the loaded model, as the page opens it: the GPU keeps Q8_0.
    assert_eq!(gpu_format(&m), Some(WeightFormat::Q8 { group: 4 }));
    let ratio = bytes_ratio(&m);
    println!("v2 Q8_0 (groups of 4) on the GPU: {ratio:.3} of the f32 weights' bytes");
}

#[test]
fn groups_that_straddle_rows_take_the_f32_copy() {
    // llama2.c's default for stories260K: groups of 64, and w2's rows are 172 long.
    let m = open("stories260K_q8.bin", &write_v2(&stories260k(), 64).unwrap());
    assert_eq!(q8_format(m.quantized().unwrap()), None);
    let e = GpuBackend::new_q8(m.quantized().unwrap(), GpuOptions::default()).err().unwrap().to_string();
    assert!(e.contains("not all Q8_0 in whole-group rows"), "{e}");
    assert_eq!(gpu_format(&m), Some(WeightFormat::F32));
    // The Q4_K_M fixture (Q4_K and Q6_K blocks): no GPU kernels for those blocks yet.
    let m = open("quant.q4_k_m.gguf", &read_fixture("gguf/quant.q4_k_m.gguf"));
    assert_eq!(q8_format(m.quantized().unwrap()), None);
    assert_eq!(gpu_format(&m), Some(WeightFormat::F32));
}

/// The format of the weights on the GPU when the model opens its GPU backend (the page's way).
fn gpu_format(m: &LoadedModel) -> Option<WeightFormat> {
    let mut b = m.open_backend(BackendChoice::Gpu, GpuOptions::default()).unwrap().backend;
    b.gpu().map(|g| g.weight_format())
}

fn read_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats").join(rel)).unwrap()
}

/// A quantized model's f32 copy for the GPU is asked for before it is made: with no room for it
/// (as in a browser tab near wasm32's 4 GiB, `memory::pretend` here), WebGPU is refused in words
/// and Auto runs on the CPU saying why; a Q8_0 model needs no copy and opens on the GPU.
#[test]
fn an_f32_copy_without_room_is_refused_before_it_is_made() {
    use tinylm_engine::{memory, Error};
    let m = open("quant.q4_k_m.gguf", &read_fixture("gguf/quant.q4_k_m.gguf"));
    let copy = m.dense_bytes();
    assert_eq!(copy, m.dense_weights().size_bytes());
    memory::pretend(Some((1000, 1000 + copy - 1)));
    let e = m.open_backend(BackendChoice::Gpu, GpuOptions::default()).err().unwrap();
    assert!(matches!(e, Error::OutOfMemory { needed, room, .. } if needed == copy && room == copy - 1), "{e:?}");
    assert!(e.to_string().starts_with("an f32 copy of the weights for the GPU would take "), "{e}");
    let auto = m.open_backend(BackendChoice::Auto, GpuOptions::default()).unwrap();
    assert!(auto.backend.gpu_ref().is_none());
    assert!(auto.why().contains("an f32 copy of the weights for the GPU would take"), "{}", auto.why());

    let q8 = open("quant.q8_0.gguf", &read_fixture("gguf/quant.q8_0.gguf"));
    memory::pretend(Some((1000, 1000 + q8.dense_bytes() - 1)));
    assert_eq!(gpu_format(&q8), Some(WeightFormat::Q8 { group: 32 }));
    memory::pretend(Some((1000, 1000 + copy)));
    assert_eq!(gpu_format(&m), Some(WeightFormat::F32), "exactly the room needed");
    memory::pretend(None);
}
