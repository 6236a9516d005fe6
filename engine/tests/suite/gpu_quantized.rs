//! Quantized weights kept quantized on the GPU (`gpu::packing`: Q8_0 in `quant_int8`'s int8
//! form, types under a byte a weight in their own ggml blocks, `gpu::blocks`; lavapipe here,
//! Chromium's WebGPU in gpu_browser.rs): the kernels dequantize as they read; and F16/BF16
//! matrices kept as read, two to a word.
//! Against the dequantized reference, on every decode path (three dispatches, five fused,
//! unfused, batched) and with weight chunks split small: the GGUF Q8_0, Q4_0 and Q4_K_M fixtures
//! against transformers on gguf's dequantized weights, and a llama2.c v2 file against the CPU
//! reference on its dequantized weights; greedy tokens identical; the GPU's bytes against the f32
//! upload's. A model that cannot take the int8 form gets the f32 copy, which is refused in words
//! when the memory has no room for it.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use common::{max_abs, max_diff, stories260k, tensor};
use tinylm_engine::checkpoint::write_v2;
use tinylm_engine::cpu::{self, Kernels, State};
use tinylm_engine::generate::{Backend, Generator};
use tinylm_engine::gpu::{int8_format, kept_format, rope_table, BackendChoice, GpuBackend, GpuOptions, WeightFormat};
use tinylm_engine::quant_weights::{Matrix, QuantWeights};
use tinylm_engine::sampler::argmax;
use tinylm_engine::{LoadedModel, NamedFile, Sampler, Weights};

/// The GPU tolerance, relative to max(1, max|logit|).
const GPU_TOL: f32 = 1e-4;

fn open(name: &str, bytes: &[u8]) -> LoadedModel {
    let m = LoadedModel::open(&[NamedFile::new(name, bytes)]).unwrap();
    assert!(m.quantized().is_some(), "{name} is kept quantized");
    m
}

fn read_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats").join(rel)).unwrap()
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

/// Every decode path of `m` kept in `format` on the GPU against `want`.
fn check(what: &str, m: &LoadedModel, format: WeightFormat, tokens: &[u32], want: &[f32]) {
    check_weights(what, m.quantized().unwrap(), format, tokens, want);
}

/// Every decode path of `q` kept in `format` on the GPU against `want`.
fn check_weights(what: &str, q: &QuantWeights, format: WeightFormat, tokens: &[u32], want: &[f32]) {
    assert_eq!(kept_format(q), Some(format), "{what}");
    let scale = max_abs(want).max(1.0);
    for (name, opts) in variants() {
        let mut g = GpuBackend::new_quantized(q, opts).expect("a GPU adapter (lavapipe)");
        assert_eq!(g.weight_format(), on_this_gpu(format), "{what}");
        let (decoded, batched) = gpu_logits(&mut g, tokens);
        for (path, got) in [("decode", decoded), ("batched", batched)] {
            let err = max_diff(&got, want) / scale;
            println!("{what}, {name}, {path}: max error {err:.2e} (relative)");
            assert!(err <= GPU_TOL, "{what}, {name}, {path}: {err:e}");
        }
    }
}

/// The format the kernels read here: F16 halves through shader-f16 where the adapter has it
/// (lavapipe does), else unpacked from words.
fn on_this_gpu(kept: WeightFormat) -> WeightFormat {
    let f16 = tinylm_engine::gpu::GpuContext::new().unwrap().offers_shader_f16();
    match kept {
        WeightFormat::Half { bf16: false } if f16 => WeightFormat::F16,
        f => f,
    }
}

/// The GPU's weight bytes kept quantized, over the f32 upload's.
fn bytes_ratio(m: &LoadedModel) -> f64 {
    let kept = GpuBackend::new_quantized(m.quantized().unwrap(), GpuOptions::default()).unwrap().weight_bytes();
    let f32 = GpuBackend::new(&m.dense_weights(), GpuOptions::default()).unwrap().weight_bytes();
    kept as f64 / f32 as f64
}

