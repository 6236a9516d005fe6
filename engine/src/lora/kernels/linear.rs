//! Matrix products and the LoRA branch, forward and backward.
//!
//! Large products split their output rows over the current pool (`crate::pool`). Each output
//! element is still summed by one thread in the serial order, so results are bit-identical to
//! one thread.

use crate::lora::real::Real;
use crate::pool;

/// Work (multiply-adds) below this stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 17;

/// The pool to split `work` over, when it is large enough and the pool has several threads.
pub(crate) fn parallel(work: usize) -> Option<std::sync::Arc<dyn pool::Pool>> {
    if work < PARALLEL_MIN {
        return None;
    }
    Some(pool::current()).filter(|p| p.threads() > 1)
}

/// Runs `f` on every pair of `(out row, in row)` chunks, in parallel when the work is large.
fn rows<F: Real>(out: &mut [F], out_w: usize, inp: &[F], in_w: usize, work: usize, f: impl Fn(&mut [F], &[F]) + Sync) {
    let one = |o: &mut [F], i: &[F]| o.chunks_exact_mut(out_w).zip(i.chunks_exact(in_w)).for_each(|(o, i)| f(o, i));
    match parallel(work) {
        Some(p) => {
            let per = (out.len() / out_w).div_ceil(4 * p.threads()).max(1);
            pool::for_chunks(&*p, out, per * out_w, |b, o| one(o, &inp[b * per * in_w..][..o.len() / out_w * in_w]))
        }
        None => one(out, inp),
    }
}

/// `y[N,out] = x[N,in] · wᵀ`, each dot product summed in order as run.c's matmul.
pub fn matmul<F: Real>(y: &mut [F], x: &[F], w: &[F], n_in: usize) {
    let n_out = w.len() / n_in;
    rows(y, n_out, x, n_in, y.len() * n_in, |yr, xr| {
        for (o, row) in yr.iter_mut().zip(w.chunks_exact(n_in)) {
            *o = dot(row, xr);
        }
    });
}

/// `y[N,out] += s · (x[N,in] · wᵀ)`: LoRA's up-projection added onto the base output, scaled
/// after the product as PEFT does (`result + lora_B(lora_A(x)) * scaling`).
pub fn matmul_add_scaled<F: Real>(y: &mut [F], x: &[F], w: &[F], n_in: usize, s: F) {
    let n_out = w.len() / n_in;
    rows(y, n_out, x, n_in, y.len() * n_in, |yr, xr| {
        for (o, row) in yr.iter_mut().zip(w.chunks_exact(n_in)) {
            *o += dot(row, xr) * s;
        }
    });
}

fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    let mut acc = F::ZERO;
    for (&p, &q) in a.iter().zip(b) {
        acc += p * q;
    }
    acc
}

/// `dx[N,in] += (s · dy[N,out]) · w`: the input gradient of `y = x·wᵀ` (scaled by `s`).
pub fn matmul_dx<F: Real>(dx: &mut [F], dy: &[F], w: &[F], n_in: usize, s: F) {
    let n_out = w.len() / n_in;
    rows(dx, n_in, dy, n_out, dx.len() * n_out, |dxr, dyr| {
        for (&g, row) in dyr.iter().zip(w.chunks_exact(n_in)) {
            let g = g * s;
            for (d, &wv) in dxr.iter_mut().zip(row) {
                *d += g * wv;
            }
        }
    });
}

/// `dw[out,in] += (s · dy[N,out])ᵀ · x[N,in]`: the weight gradient of `y = x·wᵀ`.
/// Split by rows of `dw`, each summing over the batch rows in order.
pub fn matmul_dw<F: Real>(dw: &mut [F], dy: &[F], x: &[F], n_in: usize, s: F) {
    let n_out = dw.len() / n_in;
    let one_row = |o: usize, dwr: &mut [F]| {
        for (dyr, xr) in dy.chunks_exact(n_out).zip(x.chunks_exact(n_in)) {
            let g = dyr[o] * s;
            for (d, &xv) in dwr.iter_mut().zip(xr) {
                *d += g * xv;
            }
        }
    };
    match parallel(dw.len() * (dy.len() / n_out)) {
        Some(p) => pool::for_chunks(&*p, dw, n_in, one_row),
        None => dw.chunks_exact_mut(n_in).enumerate().for_each(|(o, r)| one_row(o, r)),
    }
}

/// One LoRA pair as the kernels see it: `a [r, in]`, `b [out, r]`, scale `s`.
#[derive(Debug, Clone, Copy)]
pub struct LoraPair<'a, F> {
    pub a: &'a [F],
    pub b: &'a [F],
    pub r: usize,
    pub s: F,
}

impl<F> LoraPair<'_, F> {
    fn n_in(&self) -> usize {
        self.a.len() / self.r
    }
}

/// The LoRA branch forward, `y += s · B(A x)`; `u[N,r] = x·Aᵀ` is kept for the backward.
pub fn lora<F: Real>(y: &mut [F], u: &mut [F], x: &[F], p: LoraPair<F>) {
    matmul(u, x, p.a, p.n_in());
    matmul_add_scaled(y, u, p.b, p.r, p.s);
}

/// Gradients of `y += s · B(A x)` given `dy`: `dB += (s·dy)ᵀ u`, `dA += duᵀ x` and, when asked,
/// `dx += du · A`, with `du = (s·dy) · B` written into the scratch `du [N,r]`.
#[allow(clippy::too_many_arguments)]
pub fn lora_bwd<F: Real>(
    dx: Option<&mut [F]>,
    da: &mut [F],
    db: &mut [F],
    du: &mut [F],
    dy: &[F],
    x: &[F],
    u: &[F],
    p: LoraPair<F>,
) {
    du.fill(F::ZERO);
    matmul_dx(du, dy, p.b, p.r, p.s);
    matmul_dw(db, dy, u, p.r, p.s);
    matmul_dw(da, du, x, p.n_in(), F::ONE);
    if let Some(dx) = dx {
        matmul_dx(dx, du, p.a, p.n_in(), F::ONE);
    }
}
