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
        return unsafe { x86::rows(out, x, w) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::rows(out, x, w);
    #[allow(unreachable_code)]
    portable::rows(out, x, w)
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
            let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (a, b) in tail.iter().zip(&x[n - n % 8..]) {
                s += a * b;
            }
            *o = s;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Four rows at a time share each load of x; two accumulators per row hide FMA latency.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn rows(out: &mut [f32], x: &[f32], w: &[f32]) {
        let n = x.len();
        let mut r = 0;
        while r + 4 <= out.len() {
            let rows4 = &w[r * n..(r + 4) * n];
            let s = dot4(rows4, x, n);
            out[r..r + 4].copy_from_slice(&s);
            r += 4;
        }
        for i in r..out.len() {
            out[i] = dot1(&w[i * n..(i + 1) * n], x);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot4(w: &[f32], x: &[f32], n: usize) -> [f32; 4] {
        let body = n - n % 8;
        let p = w.as_ptr();
        let xp = x.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j < body {
            let xv = _mm256_loadu_ps(xp.add(j));
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(k * n + j)), xv, *a);
            }
            j += 8;
        }
        let mut s = [0f32; 4];
        for k in 0..4 {
            s[k] = hsum(acc[k]);
            for t in body..n {
                s[k] += w[k * n + t] * x[t];
            }
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot1(row: &[f32], x: &[f32]) -> f32 {
        let n = x.len();
        let body = n - n % 16;
        let (p, xp) = (row.as_ptr(), x.as_ptr());
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut j = 0;
        while j < body {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(j)), _mm256_loadu_ps(xp.add(j)), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(j + 8)), _mm256_loadu_ps(xp.add(j + 8)), a1);
            j += 16;
        }
        let mut s = hsum(_mm256_add_ps(a0, a1));
        for t in body..n {
            s += row[t] * x[t];
        }
        s
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use std::arch::wasm32::*;

    /// Two rows at a time share each load of x; two accumulators per row.
    pub fn rows(out: &mut [f32], x: &[f32], w: &[f32]) {
        let n = x.len();
        let body = n - n % 8;
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            let (mut a0, mut a1) = (f32x4_splat(0.0), f32x4_splat(0.0));
            let mut j = 0;
            while j < body {
                // SAFETY: j + 8 <= body <= n, within both slices.
                unsafe {
                    let r0 = v128_load(row.as_ptr().add(j) as *const v128);
                    let r1 = v128_load(row.as_ptr().add(j + 4) as *const v128);
                    let x0 = v128_load(x.as_ptr().add(j) as *const v128);
                    let x1 = v128_load(x.as_ptr().add(j + 4) as *const v128);
                    a0 = f32x4_add(a0, f32x4_mul(r0, x0));
                    a1 = f32x4_add(a1, f32x4_mul(r1, x1));
                }
                j += 8;
            }
            let a = f32x4_add(a0, a1);
            let mut s = (f32x4_extract_lane::<0>(a) + f32x4_extract_lane::<1>(a))
                + (f32x4_extract_lane::<2>(a) + f32x4_extract_lane::<3>(a));
            for t in body..n {
                s += row[t] * x[t];
            }
            *o = s;
        }
    }
}