#[test]
fn gguf_quantized_files_on_the_gpu_match_transformers() {
    // (file, its form on the GPU, the most of the f32 upload's bytes it may take)
    for (file, format, most) in [
        // Q8_0 in int8 words (coalesced reads; 1.125 bytes a weight against its own 1.0625).
        ("quant.q8_0.gguf", WeightFormat::Int8 { group: 32, mins: false }, 0.30),
        // Under a byte a weight: the file's own blocks, types mixed in one chunk (Q4_K_M's q|k|v
        // is Q4_K, Q4_K, Q6_K; q5_mix's is Q5_0, Q5_1, Q4_1).
        ("quant.q4_0.gguf", WeightFormat::Blocks, 0.16),
        ("quant.q4_k_m.gguf", WeightFormat::Blocks, 0.18),
        ("quant.q5_mix.gguf", WeightFormat::Blocks, 0.20),
    ] {
        let m = open(file, &read_fixture(&format!("gguf/{file}")));
        let r = read_fixture(&format!("reference/{file}.safetensors"));
        let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
        check(file, &m, format, &tokens, &tensor(&r, "logits").1);
        let want: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
        let g = GpuBackend::new_quantized(m.quantized().unwrap(), GpuOptions::default()).unwrap();
        assert_eq!(greedy_after(g, &tokens, want.len()), want, "{file}: transformers' continuation");

        let ratio = bytes_ratio(&m);
        println!("{file} on the GPU: {ratio:.3} of the f32 weights' bytes");
        assert!(ratio <= most, "{file}: {ratio}");
        if format == WeightFormat::Blocks {
            // The file's bytes as the CPU holds them, the RoPE table and each chunk's segment
            // table (6 chunks here, at most 3 segments each: 13 words and 3 bytes of padding).
            let q = m.quantized().unwrap();
            let rope = 4 * rope_table(&q.config).len() as u64;
            let extra = GpuBackend::new_quantized(q, GpuOptions::default()).unwrap().weight_bytes() - rope - q.size_bytes();
            println!("{file}: {extra} bytes beside the file's own");
            assert!(extra <= 6 * (13 * 4 + 3), "{file}: {extra}");
        }
        assert_eq!(gpu_format(&m), Some(format), "{file}, opened as the page opens it");
    }
}

/// `n` greedy tokens after prefilling `tokens`.
fn greedy_after(mut g: GpuBackend, tokens: &[u32], n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    let mut logits = g.prefill(tokens).unwrap();
    for pos in tokens.len()..tokens.len() + n {
        let next = argmax(&logits) as u32;
        got.push(next);
        logits = g.forward(next, pos).unwrap().to_vec();
    }
    got
}

/// F16 and BF16 matrices (GGUF files, HF folders) stay in their type on the GPU, two values to a
/// word (`WeightFormat::Half`; F16 read as f16 through shader-f16 where the adapter has it, as
/// lavapipe does): every decode path against transformers, greedy tokens equal, half the f32
/// upload's bytes.
#[test]
fn f16_and_bf16_files_stay_in_their_type_on_the_gpu() {
    for (rel, reference, bf16) in [
        ("gguf/gqa_untied.f16.gguf", "gqa_untied.f16.gguf", false),
        ("gguf/gqa_untied.bf16.gguf", "gqa_untied.bf16.gguf", true),
        ("hf/mha_tied_bf16", "mha_tied_bf16", true),
        ("hf/llama3_headdim_f16", "llama3_headdim_f16", false),
    ] {
        let m = common::open_format_fixture(rel);
        let r = read_fixture(&format!("reference/{reference}.safetensors"));
        let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
        check(rel, &m, WeightFormat::Half { bf16 }, &tokens, &tensor(&r, "logits").1);
        let want: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
        let g = GpuBackend::new_quantized(m.quantized().unwrap(), GpuOptions::default()).unwrap();
        assert_eq!(greedy_after(g, &tokens, want.len()), want, "{rel}: transformers' continuation");
        let ratio = bytes_ratio(&m);
        println!("{rel} on the GPU: {ratio:.3} of the f32 weights' bytes");
        assert!(ratio <= 0.55, "{rel}: {ratio}");
        assert_eq!(gpu_format(&m), Some(on_this_gpu(WeightFormat::Half { bf16 })), "{rel}, opened as the page opens it");
    }
}

