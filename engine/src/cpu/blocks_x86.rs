//! AVX2+FMA kernels for `blocks.rs`: per block the integers are unpacked 32 at a time (nibbles
//! masked and shifted within bytes), widened eight at a time to f32 and multiplied into two
//! partial sums (alternate chunks, two FMA chains); each run of values sharing a scale is scaled
//! into one of two row accumulators, and a row's sum is `hsum(acc0 + acc1)`. Q4_K's mins come
//! out of the sum: `Σ (d·sc·q − dmin·m)·x = d·sc·Σ q·x − dmin·m·Σ x`, with `Σ x` per run of 32
//! taken once for all rows.

use std::arch::x86_64::*;

use super::BlockRows;
use crate::quant::{f16_at, scale_min_k4, DType};

/// `out = W · x` for Q4_0, Q4_K and Q6_K (others on the portable kernel).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rows(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (per, _) = w.dtype.block();
    assert!(w.cols.is_multiple_of(per) && x.len() == w.cols && w.n_rows() >= out.len());
    match w.dtype {
        DType::Q4_0 => rows_q4_0(out, x, w),
        DType::Q4K => rows_q4_k(out, x, w),
        DType::Q6K => rows_q6_k(out, x, w),
        _ => super::portable(out, x, w),
    }
}

/// Two partial sums over 32 int8 values `q` (lanes 0..32) against `x[0..32]`: chunks 0 and 2
/// into the first, 1 and 3 into the second; `lo_hi` splits them by halves instead (chunks 0, 1
/// into the first), for Q6_K whose scales cover 16 values.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot32(q: __m256i, x: *const f32, lo_hi: bool) -> (__m256, __m256) {
    let (a, b) = (_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    let f = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
    let c = [f(a), f(_mm_srli_si128(a, 8)), f(b), f(_mm_srli_si128(b, 8))];
    let p = |i: usize| _mm256_mul_ps(c[i], _mm256_loadu_ps(x.add(8 * i)));
    let (i0, i1, i2, i3) = if lo_hi { (0, 1, 2, 3) } else { (0, 2, 1, 3) };
    (_mm256_fmadd_ps(c[i1], _mm256_loadu_ps(x.add(8 * i1)), p(i0)), _mm256_fmadd_ps(c[i3], _mm256_loadu_ps(x.add(8 * i3)), p(i2)))
}

/// Q4_0: `[d, 16 bytes]`, weights `(nibble − 8)·d`, low nibbles first.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_q4_0(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (m4, eight) = (_mm256_set1_epi8(0xf), _mm256_set1_epi8(8));
    for (r, o) in out.iter_mut().enumerate() {
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for (k, b) in w.rows(r, 1).data.chunks_exact(18).enumerate() {
            let v = _mm_loadu_si128(b.as_ptr().add(2) as *const __m128i);
            // Lanes 0..16 the low nibbles, 16..32 the high ones: the block's order.
            let both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
            let q = _mm256_sub_epi8(_mm256_and_si256(both, m4), eight);
            let (s0, s1) = dot32(q, x.as_ptr().add(32 * k), false);
            let d = _mm256_set1_ps(f16_at(b, 0));
            a0 = _mm256_fmadd_ps(s0, d, a0);
            a1 = _mm256_fmadd_ps(s1, d, a1);
        }
        *o = hsum(_mm256_add_ps(a0, a1));
    }
}

/// Q4_K: `[d, dmin, 12 bytes of scales/mins, 128 bytes]`, four chunks of 32 bytes, each the
/// low nibbles of run `2c` then the high nibbles of run `2c+1`.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_q4_k(out: &mut [f32], x: &[f32], w: BlockRows) {
    let sums: Vec<f32> = x.chunks_exact(32).map(|c| c.iter().sum()).collect();
    let m4 = _mm256_set1_epi8(0xf);
    for (r, o) in out.iter_mut().enumerate() {
        let (mut a0, mut a1, mut mins) = (_mm256_setzero_ps(), _mm256_setzero_ps(), 0f32);
        for (k, b) in w.rows(r, 1).data.chunks_exact(144).enumerate() {
            let (d, dmin, sc) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
            for c in 0..4 {
                let v = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * c) as *const __m256i);
                for (h, q) in [_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)].into_iter().enumerate() {
                    let j = 2 * c + h;
                    let (s, m) = scale_min_k4(j, sc);
                    let (s0, s1) = dot32(q, x.as_ptr().add(256 * k + 32 * j), false);
                    let scale = _mm256_set1_ps(d * s as f32);
                    a0 = _mm256_fmadd_ps(s0, scale, a0);
                    a1 = _mm256_fmadd_ps(s1, scale, a1);
                    mins += dmin * m as f32 * sums[8 * k + j];
                }
            }
        }
        *o = hsum(_mm256_add_ps(a0, a1)) - mins;
    }
}

/// Q6_K: `[128 bytes low nibbles, 64 bytes high 2 bits, 16 × i8 scales, d]`, two halves of 128
/// weights; in a half, lane `l` of run `g` (0..4) takes its low 4 bits from `ql[l]` (runs 0, 2:
/// low, high nibble) or `ql[l+32]` (runs 1, 3) and its high 2 bits from `qh[l] >> 2g`; each 16
/// values share a scale.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_q6_k(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (m4, m2, off) = (_mm256_set1_epi8(0xf), _mm256_set1_epi8(3), _mm256_set1_epi8(32));
    for (r, o) in out.iter_mut().enumerate() {
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for (k, b) in w.rows(r, 1).data.chunks_exact(210).enumerate() {
            let d = f16_at(b, 208);
            for h in 0..2 {
                let p = b.as_ptr();
                let lo_a = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
                let lo_b = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
                let hi = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
                let nib = [lo_a, lo_b, _mm256_srli_epi16(lo_a, 4), _mm256_srli_epi16(lo_b, 4)];
                let top = [hi, _mm256_srli_epi16(hi, 2), _mm256_srli_epi16(hi, 4), _mm256_srli_epi16(hi, 6)];
                for g in 0..4 {
                    let q6 = _mm256_or_si256(_mm256_and_si256(nib[g], m4), _mm256_slli_epi16(_mm256_and_si256(top[g], m2), 4));
                    let q = _mm256_sub_epi8(q6, off);
                    let (s0, s1) = dot32(q, x.as_ptr().add(256 * k + 128 * h + 32 * g), true);
                    let sc = |i: usize| _mm256_set1_ps(d * b[192 + 8 * h + 2 * g + i] as i8 as f32);
                    a0 = _mm256_fmadd_ps(s0, sc(0), a0);
                    a1 = _mm256_fmadd_ps(s1, sc(1), a1);
                }
            }
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
