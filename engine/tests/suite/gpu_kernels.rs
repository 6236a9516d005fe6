//! Each WGSL kernel against its CPU twin (cpu::ops, sampler) on random inputs of awkward
//! sizes (not multiples of any workgroup size). Runs on whatever adapter wgpu finds (lavapipe
//! in CI).
#![cfg(not(target_arch = "wasm32"))]

use tinylm_engine::cpu::ops;
use tinylm_engine::gpu::ops::{KernelLab, Matmul};
use tinylm_engine::randmodel::det_uniform;
use tinylm_engine::sampler::{argmax, sample_mult, sample_topp, softmax};
use tinylm_engine::Config;

fn lab() -> KernelLab {
    KernelLab::new().expect("a GPU adapter (lavapipe) is needed for the GPU tests")
}

fn rand(name: &str, n: usize, bound: f64) -> Vec<f32> {
    det_uniform(7, name, n, bound, 0.0)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| nan_max(m, (x - y).abs()))
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0f32, |m, x| nan_max(m, x.abs()))
}

/// The larger of `m` and `v`, NaN if either is (`f32::max` would skip a NaN result).
fn nan_max(m: f32, v: f32) -> f32 {
    if m.is_nan() || v.is_nan() {
        f32::NAN
    } else {
        m.max(v)
    }
}

#[test]
fn rmsnorm_matches_cpu() {
    let lab = lab();
    for (rows, dim) in [(1, 7), (3, 300), (5, 1037)] {
        let x = rand("x", rows * dim, 3.0);
        let g = det_uniform(7, "g", dim, 0.2, 1.0);
        let got = lab.rmsnorm(&x, &g).unwrap();
        let mut want = vec![0.0; rows * dim];
        for (o, xr) in want.chunks_mut(dim).zip(x.chunks(dim)) {
            ops::rmsnorm(o, xr, &g);
        }
        let d = max_diff(&got, &want);
        assert!(d <= 1e-5 * max_abs(&want), "rows {rows} dim {dim}: {d}");
    }
}

fn cpu_matmul(x: &[f32], w: &[f32], k: usize, rows: usize, row0: usize) -> Vec<f32> {
    let m = w.len() / k;
    let mut out = vec![0.0; rows * m];
    for t in 0..rows {
        ops::matmul(&mut out[t * m..(t + 1) * m], &x[(row0 + t) * k..(row0 + t + 1) * k], w);
    }
    out
}

#[test]
fn matvec_and_tiled_matmul_match_cpu() {
    let lab = lab();
    for (rows, k, m) in [(1, 13, 5), (1, 333, 77), (3, 65, 131), (17, 100, 70), (40, 288, 33)] {
        let x = rand("x", (rows + 1) * k, 1.0);
        let w = rand("w", m * k, 1.0);
        let want = cpu_matmul(&x, &w, k, rows, 1);
        for batched in [false, true] {
            let got = lab.matmul(&x, &w, None, Matmul { k, in_row0: 1, rows, batched, max_bytes: 1 << 27 }).unwrap();
            let d = max_diff(&got, &want);
            assert!(d <= 1e-5 * max_abs(&want).max(1.0), "{rows}x{k}x{m} batched {batched}: {d}");
        }
    }
}

#[test]
fn matmul_accumulates_and_splits_rows_into_chunks() {
    let lab = lab();
    let (rows, k, m) = (5, 37, 101);
    let x = rand("x", rows * k, 1.0);
    let w = rand("w", m * k, 1.0);
    let init = rand("init", rows * m, 2.0);
    let mut want = cpu_matmul(&x, &w, k, rows, 0);
    for (a, b) in want.iter_mut().zip(&init) {
        *a += b;
    }
    // 600 bytes per chunk: 4 rows of 37 floats, so 26 chunks with a ragged last one.
    for batched in [false, true] {
        let got = lab.matmul(&x, &w, Some(&init), Matmul { k, in_row0: 0, rows, batched, max_bytes: 600 }).unwrap();
        let d = max_diff(&got, &want);
        assert!(d <= 1e-5 * max_abs(&want), "batched {batched}: {d}");
    }
}

#[test]
fn embedding_lookup_across_chunks() {
    let lab = lab();
    let (vocab, dim) = (93, 19);
    let table = rand("emb", vocab * dim, 1.0);
    let tokens = [0u32, 92, 5, 41, 41, 7, 88];
    let got = lab.embed(&table, dim, &tokens, 10 * dim as u64 * 4 - 4).unwrap();
    let want: Vec<f32> = tokens.iter().flat_map(|&t| table[t as usize * dim..(t as usize + 1) * dim].to_vec()).collect();
    assert_eq!(got, want);
}

