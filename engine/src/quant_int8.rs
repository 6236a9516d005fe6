//! Every quantized type this engine keeps, re-expressed as small integers with a scale (and a
//! min) per group of values: value `g·size + i` of a row is `q · scale[g] − min[g]`, with `q`
//! fitting an i8. The products are the ones `quant::dequantize_block` computes (Q4_K's
//! `d·sc` and `dmin·m` first, Q6_K's `d·sc` first), so the values are bit for bit the
//! dequantized ones. This is the one form the GPU's kernels read (`gpu::packing`): Q8_0 as it
//! is, Q4_0 (`q − 8`) and Q5_0 (`q − 16`) in groups of 32, Q4_1 and Q5_1 (groups of 32, the min
//! `−m`), Q4_K (nibbles, groups of 32 with mins), Q6_K (`q − 32`, groups of 16).

use crate::cpu::blocks::BlockRows;
use crate::cpu::q8::Q8Rows;
use crate::quant::{f16_at, scale_min_k4, DType};
use crate::quant_weights::MatrixRef;

/// A type's own group size and whether it has mins; `None` for unquantized types.
pub fn natural_group(t: DType) -> Option<(usize, bool)> {
    match t {
        DType::Q8_0 | DType::Q4_0 | DType::Q5_0 => Some((32, false)),
        DType::Q4_1 | DType::Q5_1 | DType::Q4K => Some((32, true)),
        DType::Q6K => Some((16, false)),
        DType::F32 | DType::F16 | DType::BF16 => None,
    }
}

