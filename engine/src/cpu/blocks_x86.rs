//! AVX2+FMA (+F16C for the blocks' f16 scales) kernels for `blocks.rs`: per block, eight bytes
//! at a time are widened to i32 lanes (one load-and-widen each; the shuffle port bounds these
//! loops, so each byte is widened once) and their nibbles and bit pairs masked and shifted there,
//! then converted to f32 and multiplied into partial sums, one per run of values sharing a scale
//! (two runs at once: two FMA chains); each is scaled into one of two row accumulators, and a
//! row's sum is `hsum(acc0 + acc1)`. Q4_K's mins come out of the sum: `Σ (d·sc·q − dmin·m)·x =
//! d·sc·Σ q·x − dmin·m·Σ x`, with `Σ x` per run of 32 taken once for all rows. F16 and BF16 rows
//! are widened eight at a time (F16C's conversion; BF16 is the top half of an f32) into four FMA
//! chains.

use std::arch::x86_64::*;

use super::{BlockRows, Layout32};
use crate::quant::{scale_min_k4, DType};

/// `out = W · x` for every block type and F16/BF16.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (per, _) = w.dtype.block();
    assert!(w.cols.is_multiple_of(per) && x.len() == w.cols && w.n_rows() >= out.len());
    match w.dtype {
        DType::Q4_0 => rows_q4_0(out, x, w),
        DType::Q4K => rows_q4_k(out, x, w),
        DType::Q6K => rows_q6_k(out, x, w),
        DType::Q4_1 | DType::Q5_0 | DType::Q5_1 => rows_32(out, x, w, Layout32::of(w.dtype).expect("a 32-value type")),
        DType::F16 => rows_half(out, x, w, |p| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))),
        DType::BF16 => rows_half(out, x, w, |p| {
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)), 16))
        }),
        _ => super::portable(out, x, w),
    }
}

/// The f16 at `b[i..i + 2]` as f32, inline (`half`'s conversion is a call, which makes the loop
/// spill its accumulators; measured ≈3× slower decode on the Q4_0 fixture).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn f16_at(b: &[u8], i: usize) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(u16::from_le_bytes([b[i], b[i + 1]]) as i32)))
}

/// Eight bytes at `p` as eight i32 (one widening load: shuffles, not arithmetic, bound these
/// kernels, so each byte is widened once and its nibbles split in i32 lanes).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn bytes8(p: *const u8) -> __m256i {
    _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i))
}

/// `acc + f32(q) · x[0..8]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn fma8(q: __m256i, x: *const f32, acc: __m256) -> __m256 {
    _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(x), acc)
}

/// Q4_0: `[d, 16 bytes]`, weights `(nibble − 8)·d`, the 16 low nibbles first.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q4_0(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (m4, eight) = (_mm256_set1_epi32(0xf), _mm256_set1_epi32(8));
    for (r, o) in out.iter_mut().enumerate() {
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for (k, b) in w.rows(r, 1).data.chunks_exact(18).enumerate() {
            let xs = x.as_ptr().add(32 * k);
            let (v0, v1) = (bytes8(b.as_ptr().add(2)), bytes8(b.as_ptr().add(10)));
            let lo = |v| _mm256_sub_epi32(_mm256_and_si256(v, m4), eight);
            let hi = |v| _mm256_sub_epi32(_mm256_srli_epi32(v, 4), eight);
            let s0 = fma8(hi(v0), xs.add(16), fma8(lo(v0), xs, _mm256_setzero_ps()));
            let s1 = fma8(hi(v1), xs.add(24), fma8(lo(v1), xs.add(8), _mm256_setzero_ps()));
            let d = _mm256_set1_ps(f16_at(b, 0));
            a0 = _mm256_fmadd_ps(s0, d, a0);
            a1 = _mm256_fmadd_ps(s1, d, a1);
        }
        *o = hsum(_mm256_add_ps(a0, a1));
    }
}