fn shape(dim: usize, heads: usize, kv_heads: usize, seq: usize) -> Config {
    Config::llama2c([dim, 10, 1, heads, kv_heads, 11, seq], true)
}

#[test]
fn rope_and_cache_write_match_cpu() {
    let lab = lab();
    for (c, pos0, rows) in [(shape(144, 3, 1, 70), 5, 3), (shape(64, 8, 4, 512), 500, 12), (shape(36, 6, 2, 9), 0, 9)] {
        let (d, kv) = (c.dim, c.kv_dim());
        let width = d + 2 * kv;
        let qkv = rand("qkv", rows * width, 1.0);
        let cache = rand("cache", 2 * c.seq_len * kv, 1.0);
        let (q, got_cache) = lab.rope(&qkv, &c, pos0, &cache).unwrap();
        let mut want_cache = cache.clone();
        let mut want_q = vec![0.0; rows * d];
        for t in 0..rows {
            let (pos, row) = (pos0 + t, &qkv[t * width..(t + 1) * width]);
            let qr = &mut want_q[t * d..(t + 1) * d];
            qr.copy_from_slice(&row[..d]);
            ops::rope(qr, pos, &c.rope_freqs());
            let k = &mut want_cache[pos * kv..(pos + 1) * kv];
            k.copy_from_slice(&row[d..d + kv]);
            ops::rope(k, pos, &c.rope_freqs());
            let v0 = (c.seq_len + pos) * kv;
            want_cache[v0..v0 + kv].copy_from_slice(&row[d + kv..]);
        }
        assert!(max_diff(&q, &want_q) <= 1e-6, "q: {}", max_diff(&q, &want_q));
        assert!(max_diff(&got_cache, &want_cache) <= 1e-6, "cache: {}", max_diff(&got_cache, &want_cache));
    }
}

#[test]
fn attention_matches_cpu() {
    check_attention(&lab(), "default shapes");
}

fn check_attention(lab: &KernelLab, label: &str) {
    // GQA 3 with head size 48, multi-query, and a long context crossing many 64-lane strides.
    for (c, pos0, rows) in [(shape(144, 3, 1, 70), 0, 70), (shape(288, 6, 2, 300), 150, 5), (shape(64, 8, 4, 512), 511, 1)] {
        let (d, kv, hs) = (c.dim, c.kv_dim(), c.head_size());
        let q = rand("q", rows * d, 2.0);
        let cache = rand("cache", 2 * c.seq_len * kv, 2.0);
        let (att, out) = lab.attention(&q, &cache, &c, pos0).unwrap();
        let (mut wd_att, mut wd_out) = (0f32, 0f32);
        for t in 0..rows {
            let n = pos0 + t + 1;
            for h in 0..c.n_heads {
                let qh = &q[t * d + h * hs..t * d + (h + 1) * hs];
                let ko = (h / c.kv_mul()) * hs;
                let mut a: Vec<f32> = (0..n)
                    .map(|s| {
                        let k = &cache[s * kv + ko..s * kv + ko + hs];
                        let mut dot = 0f32;
                        for i in 0..hs {
                            dot += qh[i] * k[i];
                        }
                        dot / (hs as f32).sqrt()
                    })
                    .collect();
                softmax(&mut a);
                let at = (t * c.n_heads + h) * c.seq_len;
                wd_att = nan_max(wd_att, max_diff(&att[at..at + n], &a));
                for i in 0..hs {
                    let mut acc = 0f32;
                    for (s, p) in a.iter().enumerate() {
                        acc += p * cache[(c.seq_len + s) * kv + ko + i];
                    }
                    wd_out = nan_max(wd_out, (out[t * d + h * hs + i] - acc).abs());
                }
            }
        }
        assert!(wd_att <= 1e-6, "{label}: attention probabilities: {wd_att}");
        assert!(wd_out <= 1e-5, "{label}: attention output: {wd_out}");
    }
}

