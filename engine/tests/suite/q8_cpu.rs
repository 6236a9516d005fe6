//! Q8_0 weights kept quantized on the CPU (`cpu::q8`, `QuantWeights`) against the dequantized
//! reference (`quant::dequantize` / the v2 reader's f32 weights, run by the f32 path): logits of
//! the shared stories260K v2 file and of the GGUF Q8_0 fixture (also against transformers on
//! gguf-py's dequantization), identical greedy tokens, awkward shapes, 1/2/3 threads giving the
//! same bits, and the bytes a backend holds. (The simd128 kernel is tested in fast_kernels.rs,
//! which also runs in wasm.)
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::sync::Arc;

use common::{greedy_run, max_abs, max_diff, tensor};
use tinylm_engine::cpu::q8::{self, Q8Rows};
use tinylm_engine::cpu::{ops, CpuBackend, Kernels};
use tinylm_engine::generate::Backend;
use tinylm_engine::pool;
use tinylm_engine::quant::{dequantize, quantize, DType};
use tinylm_engine::quant_weights::QuantWeights;
use tinylm_engine::randmodel::{det_uniform, named_shape, random_weights};
use tinylm_engine::{checkpoint, LoadedModel, NamedFile, Weights};

/// The CPU tolerance against the dequantized reference: 1e-5·max(1, max|logit|).
/// Measured: stories260K v2 ≤ 8.5e-7, GGUF Q8_0 fixture ≤ 2.0e-6 (relative, against either
/// reference): `scale·Σq·x` rounds in another order than `Σ(q·scale)·x`.
const TOL: f32 = 1e-5;

fn v2_file() -> Vec<u8> {
    common::read("models/stories260K.v2-q80.bin")
}

fn gguf_q8_file() -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats/gguf/quant.q8_0.gguf");
    std::fs::read(p).unwrap()
}

fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    max_diff(got, want) / max_abs(want).max(1.0)
}

#[test]
fn v2_files_are_held_quantized_and_match_the_dequantized_reference() {
    let file = v2_file();
    let m = LoadedModel::open(&[NamedFile::new("stories260K.v2-q80.bin", &file)]).unwrap();
    let q = m.quantized().expect("a v2 file is held as Q8_0").clone();
    let (dense, _) = checkpoint::read(&file, "v2").unwrap();
    assert_eq!(q.dequantize(), dense, "QuantWeights dequantize exactly as the v2 reader does");

    let tokens: Vec<u32> = (0..48).map(|i| (i * 37 + 1) % 512).collect();
    let (want, want_greedy) = greedy_run(&mut CpuBackend::reference(dense), &tokens, 200);
    for k in [Kernels::Reference, Kernels::Fast] {
        let (got, greedy) = greedy_run(&mut CpuBackend::with_kernels(q.clone(), k), &tokens, 200);
        let err = relative_error(&got, &want);
        assert!(err <= TOL, "{k:?}: max error {err:e} (relative)");
        assert_eq!(greedy, want_greedy, "{k:?}: greedy tokens");
    }
    // The model's own backend is the quantized one.
    let b = m.cpu();
    assert!(b.weights.quantized().is_some() && b.name().contains("q8"), "{}", b.name());
}

#[test]
fn v2_quantized_logits_match_transformers_on_the_dequantized_weights() {
    // The shared fixture: transformers on the v2 file's weights as export.py stored them.
    let r = common::read("reference/stories260K_v2_q80_logits.safetensors");
    let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
    let (_, want) = tensor(&r, "logits");
    let (q, _) = checkpoint::read_quant(&v2_file(), "v2").unwrap();
    let (got, _) = greedy_run(&mut CpuBackend::new(q), &tokens, 0);
    let err = relative_error(&got, &want);
    assert!(err <= TOL, "max error {err:e} (relative)");
}

