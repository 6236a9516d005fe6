//! simd128 kernels for `blocks.rs`, shaped as the AVX2 ones (`blocks_x86.rs`) four lanes wide:
//! four bytes at a time widened to u32 lanes, nibbles and bit pairs masked and shifted there,
//! converted to f32 and multiplied into partial sums, one per run sharing a scale (two at once),
//! each then scaled into a row accumulator; Q4_K's mins come out as `dmin·m·Σ x`. simd128 has no
//! fused multiply-add: each product and sum rounds on its own. F16 and BF16 rows are widened four
//! at a time into four sums (simd128 has no f16 conversion: `f16x4` does it in integer lanes).

use std::arch::wasm32::*;

use super::{BlockRows, Layout32};
use crate::cpu::fast::{touch_ahead, touch_here};
use crate::quant::{f16_at, scale_min_k4, DType};

/// `out = W · x` for every block type and F16/BF16.
pub fn rows(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (per, _) = w.dtype.block();
    assert!(w.cols.is_multiple_of(per) && x.len() == w.cols && w.n_rows() >= out.len());
    match w.dtype {
        DType::Q4_0 => rows_q4_0(out, x, w),
        DType::Q4K => rows_q4_k(out, x, w),
        DType::Q6K => rows_q6_k(out, x, w),
        DType::Q4_1 | DType::Q5_0 | DType::Q5_1 => rows_32(out, x, w, Layout32::of(w.dtype).expect("a 32-value type")),
        DType::F16 => rows_half(out, x, w, f16x4),
        DType::BF16 => rows_half(out, x, w, |h| u32x4_shl(h, 16)),
        _ => super::portable(out, x, w),
    }
}

/// Four bytes of `b` from `at` as u32 lanes.
#[inline]
fn bytes4(b: &[u8], at: usize) -> v128 {
    // The word's bytes in the low four bytes, little-endian: `b[at..at + 4]` in order.
    let v = u32x4_splat(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
    u32x4_extend_low_u16x8(u16x8_extend_low_u8x16(v))
}

/// `acc + f32(q) · x[at..at + 4]`.
#[inline]
fn madd4(q: v128, x: &[f32], at: usize, acc: v128) -> v128 {
    let x4 = &x[at..at + 4];
    // SAFETY: `x4` is 16 readable bytes; v128_load takes any alignment.
    let xv = unsafe { v128_load(x4.as_ptr() as *const v128) };
    f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(q), xv))
}

fn hsum(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v)) + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
}

/// Q4_0: `[d, 16 bytes]`, weights `(nibble − 8)·d`, the 16 low nibbles first.
fn rows_q4_0(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (m4, eight) = (u32x4_splat(0xf), i32x4_splat(8));
    let touch = touch_here();
    for (r, o) in out.iter_mut().enumerate() {
        if touch {
            touch_ahead(w.data, r * w.row_bytes(), w.row_bytes());
        }
        let (mut a0, mut a1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (k, b) in w.rows(r, 1).data.chunks_exact(18).enumerate() {
            let xs = &x[32 * k..32 * (k + 1)];
            let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
            for j in 0..4 {
                let v = bytes4(b, 2 + 4 * j);
                let (lo, hi) = (i32x4_sub(v128_and(v, m4), eight), i32x4_sub(u32x4_shr(v, 4), eight));
                s0 = madd4(lo, xs, 4 * j, s0);
                s1 = madd4(hi, xs, 16 + 4 * j, s1);
            }
            let d = f32x4_splat(f16_at(b, 0));
            a0 = f32x4_add(a0, f32x4_mul(s0, d));
            a1 = f32x4_add(a1, f32x4_mul(s1, d));
        }
        *o = hsum(f32x4_add(a0, a1));
    }
}

/// Q4_1, Q5_0 and Q5_1 (`l`), as Q4_0 with a fifth bit from `qh` (lanes whose bit is set, by a
/// mask test: simd128 has no per-lane shift) and the min out of the sum, `m·Σ x` per block.
fn rows_32(out: &mut [f32], x: &[f32], w: BlockRows, l: Layout32) {
    let bytes = w.dtype.block().1;
    let sums: Vec<f32> = if l.min.is_some() { x.chunks_exact(32).map(|c| c.iter().sum()).collect() } else { Vec::new() };
    let (m4, sub, sixteen, zero) = (u32x4_splat(0xf), i32x4_splat(l.sub), u32x4_splat(16), u32x4_splat(0));
    let touch = touch_here();
    for (r, o) in out.iter_mut().enumerate() {
        if touch {
            touch_ahead(w.data, r * w.row_bytes(), w.row_bytes());
        }
        let (mut a0, mut a1, mut mins) = (f32x4_splat(0.0), f32x4_splat(0.0), 0f32);
        for (k, b) in w.rows(r, 1).data.chunks_exact(bytes).enumerate() {
            let xs = &x[32 * k..32 * (k + 1)];
            let qh = l.qh.map(|at| u32x4_splat(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])));
            // 16 when value `first + lane`'s fifth bit is set.
            let fifth = |first: u32| match qh {
                Some(qh) => {
                    let bits = u32x4(1 << first, 1 << (first + 1), 1 << (first + 2), 1 << (first + 3));
                    v128_and(u32x4_ne(v128_and(qh, bits), zero), sixteen)
                }
                None => zero,
            };
            let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
            for j in 0..4 {
                let v = bytes4(b, l.qs + 4 * j);
                let lo = i32x4_sub(v128_or(v128_and(v, m4), fifth(4 * j as u32)), sub);
                let hi = i32x4_sub(v128_or(u32x4_shr(v, 4), fifth(16 + 4 * j as u32)), sub);
                s0 = madd4(lo, xs, 4 * j, s0);
                s1 = madd4(hi, xs, 16 + 4 * j, s1);
            }
            let d = f32x4_splat(f16_at(b, 0));
            a0 = f32x4_add(a0, f32x4_mul(s0, d));
            a1 = f32x4_add(a1, f32x4_mul(s1, d));
            if let Some(at) = l.min {
                mins += f16_at(b, at) * sums[k];
            }
        }
        *o = hsum(f32x4_add(a0, a1)) + mins;
    }
}

