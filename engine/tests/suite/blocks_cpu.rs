//! GGUF Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K matrices (and F16/BF16 ones, GGUF and HF) kept in
//! their blocks on the CPU (`cpu::blocks`,
//! `Matrix::Blocks`) against the dequantized reference (`quant::dequantize`, run by the f32
//! path): kernels on awkward shapes, 1/2/3 threads giving the same bits, the fixture models
//! quant.q4_0.gguf and quant.q4_k_m.gguf against transformers and the dequantized f32 path
//! (logits, greedy tokens), their f32 copy bit for bit the dequantizer's, and the bytes held.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::{greedy_run, max_abs, max_diff, tensor};
use tinylm_engine::cpu::blocks::{self, BlockRows};
use tinylm_engine::cpu::q8::Q8Rows;
use tinylm_engine::cpu::{ops, products, CpuBackend, Kernels};
use tinylm_engine::formats::gguf::Gguf;
use tinylm_engine::formats::llama;
use tinylm_engine::generate::Backend;
use tinylm_engine::pool;
use tinylm_engine::quant::{dequantize, DType};
use tinylm_engine::quant_weights::{BlockMatrix, Matrix, MatrixRef};
use tinylm_engine::randmodel::det_uniform;
use tinylm_engine::weights::tensor_specs;
use tinylm_engine::{LoadedModel, NamedFile};

/// The CPU tolerance: 1e-5·max(1, max|y|).
const TOL: f32 = 1e-5;

const TYPES: [DType; 6] = [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4K, DType::Q6K];

fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    max_diff(got, want) / max_abs(want).max(1.0)
}

/// `rows × cols` weights of `t` in blocks: random bytes, with the f16 scales set to sensible
/// values (a random f16 may be inf or NaN) so that weights are O(0.1–10).
fn random_blocks(t: DType, seed: u64, rows: usize, cols: usize) -> Vec<u8> {
    let (per, bytes) = t.block();
    let n = rows * cols / per * bytes;
    let mut data: Vec<u8> = det_uniform(seed, "b", n, 127.5, 127.5).iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect();
    let d = det_uniform(seed, "d", 2 * n / bytes, 0.02, 0.03);
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    for (k, b) in data.chunks_exact_mut(bytes).enumerate() {
        match t {
            DType::Q4_0 | DType::Q5_0 => b[0..2].copy_from_slice(&f16(10.0 * d[2 * k])),
            // d and the min m (weights v·d + m: the min negative, so weights straddle 0).
            DType::Q4_1 | DType::Q5_1 => {
                b[0..2].copy_from_slice(&f16(10.0 * d[2 * k]));
                b[2..4].copy_from_slice(&f16(-60.0 * d[2 * k + 1]));
            }
            DType::Q4K => {
                b[0..2].copy_from_slice(&f16(d[2 * k]));
                b[2..4].copy_from_slice(&f16(d[2 * k + 1]));
            }
            _ => b[208..210].copy_from_slice(&f16(0.1 * d[2 * k])),
        }
    }
    data
}

fn dequantized(t: DType, data: &[u8]) -> Vec<f32> {
    let mut out = Vec::new();
    dequantize(t, data, &mut out);
    out
}