#[test]
fn gguf_q8_0_is_held_quantized_and_matches_both_references() {
    let file = gguf_q8_file();
    let m = LoadedModel::open(&[NamedFile::new("quant.q8_0.gguf", &file)]).unwrap();
    let q = m.quantized().expect("GGUF Q8_0 matrices are held as Q8_0").clone();
    let r = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats/reference/quant.q8_0.gguf.safetensors"),
    )
    .unwrap();
    let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
    let (_, transformers) = tensor(&r, "logits");
    let want_greedy: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
    let (dequantized, _) = greedy_run(&mut CpuBackend::reference(q.dequantize()), &tokens, 0);
    for k in [Kernels::Reference, Kernels::Fast] {
        let (got, greedy) = greedy_run(&mut CpuBackend::with_kernels(q.clone(), k), &tokens, want_greedy.len());
        for (what, want) in [("dequantized f32 path", &dequantized), ("transformers", &transformers)] {
            let err = relative_error(&got, want);
            assert!(err <= TOL, "{k:?} vs {what}: max error {err:e} (relative)");
        }
        assert_eq!(greedy, want_greedy, "{k:?}: greedy tokens");
    }
}

/// A Q8_0 matrix `[rows, cols]` with flat groups of `group` (random int8 values and scales).
fn random_q8(seed: u64, rows: usize, cols: usize, group: usize) -> (Vec<i8>, Vec<f32>) {
    let n = rows * cols;
    let q = det_uniform(seed, "q", n, 127.0, 0.0).iter().map(|v| v.round() as i8).collect();
    let scales = det_uniform(seed, "s", n.div_ceil(group), 0.01, 0.012);
    (q, scales)
}

fn dequantized(q: &[i8], scales: &[f32], group: usize) -> Vec<f32> {
    q.iter().enumerate().map(|(i, &v)| v as f32 * scales[i / group]).collect()
}

#[test]
fn kernels_match_the_dequantized_product_on_awkward_shapes() {
    // (rows, cols, group): groups within rows (GGUF's 32, v2's 64, 16), rows not a multiple of
    // 8 or of a block, and groups straddling rows (172 columns in groups of 64, as stories260K's
    // w2; 40 in groups of 32).
    let shapes = [(1, 32, 32), (7, 64, 32), (13, 96, 32), (37, 288, 64), (9, 48, 16), (19, 172, 64), (5, 40, 32), (600, 768, 32)];
    for (i, &(rows, cols, group)) in shapes.iter().enumerate() {
        let (q, scales) = random_q8(i as u64, rows, cols, group);
        let x = det_uniform(i as u64, "x", cols, 1.0, 0.0);
        let mut want = vec![0f32; rows];
        ops::matmul(&mut want, &x, &dequantized(&q, &scales, group));
        let view = Q8Rows { cols, group, offset: 0, q: &q, scales: &scales };
        let (mut fast, mut portable) = (vec![0f32; rows], vec![0f32; rows]);
        q8::matvec(&mut fast, &x, view);
        q8::portable(&mut portable, &x, view);
        for (name, got) in [("fast", &fast), ("portable", &portable)] {
            // Measured ≤ 9.4e-7 of max(1, max|y|) (600×768; the others ≤ 3.7e-7).
            let err = relative_error(got, &want);
            assert!(err <= 1e-5, "{name} {rows}×{cols}/{group}: {err:e}");
        }
        // Any block of rows, starting anywhere (inside a group too), gives those rows' values.
        for (first, n) in [(1, rows - 1), (rows / 2, rows - rows / 2), (rows - 1, 1)] {
            let mut part = vec![0f32; n];
            q8::rows(&mut part, &x, view.rows(first, n));
            assert_eq!(part, fast[first..first + n], "{rows}×{cols}/{group} rows {first}..+{n}");
        }
    }
}

#[test]
fn one_two_and_three_threads_give_the_same_bits() {
    let (q, scales) = random_q8(9, 1031, 288, 32);
    let x = det_uniform(9, "x", 288, 1.0, 0.0);
    let view = Q8Rows { cols: 288, group: 32, offset: 0, q: &q, scales: &scales };
    let on = |threads| {
        let mut out = vec![0f32; 1031];
        pool::install(pool::with_threads(threads), || q8::matvec(&mut out, &x, view));
        out
    };
    let one = on(1);
    let mut single = vec![0f32; 1031];
    q8::rows(&mut single, &x, view);
    assert_eq!(one, single);
    for t in [2, 3] {
        assert!(one.iter().zip(on(t)).all(|(a, b)| a.to_bits() == b.to_bits()), "{t} threads");
    }
    // And a whole model: the v2 file's logits at 1, 2 and 3 threads.
    let (w, _) = checkpoint::read_quant(&v2_file(), "v2").unwrap();
    let w = Arc::new(w);
    let tokens: Vec<u32> = (0..20).map(|i| (i * 53 + 1) % 512).collect();
    let logits = |threads| pool::install(pool::with_threads(threads), || greedy_run(&mut CpuBackend::new(w.clone()), &tokens, 8));
    let base = logits(1);
    for t in [2, 3] {
        let other = logits(t);
        assert!(base.0.iter().zip(&other.0).all(|(a, b)| a.to_bits() == b.to_bits()) && base.1 == other.1, "{t} threads");
    }
}