/// Q4_K: `[d, dmin, 12 bytes of scales/mins, 128 bytes]`, four chunks of 32 bytes, each the
/// low nibbles of run `2c` then the high nibbles of run `2c+1`.
fn rows_q4_k(out: &mut [f32], x: &[f32], w: BlockRows) {
    let sums: Vec<f32> = x.chunks_exact(32).map(|c| c.iter().sum()).collect();
    let m4 = u32x4_splat(0xf);
    let touch = touch_here();
    for (r, o) in out.iter_mut().enumerate() {
        if touch {
            touch_ahead(w.data, r * w.row_bytes(), w.row_bytes());
        }
        let (mut a0, mut a1, mut mins) = (f32x4_splat(0.0), f32x4_splat(0.0), 0f32);
        for (k, b) in w.rows(r, 1).data.chunks_exact(144).enumerate() {
            let (d, dmin, sc) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
            for c in 0..4 {
                let xs = &x[256 * k + 64 * c..256 * k + 64 * (c + 1)];
                // Runs 2c (low nibbles) and 2c+1 (high), each in two partial sums.
                let mut s = [[f32x4_splat(0.0); 2]; 2];
                for i in 0..8 {
                    let v = bytes4(b, 16 + 32 * c + 4 * i);
                    s[0][i % 2] = madd4(v128_and(v, m4), xs, 4 * i, s[0][i % 2]);
                    s[1][i % 2] = madd4(u32x4_shr(v, 4), xs, 32 + 4 * i, s[1][i % 2]);
                }
                for (h, s) in s.iter().enumerate() {
                    let (sv, m) = scale_min_k4(2 * c + h, sc);
                    let scale = f32x4_splat(d * sv as f32);
                    a0 = f32x4_add(a0, f32x4_mul(s[0], scale));
                    a1 = f32x4_add(a1, f32x4_mul(s[1], scale));
                    mins += dmin * m as f32 * sums[8 * k + 2 * c + h];
                }
            }
        }
        *o = hsum(f32x4_add(a0, a1)) - mins;
    }
}