#[test]
fn swiglu_matches_cpu() {
    let lab = lab();
    let (rows, hidden) = (3, 173);
    let h = rand("h", rows * 2 * hidden, 6.0);
    let got = lab.swiglu(&h, hidden).unwrap();
    let want: Vec<f32> = (0..rows)
        .flat_map(|t| {
            let r = &h[t * 2 * hidden..(t + 1) * 2 * hidden];
            (0..hidden).map(move |j| ops::silu(r[j]) * r[hidden + j]).collect::<Vec<_>>()
        })
        .collect();
    let d = max_diff(&got, &want);
    assert!(d <= 1e-5 * max_abs(&want), "{d}");
}

#[test]
fn argmax_takes_the_first_maximum() {
    let lab = lab();
    for v in [1usize, 5, 300, 32000] {
        let mut logits = rand("l", v, 5.0);
        let (tok, _) = lab.sample(&logits, 0.0, 0.9, 0.5).unwrap();
        assert_eq!(tok as usize, argmax(&logits), "vocab {v}");
        if v > 10 {
            // A tie: the first maximum wins, as in run.c.
            logits[3] = 9.0;
            logits[v - 2] = 9.0;
            assert_eq!(lab.sample(&logits, 0.0, 0.9, 0.5).unwrap().0, 3);
        }
    }
}

/// run.c's sampler on the CPU, from the logits.
fn cpu_sample(logits: &[f32], temperature: f32, topp: f32, coin: f32) -> (u32, Vec<f32>) {
    let mut p: Vec<f32> = logits.iter().map(|l| l / temperature).collect();
    softmax(&mut p);
    let tok =
        if topp <= 0.0 || topp >= 1.0 { sample_mult(&p, coin) as u32 } else { sample_topp(&p, topp, coin, &mut Vec::new()) };
    (tok, p)
}

/// The CPU's picks for coins within `delta` of `coin`: a GPU pick inside this set differs
/// only by where the two summation orders round (the CPU sums the cdf sequentially, the GPU
/// in parallel).
fn cpu_picks_near(logits: &[f32], temperature: f32, topp: f32, coin: f32, delta: f32) -> Vec<u32> {
    (0..=64)
        .map(|i| (coin - delta + 2.0 * delta * i as f32 / 64.0).clamp(0.0, 0.999_999_94))
        .map(|c| cpu_sample(logits, temperature, topp, c).0)
        .collect()
}

#[test]
fn softmax_multinomial_and_top_p_match_cpu() {
    let lab = lab();
    let (mut checked, mut flips) = (0, Vec::new());
    for (v, spread) in [(7usize, 1.0), (512, 4.0), (1000, 0.5), (32000, 8.0)] {
        for (i, (temperature, topp)) in [(1.0f32, 0.9f32), (0.7, 0.5), (1.3, 1.0), (1.0, 0.0), (1.0, 0.99)].iter().enumerate() {
            let logits = rand(&format!("l{v}{i}"), v, spread);
            for coin in [0.0f32, 0.013, 0.37, 0.5, 0.8123, 0.999_999_9] {
                let (want, wp) = cpu_sample(&logits, *temperature, *topp, coin);
                let (got, gp) = lab.sample(&logits, *temperature, *topp, coin).unwrap();
                // Relative: an absolute bound would hide a uniform error in the softmax total.
                // 4e-6: WGSL's division may be 2.5 ulp off (NVIDIA's is), and exp(l / t)
                // multiplies that by |l / t| (up to ~25 here).
                let rel = gp.iter().zip(&wp).fold(0f32, |m, (g, w)| m.max(((g - w) / w.max(f32::MIN_POSITIVE)).abs()));
                assert!(rel <= 4e-6, "probabilities differ by {rel:e} relative");
                checked += 1;
                if got != want {
                    let near = cpu_picks_near(&logits, *temperature, *topp, coin, 1e-4);
                    assert!(
                        near.contains(&got),
                        "vocab {v} t {temperature} p {topp} coin {coin}: GPU {got}, CPU {want}, nearby {near:?}"
                    );
                    flips.push((v, *topp, coin));
                }
            }
        }
    }
    println!("{checked} draws; picks that differ only by summation order (coin within 1e-4 of a boundary): {flips:?}");
    assert_eq!(checked, 4 * 5 * 6);
    assert!(flips.len() <= 3, "too many differing picks: {flips:?}");
}

