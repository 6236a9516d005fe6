//! Every fast CPU kernel (`cpu::fast`, and the training path's `lora::kernels::fast`) against the
//! scalar reference on random inputs with odd lengths (SIMD tails), plus stories260K greedy
//! decoding against the fixture and the random-model recipe against independent hashes. Runs
//! natively (AVX2+FMA here) with `cargo test`, and compiled to wasm with simd128 under Node,
//! where the simd128 kernels run for real:
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test -p tinylm-engine --no-default-features --target wasm32-unknown-unknown --test fast_kernels
//! ```

use tinylm_engine::cpu::batch::forward_batch;
use tinylm_engine::cpu::{fast, forward_with, ops, q8, CpuBackend, Kernels, State};
use tinylm_engine::generate::Backend;
use tinylm_engine::lora::kernels::{self as k, AttnShape, IGNORE};
use tinylm_engine::lora::{self, Adapter, Base, Batch, LoraConfig, Target};
use tinylm_engine::randmodel::{det_uniform, random_tokens, random_weights};
use tinylm_engine::sampler::{argmax, argmax_scalar};
use tinylm_engine::{checkpoint, Config, Weights};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

// The shared comparisons (no file access, so they run in wasm too).
#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::{ids, max_abs, max_diff, sha256_without_rope_tables};

const MODEL: &[u8] = include_bytes!("../../../shared/data/models/stories260K.bin");
const MODEL_V2: &[u8] = include_bytes!("../../../shared/data/models/stories260K.v2-q80.bin");
const REFERENCE: &str = include_str!("../../../shared/data/reference/stories260K_reference.json");
const RANDOM_MODELS: &str = include_str!("../../../shared/data/reference/random_models_sha256.json");

fn rand(seed: u64, name: &str, n: usize) -> Vec<f32> {
    det_uniform(seed, name, n, 1.0, 0.0)
}

/// The kernel this build runs, so a failure says which one.
#[test]
fn kernel_name_is_simd() {
    let name = fast::kernel_name();
    #[cfg(target_arch = "wasm32")]
    assert_eq!(name, "simd128", "the wasm build must have +simd128 (.cargo/config.toml)");
    #[cfg(not(target_arch = "wasm32"))]
    println!("kernel: {name}");
}

/// The Q8_0 kernels (`cpu::q8`: AVX2+FMA natively, simd128 in wasm) against the product of the
/// dequantized matrix, on groups within rows (32, 64, 16) and straddling rows (172 in groups of
/// 64, as stories260K's w2: the portable kernel), rows not a multiple of 8.
#[test]
fn q8_matvec_matches_the_dequantized_product() {
    #[cfg(target_arch = "wasm32")]
    assert_eq!(q8::kernel_name(), "q8 simd128");
    for (rows, cols, group) in [(1, 32, 32), (7, 64, 32), (13, 96, 32), (37, 288, 64), (9, 48, 16), (19, 172, 64), (130, 768, 32)]
    {
        let q: Vec<i8> = det_uniform(5, "q", rows * cols, 127.0, 0.0).iter().map(|v| v.round() as i8).collect();
        let scales = det_uniform(5, "s", (rows * cols).div_ceil(group), 0.01, 0.012);
        let x = rand(6, "x", cols);
        let w: Vec<f32> = q.iter().enumerate().map(|(i, &v)| v as f32 * scales[i / group]).collect();
        let mut want = vec![0f32; rows];
        ops::matmul(&mut want, &x, &w);
        let mut got = vec![0f32; rows];
        q8::matvec(&mut got, &x, q8::Q8Rows { cols, group, offset: 0, q: &q, scales: &scales });
        // Measured natively ≤ 9.4e-7 of max(1, max|y|) (tests/suite/q8_cpu.rs).
        let err = max_diff(&got, &want) / max_abs(&want).max(1.0);
        assert!(err <= 1e-5, "{rows}×{cols}/{group}: {err:e}");
    }
}

