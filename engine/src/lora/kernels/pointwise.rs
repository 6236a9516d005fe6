//! Row-wise kernels: RMSNorm, RoPE, softmax and SwiGLU, forward and backward.

use crate::config::Config;
use crate::lora::real::Real;

/// RMSNorm's epsilon in llama2.c (models give their own: `Config::norm_eps`).
pub const RMS_EPS: f64 = 1e-5;

/// `1 / sqrt(mean(x²) + eps)`, summed in order as run.c.
pub fn inv_rms<F: Real>(x: &[F], eps: F) -> F {
    let mut ss = F::ZERO;
    for &v in x {
        ss += v * v;
    }
    ss /= F::of(x.len() as f64);
    ss += eps;
    F::ONE / ss.sqrt()
}

/// `rmsnorm_eps` with llama2.c's epsilon.
pub fn rmsnorm<F: Real>(y: &mut [F], x: &[F], g: &[F]) {
    rmsnorm_eps(y, x, g, F::of(RMS_EPS))
}

/// `y = g ⊙ x · rs` per row of `g.len()`, computed as run.c: `g_j · (rs · x_j)`.
pub fn rmsnorm_eps<F: Real>(y: &mut [F], x: &[F], g: &[F], eps: F) {
    let d = g.len();
    for (yr, xr) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
        let s = inv_rms(xr, eps);
        for ((o, &xv), &gv) in yr.iter_mut().zip(xr).zip(g) {
            *o = gv * (s * xv);
        }
    }
}

/// `dx += ∂y/∂x · dy` for `y = rmsnorm(x, g)` (g frozen):
/// `dx_j += rs·g_j·dy_j − x_j · rs³ · Σ_i(g_i·dy_i·x_i) / n`.
pub fn rmsnorm_bwd<F: Real>(dx: &mut [F], x: &[F], g: &[F], dy: &[F]) {
    rmsnorm_bwd_eps(dx, x, g, dy, F::of(RMS_EPS))
}

/// `rmsnorm_bwd` with the model's epsilon.
pub fn rmsnorm_bwd_eps<F: Real>(dx: &mut [F], x: &[F], g: &[F], dy: &[F], eps: F) {
    let d = g.len();
    let rows = dx.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(dy.chunks_exact(d));
    for ((dxr, xr), dyr) in rows {
        let s = inv_rms(xr, eps);
        let mut dot = F::ZERO;
        for ((&gv, &dv), &xv) in g.iter().zip(dyr).zip(xr) {
            dot += gv * dv * xv;
        }
        let c = dot * s * s * s / F::of(d as f64);
        for (((o, &gv), &dv), &xv) in dxr.iter_mut().zip(g).zip(dyr).zip(xr) {
            *o += s * gv * dv - c * xv;
        }
    }
}

/// RoPE's frequency of each pair of a head in `F`, computed as `Config::rope_freqs` (so in f32
/// bit for bit the CPU path's): `1 / theta^(2p/hs)`, divided as llama3 scaling says.
pub fn rope_freqs<F: Real>(c: &Config) -> Vec<F> {
    let hs = c.head_size();
    (0..hs / 2)
        .map(|p| {
            let freq = F::ONE / F::of(c.rope_theta as f64).powf(F::of((2 * p) as f64) / F::of(hs as f64));
            match c.rope_scaling {
                Some(r) => freq / F::of(r.divisor(freq.to_f64() as f32) as f64),
                None => freq,
            }
        })
        .collect()
}

/// `(sin, cos)` of `pos · freqs[p]` for each position `< min(rows, seq)` and pair `p` of a head,
/// `[pos, hs/2]`: computed once per call (or once per trainer) instead of once per row and head.
pub fn rope_table<F: Real>(rows: usize, seq: usize, freqs: &[F]) -> Vec<(F, F)> {
    (0..rows.min(seq)).flat_map(|p| freqs.iter().map(move |&f| (F::of(p as f64) * f).sin_cos())).collect()
}

/// llama2.c's frequencies for heads of `hs`.
fn llama2c_freqs<F: Real>(hs: usize) -> Vec<F> {
    rope_freqs(&Config::llama2c([hs, hs, 1, 1, 1, 1, 1], true))
}

/// `rope_with` at llama2.c's frequencies (heads of `hs`).
pub fn rope<F: Real>(x: &mut [F], width: usize, seq: usize, hs: usize) {
    rope_with(x, width, seq, hs, &rope_table(x.len() / width, seq, &llama2c_freqs(hs)))
}

/// `rope_bwd_with` at llama2.c's frequencies.
pub fn rope_bwd<F: Real>(dx: &mut [F], width: usize, seq: usize, hs: usize) {
    rope_bwd_with(dx, width, seq, hs, &rope_table(dx.len() / width, seq, &llama2c_freqs(hs)))
}

/// RoPE in place on `x [N, width]` (whole heads of `hs`) with a table from `rope_table` for at
/// least these rows; row `n` is at position `n mod seq`.
pub fn rope_with<F: Real>(x: &mut [F], width: usize, seq: usize, hs: usize, table: &[(F, F)]) {
    for (n, row) in x.chunks_exact_mut(width).enumerate() {
        for i in (0..width).step_by(2) {
            let (sin, cos) = table[(n % seq) * (hs / 2) + (i % hs) / 2];
            let (v0, v1) = (row[i], row[i + 1]);
            row[i] = v0 * cos - v1 * sin;
            row[i + 1] = v0 * sin + v1 * cos;
        }
    }
}

/// RoPE's backward in place: a rotation's gradient turns by the opposite angle.
/// `table`: as `rope_with`'s.
pub fn rope_bwd_with<F: Real>(dx: &mut [F], width: usize, seq: usize, hs: usize, table: &[(F, F)]) {
    for (n, row) in dx.chunks_exact_mut(width).enumerate() {
        for i in (0..width).step_by(2) {
            let (sin, cos) = table[(n % seq) * (hs / 2) + (i % hs) / 2];
            let (g0, g1) = (row[i], row[i + 1]);
            row[i] = g0 * cos + g1 * sin;
            row[i + 1] = g1 * cos - g0 * sin;
        }
    }
}

/// In-place softmax as run.c (`sampler::softmax`): subtract the max, exp, sum in order, divide.
pub fn softmax<F: Real>(x: &mut [F]) {
    let Some(&first) = x.first() else { return };
    let max = x.iter().fold(first, |m, &v| if v > m { v } else { m });
    let mut sum = F::ZERO;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

fn sigmoid<F: Real>(a: F) -> F {
    F::ONE / (F::ONE + (-a).exp())
}

/// `g = silu(h1) ⊙ h3` with `silu(a) = a · σ(a)`, as run.c.
pub fn swiglu<F: Real>(g: &mut [F], h1: &[F], h3: &[F]) {
    for ((o, &a), &b) in g.iter_mut().zip(h1).zip(h3) {
        *o = a * sigmoid(a) * b;
    }
}

/// `dh1 += dg · h3 · σ(a)(1 + a(1 − σ(a)))`, `dh3 += dg · silu(a)` with `a = h1`.
pub fn swiglu_bwd<F: Real>(dh1: &mut [F], dh3: &mut [F], dg: &[F], h1: &[F], h3: &[F]) {
    let it = dh1.iter_mut().zip(dh3.iter_mut()).zip(dg).zip(h1).zip(h3);
    for ((((d1, d3), &g), &a), &b) in it {
        let sig = sigmoid(a);
        *d3 += g * (a * sig);
        *d1 += g * b * sig * (F::ONE + a * (F::ONE - sig));
    }
}