/// Q6_K: `[128 bytes low nibbles, 64 bytes high 2 bits, 16 × i8 scales, d]`, as in
/// `blocks_x86.rs`: lanes 0..16 and 16..32 of each run of 32 have a scale each.
fn rows_q6_k(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (m4, m2, off) = (u32x4_splat(0xf), u32x4_splat(3), i32x4_splat(32));
    let touch = touch_here();
    for (r, o) in out.iter_mut().enumerate() {
        if touch {
            touch_ahead(w.data, r * w.row_bytes(), w.row_bytes());
        }
        let (mut a0, mut a1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (k, b) in w.rows(r, 1).data.chunks_exact(210).enumerate() {
            let d = f16_at(b, 208);
            for h in 0..2 {
                let xs = &x[256 * k + 128 * h..256 * k + 128 * (h + 1)];
                let mut s = [[f32x4_splat(0.0); 2]; 4];
                for i in 0..8 {
                    let (la, lb, hb) =
                        (bytes4(b, 64 * h + 4 * i), bytes4(b, 64 * h + 32 + 4 * i), bytes4(b, 128 + 32 * h + 4 * i));
                    let low = [v128_and(la, m4), v128_and(lb, m4), u32x4_shr(la, 4), u32x4_shr(lb, 4)];
                    for (g, low) in low.into_iter().enumerate() {
                        let top = u32x4_shl(v128_and(u32x4_shr(hb, 2 * g as u32), m2), 4);
                        let q = i32x4_sub(v128_or(low, top), off);
                        s[g][i / 4] = madd4(q, xs, 32 * g + 4 * i, s[g][i / 4]);
                    }
                }
                for (g, s) in s.iter().enumerate() {
                    let sc = &b[192 + 8 * h + 2 * g..];
                    a0 = f32x4_add(a0, f32x4_mul(s[0], f32x4_splat(d * sc[0] as i8 as f32)));
                    a1 = f32x4_add(a1, f32x4_mul(s[1], f32x4_splat(d * sc[1] as i8 as f32)));
                }
            }
        }
        *o = hsum(f32x4_add(a0, a1));
    }
}

/// Four f16 (the low 16 bits of u32 lanes) as f32, exactly: the exponent and mantissa shifted into
/// place read as an f32 2¹¹² too small, normal or subnormal alike, so one exact multiply rescales
/// them; infinities and NaNs (exponent 31) take f32's top exponent instead.
fn f16x4(h: v128) -> v128 {
    let em = v128_and(h, u32x4_splat(0x7fff));
    let scaled = f32x4_mul(u32x4_shl(em, 13), f32x4_splat(f32::from_bits(0x7780_0000))); // 2¹¹²
    let special = v128_or(u32x4_shl(em, 13), u32x4_splat(0x7f80_0000));
    let value = v128_bitselect(special, scaled, u32x4_ge(em, u32x4_splat(0x7c00)));
    v128_or(value, u32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16))
}

/// F16 or BF16 rows: `widen` turns four 2-byte values (low halves of u32 lanes) into f32; four
/// sums of four lanes, then the row's last `cols % 16` values four or one at a time.
fn rows_half(out: &mut [f32], x: &[f32], w: BlockRows, widen: impl Fn(v128) -> v128) {
    let n = w.cols;
    let lanes = |b: &[u8], i: usize| {
        let v = u64::from_le_bytes(b[2 * i..2 * i + 8].try_into().expect("8 bytes"));
        widen(u32x4_extend_low_u16x8(u64x2_splat(v)))
    };
    let touch = touch_here();
    for (r, o) in out.iter_mut().enumerate() {
        if touch {
            touch_ahead(w.data, r * w.row_bytes(), w.row_bytes());
        }
        let row = w.rows(r, 1).data;
        let mut acc = [f32x4_splat(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = madd(lanes(row, i + 4 * j), x, i + 4 * j, *a);
            }
            i += 16;
        }
        while i + 4 <= n {
            acc[0] = madd(lanes(row, i), x, i, acc[0]);
            i += 4;
        }
        let mut sum = hsum(f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3])));
        for k in i..n {
            let mut one = [0f32; 4];
            let h = u16::from_le_bytes([row[2 * k], row[2 * k + 1]]);
            // SAFETY: `one` is 16 writable bytes; v128_store takes any alignment.
            unsafe { v128_store(one.as_mut_ptr() as *mut v128, widen(u32x4_splat(h as u32))) };
            sum += one[0] * x[k];
        }
        *o = sum;
    }
}

/// `acc + w · x[at..at + 4]` for f32 lanes `w`.
#[inline]
fn madd(w: v128, x: &[f32], at: usize, acc: v128) -> v128 {
    let x4 = &x[at..at + 4];
    // SAFETY: `x4` is 16 readable bytes; v128_load takes any alignment.
    let xv = unsafe { v128_load(x4.as_ptr() as *const v128) };
    f32x4_add(acc, f32x4_mul(w, xv))
}