/// An s15m-shaped model with every matrix quantized to GGUF's Q8_0 (blocks of 32).
fn s15m_q8() -> (Weights, QuantWeights) {
    let (c, seed) = named_shape("s15m").unwrap();
    let w = random_weights(&c, seed).unwrap();
    let gguf = tinylm_engine::formats::write::gguf(&w, DType::Q8_0, None, "s15m").unwrap();
    let m = LoadedModel::open(&[NamedFile::new("s15m.q8_0.gguf", &gguf)]).unwrap();
    let q = Arc::unwrap_or_clone(m.quantized().expect("held as Q8_0").clone());
    (w, q)
}

#[test]
fn a_q8_0_s15m_backend_holds_about_a_quarter_of_the_f32_bytes() {
    let (w, q) = s15m_q8();
    let params = w.config.n_params();
    let f32_bytes = CpuBackend::new(w).weight_bytes();
    let q8 = CpuBackend::new(q).weight_bytes();
    assert_eq!(f32_bytes, 4 * params);
    // Per 32 weights: 32 int8 and one f32 scale = 36 bytes against 128 (28.1%); the norms
    // (f32, 0.02% of the parameters) add a little.
    let ratio = q8 as f64 / f32_bytes as f64;
    assert!((0.280..0.283).contains(&ratio), "Q8_0 holds {q8} B against f32's {f32_bytes} B: {ratio:.4}");
}

#[test]
fn the_model_dequantizes_only_when_an_f32_path_asks() {
    let file = v2_file();
    let m = LoadedModel::open(&[NamedFile::new("stories260K.v2-q80.bin", &file)]).unwrap();
    let quant = m.quantized().unwrap().size_bytes();
    assert_eq!(m.held_bytes(), quant, "nothing in f32 before something needs it");
    let dense = m.weights().size_bytes();
    assert_eq!(m.held_bytes(), quant + dense);
    let again = m.clone();
    assert!(Arc::ptr_eq(again.weights(), m.weights()), "clones share the one dequantized copy");
}

#[test]
fn q8_0_blocks_read_as_the_dequantizer_reads_them() {
    let w = det_uniform(4, "w", 96, 1.0, 0.0);
    let blocks = quantize(DType::Q8_0, &w).unwrap();
    let m = tinylm_engine::quant_weights::Q8Matrix::from_ggml(&blocks);
    let mut want = Vec::new();
    dequantize(DType::Q8_0, &blocks, &mut want);
    assert_eq!(tinylm_engine::quant_weights::Matrix::Q8(m).dequantize(), want);
}

/// Auto trying the GPU for a quantized model, and failing, keeps no f32 copy: the CPU runs the
/// Q8_0 weights and the model holds only those (issue 24). The GPU is made to fail on purpose
/// (an f16 classifier without the fused path is refused after the upload), so that this holds
/// on a machine with a GPU as well as on one without.
#[cfg(feature = "gpu")]
#[test]
fn a_failed_gpu_start_leaves_no_f32_copy_of_a_quantized_model() {
    use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuOptions, Reason};
    let file = v2_file();
    let m = LoadedModel::open(&[NamedFile::new("stories260K.v2-q80.bin", &file)]).unwrap();
    let quant = m.quantized().unwrap().size_bytes();
    let failing = GpuOptions { f16_classifier: true, fused: false, ..GpuOptions::default() };
    let opened = m.open_backend(BackendChoice::Auto, failing).unwrap();
    assert!(matches!(opened.reason, Reason::NoUsableGpu(_)), "the GPU was refused");
    assert!(matches!(opened.backend, AnyBackend::Cpu(_)));
    assert_eq!(m.held_bytes(), quant, "only the Q8_0 weights stay held");
    assert!(m.open_backend(BackendChoice::Gpu, failing).is_err());
    assert_eq!(m.held_bytes(), quant);
}
