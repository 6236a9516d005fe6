//! The scalar kernels of run.c, written to do the same f32 operations in the same order.

pub use crate::sampler::softmax;

/// `o = g ⊙ x / sqrt(mean(x²) + 1e-5)`, computed as run.c: `g_j · (s · x_j)`.
pub fn rmsnorm(o: &mut [f32], x: &[f32], g: &[f32]) {
    let mut ss = 0f32;
    for v in x {
        ss += v * v;
    }
    ss /= x.len() as f32;
    ss += 1e-5;
    let s = 1.0 / ss.sqrt();
    for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
        *o = g * (s * x);
    }
}

/// `out = W · x` with `W` row-major `[out.len(), x.len()]`.
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        let mut acc = 0f32;
        for (a, b) in row.iter().zip(x) {
            acc += a * b;
        }
        *o = acc;
    }
}

/// RoPE on adjacent pairs: pair (i, i+1) with `j = i mod hs` turns by `pos / 10000^(j/hs)`.
pub fn rope(v: &mut [f32], pos: usize, hs: usize) {
    for i in (0..v.len()).step_by(2) {
        let j = i % hs;
        let freq = 1.0 / 10000f32.powf(j as f32 / hs as f32);
        let (fci, fcr) = (pos as f32 * freq).sin_cos();
        let (v0, v1) = (v[i], v[i + 1]);
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }
}

/// `a / (1 + e^(-a))`.
pub fn silu(a: f32) -> f32 {
    a * (1.0 / (1.0 + (-a).exp()))
}
