//! The CPU path on shapes beyond stories260K, against an independent slow f64 forward written
//! here without a KV cache (whole causal sequence at once, HF-style loops).

use crate::common;
use common::{max_abs, max_diff};
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::randmodel::{random_tokens, random_weights};
use tinylm_engine::trace::inspect;
use tinylm_engine::{Config, Weights};

struct Slow {
    logits: Vec<Vec<f64>>,
    /// [layer][head][t][s]
    attn: Vec<Vec<Vec<Vec<f64>>>>,
    /// [layer][t][d]
    resid: Vec<Vec<Vec<f64>>>,
}

fn mat(w: &[f32], rows: usize, cols: usize, x: &[f64]) -> Vec<f64> {
    (0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] as f64 * x[c]).sum()).collect()
}

fn norm(x: &[f64], g: &[f32]) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    x.iter().zip(g).map(|(v, &g)| g as f64 * v / (ms + 1e-5).sqrt()).collect()
}

/// Rotates each adjacent pair of one head's vector by pos · 10000^(−j/hs).
fn rotate(v: &mut [f64], pos: usize, hs: usize) {
    for j in (0..hs).step_by(2) {
        let a = pos as f64 / 10000f64.powf(j as f64 / hs as f64);
        let (s, c) = a.sin_cos();
        let (x, y) = (v[j], v[j + 1]);
        v[j] = x * c - y * s;
        v[j + 1] = x * s + y * c;
    }
}

fn slow_forward(w: &Weights, tokens: &[u32]) -> Slow {
    let c = w.config;
    let (d, hs, kv, n) = (c.dim, c.head_size(), c.kv_dim(), tokens.len());
    let mut x: Vec<Vec<f64>> =
        tokens.iter().map(|&t| w.tok_embeddings[t as usize * d..][..d].iter().map(|&v| v as f64).collect()).collect();
    let (mut attn, mut resid) = (Vec::new(), Vec::new());
    for l in 0..c.n_layers {
        let lw = w.layer(l);
        let xb: Vec<Vec<f64>> = x.iter().map(|r| norm(r, lw.rms_att)).collect();
        let mut q: Vec<Vec<f64>> = xb.iter().map(|r| mat(lw.wq, d, d, r)).collect();
        let mut k: Vec<Vec<f64>> = xb.iter().map(|r| mat(lw.wk, kv, d, r)).collect();
        let v: Vec<Vec<f64>> = xb.iter().map(|r| mat(lw.wv, kv, d, r)).collect();
        for t in 0..n {
            q[t].chunks_mut(hs).for_each(|h| rotate(h, t, hs));
            k[t].chunks_mut(hs).for_each(|h| rotate(h, t, hs));
        }
        let mut out = vec![vec![0f64; d]; n];
        let mut layer_attn = Vec::new();
        for h in 0..c.n_heads {
            let g = h * c.n_kv_heads / c.n_heads; // kv head serving query head h
            let mut head_attn = Vec::new();
            for t in 0..n {
                let scores: Vec<f64> = (0..=t)
                    .map(|s| (0..hs).map(|i| q[t][h * hs + i] * k[s][g * hs + i]).sum::<f64>() / (hs as f64).sqrt())
                    .collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                let mut p: Vec<f64> = e.iter().map(|v| v / z).collect();
                for (s, &ps) in p.iter().enumerate() {
                    for i in 0..hs {
                        out[t][h * hs + i] += ps * v[s][g * hs + i];
                    }
                }
                p.resize(n, 0.0);
                head_attn.push(p);
            }
            layer_attn.push(head_attn);
        }
        attn.push(layer_attn);
        for t in 0..n {
            let o = mat(lw.wo, d, d, &out[t]);
            x[t].iter_mut().zip(o).for_each(|(a, b)| *a += b);
            let xb = norm(&x[t], lw.rms_ffn);
            let a = mat(lw.w1, c.hidden_dim, d, &xb);
            let b = mat(lw.w3, c.hidden_dim, d, &xb);
            let hgate: Vec<f64> = a.iter().zip(&b).map(|(a, b)| a / (1.0 + (-a).exp()) * b).collect();
            let f = mat(lw.w2, d, c.hidden_dim, &hgate);
            x[t].iter_mut().zip(f).for_each(|(a, b)| *a += b);
        }
        resid.push(x.clone());
    }
    let logits = x.iter().map(|r| mat(w.classifier(), c.vocab_size, d, &norm(r, &w.rms_final))).collect();
    Slow { logits, attn, resid }
}

fn flat(v: impl IntoIterator<Item = f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// Checks logits, attention and residuals of the CPU path against the slow forward.
fn check(name: &str, c: Config, seed: u64, n: usize) {
    let w = random_weights(&c, seed).unwrap();
    let tokens = random_tokens(seed + 1, n, c.vocab_size);
    let slow = slow_forward(&w, &tokens);
    let ins = inspect(&mut CpuBackend::new(w), &tokens).unwrap();
    let logits = flat(slow.logits.iter().flatten().copied());
    let tol = 1e-5 * max_abs(&logits).max(1.0);
    let dl = max_diff(&ins.logits, &logits);
    let attn = flat(slow.attn.iter().flatten().flatten().flatten().copied());
    let da = max_diff(&ins.attn, &attn);
    let resid = flat(slow.resid.iter().flatten().flatten().copied());
    let dr = max_diff(&ins.resid, &resid);
    println!("{name}: logits Δ {dl:.2e} (tol {tol:.2e}), attention Δ {da:.2e}, residual Δ {dr:.2e}");
    assert!(dl <= tol, "{name}: logits differ by {dl}");
    assert!(da <= 1e-5, "{name}: attention differs by {da}");
    assert!(dr <= 1e-5 * max_abs(&resid).max(1.0), "{name}: residual differs by {dr}");
    // Greedy choices agree at every position.
    for t in 0..n {
        let a = tinylm_engine::sampler::argmax(ins.logits_at(t));
        let row = &slow.logits[t];
        let b = (0..row.len()).fold(0, |m, i| if row[i] > row[m] { i } else { m });
        assert_eq!(a, b, "{name}: argmax at {t}");
    }
}

fn cfg(s: &str) -> Config {
    Config::parse(s).unwrap()
}

#[test]
fn untied_classifier() {
    check("untied", cfg("32,64,2,4,4,97,24,untied"), 5, 20);
}

#[test]
fn gqa_ratio_3() {
    check("gqa3", cfg("48,96,2,6,2,80,24"), 6, 20);
}

#[test]
fn multi_query() {
    check("mqa", cfg("32,72,2,4,1,70,24"), 7, 20);
}

#[test]
fn head_size_16() {
    check("hs16", cfg("64,128,2,4,2,90,24"), 8, 20);
}

#[test]
fn head_size_48() {
    check("hs48", cfg("96,160,2,2,1,100,24,untied"), 9, 20);
}

#[test]
fn named_micro_shape() {
    let (c, seed) = tinylm_engine::randmodel::named_shape("micro").unwrap();
    check("micro", c, seed, 32);
}