/// The Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K kernels (`cpu::blocks`: AVX2+FMA natively, simd128 in wasm) against
/// the product of the dequantized matrix (random blocks with sensible f16 scales), rows not a
/// multiple of 8, several blocks a row.
#[test]
fn block_matvec_matches_the_dequantized_product() {
    use tinylm_engine::cpu::blocks::{self, BlockRows};
    use tinylm_engine::quant::{dequantize, DType};
    #[cfg(target_arch = "wasm32")]
    assert_eq!(blocks::kernel_name(), "simd128");
    for t in [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4K, DType::Q6K] {
        let (per, bytes) = t.block();
        for (rows, nb) in [(1, 1), (7, 2), (13, 3), (130, 3)] {
            let cols = nb * per;
            let n = rows * nb * bytes;
            let mut data: Vec<u8> =
                det_uniform(7, "b", n, 127.5, 127.5).iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect();
            let d = det_uniform(7, "d", n / bytes, 0.02, 0.03);
            for (b, d) in data.chunks_exact_mut(bytes).zip(d) {
                let at = if t == DType::Q6K { 208 } else { 0 };
                b[at..at + 2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
                // Q4_K's dmin; Q4_1's and Q5_1's min (weights straddle 0).
                match t {
                    DType::Q4K => b[2..4].copy_from_slice(&half::f16::from_f32(d).to_le_bytes()),
                    DType::Q4_1 | DType::Q5_1 => b[2..4].copy_from_slice(&half::f16::from_f32(-8.0 * d).to_le_bytes()),
                    _ => {}
                }
            }
            let mut w = Vec::new();
            dequantize(t, &data, &mut w);
            let x = rand(6, "x", cols);
            let mut want = vec![0f32; rows];
            ops::matmul(&mut want, &x, &w);
            let mut got = vec![0f32; rows];
            blocks::matvec(&mut got, &x, BlockRows { dtype: t, cols, data: &data });
            // Measured: simd128 ≤ 8.4e-7 of max(1, max|y|); natively ≤ 1.1e-6 (blocks_cpu.rs).
            let err = max_diff(&got, &want) / max_abs(&want).max(1.0);
            assert!(err <= 1e-5, "{} {rows}×{cols}: {err:e}", t.name());
        }
    }
}

/// F16 and BF16 rows (`cpu::blocks`: F16C and AVX2 natively, simd128 in wasm, which converts f16
/// in integer lanes) against the product of the dequantized rows, columns not a multiple of 4, 8
/// or 16 (the kernels' tails); and every finite f16, ±inf and a NaN read exactly: a one-hot `x`
/// picks each column of rows of 16.
#[test]
fn half_matvec_matches_the_dequantized_product_and_reads_every_f16_exactly() {
    use tinylm_engine::cpu::blocks::{self, BlockRows};
    use tinylm_engine::quant::{dequantize, quantize, DType};
    for t in [DType::F16, DType::BF16] {
        for (rows, cols) in [(1, 1), (3, 5), (7, 13), (13, 37), (130, 100), (9, 576)] {
            let data = quantize(t, &rand(8, "w", rows * cols)).unwrap();
            let mut w = Vec::new();
            dequantize(t, &data, &mut w);
            let x = rand(9, "x", cols);
            let mut want = vec![0f32; rows];
            ops::matmul(&mut want, &x, &w);
            let mut got = vec![0f32; rows];
            blocks::matvec(&mut got, &x, BlockRows { dtype: t, cols, data: &data });
            // Measured natively: ≤ 4.6e-7 of max(1, max|y|).
            let err = max_diff(&got, &want) / max_abs(&want).max(1.0);
            assert!(err <= 1e-5, "{} {rows}×{cols}: {err:e}", t.name());
        }
    }
    let finite: Vec<u16> = (0..=u16::MAX).filter(|h| h & 0x7c00 != 0x7c00).collect();
    for (t, bits) in [(DType::F16, finite), (DType::BF16, (0..=u16::MAX).filter(|h| h & 0x7f80 != 0x7f80).collect())] {
        let bits: Vec<u16> = bits[..bits.len() / 16 * 16].to_vec();
        let data: Vec<u8> = bits.iter().flat_map(|h| h.to_le_bytes()).collect();
        let mut w = Vec::new();
        dequantize(t, &data, &mut w);
        let rows = bits.len() / 16;
        for j in 0..16 {
            let mut x = vec![0f32; 16];
            x[j] = 1.0;
            let mut got = vec![0f32; rows];
            blocks::matvec(&mut got, &x, BlockRows { dtype: t, cols: 16, data: &data });
            for (r, g) in got.iter().enumerate() {
                assert_eq!(*g, w[16 * r + j], "{} value {:#06x}", t.name(), bits[16 * r + j]);
            }
        }
    }
    // Infinities and NaN (one row each, in the first column; the other columns 0, x = e₀).
    for (t, h, want) in [
        (DType::F16, 0x7c00u16, f32::INFINITY),
        (DType::F16, 0xfc00, f32::NEG_INFINITY),
        (DType::BF16, 0xff80, f32::NEG_INFINITY),
    ] {
        let mut data = vec![0u8; 2 * 17];
        data[0..2].copy_from_slice(&h.to_le_bytes());
        let x: Vec<f32> = (0..17).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
        let mut got = [0f32];
        blocks::matvec(&mut got, &x, BlockRows { dtype: t, cols: 17, data: &data });
        assert_eq!(got[0], want, "{} {h:#06x}", t.name());
    }
    let mut data = vec![0u8; 32];
    data[0..2].copy_from_slice(&0x7e00u16.to_le_bytes());
    let mut got = [0f32];
    blocks::matvec(&mut got, &[1.0; 16], BlockRows { dtype: DType::F16, cols: 16, data: &data });
    assert!(got[0].is_nan());
}

/// stories260K's v2 (Q8_0) file held quantized against its dequantized weights on the f32
/// reference: logits within 1e-5·max(1, max|logit|), the same greedy tokens.
#[test]
fn q8_stories260k_matches_the_dequantized_reference() {
    let (q, _) = checkpoint::read_quant(MODEL_V2, "stories260K.v2-q80.bin").unwrap();
    let mut want_b = CpuBackend::reference(q.dequantize());
    let mut got_b = CpuBackend::new(q);
    let (mut want, mut got) = (vec![0f32; 512], vec![0f32; 512]);
    let mut tokens = (vec![1u32], vec![1u32]);
    for pos in 0..64 {
        want.copy_from_slice(want_b.forward(tokens.0[pos], pos).unwrap());
        got.copy_from_slice(got_b.forward(tokens.1[pos], pos).unwrap());
        // Measured natively ≤ 8.5e-7 (tests/suite/q8_cpu.rs).
        let err = max_diff(&got, &want) / max_abs(&want).max(1.0);
        assert!(err <= 1e-5, "position {pos}: {err:e}");
        tokens.0.push(argmax(&want) as u32);
        tokens.1.push(argmax(&got) as u32);
    }
    assert_eq!(tokens.0, tokens.1, "greedy tokens");
}

#[test]
fn matmul_and_matmat_match_the_reference() {
    for (rows, cols) in [(1, 1), (3, 7), (5, 15), (7, 17), (33, 95), (172, 64), (64, 172), (9, 288)] {
        let (w, x) = (rand(1, "w", rows * cols), rand(2, "x", 5 * cols));
        let tol = 4.0 * f32::EPSILON * cols as f32;
        let mut batched = vec![f32::NAN; 5 * rows];
        fast::matmat(&mut batched, &x, &w, cols);
        let mut generic = vec![0.0; 5 * rows];
        k::matmul(&mut generic, &x, &w, cols);
        assert!(max_diff(&batched, &generic) <= tol, "{rows}x{cols}: matmat vs k::matmul");
        for (xr, yr) in x.chunks(cols).zip(batched.chunks(rows)) {
            let (mut r, mut f) = (vec![0.0; rows], vec![0.0; rows]);
            ops::matmul(&mut r, xr, &w);
            fast::matmul(&mut f, xr, &w);
            assert!(max_diff(&r, &f) <= tol, "{rows}x{cols}: matmul {}", max_diff(&r, &f));
            assert_eq!(yr, f.as_slice(), "{rows}x{cols}: a matmat row is matmul of that row");
        }
    }
}

#[test]
fn matmul_dx_equals_the_generic_kernel_bit_for_bit() {
    for (n_out, n_in) in [(1, 1), (3, 5), (7, 17), (12, 33), (64, 172), (172, 64), (5, 288)] {
        let (w, dy) = (rand(3, "w", n_out * n_in), rand(4, "dy", 3 * n_out));
        let start = rand(5, "dx", 3 * n_in);
        let (mut a, mut b) = (start.clone(), start);
        k::matmul_dx(&mut a, &dy, &w, n_in, 0.37);
        fast::matmul_dx(&mut b, &dy, &w, n_in, 0.37);
        assert_eq!(a, b, "{n_out}x{n_in}");
    }
}

#[test]
fn dot_and_axpy_match_the_scalar_loops() {
    for n in [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 48] {
        let (a, b) = (rand(6, "a", n), rand(7, "b", n));
        let want = a.iter().zip(&b).fold(0f32, |s, (p, q)| s + p * q);
        assert!((fast::dot(&a, &b) - want).abs() <= 2.0 * f32::EPSILON * n as f32, "dot {n}");
        let (mut y, mut z) = (a.clone(), a.clone());
        fast::axpy(&mut y, -0.7, &b);
        for (d, &v) in z.iter_mut().zip(&b) {
            *d += -0.7 * v;
        }
        assert_eq!(y, z, "axpy {n}");
    }
}

/// `argmax` (simd128 lanes in wasm) returns the scalar loop's index: the first of equal maxima
/// (ties, -0 against 0, the winner in the SIMD body, the tail or first), NaNs that never win, a
/// NaN first element that does, and a vocabulary's length.
#[test]
fn argmax_equals_the_scalar_loop() {
    let mut cases: Vec<Vec<f32>> = vec![vec![], vec![1.0], vec![0.0; 9], vec![f32::NAN; 11]];
    for n in [2, 7, 8, 9, 15, 16, 17, 33, 32000] {
        let x = rand(21, "argmax", n);
        cases.push(x.clone());
        // Every element a small integer, so ties are everywhere.
        cases.push(x.iter().map(|v| (v * 3.0).round()).collect());
        for at in [0, n / 2, n - 1] {
            let mut y = x.clone();
            y[at] = 5.0;
            cases.push(y.clone());
            // A NaN beside the winner, and in its SIMD lane after it.
            y[(at + 1) % n] = f32::NAN;
            y[(at + 4) % n] = f32::NAN;
            cases.push(y.clone());
            y[0] = f32::NAN;
            cases.push(y);
        }
        let mut z = vec![-0.0; n];
        z[n - 1] = 0.0;
        cases.push(z);
        cases.push(vec![f32::NEG_INFINITY; n]);
        cases.push(x.iter().enumerate().map(|(i, &v)| if i % 5 == 3 { f32::NAN } else { v }).collect());
    }
    for x in &cases {
        assert_eq!(argmax(x), argmax_scalar(x), "{x:?}");
    }
    let x = rand(22, "argmax", 32000);
    assert_eq!(argmax(&x), argmax_scalar(&x));
}

#[test]
fn pointwise_kernels_match_the_reference() {
    for n in [1, 3, 4, 5, 8, 15, 17, 64, 172, 513] {
        let x = det_uniform(8, "x", n, 12.0, 0.0);
        let (mut a, mut b) = (x.clone(), x.clone());
        ops::softmax(&mut a);
        fast::softmax(&mut b);
        assert!(max_diff(&a, &b) <= 1e-6, "softmax {n}: {}", max_diff(&a, &b));
        let g = rand(9, "g", n);
        let (mut a, mut b) = (x.clone(), x.clone());
        ops::swiglu(&mut a, &g);
        fast::swiglu(&mut b, &g);
        assert!(max_diff(&a, &b) <= 1e-5 * max_abs(&a).max(1.0), "swiglu {n}: {}", max_diff(&a, &b));
        let (mut a, mut b) = (vec![0.0; n], vec![f32::NAN; n]);
        ops::rmsnorm(&mut a, &x, &g);
        fast::rmsnorm(&mut b, &x, &g);
        assert!(max_diff(&a, &b) <= 1e-6 * max_abs(&a).max(1.0), "rmsnorm {n}: {}", max_diff(&a, &b));
    }
}

#[test]
fn attention_matches_the_reference() {
    // Head sizes on the SIMD paths and off them; keys and values interleaved with another head.
    for hs in [4, 6, 8, 12, 16, 24, 48, 64, 72] {
        for n in [1, 2, 3, 5, 8, 9, 33, 130] {
            let stride = 2 * hs;
            let q = det_uniform(10, "q", hs, 2.0, 0.0);
            let (kk, v) = (det_uniform(11, "k", n * stride, 2.0, 0.0), rand(12, "v", n * stride));
            let (mut att_r, mut att_f) = (vec![0.0; n], vec![0.0; n]);
            let (mut out_r, mut out_f) = (vec![0.0; hs], vec![7.0; hs]);
            ops::attend(&q, &kk[hs..], &v[hs..], stride, &mut att_r, &mut out_r);
            fast::attend(&q, &kk[hs..], &v[hs..], stride, &mut att_f, &mut out_f);
            assert!(max_diff(&att_r, &att_f) <= 1e-6, "hs {hs} n {n}: att {}", max_diff(&att_r, &att_f));
            assert!(max_diff(&out_r, &out_f) <= 1e-5, "hs {hs} n {n}: out {}", max_diff(&out_r, &out_f));
        }
    }
}

/// The training path's routed kernels (`Kernels::Fast`) against the generic ones, batched
/// attention forward and backward with grouped K/V heads and odd head sizes included.
#[test]
fn batched_attention_forward_and_backward_match_the_generic_kernels() {
    for (n_heads, n_kv_heads, head_size, seq) in [(4, 2, 8, 9), (2, 1, 6, 5), (3, 3, 12, 17), (2, 2, 48, 7)] {
        let s = AttnShape { batch: 2, seq, n_heads, n_kv_heads, head_size };
        let n = s.batch * seq;
        let (q, kk, v) = (rand(13, "q", n * s.dim()), rand(14, "k", n * s.kv_dim()), rand(15, "v", n * s.kv_dim()));
        let (mut out_r, mut probs_r) = (vec![0.0; n * s.dim()], vec![0.0; s.probs_len()]);
        let (mut out_f, mut probs_f) = (vec![0.0; n * s.dim()], vec![1.0; s.probs_len()]);
        k::attention(&mut out_r, &mut probs_r, &q, &kk, &v, s);
        k::fast::attention(Kernels::Fast, &mut out_f, &mut probs_f, &q, &kk, &v, s);
        let what = format!("{s:?}");
        assert!(max_diff(&probs_r, &probs_f) <= 1e-6, "{what}: probs");
        assert!(max_diff(&out_r, &out_f) <= 1e-5, "{what}: out");
        let dout = rand(16, "dout", n * s.dim());
        let grads = |fast_path: bool| {
            let (mut dq, mut dk, mut dv) = (vec![0.5; n * s.dim()], vec![0.0; n * s.kv_dim()], vec![0.0; n * s.kv_dim()]);
            if fast_path {
                k::fast::attention_bwd(Kernels::Fast, &mut dq, &mut dk, &mut dv, &dout, &probs_r, &q, &kk, &v, s);
            } else {
                k::attention_bwd(&mut dq, &mut dk, &mut dv, &dout, &probs_r, &q, &kk, &v, s);
            }
            [dq, dk, dv].concat()
        };
        let (r, f) = (grads(false), grads(true));
        assert!(max_diff(&r, &f) <= 1e-5 * max_abs(&r).max(1.0), "{what}: grads {}", max_diff(&r, &f));
    }
}

#[test]
fn cross_entropy_backward_matches_the_generic_kernel() {
    let vocab = 37;
    let targets = [3, IGNORE, 0, 36];
    let logits = det_uniform(17, "l", 4 * vocab, 8.0, 0.0);
    let (mut a, mut b) = (logits.clone(), logits);
    k::cross_entropy_bwd(&mut a, &targets, vocab, 0.25);
    k::fast::cross_entropy_bwd(Kernels::Fast, &mut b, &targets, vocab, 0.25);
    assert!(max_diff(&a, &b) <= 1e-7, "{}", max_diff(&a, &b));
}

/// The loss and gradient in one pass (the loss from the softmax's own max and sum), and the loss
/// alone, against the
/// generic loss and gradient, on rows long enough for the vector body and a tail, some logits far
/// below the max (their `exp` underflows) and one target among them.
#[test]
fn cross_entropy_and_backward_in_one_pass_match_the_generic_kernels() {
    let vocab = 1003;
    let targets = [3, IGNORE, 0, 1002, 500, 17];
    let mut logits = det_uniform(18, "l", targets.len() * vocab, 12.0, 0.0);
    logits[5 * vocab + 17] = -150.0;
    logits[5 * vocab + 18] = -200.0;
    let (mut a, mut b) = (logits.clone(), logits.clone());
    let (want, n) = k::cross_entropy(&logits, &targets, vocab);
    k::cross_entropy_bwd(&mut a, &targets, vocab, 1.0 / n as f32);
    let (got, m) = k::fast::cross_entropy_and_bwd(Kernels::Fast, &mut b, &targets, vocab);
    assert_eq!((n, m), (5, 5));
    assert!((got - want).abs() <= 1e-5 * want.abs(), "loss {got} vs {want}");
    assert!(max_diff(&a, &b) <= 1e-7, "{}", max_diff(&a, &b));
    // The loss alone, the same way.
    let mut d = logits.clone();
    assert_eq!(k::fast::cross_entropy(Kernels::Fast, &mut d, &targets, vocab), (got, m));
    // The reference kernels give the generic figures exactly.
    assert_eq!(k::fast::cross_entropy(Kernels::Reference, &mut logits.clone(), &targets, vocab), (want, n));
    let mut c = logits;
    assert_eq!(k::fast::cross_entropy_and_bwd(Kernels::Reference, &mut c, &targets, vocab), (want, n));
    assert_eq!(a, c);
}

fn stories260k() -> Weights {
    checkpoint::read(MODEL, "stories260K.bin").unwrap().0
}

/// The whole training step's loss and gradients on the fast kernels against the generic ones.
#[test]
fn lora_gradients_on_fast_kernels_match_the_reference() {
    let w = stories260k();
    let lora = LoraConfig::new(4, 8.0, false, Target::ALL.to_vec()).unwrap();
    let ad = Adapter::det(&w.config, lora, 3, 0.05).unwrap();
    let tokens: Vec<u32> = (0..2).flat_map(|b| random_tokens(b + 1, 33, w.config.vocab_size)).collect();
    let batch = Batch::new(2, 33, tokens).unwrap();
    let fast = Base::new(&w);
    assert_eq!(fast.kernels, Kernels::Fast);
    let (lf, gf) = lora::loss_and_grads(&fast, &ad, &batch).unwrap();
    let (lr, gr) = lora::loss_and_grads(&fast.with_kernels(Kernels::Reference), &ad, &batch).unwrap();
    assert!((lf - lr).abs() <= 1e-6 * lr, "loss {lf} vs {lr}");
    for (f, r) in gf.tensors().zip(gr.tensors()) {
        let d = max_diff(f, r);
        assert!(d <= 1e-4 * max_abs(r).max(1e-3), "gradient max |Δ| {d:e} of {:e}", max_abs(r));
    }
}

fn reference_greedy() -> Vec<u32> {
    let v: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    ids(&v["greedy_empty_prompt_256_steps"]["ids"])
}

#[test]
fn stories260k_greedy_on_the_fast_kernels_equals_the_fixture() {
    let want = reference_greedy();
    let mut b = CpuBackend::new(stories260k());
    let mut got = vec![want[0]];
    for pos in 0..want.len() - 1 {
        let logits = b.forward(got[pos], pos).unwrap();
        got.push((0..logits.len()).fold(0, |m, i| if logits[i] > logits[m] { i } else { m }) as u32);
    }
    assert_eq!(got, want);
}

/// The random-model recipe in this build (wasm under Node as well as natively) against an
/// independent Python implementation's hashes: every weight bit-identical, so a model built in
/// the browser is the one the CLI builds.
#[test]
fn random_models_equal_an_independent_implementation() {
    let json: serde_json::Value = serde_json::from_str(RANDOM_MODELS).unwrap();
    let cases = json["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 3);
    for (name, case) in cases {
        let c = tinylm_engine::Config::parse(case["config"].as_str().unwrap()).unwrap();
        let w = tinylm_engine::randmodel::random_weights(&c, case["seed"].as_u64().unwrap()).unwrap();
        let file = checkpoint::write_v0(&w);
        assert_eq!(file.len() as u64, case["bytes"].as_u64().unwrap(), "{name}: file size");
        assert_eq!(sha256_without_rope_tables(&c, &file), case["sha256_without_rope_tables"].as_str().unwrap(), "{name}");
    }
}

#[test]
fn batched_decode_equals_single_runs_bit_for_bit() {
    // Rows of 296 and 328 floats (long rows natively; every remainder kind in wasm), six
    // sequences: the kernels for four and for two vectors at once, against one at a time.
    let c = Config::parse("296,328,2,4,2,96,16").unwrap();
    let w = random_weights(&c, 5).unwrap();
    let n = 6;
    let (mut single, mut batch): (Vec<State>, Vec<State>) =
        ((0..n).map(|_| State::new(&c)).collect(), (0..n).map(|_| State::new(&c)).collect());
    for pos in 0..4 {
        let tokens: Vec<u32> = (0..n).map(|k| random_tokens(k as u64, 4, c.vocab_size)[pos]).collect();
        let mut states: Vec<&mut State> = batch.iter_mut().collect();
        forward_batch(&w, &mut states, &tokens, &vec![pos; n]).unwrap();
        for k in 0..n {
            let one = forward_with(Kernels::Fast, &w, &mut single[k], tokens[k], pos, None).unwrap();
            let same = one.iter().zip(states[k].logits()).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "sequence {k} at position {pos}");
        }
    }
}

#[test]
fn attention_backward_kernels_equal_the_call_per_key_loop_bit_for_bit() {
    // Every head size the AVX2 (multiples of 8) and simd128 (multiples of 4) kernels take, and
    // one neither takes; keys strided as in a KV cache.
    type AttendBwd = fn(&mut [f32], &mut [f32], &mut [f32], usize, &[f32], &[f32], &[f32], &[f32], &[f32], &mut [f32]);
    for hs in (4..=64).step_by(4).chain([6]) {
        for keys in [1, 5, 33] {
            let (stride, r) = (hs * 3 + 4, |seed: u64, n: usize| det_uniform(seed, "attend_bwd", n, 1.0, 0.0));
            let len = (keys - 1) * stride + hs;
            let (q, dout, k, v) = (r(1, hs), r(2, hs), r(3, len), r(4, len));
            let mut att: Vec<f32> = r(5, keys).iter().map(|x| x.abs()).collect();
            let total: f32 = att.iter().sum();
            att.iter_mut().for_each(|p| *p /= total);
            let run = |f: AttendBwd| {
                let (mut dq, mut dk, mut dv, mut ds) = (r(6, hs), r(7, len), r(8, len), vec![0.0; keys]);
                f(&mut dq, &mut dk, &mut dv, stride, &dout, &att, &q, &k, &v, &mut ds);
                [dq, dk, dv, ds].map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<u32>>())
            };
            assert!(run(fast::attend_bwd) == run(fast::attend_bwd_by_calls), "head size {hs}, {keys} keys");
        }
    }
}