#[test]
fn kernels_match_the_dequantized_product_on_awkward_shapes() {
    // (rows, blocks per row): one block, rows not a multiple of 8 or of a pool block, several
    // blocks per row, and a matrix large enough to be split over the pool.
    let shapes = [(1, 1), (7, 2), (13, 3), (37, 4), (19, 5), (600, 3)];
    for t in TYPES {
        let per = t.block().0;
        for (i, &(rows, nb)) in shapes.iter().enumerate() {
            let cols = nb * per;
            let data = random_blocks(t, i as u64, rows, cols);
            let x = det_uniform(i as u64, "x", cols, 1.0, 0.0);
            let mut want = vec![0f32; rows];
            ops::matmul(&mut want, &x, &dequantized(t, &data));
            let view = BlockRows { dtype: t, cols, data: &data };
            let (mut fast, mut portable) = (vec![0f32; rows], vec![0f32; rows]);
            blocks::matvec(&mut fast, &x, view);
            blocks::portable(&mut portable, &x, view);
            for (name, got) in [("fast", &fast), ("portable", &portable)] {
                // Measured: portable 0 (ops::matmul's order), fast ≤ 4.4e-7 (Q4_0), 3.9e-7
                // (Q4_1), 3.5e-7 (Q5_0), 3.6e-7 (Q5_1), 7.3e-7 (Q4_K), 1.1e-6 (Q6_K) of
                // max(1, max|y|).
                let err = relative_error(got, &want);
                assert!(err <= TOL, "{} {name} {rows}×{cols}: {err:e}", t.name());
            }
            assert!(max_abs(&want) > 1.0, "{} {rows}×{cols}: outputs too small to test", t.name());
            // Any block of rows gives those rows' values.
            for (first, n) in [(1, rows - 1), (rows / 2, rows - rows / 2), (rows - 1, 1)] {
                let mut part = vec![0f32; n];
                blocks::rows(&mut part, &x, view.rows(first, n));
                assert_eq!(part, fast[first..first + n], "{} {rows}×{cols} rows {first}..+{n}", t.name());
            }
            // The embedding lookup reads a row as the dequantizer does.
            let mut row = vec![0f32; cols];
            view.row_f32(rows - 1, &mut row);
            assert_eq!(row, dequantized(t, &data)[(rows - 1) * cols..]);
        }
    }
}

#[test]
fn one_two_and_three_threads_give_the_same_bits() {
    for t in TYPES {
        let (rows, cols) = (1031, 512);
        let data = random_blocks(t, 9, rows, cols);
        let x = det_uniform(9, "x", cols, 1.0, 0.0);
        let view = BlockRows { dtype: t, cols, data: &data };
        let on = |threads| {
            let mut out = vec![0f32; rows];
            pool::install(pool::with_threads(threads), || blocks::matvec(&mut out, &x, view));
            out
        };
        let one = on(1);
        let mut single = vec![0f32; rows];
        blocks::rows(&mut single, &x, view);
        assert_eq!(one, single, "{}", t.name());
        for n in [2, 3] {
            assert!(one.iter().zip(on(n)).all(|(a, b)| a.to_bits() == b.to_bits()), "{} on {n} threads", t.name());
        }
    }
}

/// A decode step's products sharing an input (q/k/v, w1/w3) run as one pool call
/// (`cpu::products::matvecs`): each output equals its own product on one thread bit for bit,
/// whatever the types side by side and the thread count.
#[test]
fn products_in_one_pool_call_equal_each_product_alone() {
    let cols = 512;
    let x = det_uniform(4, "x", cols, 1.0, 0.0);
    let f32s = det_uniform(4, "w", 300 * cols, 0.1, 0.0);
    let q: Vec<i8> = det_uniform(4, "q", 200 * cols, 127.0, 0.0).iter().map(|v| v.round() as i8).collect();
    let scales = det_uniform(4, "s", 200 * cols / 32, 0.01, 0.012);
    let data = random_blocks(DType::Q4K, 4, 1031, cols);
    let mats = [
        MatrixRef::F32(&f32s),
        MatrixRef::Q8(Q8Rows { cols, group: 32, offset: 0, q: &q, scales: &scales }),
        MatrixRef::Blocks(BlockRows { dtype: DType::Q4K, cols, data: &data }),
    ];
    let lens = [300, 200, 1031];
    let alone: Vec<Vec<f32>> = mats
        .iter()
        .zip(lens)
        .map(|(&m, n)| {
            let mut out = vec![0f32; n];
            pool::install(pool::with_threads(1), || products::matvec(Kernels::Fast, m, &mut out, &x));
            out
        })
        .collect();
    for threads in [1, 2, 3] {
        let [mut a, mut b, mut c] = lens.map(|n| vec![f32::NAN; n]);
        let parts = [(mats[0], &mut a[..]), (mats[1], &mut b[..]), (mats[2], &mut c[..])];
        pool::install(pool::with_threads(threads), || products::matvecs(Kernels::Fast, &x, parts));
        for (j, got) in [a, b, c].iter().enumerate() {
            assert!(got.iter().zip(&alone[j]).all(|(p, q)| p.to_bits() == q.to_bits()), "product {j} on {threads} threads");
        }
    }
    // The reference kernels give each product's reference result.
    let mut r = vec![0f32; 300];
    products::matvecs(Kernels::Reference, &x, [(mats[0], &mut r[..])]);
    let mut want = vec![0f32; 300];
    ops::matmul(&mut want, &x, &f32s);
    assert_eq!(r, want);
}

