//! Each LoRA training kernel on its own: backward kernels against f64 central differences of
//! their forward twins, forward kernels bit for bit against `cpu::ops` (run.c's order). A GPU
//! twin of each kernel can be tested against these CPU ones the same way.

use tinylm_engine::cpu::ops;
use tinylm_engine::lora::kernels::{self as k, AttnShape, LoraPair, IGNORE};
use tinylm_engine::randmodel::det_uniform;

fn rand(name: &str, n: usize) -> Vec<f64> {
    det_uniform(3, name, n, 1.0, 0.0).iter().map(|&v| v as f64).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks `bwd(x, dy)` = `∂⟨dy, f(x)⟩/∂x` by central differences.
fn check(name: &str, x: Vec<f64>, f: impl Fn(&[f64]) -> Vec<f64>, bwd: impl Fn(&[f64], &[f64]) -> Vec<f64>) {
    let dy = rand(&format!("{name}.dy"), f(&x).len());
    let dx = bwd(&x, &dy);
    assert_eq!(dx.len(), x.len(), "{name}");
    let h = 1e-6;
    let scale = dx.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for i in 0..x.len() {
        let at = |d: f64| {
            let mut p = x.clone();
            p[i] += d;
            dot(&dy, &f(&p))
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        assert!((numeric - dx[i]).abs() < 1e-7 * scale, "{name}[{i}]: analytic {}, numeric {numeric}", dx[i]);
    }
}

#[test]
fn rmsnorm_bwd() {
    let g = rand("g", 6);
    let f = |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        k::rmsnorm(&mut y, x, &g);
        y
    };
    check("rmsnorm", rand("x", 18), f, |x, dy| {
        let mut dx = vec![0.0; x.len()];
        k::rmsnorm_bwd(&mut dx, x, &g, dy);
        dx
    });
}

#[test]
fn rope_bwd() {
    let (width, seq, hs) = (8, 3, 4);
    let f = |x: &[f64]| {
        let mut y = x.to_vec();
        k::rope(&mut y, width, seq, hs);
        y
    };
    check("rope", rand("x", 6 * width), f, |_, dy| {
        let mut dx = dy.to_vec();
        k::rope_bwd(&mut dx, width, seq, hs);
        dx
    });
}

#[test]
fn swiglu_bwd() {
    let n = 10;
    let f = |x: &[f64]| {
        let mut g = vec![0.0; n];
        k::swiglu(&mut g, &x[..n], &x[n..]);
        g
    };
    check("swiglu", rand("x", 2 * n), f, |x, dg| {
        let (mut d1, mut d3) = (vec![0.0; n], vec![0.0; n]);
        k::swiglu_bwd(&mut d1, &mut d3, dg, &x[..n], &x[n..]);
        [d1, d3].concat()
    });
}

#[test]
fn attention_bwd_with_grouped_heads_and_a_batch() {
    let s = AttnShape { batch: 2, seq: 3, n_heads: 4, n_kv_heads: 2, head_size: 2 };
    let (nq, nkv) = (s.batch * s.seq * s.dim(), s.batch * s.seq * s.kv_dim());
    let split = |x: &[f64]| (x[..nq].to_vec(), x[nq..nq + nkv].to_vec(), x[nq + nkv..].to_vec());
    let fwd = |x: &[f64]| {
        let (q, kk, v) = split(x);
        let (mut out, mut probs) = (vec![0.0; nq], vec![0.0; s.probs_len()]);
        k::attention(&mut out, &mut probs, &q, &kk, &v, s);
        (out, probs)
    };
    let x = rand("qkv", nq + 2 * nkv).iter().map(|v| 3.0 * v).collect();
    check(
        "attention",
        x,
        |x| fwd(x).0,
        |x, dout| {
            let (q, kk, v) = split(x);
            let probs = fwd(x).1;
            let (mut dq, mut dk, mut dv) = (vec![0.0; nq], vec![0.0; nkv], vec![0.0; nkv]);
            k::attention_bwd(&mut dq, &mut dk, &mut dv, dout, &probs, &q, &kk, &v, s);
            [dq, dk, dv].concat()
        },
    );
    // Causal: rows sum to one, nothing above the diagonal.
    let probs = fwd(&rand("qkv", nq + 2 * nkv)).1;
    for (i, row) in probs.chunks(s.seq).enumerate() {
        let t = i % s.seq;
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(row[t + 1..].iter().all(|&p| p == 0.0));
    }
}

#[test]
fn cross_entropy_bwd_skips_ignored_rows() {
    let (vocab, targets) = (5, [3u32, IGNORE, 0]);
    let scale = 0.5;
    let f = |x: &[f64]| vec![k::cross_entropy(x, &targets, vocab).0 * scale];
    check("cross_entropy", rand("logits", 15), f, |x, dy| {
        let mut g = x.to_vec();
        k::cross_entropy_bwd(&mut g, &targets, vocab, scale * dy[0]);
        g
    });
    assert_eq!(k::cross_entropy(&rand("logits", 15), &targets, vocab).1, 2);
}

#[test]
fn matmul_and_lora_bwd() {
    let (n, n_in, n_out, r) = (3, 4, 5, 2);
    let w = rand("w", n_out * n_in);
    let x0 = rand("x", n * n_in);
    check(
        "matmul dx",
        x0.clone(),
        |x| {
            let mut y = vec![0.0; n * n_out];
            k::matmul(&mut y, x, &w, n_in);
            y
        },
        |_, dy| {
            let mut dx = vec![0.0; n * n_in];
            k::matmul_dx(&mut dx, dy, &w, n_in, 1.0);
            dx
        },
    );
    check(
        "matmul dw",
        w.clone(),
        |w| {
            let mut y = vec![0.0; n * n_out];
            k::matmul(&mut y, &x0, w, n_in);
            y
        },
        |_, dy| {
            let mut dw = vec![0.0; n_out * n_in];
            k::matmul_dw(&mut dw, dy, &x0, n_in, 1.0);
            dw
        },
    );
    // y = s·B(A x) w.r.t. x, A and B together.
    let s = 1.7;
    let (na, nb) = (r * n_in, n_out * r);
    let parts = |p: &[f64]| (p[..n * n_in].to_vec(), p[n * n_in..n * n_in + na].to_vec(), p[n * n_in + na..].to_vec());
    let p0 = [x0.clone(), rand("a", na), rand("b", nb)].concat();
    check(
        "lora",
        p0,
        |p| {
            let (x, a, b) = parts(p);
            let (mut y, mut u) = (vec![0.0; n * n_out], vec![0.0; n * r]);
            k::lora(&mut y, &mut u, &x, LoraPair { a: &a, b: &b, r, s });
            y
        },
        |p, dy| {
            let (x, a, b) = parts(p);
            let pair = LoraPair { a: &a, b: &b, r, s };
            let mut u = vec![0.0; n * r];
            k::lora(&mut vec![0.0; n * n_out], &mut u, &x, pair);
            let (mut dx, mut da, mut db, mut du) = (vec![0.0; n * n_in], vec![0.0; na], vec![0.0; nb], vec![0.0; n * r]);
            k::lora_bwd(Some(&mut dx), &mut da, &mut db, &mut du, dy, &x, &u, pair);
            [dx, da, db].concat()
        },
    );
}

fn rand32(name: &str, n: usize) -> Vec<f32> {
    det_uniform(9, name, n, 2.0, 0.0)
}

#[test]
fn forward_kernels_match_cpu_ops_bit_for_bit() {
    let (d, out) = (16, 12);
    let (x, w, g) = (rand32("x", d), rand32("w", out * d), rand32("g", d));
    let (mut a, mut b) = (vec![0f32; out], vec![0f32; out]);
    k::matmul(&mut a, &x, &w, d);
    ops::matmul(&mut b, &x, &w);
    assert_eq!(a, b);
    let (mut a, mut b) = (vec![0f32; d], vec![0f32; d]);
    k::rmsnorm(&mut a, &x, &g);
    ops::rmsnorm(&mut b, &x, &g);
    assert_eq!(a, b);
    // RoPE: row n of a batch sits at position n mod seq.
    let seq = 7;
    let rows = rand32("r", d * seq);
    let mut batched = rows.clone();
    k::rope(&mut batched, d, seq, 4);
    for (pos, (row, got)) in rows.chunks(d).zip(batched.chunks(d)).enumerate() {
        let mut want = row.to_vec();
        ops::rope(&mut want, pos, &tinylm_engine::Config::llama2c([4, 4, 1, 1, 1, 1, 1], true).rope_freqs());
        assert_eq!(got, want.as_slice(), "pos {pos}");
    }
    let (mut a, mut b) = (x.clone(), x.clone());
    k::softmax(&mut a);
    ops::softmax(&mut b);
    assert_eq!(a, b);
    let mut s = vec![0f32; d];
    k::swiglu(&mut s, &x, &g);
    let want: Vec<f32> = x.iter().zip(&g).map(|(&p, &q)| ops::silu(p) * q).collect();
    assert_eq!(s, want);
}