/// One block of `t` as `q` (one per value), `scales` and `mins` (one per natural group).
pub fn block(t: DType, b: &[u8], q: &mut [i8], scales: &mut [f32], mins: &mut [f32]) {
    match t {
        DType::Q8_0 => {
            scales[0] = f16_at(b, 0);
            q.iter_mut().zip(&b[2..34]).for_each(|(o, &v)| *o = v as i8);
        }
        DType::Q4_0 => {
            scales[0] = f16_at(b, 0);
            let (lo, hi) = q.split_at_mut(16);
            for ((l, h), &v) in lo.iter_mut().zip(hi).zip(&b[2..18]) {
                (*l, *h) = ((v & 0xf) as i8 - 8, (v >> 4) as i8 - 8);
            }
        }
        // `v·d + m` is `v·d − (−m)`, exactly.
        DType::Q4_1 => {
            (scales[0], mins[0]) = (f16_at(b, 0), -f16_at(b, 2));
            let (lo, hi) = q.split_at_mut(16);
            for ((l, h), &v) in lo.iter_mut().zip(hi).zip(&b[4..20]) {
                (*l, *h) = ((v & 0xf) as i8, (v >> 4) as i8);
            }
        }
        DType::Q5_0 | DType::Q5_1 => {
            let with_min = t == DType::Q5_1;
            scales[0] = f16_at(b, 0);
            let at = if with_min { 4 } else { 2 };
            if with_min {
                mins[0] = -f16_at(b, 2);
            }
            let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let bias = if with_min { 0 } else { 16 };
            let (lo, hi) = q.split_at_mut(16);
            for (j, ((l, h), &v)) in lo.iter_mut().zip(hi).zip(&b[at + 4..at + 20]).enumerate() {
                let v0 = (v & 0xf) as i32 | (((qh >> j) & 1) << 4) as i32;
                let v1 = (v >> 4) as i32 | (((qh >> (j + 16)) & 1) << 4) as i32;
                (*l, *h) = ((v0 - bias) as i8, (v1 - bias) as i8);
            }
        }
        DType::Q4K => {
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            for s in 0..8 {
                let (sc, m) = scale_min_k4(s, &b[4..16]);
                (scales[s], mins[s]) = (d * sc as f32, dmin * m as f32);
            }
            // Chunk c of 64 values: the low nibbles of bytes 32c.. (group 2c), then the high ones.
            for (bytes, o) in b[16..144].chunks_exact(32).zip(q.chunks_exact_mut(64)) {
                let (lo, hi) = o.split_at_mut(32);
                for ((l, h), &v) in lo.iter_mut().zip(hi).zip(bytes) {
                    (*l, *h) = ((v & 0xf) as i8, (v >> 4) as i8);
                }
            }
        }
        DType::Q6K => {
            let (ql, qh, sc, d) = (&b[0..128], &b[128..192], &b[192..208], f16_at(b, 208));
            for (s, &v) in sc.iter().enumerate() {
                scales[s] = d * v as i8 as f32;
            }
            for (h, y) in q.chunks_exact_mut(128).enumerate() {
                let (ql, qh) = (&ql[64 * h..64 * (h + 1)], &qh[32 * h..32 * (h + 1)]);
                for l in 0..32 {
                    y[l] = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i8 - 32;
                    y[l + 32] = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                    y[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                    y[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                }
            }
        }
        DType::F32 | DType::F16 | DType::BF16 => unreachable!("{} has no blocks", t.name()),
    }
}

/// One row of a matrix in groups of `group` (a divisor of its own group: each own group's scale
/// and min repeated), written into `q` (the row's values) and appended to `scales` and `mins`
/// (mins only when `with_mins`). `None` for f32 rows and Q8_0 groups straddling rows.
pub fn row(
    m: &MatrixRef,
    r: usize,
    group: usize,
    with_mins: bool,
    q: &mut [i8],
    scales: &mut Vec<f32>,
    mins: &mut Vec<f32>,
) -> Option<()> {
    let cols = q.len();
    let (own, own_mins) = match m {
        MatrixRef::F32(_) => return None,
        MatrixRef::Q8(v) => (v.group, false),
        MatrixRef::Blocks(b) => natural_group(b.dtype)?,
    };
    if !own.is_multiple_of(group) || !cols.is_multiple_of(own) || (own_mins && !with_mins) {
        return None;
    }
    let (mut s, mut n) = (Vec::new(), Vec::new());
    match m {
        MatrixRef::Q8(v) => q8_row(v, r, q, &mut s)?,
        MatrixRef::Blocks(b) => blocks_row(b, r, q, &mut s, &mut n),
        MatrixRef::F32(_) => return None,
    }
    let repeat = own / group;
    for (g, &v) in s.iter().enumerate() {
        scales.extend(std::iter::repeat_n(v, repeat));
        if with_mins {
            mins.extend(std::iter::repeat_n(n.get(g).copied().unwrap_or(0.0), repeat));
        }
    }
    Some(())
}

fn q8_row(v: &Q8Rows, r: usize, q: &mut [i8], scales: &mut Vec<f32>) -> Option<()> {
    let cols = q.len();
    if v.offset != 0 || v.cols != cols {
        return None;
    }
    q.copy_from_slice(&v.q[r * cols..(r + 1) * cols]);
    let per = cols / v.group;
    scales.extend_from_slice(&v.scales[r * per..(r + 1) * per]);
    Some(())
}

fn blocks_row(b: &BlockRows, r: usize, q: &mut [i8], scales: &mut Vec<f32>, mins: &mut Vec<f32>) {
    let (per, bytes) = b.dtype.block();
    let (group, _) = natural_group(b.dtype).expect("a block type");
    let groups = per / group;
    let (mut s, mut n) = (vec![0.0; groups], vec![0.0; groups]);
    for (blk, qo) in b.rows(r, 1).data.chunks_exact(bytes).zip(q.chunks_exact_mut(per)) {
        block(b.dtype, blk, qo, &mut s, &mut n);
        scales.extend_from_slice(&s);
        mins.extend_from_slice(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequantize_block;

    /// Blocks of every type with every byte drawn: `q · scale − min` (the GPU's arithmetic) is
    /// `dequantize_block`'s value bit for bit.
    #[test]
    fn the_int8_form_is_the_dequantized_block_bit_for_bit() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for t in [DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4K, DType::Q6K] {
            let (per, bytes) = t.block();
            let (group, with_mins) = natural_group(t).unwrap();
            for _ in 0..200 {
                let mut b: Vec<u8> = (0..bytes)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                // Finite f16 scales: a drawn exponent of 31 is inf or NaN (clearing 0x40 of the
                // high byte keeps it below 16).
                let halves: &[usize] = match t {
                    DType::Q4K | DType::Q4_1 | DType::Q5_1 => &[0, 2],
                    DType::Q6K => &[208],
                    _ => &[0],
                };
                halves.iter().for_each(|&at| b[at + 1] &= 0x3b);
                let mut want = vec![0.0; per];
                dequantize_block(t, &b, &mut want);
                let (mut q, mut s, mut n) = (vec![0i8; per], vec![0.0; per / group], vec![0.0; per / group]);
                block(t, &b, &mut q, &mut s, &mut n);
                for (i, w) in want.iter().enumerate() {
                    let g = i / group;
                    let got = if with_mins { q[i] as f32 * s[g] - n[g] } else { q[i] as f32 * s[g] };
                    assert_eq!(got.to_bits(), w.to_bits(), "{} value {i}: {got} vs {w}", t.name());
                }
            }
        }
    }
}