/// llama.cpp's Q4_K_M of a model whose rows are not whole 256-value super-blocks (SmolLM2's dim
/// 576) mixes Q5_0, Q8_0 and Q6_K, and Q8_0 is held as int8 values with f32 scales, not as
/// blocks: one model here mixes every kind — held Q8_0, Q4_0, Q4_K, Q6_K, Q5_0, Q5_1, Q4_1 —
/// from the quantized fixtures (one model quantized differently), so stacked q|k|v and w1|w3
/// chunks hold three and two types. Against the CPU reference on its dequantized weights.
#[test]
fn a_mix_of_held_q8_0_and_blocks_stays_in_its_types_on_the_gpu() {
    let q8 = open("quant.q8_0.gguf", &read_fixture("gguf/quant.q8_0.gguf"));
    let q4 = open("quant.q4_0.gguf", &read_fixture("gguf/quant.q4_0.gguf"));
    let km = open("quant.q4_k_m.gguf", &read_fixture("gguf/quant.q4_k_m.gguf"));
    let q5 = open("quant.q5_mix.gguf", &read_fixture("gguf/quant.q5_mix.gguf"));
    let mixed = common::mixed::held_q8_among_blocks(&q8, &q4, &km, &q5);
    let base = &mixed;
    let types: Vec<&str> = mixed.kept_types().iter().map(|t| t.name()).collect();
    assert_eq!(types, ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q6_K"]);
    let prompt: Vec<u32> = (0..12).map(|i| (i * 37 + 5) % base.config.vocab_size as u32).collect();
    let dense = mixed.dequantize();
    check_weights("held Q8_0 among blocks", &mixed, WeightFormat::Blocks, &prompt, &reference(&dense, &prompt));
    // The GPU holds what the CPU holds, the RoPE table and the segment tables.
    let g = GpuBackend::new_quantized(&mixed, GpuOptions::default()).unwrap();
    let extra = g.weight_bytes() - 4 * rope_table(&mixed.config).len() as u64 - mixed.size_bytes();
    println!("held Q8_0 among blocks: {extra} bytes beside the held matrices'");
    assert!(extra <= 6 * (13 * 4 + 3), "{extra}");
}

/// Segments whose end is not a multiple of 4 rows, and f32 segments: head size 2 and one KV
/// head make q|k|v rows 32 (Q4_0) + 2 (f32) + 2 (Q4_0), so rows 32..35 read two segments at once.
#[test]
fn segments_that_end_inside_four_rows_and_f32_segments() {
    use tinylm_engine::gpu::f16_bits;
    use tinylm_engine::quant::DType;
    use tinylm_engine::quant_weights::BlockMatrix;
    use tinylm_engine::randmodel::{named_shape, random_weights};
    use tinylm_engine::weights::{tensor_specs, Tensor};
    let (micro, _) = named_shape("micro").unwrap();
    let c = tinylm_engine::Config {
        dim: 32,
        hidden_dim: 64,
        n_layers: 1,
        n_heads: 16,
        n_kv_heads: 1,
        head_dim: 2,
        vocab_size: 64,
        seq_len: 16,
        ..micro
    };
    let dense = random_weights(&c, 7).unwrap();
    // Q4_0 blocks of `rows` rows 32 wide: d = 0.05 and pseudo-random nibbles.
    let mut seed = 12345u32;
    let mut q4 = |rows: usize| {
        let mut out = Vec::new();
        for _ in 0..rows {
            out.extend_from_slice(&f16_bits(0.05).to_le_bytes());
            out.extend((0..16).map(|_| {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                (seed >> 24) as u8
            }));
        }
        Matrix::Blocks(BlockMatrix { dtype: DType::Q4_0, data: out })
    };
    // q|k|v: Q4_0, f32, Q4_0 (a misread of rows 34, 35 as f32 would be far off).
    let tensors = tensor_specs(&c)
        .iter()
        .map(|s| match s.tensor {
            Tensor::Wq => q4(32),
            Tensor::Wv => q4(2),
            t => Matrix::F32(dense.get(t).to_vec()),
        })
        .collect();
    let mixed = QuantWeights::from_tensors(c, tensors);
    let prompt: Vec<u32> = vec![1, 9, 33, 2, 60, 17, 5, 44];
    check_weights("Q4_0 and f32 segments", &mixed, WeightFormat::Blocks, &prompt, &reference(&mixed.dequantize(), &prompt));
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
    let format = WeightFormat::Int8 { group: 4, mins: false };
    check("v2 Q8_0 (groups of 4)", &m, format, &prompt, &reference(&dense, &prompt));

    // 200 greedy steps on the GPU (sampling there, tokens in flight) = the CPU on the f32 copy.
    let mut g = GpuBackend::new_quantized(m.quantized().unwrap(), GpuOptions::default()).unwrap();
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
    assert_eq!(gpu_format(&m), Some(format));
    println!("v2 Q8_0 (groups of 4) on the GPU: {:.3} of the f32 weights' bytes", bytes_ratio(&m));
}

/// llama2.c's own export of stories260K: groups of 64, and w2's rows are 172 long.
fn straddling() -> LoadedModel {
    open("stories260K_q8.bin", &write_v2(&stories260k(), 64).unwrap())
}

#[test]
fn groups_that_straddle_rows_take_the_f32_copy() {
    let m = straddling();
    assert_eq!(int8_format(m.quantized().unwrap()), None);
    let e = GpuBackend::new_quantized(m.quantized().unwrap(), GpuOptions::default()).err().unwrap().to_string();
    assert!(e.contains("nor all of one int8 form"), "{e}");
    assert_eq!(gpu_format(&m), Some(WeightFormat::F32));
}

/// The format of the weights on the GPU when the model opens its GPU backend (the page's way).
fn gpu_format(m: &LoadedModel) -> Option<WeightFormat> {
    let mut b = m.open_backend(BackendChoice::Gpu, GpuOptions::default()).unwrap().backend;
    b.gpu().map(|g| g.weight_format())
}

/// A quantized model's f32 copy for the GPU is asked for before it is made: with no room for it
/// (as in a browser tab near wasm32's 4 GiB, `memory::pretend` here), WebGPU is refused in words
/// and Auto runs on the CPU saying why; a model kept quantized needs no copy and opens on the GPU.
#[test]
fn an_f32_copy_without_room_is_refused_before_it_is_made() {
    use tinylm_engine::{memory, Error};
    let m = straddling();
    let copy = m.dense_bytes();
    assert_eq!(copy, m.dense_weights().size_bytes());
    memory::pretend(Some((1000, 1000 + copy - 1)));
    let e = m.open_backend(BackendChoice::Gpu, GpuOptions::default()).err().unwrap();
    assert!(matches!(e, Error::OutOfMemory { needed, room, .. } if needed == copy && room == copy - 1), "{e:?}");
    assert!(e.to_string().starts_with("an f32 copy of the weights for the GPU would take "), "{e}");
    let auto = m.open_backend(BackendChoice::Auto, GpuOptions::default()).unwrap();
    assert!(auto.backend.gpu_ref().is_none());
    assert!(auto.why().contains("an f32 copy of the weights for the GPU would take"), "{}", auto.why());

    let kept = open("quant.q4_k_m.gguf", &read_fixture("gguf/quant.q4_k_m.gguf"));
    memory::pretend(Some((1000, 1000 + kept.dense_bytes() - 1)));
    assert_eq!(gpu_format(&kept), Some(WeightFormat::Blocks));
    memory::pretend(Some((1000, 1000 + copy)));
    assert_eq!(gpu_format(&m), Some(WeightFormat::F32), "exactly the room needed");
    memory::pretend(None);
}
