//! The scalar kernels of run.c, written to do the same f32 operations in the same order.

pub use crate::sampler::softmax;

/// `o = g ⊙ x / sqrt(mean(x²) + 1e-5)`, computed as run.c: `g_j · (s · x_j)`.
pub fn rmsnorm(o: &mut [f32], x: &[f32], g: &[f32]) {
    rmsnorm_eps(o, x, g, crate::config::LLAMA2C_NORM_EPS)
}

/// `rmsnorm` with the model's epsilon (`Config::norm_eps`).
pub fn rmsnorm_eps(o: &mut [f32], x: &[f32], g: &[f32], eps: f32) {
    let mut ss = 0f32;
    for v in x {
        ss += v * v;
    }
    ss /= x.len() as f32;
    ss += eps;
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

/// RoPE on adjacent pairs: pair (i, i+1) of a head turns by `pos · freqs[(i mod hs) / 2]`
/// (`Config::rope_freqs`, `hs = 2 · freqs.len()`; run.c's `pos / 10000^(j/hs)` for llama2.c).
pub fn rope(v: &mut [f32], pos: usize, freqs: &[f32]) {
    let hs = 2 * freqs.len();
    for i in (0..v.len()).step_by(2) {
        let freq = freqs[(i % hs) / 2];
        let (fci, fcr) = (pos as f32 * freq).sin_cos();
        let (v0, v1) = (v[i], v[i + 1]);
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }
}

/// One head's attention as run.c: `att[t] = q·k_t / sqrt(hs)`, softmax, `out = Σ_t att[t]·v_t`;
/// position `t`'s key and value start at `keys[t·stride..]` and `values[t·stride..]`.
pub fn attend(q: &[f32], keys: &[f32], values: &[f32], stride: usize, att: &mut [f32], out: &mut [f32]) {
    let hs = q.len();
    let scale = (hs as f32).sqrt();
    for (t, a) in att.iter_mut().enumerate() {
        let k = &keys[t * stride..][..hs];
        let mut score = 0f32;
        for i in 0..hs {
            score += q[i] * k[i];
        }
        *a = score / scale;
    }
    softmax(att);
    out.fill(0.0);
    for (t, &a) in att.iter().enumerate() {
        let v = &values[t * stride..][..hs];
        for i in 0..hs {
            out[i] += a * v[i];
        }
    }
}

/// SwiGLU in place: `h = silu(h) · g`.
pub fn swiglu(h: &mut [f32], g: &[f32]) {
    for (a, &b) in h.iter_mut().zip(g) {
        *a = silu(*a) * b;
    }
}

/// `rope`'s (sin, cos) for each pair of a head at `pos`: the same values, computed once per
/// token instead of once per layer and head.
pub fn rope_table(table: &mut [(f32, f32)], pos: usize, freqs: &[f32]) {
    for (e, &freq) in table.iter_mut().zip(freqs) {
        *e = (pos as f32 * freq).sin_cos();
    }
}

/// `rope` with a `rope_table` (bit for bit the same result).
pub fn rope_turn(v: &mut [f32], table: &[(f32, f32)]) {
    for head in v.chunks_exact_mut(2 * table.len()) {
        for (pair, &(fci, fcr)) in head.chunks_exact_mut(2).zip(table) {
            let (v0, v1) = (pair[0], pair[1]);
            pair[0] = v0 * fcr - v1 * fci;
            pair[1] = v0 * fci + v1 * fcr;
        }
    }
}

/// `a / (1 + e^(-a))`.
pub fn silu(a: f32) -> f32 {
    a * (1.0 / (1.0 + (-a).exp()))
}