/// Q4_1, Q5_0 and Q5_1 (`l`), as Q4_0 with a fifth bit from `qh` (one variable shift per eight
/// lanes) and the min out of the sum: `Σ (v·d + m)·x = d·Σ v·x + m·Σ x`, `Σ x` per block once.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_32(out: &mut [f32], x: &[f32], w: BlockRows, l: Layout32) {
    let bytes = w.dtype.block().1;
    let sums: Vec<f32> = if l.min.is_some() { x.chunks_exact(32).map(|c| c.iter().sum()).collect() } else { Vec::new() };
    let (m4, sub, one) = (_mm256_set1_epi32(0xf), _mm256_set1_epi32(l.sub), _mm256_set1_epi32(1));
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (r, o) in out.iter_mut().enumerate() {
        let (mut a0, mut a1, mut mins) = (_mm256_setzero_ps(), _mm256_setzero_ps(), 0f32);
        for (k, b) in w.rows(r, 1).data.chunks_exact(bytes).enumerate() {
            let xs = x.as_ptr().add(32 * k);
            let (v0, v1) = (bytes8(b.as_ptr().add(l.qs)), bytes8(b.as_ptr().add(l.qs + 8)));
            // Values 0..8, 8..16 (low nibbles), 16..24, 24..32 (high).
            let mut q = [_mm256_and_si256(v0, m4), _mm256_and_si256(v1, m4), _mm256_srli_epi32(v0, 4), _mm256_srli_epi32(v1, 4)];
            if let Some(at) = l.qh {
                let qh = _mm256_set1_epi32(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as i32);
                for (i, q) in q.iter_mut().enumerate() {
                    let shift = _mm256_add_epi32(lanes, _mm256_set1_epi32(8 * i as i32));
                    let fifth = _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(qh, shift), one), 4);
                    *q = _mm256_or_si256(*q, fifth);
                }
            }
            let q = q.map(|v| _mm256_sub_epi32(v, sub));
            let s0 = fma8(q[2], xs.add(16), fma8(q[0], xs, _mm256_setzero_ps()));
            let s1 = fma8(q[3], xs.add(24), fma8(q[1], xs.add(8), _mm256_setzero_ps()));
            let d = _mm256_set1_ps(f16_at(b, 0));
            a0 = _mm256_fmadd_ps(s0, d, a0);
            a1 = _mm256_fmadd_ps(s1, d, a1);
            if let Some(at) = l.min {
                mins += f16_at(b, at) * sums[k];
            }
        }
        *o = hsum(_mm256_add_ps(a0, a1)) + mins;
    }
}

/// Q4_K: `[d, dmin, 12 bytes of scales/mins, 128 bytes]`, four chunks of 32 bytes, each the
/// low nibbles of run `2c` then the high nibbles of run `2c+1`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q4_k(out: &mut [f32], x: &[f32], w: BlockRows) {
    let sums: Vec<f32> = x.chunks_exact(32).map(|c| c.iter().sum()).collect();
    let m4 = _mm256_set1_epi32(0xf);
    for (r, o) in out.iter_mut().enumerate() {
        let (mut a0, mut a1, mut mins) = (_mm256_setzero_ps(), _mm256_setzero_ps(), 0f32);
        for (k, b) in w.rows(r, 1).data.chunks_exact(144).enumerate() {
            let (d, dmin, sc) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
            for c in 0..4 {
                let xs = x.as_ptr().add(256 * k + 64 * c);
                let v: [__m256i; 4] = std::array::from_fn(|i| bytes8(b.as_ptr().add(16 + 32 * c + 8 * i)));
                for h in 0..2 {
                    let q = |i: usize| if h == 0 { _mm256_and_si256(v[i], m4) } else { _mm256_srli_epi32(v[i], 4) };
                    let xh = xs.add(32 * h);
                    let s0 = fma8(q(2), xh.add(16), fma8(q(0), xh, _mm256_setzero_ps()));
                    let s1 = fma8(q(3), xh.add(24), fma8(q(1), xh.add(8), _mm256_setzero_ps()));
                    let (s, m) = scale_min_k4(2 * c + h, sc);
                    let scale = _mm256_set1_ps(d * s as f32);
                    a0 = _mm256_fmadd_ps(s0, scale, a0);
                    a1 = _mm256_fmadd_ps(s1, scale, a1);
                    mins += dmin * m as f32 * sums[8 * k + 2 * c + h];
                }
            }
        }
        *o = hsum(_mm256_add_ps(a0, a1)) - mins;
    }
}

