//! Row-wise kernels: RMSNorm, RoPE, softmax and SwiGLU, forward and backward.

use crate::lora::real::Real;

/// RMSNorm's epsilon in llama2.c and Hugging Face Llama.
pub const RMS_EPS: f64 = 1e-5;

/// `1 / sqrt(mean(x²) + eps)`, summed in order as run.c.
fn inv_rms<F: Real>(x: &[F]) -> F {
    let mut ss = F::ZERO;
    for &v in x {
        ss += v * v;
    }
    ss /= F::of(x.len() as f64);
    ss += F::of(RMS_EPS);
    F::ONE / ss.sqrt()
}

/// `y = g ⊙ x · rs` per row of `g.len()`, computed as run.c: `g_j · (rs · x_j)`.
pub fn rmsnorm<F: Real>(y: &mut [F], x: &[F], g: &[F]) {
    let d = g.len();
    for (yr, xr) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
        let s = inv_rms(xr);
        for ((o, &xv), &gv) in yr.iter_mut().zip(xr).zip(g) {
            *o = gv * (s * xv);
        }
    }
}

/// `dx += ∂y/∂x · dy` for `y = rmsnorm(x, g)` (g frozen):
/// `dx_j += rs·g_j·dy_j − x_j · rs³ · Σ_i(g_i·dy_i·x_i) / n`.
pub fn rmsnorm_bwd<F: Real>(dx: &mut [F], x: &[F], g: &[F], dy: &[F]) {
    let d = g.len();
    let rows = dx.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(dy.chunks_exact(d));
    for ((dxr, xr), dyr) in rows {
        let s = inv_rms(xr);
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

/// The angle of RoPE pair `j` (even, `0 ≤ j < hs`) at `pos`, as `(sin, cos)`, computed as
/// `cpu::ops::rope`: `pos · 10000^(−j/hs)`.
fn rope_sin_cos<F: Real>(pos: usize, j: usize, hs: usize) -> (F, F) {
    let freq = F::ONE / F::of(10000.0).powf(F::of(j as f64) / F::of(hs as f64));
    (F::of(pos as f64) * freq).sin_cos()
}

/// `rope_sin_cos` of each position `< min(rows, seq)` and pair of a head, `[pos, hs/2]`: the
/// same values, computed once per call (or once per trainer) instead of once per row and head.
pub fn rope_table<F: Real>(rows: usize, seq: usize, hs: usize) -> Vec<(F, F)> {
    (0..rows.min(seq)).flat_map(|p| (0..hs).step_by(2).map(move |j| rope_sin_cos(p, j, hs))).collect()
}

/// RoPE in place on `x [N, width]` (whole heads of `hs`); row `n` is at position `n mod seq`.
pub fn rope<F: Real>(x: &mut [F], width: usize, seq: usize, hs: usize) {
    rope_with(x, width, seq, hs, &rope_table(x.len() / width, seq, hs))
}

/// `rope` with the table made by `rope_table` for at least these rows.
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
pub fn rope_bwd<F: Real>(dx: &mut [F], width: usize, seq: usize, hs: usize) {
    rope_bwd_with(dx, width, seq, hs, &rope_table(dx.len() / width, seq, hs))
}

/// `rope_bwd` with a table from `rope_table`.
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
