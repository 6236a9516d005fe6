//! The fast CPU kernels (SIMD, threads) against the scalar reference kernels.

use crate::common;
use common::{max_abs, max_diff};
use tinylm_engine::cpu::{fast, ops, CpuBackend, Kernels};
use tinylm_engine::generate::Generation;
use tinylm_engine::randmodel::{det_uniform, named_shape, random_tokens, random_weights};
use tinylm_engine::trace::inspect;
use tinylm_engine::Sampler;

#[test]
fn matvec_matches_reference_on_awkward_sizes() {
    println!("kernel: {}", fast::kernel_name());
    for &(rows, cols) in &[
        (1, 1),
        (3, 7),
        (5, 8),
        (4, 16),
        (7, 17),
        (33, 95),
        (172, 64),
        (513, 288),
        (600, 300),
        (512, 64),
        (64, 172),
        (16, 255),
        (24, 256),
    ] {
        let w = det_uniform(1, "w", rows * cols, 1.0, 0.0);
        let x = det_uniform(2, "x", cols, 1.0, 0.0);
        let (mut a, mut b) = (vec![0.0; rows], vec![0.0; rows]);
        ops::matmul(&mut a, &x, &w);
        fast::matmul(&mut b, &x, &w);
        // Sums of `cols` products of magnitude ≤ 1 reordered: a few ulps of the partial sums.
        let tol = 4.0 * f32::EPSILON * cols as f32;
        assert!(max_diff(&a, &b) <= tol, "{rows}x{cols}: {}", max_diff(&a, &b));
    }
}

#[test]
fn threaded_matvec_matches_reference() {
    // Large enough to be split across threads.
    let (rows, cols) = (2000, 288);
    let w = det_uniform(3, "w", rows * cols, 1.0, 0.0);
    let x = det_uniform(4, "x", cols, 1.0, 0.0);
    let (mut a, mut b) = (vec![0.0; rows], vec![0.0; rows]);
    ops::matmul(&mut a, &x, &w);
    fast::matmul(&mut b, &x, &w);
    assert!(max_diff(&a, &b) <= 4.0 * f32::EPSILON * cols as f32);
}

// Attention: fast_kernels.rs (natively and in wasm).

#[test]
fn softmax_matches_reference_with_extremes() {
    let mut cases =
        vec![vec![0.0; 13], vec![-100.0, 0.0, 50.0, -1e30, 3.0, 3.0, 2.5, -7.0, 1.0], det_uniform(8, "s", 257, 30.0, 0.0)];
    cases.push((0..40).map(|i| i as f32 * 3.0 - 60.0).collect());
    for x in cases {
        let (mut r, mut f) = (x.clone(), x.clone());
        ops::softmax(&mut r);
        fast::softmax(&mut f);
        assert!(max_diff(&r, &f) <= 1e-6, "{x:?}: {}", max_diff(&r, &f));
        assert!((f.iter().sum::<f32>() - 1.0).abs() <= 1e-5);
    }
}

#[test]
fn swiglu_matches_reference() {
    let h = det_uniform(9, "h", 173, 20.0, 0.0);
    let g = det_uniform(10, "g", 173, 3.0, 0.0);
    let (mut r, mut f) = (h.clone(), h.clone());
    ops::swiglu(&mut r, &g);
    fast::swiglu(&mut f, &g);
    for (a, b) in r.iter().zip(&f) {
        assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-3), "{a} vs {b}");
    }
}

#[test]
fn rope_table_is_bit_identical() {
    for (hs, len) in [(8, 32), (48, 288), (64, 512)] {
        for pos in [0, 1, 17, 255, 1023] {
            let v = det_uniform(11, "v", len, 1.0, 0.0);
            let (mut a, mut b) = (v.clone(), v);
            let mut table = vec![(0.0, 0.0); hs / 2];
            let freqs = tinylm_engine::Config::llama2c([hs, hs, 1, 1, 1, 1, 1], true).rope_freqs();
            ops::rope(&mut a, pos, &freqs);
            ops::rope_table(&mut table, pos, &freqs);
            ops::rope_turn(&mut b, &table);
            assert_eq!(a, b, "hs {hs} pos {pos}");
        }
    }
}

fn compare(name: &str, shape: &str, n: usize) {
    let (c, seed) = named_shape(shape).unwrap();
    let w = random_weights(&c, seed).unwrap();
    let tokens = random_tokens(seed, n, c.vocab_size);
    let r = inspect(&mut CpuBackend::reference(w.clone()), &tokens).unwrap();
    let f = inspect(&mut CpuBackend::with_kernels(w, Kernels::Fast), &tokens).unwrap();
    let tol = 1e-5 * max_abs(&r.logits).max(1.0);
    let d = max_diff(&r.logits, &f.logits);
    println!("{name}: fast vs reference logits Δ {d:.2e} (tol {tol:.2e}), attention Δ {:.2e}", max_diff(&r.attn, &f.attn));
    assert!(d <= tol);
    assert!(max_diff(&r.attn, &f.attn) <= 1e-5);
    for t in 0..n {
        assert_eq!(
            tinylm_engine::sampler::argmax(r.logits_at(t)),
            tinylm_engine::sampler::argmax(f.logits_at(t)),
            "{name}: greedy choice at {t}"
        );
    }
}

#[test]
fn whole_model_tiny64() {
    compare("tiny64", "tiny64", 64);
}

#[test]
fn whole_model_s15m() {
    compare("s15m", "s15m", 12);
}

#[test]
fn greedy_story_identical_on_both_kernels() {
    let tok = common::tok512();
    let mut out = Vec::new();
    for k in [Kernels::Reference, Kernels::Fast] {
        let mut b = CpuBackend::with_kernels(common::stories260k(), k);
        let mut s = Sampler::new(1.0, 0.9, 133742).unwrap();
        let mut g = Generation::new(tok.encode("", true, false), 256, &b.weights.config).unwrap();
        while g.step(&mut b, &mut s).unwrap().is_some() {}
        out.push(g.tokens);
    }
    assert_eq!(out[0], out[1], "seeded samples agree token for token");
}
