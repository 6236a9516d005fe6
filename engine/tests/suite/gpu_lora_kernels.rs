//! Each GPU training kernel (shaders/lora_*.wgsl) against its CPU twin in `lora::kernels`, on
//! random data of awkward sizes (not multiples of the workgroup tiles), GQA included.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;
use common::*;
use tinylm_engine::gpu::lora::lab::LoraLab;
use tinylm_engine::lora::kernels::{self as k, AdamW, AttnShape, IGNORE};
use tinylm_engine::randmodel::det_uniform;

fn lab() -> LoraLab {
    LoraLab::new().expect("a GPU adapter (lavapipe) is needed for the GPU tests")
}

fn rand(seed: u64, n: usize, bound: f64) -> Vec<f32> {
    det_uniform(seed, "gpu_lora_kernels", n, bound, 0.0)
}

/// `got` within `tol` of `want`, relative to `want`'s largest magnitude (at least 1e-30).
fn assert_rel(label: &str, got: &[f32], want: &[f32], tol: f32) {
    let d = max_diff(got, want) / max_abs(want).max(1e-30);
    println!("{label}: {d:.2e} relative (tolerance {tol:e})");
    assert!(d <= tol, "{label}: relative difference {d:e} > {tol:e}");
}

#[test]
fn matmul_and_its_transposes_match_the_cpu() {
    let lab = lab();
    for (rows, n_in, n_out, s) in [(1, 5, 3, 1.0), (37, 19, 23, 0.5), (70, 64, 33, 2.0), (130, 67, 129, 1.5)] {
        let (x, w) = (rand(1, rows * n_in, 1.0), rand(2, n_out * n_in, 1.0));
        let y0 = rand(3, rows * n_out, 1.0);
        let mut want = vec![0f32; rows * n_out];
        k::matmul(&mut want, &x, &w, n_in);
        assert_rel("matmul", &lab.matmul(&y0, &x, &w, n_in, 1.0, false).unwrap(), &want, 1e-6);
        let mut want = y0.clone();
        k::matmul_add_scaled(&mut want, &x, &w, n_in, s);
        assert_rel("matmul_add_scaled", &lab.matmul(&y0, &x, &w, n_in, s, true).unwrap(), &want, 1e-6);
        let (dy, dx0) = (rand(4, rows * n_out, 1.0), rand(5, rows * n_in, 1.0));
        let mut want = dx0.clone();
        k::matmul_dx(&mut want, &dy, &w, n_in, s);
        assert_rel("matmul_dx", &lab.matmul_dx(&dx0, &dy, &w, n_in, s).unwrap(), &want, 1e-6);
        let dw0 = rand(6, n_out * n_in, 1.0);
        let mut want = dw0.clone();
        k::matmul_dw(&mut want, &dy, &x, n_in, s);
        assert_rel("matmul_dw", &lab.matmul_dw(&dw0, &dy, &x, n_in, s).unwrap(), &want, 1e-6);
    }
}

#[test]
fn rmsnorm_forward_and_backward_match_the_cpu() {
    let lab = lab();
    for (rows, d) in [(1, 8), (67, 48)] {
        let (x, g, dy, dx0) = (rand(7, rows * d, 3.0), rand(8, d, 1.0), rand(9, rows * d, 1.0), rand(10, rows * d, 1.0));
        let mut want = vec![0f32; rows * d];
        k::rmsnorm(&mut want, &x, &g);
        assert_rel("rmsnorm", &lab.rmsnorm(&x, &g).unwrap(), &want, 1e-6);
        let mut want = dx0.clone();
        k::rmsnorm_bwd(&mut want, &x, &g, &dy);
        assert_rel("rmsnorm_bwd", &lab.rmsnorm_bwd(&dx0, &x, &g, &dy).unwrap(), &want, 1e-6);
    }
}

#[test]
fn rope_forward_and_backward_match_the_cpu() {
    let lab = lab();
    let (seq, hs, width, batch) = (13, 12, 36, 3);
    let x = rand(11, batch * seq * width, 1.0);
    let mut want = x.clone();
    k::rope(&mut want, width, seq, hs);
    assert_rel("rope", &lab.rope(&x, width, seq, hs, false).unwrap(), &want, 1e-6);
    let mut want = x.clone();
    k::rope_bwd(&mut want, width, seq, hs);
    assert_rel("rope_bwd", &lab.rope(&x, width, seq, hs, true).unwrap(), &want, 1e-6);
}