/// Layers of one tensor in different types (Q4_K_M's attn_v, ffn_down) are kept per layer.
#[test]
fn layers_of_different_types_are_kept_per_layer() {
    let (rows, cols) = (5, 512);
    let (a, b) = (random_blocks(DType::Q4K, 1, rows, cols), random_blocks(DType::Q6K, 2, rows, cols));
    let m = Matrix::join(vec![
        Matrix::Blocks(BlockMatrix { dtype: DType::Q4K, data: a.clone() }),
        Matrix::Blocks(BlockMatrix { dtype: DType::Q6K, data: b.clone() }),
    ]);
    assert!(matches!(m, Matrix::Layers(_)));
    assert_eq!(m.bytes(), (a.len() + b.len()) as u64);
    let want: Vec<f32> = dequantized(DType::Q4K, &a).into_iter().chain(dequantized(DType::Q6K, &b)).collect();
    assert_eq!(m.dequantize(), want);
    for (l, t) in [DType::Q4K, DType::Q6K].into_iter().enumerate() {
        assert!(matches!(m.rows(l * rows + 1, rows - 1, cols), MatrixRef::Blocks(v) if v.dtype == t && v.n_rows() == rows - 1));
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats").join(name)).unwrap()
}

fn open(name: &str, file: &[u8]) -> LoadedModel {
    LoadedModel::open(&[NamedFile::new(name, file)]).unwrap()
}

#[test]
fn gguf_block_types_are_held_in_blocks_and_match_both_references() {
    for (name, types) in [
        ("quant.q4_0.gguf", vec![DType::Q4_0]),
        ("quant.q4_k_m.gguf", vec![DType::Q4K, DType::Q6K]),
        ("quant.q5_mix.gguf", vec![DType::Q4_1, DType::Q5_0, DType::Q5_1]),
    ] {
        let file = fixture(&format!("gguf/{name}"));
        let m = open(name, &file);
        let q = m.quantized().unwrap_or_else(|| panic!("{name} is held quantized")).clone();
        assert_eq!(q.kept_types(), types, "{name}");
        let r = fixture(&format!("reference/{name}.safetensors"));
        let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
        let (_, transformers) = tensor(&r, "logits");
        let want_greedy: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
        let (dequantized, _) = greedy_run(&mut CpuBackend::reference(q.dequantize()), &tokens, 0);
        for k in [Kernels::Reference, Kernels::Fast] {
            let (got, greedy) = greedy_run(&mut CpuBackend::with_kernels(q.clone(), k), &tokens, want_greedy.len());
            for (what, want) in [("dequantized f32 path", &dequantized), ("transformers", &transformers)] {
                // Measured: Reference 0 vs the f32 path (the same order); Fast vs it 2.4e-6
                // (Q4_0), 6.6e-6 (Q4_K_M: the f32 path's own fast kernels differ from its
                // reference by as much, 6.6e-6); vs transformers ≤ 1.7e-6 (Q4_0), 4.7e-6.
                let err = relative_error(&got, want);
                assert!(err <= TOL, "{name} {k:?} vs {what}: max error {err:e} (relative)");
            }
            assert_eq!(greedy, want_greedy, "{name} {k:?}: greedy tokens");
        }
        // The model's own backend is the quantized one.
        let b = m.cpu();
        assert!(b.weights.quantized().is_some() && b.name().contains(types[0].name()), "{}", b.name());
    }
}

#[test]
fn the_f32_copy_is_the_dequantizers_bit_for_bit() {
    for name in ["quant.q4_0.gguf", "quant.q4_k_m.gguf"] {
        let file = fixture(&format!("gguf/{name}"));
        let m = open(name, &file);
        let dense = m.quantized().unwrap().dequantize();
        let g = Gguf::parse(&file, name).unwrap();
        for s in tensor_specs(&dense.config) {
            let mut want = Vec::new();
            for l in 0..s.blocks {
                let info = g.tensor(&llama::gguf_name(s.tensor, l)).unwrap();
                dequantize(info.dtype, g.bytes(info), &mut want);
            }
            let got = dense.get(s.tensor);
            assert!(
                got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name} {}",
                s.tensor.name()
            );
        }
        assert_eq!(**m.weights(), dense);
    }
}

