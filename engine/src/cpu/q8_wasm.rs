//! simd128 Q8_0 kernel for `q8.rs` (groups within rows, group a multiple of 16). simd128 has no
//! fused multiply-add: each product and sum rounds on its own.

use std::arch::wasm32::*;

use super::Q8Rows;
use crate::cpu::fast::{touch_ahead, touch_here};

/// `out = W · x`: per group, sixteen int8 at a time are widened to four f32x4 and multiplied into
/// four partial sums; the group's sum is scaled into the row's accumulator.
pub fn rows(out: &mut [f32], x: &[f32], w: Q8Rows) {
    let (n, g) = (w.cols, w.group);
    assert!(w.offset == 0 && n.is_multiple_of(g) && g.is_multiple_of(16) && x.len() == n);
    assert!(w.q.len() >= out.len() * n && w.scales.len() >= out.len() * (n / g));
    let per_row = n / g;
    let touch = touch_here();
    for (r, o) in out.iter_mut().enumerate() {
        if touch {
            touch_ahead(w.q, r * n, n);
        }
        let q = &w.q[r * n..(r + 1) * n];
        let mut acc = f32x4_splat(0.0);
        for k in 0..per_row {
            let mut s = [f32x4_splat(0.0); 4];
            for j in (k * g..(k + 1) * g).step_by(16) {
                // SAFETY: j + 16 <= n, within the row and within x (x.len() == n, asserted).
                let (b, xs) = unsafe { (v128_load(q.as_ptr().add(j) as *const v128), x.as_ptr().add(j)) };
                let (lo, hi) = (i16x8_extend_low_i8x16(b), i16x8_extend_high_i8x16(b));
                let parts = [
                    i32x4_extend_low_i16x8(lo),
                    i32x4_extend_high_i16x8(lo),
                    i32x4_extend_low_i16x8(hi),
                    i32x4_extend_high_i16x8(hi),
                ];
                for (k4, (a, p)) in s.iter_mut().zip(parts).enumerate() {
                    // SAFETY: as above.
                    let xv = unsafe { v128_load(xs.add(4 * k4) as *const v128) };
                    *a = f32x4_add(*a, f32x4_mul(f32x4_convert_i32x4(p), xv));
                }
            }
            let sum = f32x4_add(f32x4_add(s[0], s[1]), f32x4_add(s[2], s[3]));
            acc = f32x4_add(acc, f32x4_mul(sum, f32x4_splat(w.scales[r * per_row + k])));
        }
        *o = (f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc))
            + (f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc));
    }
}