/// Q6_K: `[128 bytes low nibbles, 64 bytes high 2 bits, 16 × i8 scales, d]`, two halves of 128
/// weights; in a half, lane `l` of run `g` (0..4) takes its low 4 bits from `ql[l]` (runs 0, 2:
/// low, high nibble) or `ql[l+32]` (runs 1, 3) and its high 2 bits from `qh[l] >> 2g`; lanes
/// 0..16 and 16..32 of a run have a scale each.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q6_k(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (m4, m2, off) = (_mm256_set1_epi32(0xf), _mm256_set1_epi32(3), _mm256_set1_epi32(32));
    for (r, o) in out.iter_mut().enumerate() {
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for (k, b) in w.rows(r, 1).data.chunks_exact(210).enumerate() {
            let (p, d) = (b.as_ptr(), f16_at(b, 208));
            for h in 0..2 {
                let xs = x.as_ptr().add(256 * k + 128 * h);
                // Sums per run and per half of its lanes (one scale each).
                let mut s = [[_mm256_setzero_ps(); 2]; 4];
                for i in 0..4 {
                    let (la, lb, hb) =
                        (bytes8(p.add(64 * h + 8 * i)), bytes8(p.add(64 * h + 32 + 8 * i)), bytes8(p.add(128 + 32 * h + 8 * i)));
                    let top =
                        |g: i32| _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(hb, _mm256_set1_epi32(2 * g)), m2), 4);
                    let low =
                        [_mm256_and_si256(la, m4), _mm256_and_si256(lb, m4), _mm256_srli_epi32(la, 4), _mm256_srli_epi32(lb, 4)];
                    for g in 0..4 {
                        let q = _mm256_sub_epi32(_mm256_or_si256(low[g], top(g as i32)), off);
                        s[g][i / 2] = fma8(q, xs.add(32 * g + 8 * i), s[g][i / 2]);
                    }
                }
                for (g, s) in s.iter().enumerate() {
                    let sc = &b[192 + 8 * h + 2 * g..];
                    a0 = _mm256_fmadd_ps(s[0], _mm256_set1_ps(d * sc[0] as i8 as f32), a0);
                    a1 = _mm256_fmadd_ps(s[1], _mm256_set1_ps(d * sc[1] as i8 as f32), a1);
                }
            }
        }
        *o = hsum(_mm256_add_ps(a0, a1));
    }
}

/// F16 or BF16 rows: `load8` widens the eight 2-byte values at a pointer to f32; four chains of
/// eight, then the row's last `cols % 8` values one by one.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn rows_half(out: &mut [f32], x: &[f32], w: BlockRows, load8: impl Fn(*const u8) -> __m256) {
    let (n, eights) = (w.cols, w.cols / 8 * 8);
    let one = |b: &[u8], i: usize| match w.dtype {
        DType::F16 => f16_at(b, 2 * i),
        _ => f32::from_bits((u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u32) << 16),
    };
    for (r, o) in out.iter_mut().enumerate() {
        let row = w.rows(r, 1).data;
        let (p, xs) = (row.as_ptr(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= eights {
            for (j, a) in acc.iter_mut().enumerate() {
                let at = i + 8 * j;
                *a = _mm256_fmadd_ps(load8(p.add(2 * at)), _mm256_loadu_ps(xs.add(at)), *a);
            }
            i += 32;
        }
        while i < eights {
            acc[0] = _mm256_fmadd_ps(load8(p.add(2 * i)), _mm256_loadu_ps(xs.add(i)), acc[0]);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        for (k, xk) in x.iter().enumerate().take(n).skip(eights) {
            sum += one(row, k) * xk;
        }
        *o = sum;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}