#[test]
fn top_p_walks_ties_in_index_order() {
    let lab = lab();
    // Four equal top tokens (ids 2, 5, 6, 9) share 0.8 of the mass: top-p 0.5 keeps three of
    // them in index order, and coins land on each in turn.
    let mut logits = vec![0.0f32; 12];
    for i in [2, 5, 6, 9] {
        logits[i] = 5.0;
    }
    for coin in [0.0f32, 0.3, 0.34, 0.6, 0.67, 0.9, 0.99] {
        let (want, _) = cpu_sample(&logits, 1.0, 0.5, coin);
        assert_eq!(lab.sample(&logits, 1.0, 0.5, coin).unwrap().0, want, "coin {coin}");
    }
}

/// W · in on the CPU for matvec.wgsl's entries: `in` is x (`plain`), rmsnorm(x) · g (`norm`)
/// or silu(x₁) ⊙ x₂ (`swiglu`, x = [x₁, x₂]).
fn cpu_fused(entry: &str, x: &[f32], g: &[f32], w: &[f32], k: usize) -> Vec<f32> {
    let input: Vec<f32> = match entry {
        "plain" => x[..k].to_vec(),
        "norm" => {
            let mut o = vec![0.0; k];
            ops::rmsnorm(&mut o, &x[..k], g);
            o
        }
        _ => (0..k).map(|i| ops::silu(x[i]) * x[k + i]).collect(),
    };
    let mut out = vec![0.0; w.len() / k];
    ops::matmul(&mut out, &input, w);
    out
}

/// Every candidate workgroup shape (`gpu::tune`'s list) runs the fused decode matvecs — each
/// entry, the classifier's own shape, its f16 variant where the adapter has shader-f16 — and
/// attention like the CPU: awkward k up to matvec.wgsl's limit of 2816, row chunks with
/// offsets. Each lab pairs a layer shape with another classifier shape and an attention size,
/// so every candidate of each is covered.
#[test]
fn every_candidate_workgroup_shape_matches_cpu() {
    use tinylm_engine::gpu::ops::FusedMatvec;
    use tinylm_engine::gpu::{f16_round, Workgroups, ATTENTION_CANDIDATES, MATVEC_CANDIDATES};
    let n = MATVEC_CANDIDATES.len();
    let mut f16_checked = 0;
    for i in 0..n {
        let wg = Workgroups {
            layers: MATVEC_CANDIDATES[i],
            classifier: MATVEC_CANDIDATES[(i + 1) % n],
            classifier_f16: Some(MATVEC_CANDIDATES[(i + 2) % n]),
            attention: ATTENTION_CANDIDATES[i % ATTENTION_CANDIDATES.len()],
        };
        let lab = KernelLab::with(wgpu::Features::SHADER_F16, wg).unwrap();
        // (k, m, bytes per weight chunk): one chunk, or 8-row chunks (10 of them for m = 76).
        for (k, m, max_bytes) in [(7, 4, 1 << 27), (333, 76, 8 * 333 * 4), (288, 516, 1 << 27), (2816, 36, 1 << 27)] {
            let x = rand("x", 2 * k, 2.0);
            let g = det_uniform(7, "g", k, 0.2, 1.0);
            let w = rand("w", m * k, 1.0);
            let tol = |want: &[f32]| 1e-5 * max_abs(want).max(1.0);
            for entry in ["plain", "norm", "swiglu"] {
                let got = lab.fused_matvec((FusedMatvec::Layer, entry), (&x, &g), &w, k, max_bytes).unwrap();
                let want = cpu_fused(entry, &x, &g, &w, k);
                let d = max_diff(&got, &want);
                assert!(d <= tol(&want), "{wg}: {entry} {k}x{m}: {d}");
            }
            let want = cpu_fused("norm", &x, &g, &w, k);
            let got = lab.fused_matvec((FusedMatvec::Classifier, "norm"), (&x, &g), &w, k, max_bytes).unwrap();
            assert!(max_diff(&got, &want) <= tol(&want), "{wg}: classifier {k}x{m}: {}", max_diff(&got, &want));
            if lab.has_f16() {
                let half: Vec<f32> = w.iter().map(|&v| f16_round(v)).collect();
                let want = cpu_fused("norm", &x, &g, &half, k);
                let got = lab.fused_matvec((FusedMatvec::ClassifierF16, "norm"), (&x, &g), &w, k, max_bytes).unwrap();
                assert!(max_diff(&got, &want) <= tol(&want), "{wg}: f16 classifier {k}x{m}: {}", max_diff(&got, &want));
                f16_checked += 1;
            }
        }
        check_attention(&lab, &format!("{wg}"));
    }
    println!("{n} shape pairs checked; f16 classifier cases: {f16_checked}");
}