#[test]
fn attention_forward_and_backward_match_the_cpu() {
    let lab = lab();
    for s in [
        AttnShape { batch: 2, seq: 9, n_heads: 4, n_kv_heads: 2, head_size: 6 },
        AttnShape { batch: 1, seq: 70, n_heads: 3, n_kv_heads: 3, head_size: 8 },
        AttnShape { batch: 3, seq: 5, n_heads: 6, n_kv_heads: 1, head_size: 4 },
    ] {
        let n = s.batch * s.seq;
        let (q, kk, v) = (rand(12, n * s.dim(), 2.0), rand(13, n * s.kv_dim(), 2.0), rand(14, n * s.kv_dim(), 1.0));
        let (mut out, mut probs) = (vec![0f32; n * s.dim()], vec![0f32; s.probs_len()]);
        k::attention(&mut out, &mut probs, &q, &kk, &v, s);
        let (g_out, g_probs) = lab.attention(&q, &kk, &v, s).unwrap();
        assert_rel("attention out", &g_out, &out, 1e-5);
        assert_rel("attention probs", &g_probs, &probs, 1e-5);
        let dout = rand(15, n * s.dim(), 1.0);
        let (mut dq, mut dk, mut dv) = (vec![0f32; q.len()], vec![0f32; kk.len()], vec![0f32; v.len()]);
        k::attention_bwd(&mut dq, &mut dk, &mut dv, &dout, &probs, &q, &kk, &v, s);
        let [gq, gk, gv] = lab.attention_bwd(&dout, &probs, &q, &kk, &v, s).unwrap();
        assert_rel("attention dq", &gq, &dq, 1e-5);
        assert_rel("attention dk", &gk, &dk, 1e-5);
        assert_rel("attention dv", &gv, &dv, 1e-5);
    }
}

#[test]
fn swiglu_forward_and_backward_match_the_cpu() {
    let lab = lab();
    let n = 1000;
    let (h1, h3, dg) = (rand(16, n, 6.0), rand(17, n, 2.0), rand(18, n, 1.0));
    let mut want = vec![0f32; n];
    k::swiglu(&mut want, &h1, &h3);
    assert_rel("swiglu", &lab.swiglu(&h1, &h3).unwrap(), &want, 1e-6);
    let (mut d1, mut d3) = (vec![0f32; n], vec![0f32; n]);
    k::swiglu_bwd(&mut d1, &mut d3, &dg, &h1, &h3);
    let (g1, g3) = lab.swiglu_bwd(&dg, &h1, &h3).unwrap();
    assert_rel("swiglu dh1", &g1, &d1, 1e-6);
    assert_rel("swiglu dh3", &g3, &d3, 1e-6);
}

#[test]
fn cross_entropy_and_its_gradient_match_the_cpu() {
    let lab = lab();
    let (rows, vocab) = (7, 1001);
    let logits = rand(19, rows * vocab, 8.0);
    let targets = vec![3, 1000, IGNORE, 0, 500, 999, IGNORE];
    let (g_rows, g_grad) = lab.cross_entropy(&logits, &targets, vocab, 0.2).unwrap();
    for (r, (&t, &got)) in targets.iter().zip(&g_rows).enumerate() {
        let (want, count) = k::cross_entropy(&logits[r * vocab..][..vocab], &[t], vocab);
        assert_eq!(count, (t != IGNORE) as usize);
        assert!((got as f64 - want).abs() <= 1e-6 * want.abs().max(1.0), "row {r}: {got} vs {want}");
    }
    let mut want = logits.clone();
    k::cross_entropy_bwd(&mut want, &targets, vocab, 0.2);
    assert_rel("cross_entropy_bwd", &g_grad, &want, 1e-6);
}

#[test]
fn adamw_with_and_without_clipping_matches_the_cpu() {
    let lab = lab();
    let n = 777;
    let (p, g, m0) = (rand(20, n, 1.0), rand(21, n, 0.1), rand(22, n, 0.01));
    let v0: Vec<f32> = rand(23, n, 0.01).iter().map(|x| x * x).collect();
    let h = AdamW { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
    let norm = g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    for (clip, step) in [(None, 1), (Some(norm / 3.0), 4), (Some(norm * 2.0), 7)] {
        let coef = clip.map_or(1.0, |c| (c / (norm + 1e-6)).min(1.0)) as f32;
        let gc: Vec<f32> = g.iter().map(|x| x * coef).collect();
        let (mut wp, mut wm, mut wv) = (p.clone(), m0.clone(), v0.clone());
        k::adamw(&mut wp, &gc, &mut wm, &mut wv, step, &h);
        let [gp, gm, gv, gn] = lab.adamw(&p, &g, &m0, &v0, step, &h, clip).unwrap();
        assert!((gn[0] as f64 - norm).abs() <= 1e-5 * norm, "norm {} vs {norm}", gn[0]);
        let moved: Vec<f32> = wp.iter().zip(&p).map(|(a, b)| a - b).collect();
        let got_moved: Vec<f32> = gp.iter().zip(&p).map(|(a, b)| a - b).collect();
        assert_rel(&format!("adamw update (clip {clip:?}, step {step})"), &got_moved, &moved, 1e-4);
        assert_rel("adamw m", &gm, &wm, 1e-5);
        assert_rel("adamw v", &gv, &wv, 1e-5);
    }
}
