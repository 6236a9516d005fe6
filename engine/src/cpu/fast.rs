//! Fast kernels for the CPU path: explicit SIMD with several accumulators (AVX2+FMA natively when
//! the processor has it, simd128 in wasm), rows split over the current pool (`crate::pool`). Matrix–vector and
//! matrix–matrix products, attention forward and backward, softmax, RMSNorm and SwiGLU.
//! The scalar `ops` (and the LoRA trainer's generic kernels) stay the reference these are tested
//! against.

use crate::pool;

/// `out = W · x`, W row-major `[out.len(), x.len()]`, on the fastest kernel available; large
/// matrices split by rows over the current pool (`crate::pool`), bit-identical to one thread.
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    if out.len() * n >= PARALLEL_MIN {
        let pool = pool::current();
        if pool.threads() > 1 {
            let block = pool::block_rows(out.len(), n, pool.threads());
            return pool::for_chunks(&*pool, out, block, |b, o| rows(o, x, &w[b * block * n..][..o.len() * n]));
        }
    }
    rows(out, x, w)
}

/// Work (multiply-adds) below which a product stays on the calling thread: about two
/// microseconds, the price of waking the pool and waiting for it.
pub(crate) const PARALLEL_MIN: usize = 1 << 15;

/// One thread's share of rows. Blocks of a multiple of 8 rows give the whole-matrix result
/// (the AVX2 kernel takes short rows eight at a time from the block's start).
pub(crate) fn rows(out: &mut [f32], x: &[f32], w: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the processor supports AVX2 and FMA (checked at run time).
        return unsafe { x86::matvec(out, x, w) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::rows(out, x, w);
    #[allow(unreachable_code)]
    portable::rows(out, x, w)
}

/// `rows` for two vectors at once (`out_a = W·x_a`, `out_b = W·x_b`), each equal to its own `rows`
/// bit for bit; long rows share each weight load (batched decode, `cpu::batch`).
pub(crate) fn rows_pair(out_a: &mut [f32], out_b: &mut [f32], xa: &[f32], xb: &[f32], w: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if xa.len() >= 256 && has_avx2_fma() {
        // SAFETY: AVX2 and FMA checked at run time; rows at least the kernel's long-row length.
        return unsafe { x86::matvec_pair(out_a, out_b, xa, xb, w) };
    }
    rows(out_a, xa, w);
    rows(out_b, xb, w);
}

/// `rows` for four vectors at once (`outs[s] = W·xs[s]`), each equal to its own `rows` bit for
/// bit; long rows go two at a time times all four vectors (batched decode, `cpu::batch`).
/// In wasm each vector goes through `rows` on its own: simd128 has no FMA, so a product is bound
/// by its multiplies and adds, not by the weight loads a shared kernel saves (measured under
/// Node, s15m, batch of 4: 433 tok/s one by one, 383 through a four-vector simd128 kernel, one
/// sequence alone 400).
pub(crate) fn rows_quad(outs: [&mut [f32]; 4], xs: [&[f32]; 4], w: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if xs[0].len() >= 256 && has_avx2_fma() {
        // SAFETY: AVX2 and FMA checked at run time; rows at least the kernel's long-row length.
        return unsafe { x86::matvec_quad(outs, xs, w) };
    }
    let [oa, ob, oc, od] = outs;
    rows_pair(oa, ob, xs[0], xs[1], w);
    rows_pair(oc, od, xs[2], xs[3], w);
}

/// Splits rows of `out` (each `width` long) with the rows of `inp` (each `in_width`) over the
/// current pool when `work` is large; `f(out rows, in rows)`.
fn split_rows(out: &mut [f32], width: usize, inp: &[f32], in_width: usize, work: usize, f: impl Fn(&mut [f32], &[f32]) + Sync) {
    let n = out.len() / width.max(1);
    let pool = pool::current();
    if work < PARALLEL_MIN || pool.threads() == 1 || n < 2 {
        return f(out, inp);
    }
    let per = n.div_ceil(4 * pool.threads());
    pool::for_chunks(&*pool, out, per * width, |b, o| f(o, &inp[b * per * in_width..][..o.len() / width * in_width]));
}

/// `y[N,out] = x[N,in] · Wᵀ` (W row-major `[out, in]`): every row of `y` is `matmul` of the
/// same row of `x`, bit for bit, whichever thread computes it.
pub fn matmat(y: &mut [f32], x: &[f32], w: &[f32], n_in: usize) {
    let n_out = w.len() / n_in.max(1);
    if n_out == 0 || n_in == 0 {
        return y.fill(0.0);
    }
    split_rows(y, n_out, x, n_in, y.len() * n_in, |y, x| {
        y.chunks_exact_mut(n_out).zip(x.chunks_exact(n_in)).for_each(|(yr, xr)| rows(yr, xr, w))
    });
}

/// `dx[N,in] += (s·dy[N,out]) · W`, the input gradient of `matmat`. Each element adds the rows
/// of W in order, rounding as the scalar `d += (g·s)·w` (so equal to that loop bit for bit).
pub fn matmul_dx(dx: &mut [f32], dy: &[f32], w: &[f32], n_in: usize, s: f32) {
    let n_out = w.len() / n_in.max(1);
    if n_out == 0 || n_in == 0 {
        return;
    }
    split_rows(dx, n_in, dy, n_out, dx.len() * n_out, |dx, dy| {
        dx.chunks_exact_mut(n_in).zip(dy.chunks_exact(n_out)).for_each(|(dxr, dyr)| dx_rows(dxr, dyr, w, n_in, s))
    });
}

fn dx_rows(dx: &mut [f32], dy: &[f32], w: &[f32], n_in: usize, s: f32) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 checked at run time.
        return unsafe { x86::matmul_dx(dx, dy, w, n_in, s) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::matmul_dx(dx, dy, w, n_in, s);
    #[allow(unreachable_code)]
    for (o, &g) in dy.iter().enumerate() {
        let g = g * s;
        for (d, &wv) in dx.iter_mut().zip(&w[o * n_in..(o + 1) * n_in]) {
            *d += g * wv;
        }
    }
}

/// `Σ a[j]·b[j]` of two short vectors (a head), with SIMD partial sums.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2+FMA checked; both slices hold at least `n` floats.
        return unsafe { x86::dot(a.as_ptr(), b.as_ptr(), a.len().min(b.len())) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::dot(a, b);
    #[allow(unreachable_code)]
    a.iter().zip(b).fold(0.0, |s, (p, q)| s + p * q)
}

/// `y += a·x`, each element rounding as the scalar `y + a·x`.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 checked at run time.
        return unsafe { x86::axpy(y, a, x) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::axpy(y, a, x);
    #[allow(unreachable_code)]
    for (d, &v) in y.iter_mut().zip(x) {
        *d += a * v;
    }
}

/// RMSNorm as `ops::rmsnorm` with SIMD partial sums of squares.
pub fn rmsnorm(o: &mut [f32], x: &[f32], g: &[f32]) {
    rmsnorm_eps(o, x, g, crate::config::LLAMA2C_NORM_EPS)
}

/// `rmsnorm` with the model's epsilon (`ops::rmsnorm_eps`).
pub fn rmsnorm_eps(o: &mut [f32], x: &[f32], g: &[f32], eps: f32) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2+FMA checked at run time.
        return unsafe { x86::rmsnorm(o, x, g, eps) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::rmsnorm(o, x, g, eps);
    #[allow(unreachable_code)]
    super::ops::rmsnorm_eps(o, x, g, eps)
}

/// One head's attention over positions `0..att.len()`: `att = softmax(q·k_t / sqrt(hs))`,
/// `out = Σ_t att[t]·v_t`, with `hs = q.len()` and position `t`'s key and value at
/// `keys[t·stride..]` and `values[t·stride..]` (as `ops::attend`).
pub fn attend(q: &[f32], keys: &[f32], values: &[f32], stride: usize, att: &mut [f32], out: &mut [f32]) {
    let hs = q.len();
    let span = att.len().saturating_sub(1) * stride + hs;
    assert!(keys.len() >= span && values.len() >= span && out.len() == hs, "attend: cache slices too short");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && hs.is_multiple_of(8) && (8..=64).contains(&hs) {
        // SAFETY: AVX2+FMA checked; every key and value read lies within `span` (asserted).
        return unsafe { x86_attend(q, keys, values, stride, att, out) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if hs.is_multiple_of(4) && (4..=64).contains(&hs) {
        // A fixed number of 4-float chunks per head keeps q and the sums in registers.
        macro_rules! by_chunks {
            ($($c:literal)*) => {
                match hs / 4 {
                    $($c => return wasm::attend::<$c>(q, keys, values, stride, att, out),)*
                    _ => unreachable!("head sizes 4..=64 only"),
                }
            };
        }
        by_chunks!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
    }
    #[allow(unreachable_code)]
    super::ops::attend(q, keys, values, stride, att, out)
}

/// The backward of one head's `attend`, given its `att` and the output's gradient `dout`: adds
/// into `dq` and into position t's `dk`, `dv` at `[t·stride..]` (`ds` is scratch, `att.len()`):
/// `dv_t += p_t·dout`, `ds_t = p_t·(dout·v_t − Σ p·(dout·v))`, `dq += ds_t/√hs · k_t`,
/// `dk_t += ds_t/√hs · q`.
#[allow(clippy::too_many_arguments)]
pub fn attend_bwd(
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    stride: usize,
    dout: &[f32],
    att: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    ds: &mut [f32],
) {
    let hs = q.len();
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && hs.is_multiple_of(8) && (8..=64).contains(&hs) {
        let n = att.len();
        let keys = if n == 0 { 0 } else { (n - 1) * stride + hs };
        assert!(
            dq.len() >= hs
                && dout.len() >= hs
                && ds.len() >= n
                && [dk.len(), dv.len(), k.len(), v.len()].iter().all(|&l| l >= keys)
        );
        let (dkp, dvp, kp, vp) = (dk.as_mut_ptr(), dv.as_mut_ptr(), k.as_ptr(), v.as_ptr());
        macro_rules! by_chunks {
            ($($c:literal)*) => {
                match hs / 8 {
                    // SAFETY: AVX2+FMA checked; every key's `hs` floats lie within the slices (asserted above).
                    $($c => return unsafe { x86::attend_bwd::<$c>(dq, dkp, dvp, stride, dout, att, q, kp, vp, ds) },)*
                    _ => unreachable!("head sizes 8..=64 only"),
                }
            };
        }
        by_chunks!(1 2 3 4 5 6 7 8)
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if hs.is_multiple_of(4) && (4..=64).contains(&hs) {
        macro_rules! by_chunks {
            ($($c:literal)*) => {
                match hs / 4 {
                    $($c => return wasm::attend_bwd::<$c>(dq, dk, dv, stride, dout, att, q, k, v, ds),)*
                    _ => unreachable!("head sizes 4..=64 only"),
                }
            };
        }
        by_chunks!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
    }
    attend_bwd_by_calls(dq, dk, dv, stride, dout, att, q, k, v, ds)
}

/// `attend_bwd` through a `dot` and `axpy` call per key: any head size, and the reference the
/// AVX2 and simd128 kernels are checked against bit for bit (`tests/fast_kernels.rs`).
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn attend_bwd_by_calls(
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    stride: usize,
    dout: &[f32],
    att: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    ds: &mut [f32],
) {
    let hs = q.len();
    let scale = (hs as f32).sqrt();
    let mut sum = 0f32;
    for (t, (&p, d)) in att.iter().zip(ds.iter_mut()).enumerate() {
        let at = t * stride;
        *d = dot(dout, &v[at..at + hs]);
        axpy(&mut dv[at..at + hs], p, dout);
        sum += p * *d;
    }
    for (t, (&p, &d)) in att.iter().zip(ds.iter()).enumerate() {
        let g = p * (d - sum) / scale;
        let at = t * stride;
        axpy(dq, g, &k[at..at + hs]);
        axpy(&mut dk[at..at + hs], g, q);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn x86_attend(q: &[f32], k: &[f32], v: &[f32], stride: usize, att: &mut [f32], out: &mut [f32]) {
    // A fixed number of 8-float chunks per head keeps q and the sums in registers.
    macro_rules! by_chunks {
        ($($c:literal)*) => {
            match q.len() / 8 {
                $($c => {
                    x86::scores::<$c>(q, k.as_ptr(), stride, att);
                    x86::softmax(att);
                    x86::weighted_sum::<$c>(att, v.as_ptr(), stride, out);
                })*
                _ => unreachable!("head sizes 8..=64 only"),
            }
        };
    }
    by_chunks!(1 2 3 4 5 6 7 8)
}

/// In-place softmax (vectorised `exp`, within a few ulps of `ops::softmax`).
pub fn softmax(x: &mut [f32]) {
    softmax_stats(x);
}

/// `softmax`, returning the max and the sum of `e^(x−max)` it divided by (`max + ln(sum)` is the
/// logsumexp of `x` as it was), as `sampler::softmax_stats`.
pub fn softmax_stats(x: &mut [f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2+FMA checked at run time.
        return unsafe { x86::softmax(x) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::softmax(x);
    #[allow(unreachable_code)]
    crate::sampler::softmax_stats(x)
}

/// SwiGLU in place: `h = silu(h) · g`.
pub fn swiglu(h: &mut [f32], g: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2+FMA checked at run time.
        return unsafe { x86::swiglu(h, g) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::swiglu(h, g);
    #[allow(unreachable_code)]
    super::ops::swiglu(h, g)
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Name of the kernel `matmul` uses here, for benchmark reports.
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return "avx2+fma";
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return "simd128";
    #[allow(unreachable_code)]
    "portable"
}

/// Eight independent accumulators per row: the compiler keeps them in vector registers.
mod portable {
    pub fn rows(out: &mut [f32], x: &[f32], w: &[f32]) {
        let n = x.len();
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            let mut acc = [0f32; 8];
            let (body, tail) = row.split_at(n - n % 8);
            for (r, xs) in body.chunks_exact(8).zip(x.chunks_exact(8)) {
                for k in 0..8 {
                    acc[k] += r[k] * xs[k];
                }
            }
            let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (a, b) in tail.iter().zip(&x[n - n % 8..]) {
                s += a * b;
            }
            *o = s;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "fast_x86.rs"]
mod x86;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[path = "fast_wasm.rs"]
mod wasm;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) use wasm::{touch_ahead, touch_here};
