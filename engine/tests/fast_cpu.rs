//! The fast CPU kernels (SIMD, threads) against the scalar reference kernels.

mod common;
use common::{max_abs, max_diff};
use tinylm_engine::cpu::{fast, ops, CpuBackend, Kernels};
use tinylm_engine::generate::Generation;
use tinylm_engine::randmodel::{det_uniform, named_shape, random_tokens, random_weights};
use tinylm_engine::trace::inspect;
use tinylm_engine::Sampler;

#[test]
fn matvec_matches_reference_on_awkward_sizes() {
    println!("kernel: {}", fast::kernel_name());
    for &(rows, cols) in &[(1, 1), (3, 7), (5, 8), (4, 16), (7, 17), (33, 95), (172, 64), (513, 288), (600, 300)] {
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
