//! AVX2+FMA Q8_0 kernel for `q8.rs` (groups within rows, group a multiple of 8).

use std::arch::x86_64::*;

use super::Q8Rows;

/// `out = W · x`. Per group, eight int8 at a time are widened to f32 and multiplied into two
/// partial sums (alternating chunks); each partial sum is scaled into its own accumulator, so two
/// FMA chains run at once; a row's sum is `hsum(acc0 + acc1)`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rows(out: &mut [f32], x: &[f32], w: Q8Rows) {
    let (n, g) = (w.cols, w.group);
    assert!(w.offset == 0 && n.is_multiple_of(g) && g.is_multiple_of(8) && x.len() == n);
    assert!(w.q.len() >= out.len() * n && w.scales.len() >= out.len() * (n / g));
    let (xp, per_row) = (x.as_ptr(), n / g);
    for (r, o) in out.iter_mut().enumerate() {
        let q = w.q.as_ptr().add(r * n);
        let sc = w.scales.as_ptr().add(r * per_row);
        let mut acc = [_mm256_setzero_ps(); 2];
        for k in 0..per_row {
            let mut s = [_mm256_setzero_ps(); 2];
            let mut j = k * g;
            let mut c = 0;
            while j < (k + 1) * g {
                let wv = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(q.add(j) as *const __m128i)));
                s[c & 1] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(j)), s[c & 1]);
                j += 8;
                c += 1;
            }
            let scale = _mm256_set1_ps(*sc.add(k));
            acc[0] = _mm256_fmadd_ps(s[0], scale, acc[0]);
            acc[1] = _mm256_fmadd_ps(s[1], scale, acc[1]);
        }
        *o = hsum(_mm256_add_ps(acc[0], acc[1]));
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}
