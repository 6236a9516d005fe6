//! AVX2+FMA Q8_0 kernel for `q8.rs` (groups within rows, group a multiple of 8).

use std::arch::x86_64::*;

use super::Q8Rows;

/// `out = W · x`. Per group, eight int8 at a time are widened to f32 and multiplied into two
/// partial sums (alternating chunks); each partial sum is scaled into its own accumulator, so two
/// FMA chains run at once; a row's sum is `hsum(acc0 + acc1)`. The group's chunk count is a
/// constant for the usual sizes (16, 32, 64), so the loop unrolls and the sums stay in registers.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rows(out: &mut [f32], x: &[f32], w: Q8Rows) {
    let (n, g) = (w.cols, w.group);
    assert!(w.offset == 0 && n.is_multiple_of(g) && g.is_multiple_of(8) && x.len() == n);
    assert!(w.q.len() >= out.len() * n && w.scales.len() >= out.len() * (n / g));
    match g / 8 {
        2 => rows_of::<2>(out, x, w),
        4 => rows_of::<4>(out, x, w),
        8 => rows_of::<8>(out, x, w),
        c => rows_any(out, x, w, c),
    }
}

/// Eight int8 at `q` as f32.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn widen(q: *const i8) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(q as *const __m128i)))
}

/// `rows` for groups of `8·C` values.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_of<const C: usize>(out: &mut [f32], x: &[f32], w: Q8Rows) {
    let n = w.cols;
    let (xp, per_row) = (x.as_ptr(), n / (8 * C));
    for (r, o) in out.iter_mut().enumerate() {
        let q = w.q.as_ptr().add(r * n);
        let sc = w.scales.as_ptr().add(r * per_row);
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for k in 0..per_row {
            let at = k * 8 * C;
            let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for c in (0..C).step_by(2) {
                s0 = _mm256_fmadd_ps(widen(q.add(at + 8 * c)), _mm256_loadu_ps(xp.add(at + 8 * c)), s0);
                s1 = _mm256_fmadd_ps(widen(q.add(at + 8 * c + 8)), _mm256_loadu_ps(xp.add(at + 8 * c + 8)), s1);
            }
            let scale = _mm256_set1_ps(*sc.add(k));
            a0 = _mm256_fmadd_ps(s0, scale, a0);
            a1 = _mm256_fmadd_ps(s1, scale, a1);
        }
        *o = hsum(_mm256_add_ps(a0, a1));
    }
}

/// `rows` for groups of any `8·chunks` values (the same sums as `rows_of`, not unrolled).
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_any(out: &mut [f32], x: &[f32], w: Q8Rows, chunks: usize) {
    let (n, g) = (w.cols, w.group);
    let (xp, per_row) = (x.as_ptr(), n / g);
    for (r, o) in out.iter_mut().enumerate() {
        let q = w.q.as_ptr().add(r * n);
        let sc = w.scales.as_ptr().add(r * per_row);
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for k in 0..per_row {
            let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for c in 0..chunks {
                let at = k * g + 8 * c;
                let p = _mm256_fmadd_ps(widen(q.add(at)), _mm256_loadu_ps(xp.add(at)), if c % 2 == 0 { s0 } else { s1 });
                if c % 2 == 0 {
                    s0 = p
                } else {
                    s1 = p
                }
            }
            let scale = _mm256_set1_ps(*sc.add(k));
            a0 = _mm256_fmadd_ps(s0, scale, a0);
            a1 = _mm256_fmadd_ps(s1, scale, a1);
        }
        *o = hsum(_mm256_add_ps(a0, a1));
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}
