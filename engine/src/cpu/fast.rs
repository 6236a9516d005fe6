//! Fast matrix–vector products for the CPU path: explicit SIMD with several accumulators (AVX2+FMA
//! natively when the processor has it, simd128 in wasm), rows split across threads natively.
//! The scalar `ops::matmul` stays the reference these are tested against.

/// `out = W · x`, W row-major `[out.len(), x.len()]`, on the fastest kernel available.
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    #[cfg(not(target_arch = "wasm32"))]
    if out.len() * x.len() >= PARALLEL_MIN && rayon::current_num_threads() > 1 {
        return parallel(out, x, w);
    }
    rows(out, x, w);
}

/// Matrices smaller than this (in elements) are not worth splitting across threads.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_MIN: usize = 1 << 17;

#[cfg(not(target_arch = "wasm32"))]
fn parallel(out: &mut [f32], x: &[f32], w: &[f32]) {
    use rayon::prelude::*;
    let n = x.len();
    // Blocks of rows a few times the thread count, so uneven cores still balance.
    let block = out.len().div_ceil(4 * rayon::current_num_threads()).max(16);
    out.par_chunks_mut(block)
        .zip(w.par_chunks(block * n))
        .for_each(|(o, wb)| rows(o, x, wb));
}

/// One thread's share of rows.
fn rows(out: &mut [f32], x: &[f32], w: &[f32]) {
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

/// One head's attention over positions `0..att.len()`: `att = softmax(q·k_t / sqrt(hs))`,
/// `out = Σ_t att[t]·v_t`, with `hs = q.len()` and position `t`'s key and value at
/// `keys[t·stride..]` and `values[t·stride..]` (as `ops::attend`).
pub fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    stride: usize,
    att: &mut [f32],
    out: &mut [f32],
) {
    let hs = q.len();
    let span = att.len().saturating_sub(1) * stride + hs;
    assert!(
        keys.len() >= span && values.len() >= span && out.len() == hs,
        "attend: cache slices too short"
    );
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && hs.is_multiple_of(8) && (8..=64).contains(&hs) {
        // SAFETY: AVX2+FMA checked; every key and value read lies within `span` (asserted).
        return unsafe { x86_attend(q, keys, values, stride, att, out) };
    }
    super::ops::attend(q, keys, values, stride, att, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn x86_attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    stride: usize,
    att: &mut [f32],
    out: &mut [f32],
) {
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
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2+FMA checked at run time.
        return unsafe { x86::softmax(x) };
    }
    super::ops::softmax(x)
}

/// SwiGLU in place: `h = silu(h) · g`.
pub fn swiglu(h: &mut [f32], g: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2+FMA checked at run time.
        return unsafe { x86::swiglu(h, g) };
    }
    super::ops::swiglu(h, g)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
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
            let mut s =
                ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
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
mod wasm {
    use std::arch::wasm32::*;

    /// Rows in memory order; four accumulators (16 floats per step) hide the add latency
    /// (simd128 has no fused multiply-add).
    pub fn rows(out: &mut [f32], x: &[f32], w: &[f32]) {
        let n = x.len();
        let body = n - n % 16;
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            let mut acc = [f32x4_splat(0.0); 4];
            let mut j = 0;
            while j < body {
                for (k, a) in acc.iter_mut().enumerate() {
                    // SAFETY: j + 16 <= body <= n, within both slices.
                    let (r, xv) = unsafe {
                        (
                            v128_load(row.as_ptr().add(j + 4 * k) as *const v128),
                            v128_load(x.as_ptr().add(j + 4 * k) as *const v128),
                        )
                    };
                    *a = f32x4_add(*a, f32x4_mul(r, xv));
                }
                j += 16;
            }
            let a = f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3]));
            let mut s = (f32x4_extract_lane::<0>(a) + f32x4_extract_lane::<1>(a))
                + (f32x4_extract_lane::<2>(a) + f32x4_extract_lane::<3>(a));
            for t in body..n {
                s += row[t] * x[t];
            }
            *o = s;
        }
    }
}