#[test]
fn held_bytes_are_the_files_blocks_and_q4_k_m_holds_less_than_q8_0() {
    let held = |name: &str| {
        let file = fixture(&format!("gguf/{name}"));
        let m = open(name, &file);
        let g = Gguf::parse(&file, name).unwrap();
        // Every tensor is held as the file stores it (norms are F32 there too).
        let file_bytes: u64 = g.tensors.iter().filter(|t| t.name != "rope_freqs.weight").map(|t| (t.end - t.start) as u64).sum();
        let backend = CpuBackend::new(Arc::clone(m.quantized().unwrap()));
        assert_eq!(m.held_bytes(), backend.weight_bytes(), "{name}");
        (backend.weight_bytes(), file_bytes, m.config().n_params())
    };
    let (q8, _, params) = held("quant.q8_0.gguf");
    for name in ["quant.q4_0.gguf", "quant.q4_k_m.gguf"] {
        let (bytes, file_bytes, _) = held(name);
        assert_eq!(bytes, file_bytes, "{name}: held bytes are the file's tensor bytes");
        assert!(bytes < q8, "{name} holds {bytes} B, not less than Q8_0's {q8} B");
        assert!(bytes * 5 < 4 * params, "{name}: {bytes} B for {params} parameters");
    }
}

/// F16 and BF16 matrices (GGUF files and Hugging Face folders) stay in their type on the CPU: half
/// of f32's bytes, on the F16/BF16 row kernels, with logits against transformers and the f32 path
/// of the same values, and greedy tokens equal.
#[test]
fn f16_and_bf16_matrices_are_held_as_read_and_match_both_references() {
    let cases = [
        ("gguf/gqa_untied.f16.gguf", "gqa_untied.f16.gguf", DType::F16),
        ("gguf/gqa_untied.bf16.gguf", "gqa_untied.bf16.gguf", DType::BF16),
        ("hf/mha_tied_bf16", "mha_tied_bf16", DType::BF16),
        ("hf/llama3_headdim_f16", "llama3_headdim_f16", DType::F16),
    ];
    for (rel, reference, t) in cases {
        let m = common::open_format_fixture(rel);
        let q = m.quantized().unwrap_or_else(|| panic!("{rel} is held in {}", t.name())).clone();
        assert_eq!(q.kept_types(), [t], "{rel}");
        // Matrices at 2 bytes a value, norms in f32.
        let c = m.config();
        let norms = 4 * c.dim as u64 * (2 * c.n_layers as u64 + 1);
        assert_eq!(m.held_bytes(), 2 * (c.n_params() - norms / 4) + norms, "{rel}: bytes held");
        let r = fixture(&format!("reference/{reference}.safetensors"));
        let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
        let (_, transformers) = tensor(&r, "logits");
        let want_greedy: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
        let (dequantized, _) = greedy_run(&mut CpuBackend::reference(q.dequantize()), &tokens, 0);
        for k in [Kernels::Reference, Kernels::Fast] {
            let (got, greedy) = greedy_run(&mut CpuBackend::with_kernels(q.clone(), k), &tokens, want_greedy.len());
            for (what, want) in [("f32 path", &dequantized), ("transformers", &transformers)] {
                // Measured: Reference 0 vs the f32 path (the same order), Fast ≤ 3.0e-6; vs
                // transformers ≤ 2.7e-6. (An HF folder whose q/k rows were left in rotate-half
                // order would be off by O(1).)
                let err = relative_error(&got, want);
                assert!(err <= TOL, "{rel} {k:?} vs {what}: max error {err:e} (relative)");
            }
            assert_eq!(greedy, want_greedy, "{rel} {k:?}: greedy tokens");
        }
        let b = m.cpu();
        assert!(b.name().contains(t.name()), "{rel}: {}", b.name());
    }
}
