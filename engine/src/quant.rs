//! Weight storage types of GGUF and safetensors files and their block formats: F32, F16, BF16,
//! Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K, with the dequantizer of each (the reference the quantized CPU kernels,
//! `cpu::q8` and `cpu::blocks`, are tested against) and the quantizers `tinylm convert` writes (F16, Q8_0).
//!
//! Block layouts are ggml's (little-endian; `d`/`dmin` are f16): Q8_0 `[d, 32 × i8]`, Q4_0
//! `[d, 16 bytes]` (low nibbles are weights 0..16, high nibbles 16..32, each minus 8), Q4_1
//! `[d, m, 16 bytes]` (nibble · d + m), Q5_0 `[d, 4 bytes of fifth bits, 16 bytes]` (5-bit value
//! minus 16) and Q5_1 `[d, m, 4 bytes, 16 bytes]` (5-bit value · d + m) — llama.cpp's fallbacks
//! for rows that are not whole 256-value super-blocks (SmolLM2's 576) in its K-quant files —, Q4_K
//! (256 weights) `[d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles]`, Q6_K
//! (256 weights) `[128 bytes low nibbles, 64 bytes high 2 bits, 16 × i8 scales, d]`.

use half::{bf16, f16};

/// A tensor's element type as stored in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4K,
    Q6K,
}

impl DType {
    /// ggml's type id (GGUF tensor info), for the types this engine reads.
    pub fn from_ggml(id: u32) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::F16,
            2 => DType::Q4_0,
            3 => DType::Q4_1,
            6 => DType::Q5_0,
            7 => DType::Q5_1,
            8 => DType::Q8_0,
            12 => DType::Q4K,
            14 => DType::Q6K,
            30 => DType::BF16,
            _ => return None,
        })
    }

    pub fn ggml_id(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::Q4_0 => 2,
            DType::Q4_1 => 3,
            DType::Q5_0 => 6,
            DType::Q5_1 => 7,
            DType::Q8_0 => 8,
            DType::Q4K => 12,
            DType::Q6K => 14,
            DType::BF16 => 30,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::Q8_0 => "Q8_0",
            DType::Q4_0 => "Q4_0",
            DType::Q4_1 => "Q4_1",
            DType::Q5_0 => "Q5_0",
            DType::Q5_1 => "Q5_1",
            DType::Q4K => "Q4_K",
            DType::Q6K => "Q6_K",
        }
    }

    /// (weights per block, bytes per block).
    pub fn block(self) -> (usize, usize) {
        match self {
            DType::F32 => (1, 4),
            DType::F16 | DType::BF16 => (1, 2),
            DType::Q8_0 => (32, 34),
            DType::Q4_0 => (32, 18),
            DType::Q4_1 => (32, 20),
            DType::Q5_0 => (32, 22),
            DType::Q5_1 => (32, 24),
            DType::Q4K => (256, 144),
            DType::Q6K => (256, 210),
        }
    }

    /// Bytes of `n` weights, or `None` when `n` is not a whole number of blocks or overflows.
    pub fn bytes_of(self, n: u64) -> Option<u64> {
        let (per, bytes) = self.block();
        n.is_multiple_of(per as u64).then(|| (n / per as u64).checked_mul(bytes as u64)).flatten()
    }
}

/// ggml's names for types this engine does not read (for messages).
pub fn ggml_type_name(id: u32) -> String {
    let known = [
        (9, "Q8_1"),
        (10, "Q2_K"),
        (11, "Q3_K"),
        (13, "Q5_K"),
        (15, "Q8_K"),
        (16, "IQ2_XXS"),
        (17, "IQ2_XS"),
        (18, "IQ3_XXS"),
        (19, "IQ1_S"),
        (20, "IQ4_NL"),
        (21, "IQ3_S"),
        (22, "IQ2_S"),
        (23, "IQ4_XS"),
        (24, "I8"),
        (25, "I16"),
        (26, "I32"),
        (27, "I64"),
        (28, "F64"),
        (29, "IQ1_M"),
        (34, "TQ1_0"),
        (35, "TQ2_0"),
    ];
    match DType::from_ggml(id) {
        Some(t) => t.name().into(),
        None => known.iter().find(|k| k.0 == id).map_or(format!("type {id}"), |k| k.1.to_string()),
    }
}

pub(crate) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Appends the weights of `data` (whole blocks of `t`, as `DType::bytes_of` checks) to `out`.
pub fn dequantize(t: DType, data: &[u8], out: &mut Vec<f32>) {
    let (per, bytes) = t.block();
    match t {
        DType::F32 => out.extend(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        DType::F16 => out.extend(data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())),
        DType::BF16 => out.extend(data.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())),
        _ => {
            let start = out.len();
            out.resize(start + data.len() / bytes * per, 0.0);
            for (b, o) in data.chunks_exact(bytes).zip(out[start..].chunks_exact_mut(per)) {
                dequantize_block(t, b, o);
            }
        }
    }
}

/// The weights of one block `b` of a block type into `out` (its `block().0` weights): the CPU's
/// block kernels' reference reads them here. F16 and BF16 are blocks of one value, as in ggml.
pub fn dequantize_block(t: DType, b: &[u8], out: &mut [f32]) {
    match t {
        DType::F16 => out[0] = f16::from_le_bytes([b[0], b[1]]).to_f32(),
        DType::BF16 => out[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        DType::Q8_0 => q8_0(b, out),
        DType::Q4_0 => q4_0(b, out),
        DType::Q4_1 => q4_1(b, out),
        DType::Q5_0 => q5(b, out, false),
        DType::Q5_1 => q5(b, out, true),
        DType::Q4K => q4_k(b, out),
        DType::Q6K => q6_k(b, out),
        DType::F32 => panic!("F32 is kept as plain f32"),
    }
}

fn q8_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    out.iter_mut().zip(&b[2..34]).for_each(|(o, &q)| *o = q as i8 as f32 * d);
}

fn q4_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let (lo, hi) = out.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi).zip(&b[2..18]) {
        *l = ((q & 0xf) as i32 - 8) as f32 * d;
        *h = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

fn q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let (lo, hi) = out.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi).zip(&b[4..20]) {
        *l = (q & 0xf) as f32 * d + m;
        *h = (q >> 4) as f32 * d + m;
    }
}

/// Q5_0 (`(v − 16)·d`) or, `with_min`, Q5_1 (`v·d + m`): value j's fifth bit is bit j of `qh`.
fn q5(b: &[u8], out: &mut [f32], with_min: bool) {
    let d = f16_at(b, 0);
    let (m, at) = if with_min { (f16_at(b, 2), 4) } else { (0.0, 2) };
    let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let (lo, hi) = out.split_at_mut(16);
    for (j, ((l, h), &q)) in lo.iter_mut().zip(hi).zip(&b[at + 4..at + 20]).enumerate() {
        let v0 = ((q & 0xf) as u32 | (((qh >> j) & 1) << 4)) as i32;
        let v1 = ((q >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4)) as i32;
        if with_min {
            (*l, *h) = (v0 as f32 * d + m, v1 as f32 * d + m);
        } else {
            (*l, *h) = ((v0 - 16) as f32 * d, (v1 - 16) as f32 * d);
        }
    }
}

/// Scale and min `j` (0..8) of a Q4_K block's 12 packed bytes: 6 bits each.
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

fn q4_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    // Four chunks of 64 weights: 32 low nibbles with scale 2c, then 32 high nibbles with 2c+1.
    for (c, (q, o)) in qs.chunks_exact(32).zip(out.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        let (d1, min1, d2, min2) = (d * sc1 as f32, dmin * m1 as f32, d * sc2 as f32, dmin * m2 as f32);
        let (lo, hi) = o.split_at_mut(32);
        for ((l, h), &v) in lo.iter_mut().zip(hi).zip(q) {
            *l = d1 * (v & 0xf) as f32 - min1;
            *h = d2 * (v >> 4) as f32 - min2;
        }
    }
}

fn q6_k(b: &[u8], out: &mut [f32]) {
    let (ql, qh, sc, d) = (&b[0..128], &b[128..192], &b[192..208], f16_at(b, 208));
    // Two halves of 128 weights; each uses 64 bytes of ql, 32 of qh and 8 scales.
    for (h, y) in out.chunks_exact_mut(128).enumerate() {
        let (ql, qh, sc) = (&ql[64 * h..64 * (h + 1)], &qh[32 * h..32 * (h + 1)], &sc[8 * h..8 * (h + 1)]);
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * sc[is] as i8 as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
        }
    }
}

/// Encodes `w` as `t` (F32, F16, BF16 or Q8_0; `w.len()` a whole number of blocks).
pub fn quantize(t: DType, w: &[f32]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(t.bytes_of(w.len() as u64)? as usize);
    match t {
        DType::F32 => w.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => w.iter().for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        DType::BF16 => w.iter().for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        // ggml's reference quantizer: d = max|w| / 127, q = round(w / d) (half away from zero).
        DType::Q8_0 => {
            for g in w.chunks_exact(32) {
                let amax = g.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(g.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        DType::Q4_0 => w.chunks_exact(32).for_each(|g| q4_0_block(g, &mut out)),
        DType::Q4_1 => w.chunks_exact(32).for_each(|g| q4_1_block(g, &mut out)),
        DType::Q5_0 => w.chunks_exact(32).for_each(|g| q5_block(g, false, &mut out)),
        DType::Q5_1 => w.chunks_exact(32).for_each(|g| q5_block(g, true, &mut out)),
        DType::Q4K | DType::Q6K => return None,
    }
    Some(out)
}

// ggml's reference quantizers for the legacy 4- and 5-bit types (as gguf-py ports them): the
// value of largest magnitude (the first, on a tie) sets d = max / -8 (or -16), or the block's min
// and d = (max - min) / 15 (or 31) set the range; q = trunc(x·(1/d) + 8.5) (or (x − min)·(1/d)
// + 0.5), clamped. Each product and sum rounds on its own, as there.

/// The first value of largest magnitude, with its sign.
fn signed_max(g: &[f32]) -> f32 {
    g.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m })
}

fn min_max(g: &[f32]) -> (f32, f32) {
    g.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Nibble j of the block's 16 bytes holds value j (low) and value j + 16 (high).
fn nibbles(q: &[u8; 32], out: &mut Vec<u8>) {
    out.extend((0..16).map(|j| (q[j] & 15) | ((q[j + 16] & 15) << 4)));
}

fn q4_0_block(g: &[f32], out: &mut Vec<u8>) {
    let d = signed_max(g) / -8.0;
    let id = inverse(d);
    let q: [u8; 32] = std::array::from_fn(|j| ((g[j] * id + 8.5) as u8).min(15));
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    nibbles(&q, out);
}

fn q4_1_block(g: &[f32], out: &mut Vec<u8>) {
    let (min, max) = min_max(g);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    let q: [u8; 32] = std::array::from_fn(|j| (((g[j] - min) * id + 0.5) as u8).min(15));
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
    nibbles(&q, out);
}

/// Q5_0 (`with_min` false: d, 32 fifth bits, nibbles) or Q5_1 (d, min, then the same).
fn q5_block(g: &[f32], with_min: bool, out: &mut Vec<u8>) {
    let (min, max) = min_max(g);
    let (d, q): (f32, [u8; 32]) = if with_min {
        let d = (max - min) / 31.0;
        let id = inverse(d);
        (d, std::array::from_fn(|j| (((g[j] - min) * id + 0.5) as u8).min(31)))
    } else {
        let d = signed_max(g) / -16.0;
        let id = inverse(d);
        (d, std::array::from_fn(|j| ((g[j] * id + 16.5) as u8).min(31)))
    };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    if with_min {
        out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
    }
    let high = q.iter().enumerate().fold(0u32, |h, (j, &v)| h | (u32::from(v >> 4) << j));
    out.extend_from_slice(&high.to_le_bytes());
    nibbles(&q, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed blocks: every field at a known value.
    #[test]
    fn q8_0_and_q4_0_blocks() {
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let mut out = vec![];
        dequantize(DType::Q8_0, &b, &mut out);
        assert_eq!(out, (0..32).map(|i| (i - 16) as f32 * 0.5).collect::<Vec<_>>());

        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend((0..16u8).map(|i| i | ((15 - i) << 4)));
        let mut out = vec![];
        dequantize(DType::Q4_0, &b, &mut out);
        let want: Vec<f32> = (0..16).map(|i| (i - 8) as f32 * 2.0).chain((0..16).map(|i| (7 - i) as f32 * 2.0)).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn q4_k_block() {
        // d = 1, dmin = 0.5; scales 0..3 = 1,2,3,4 / mins 0..3 = 5,6,7,8 in the low 6 bits;
        // scales/mins 4..7 = 9..12 / 13..16 split 4 + 2 bits.
        let mut b = [0u8; 144];
        b[0..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        let (sc, mn): ([u8; 8], [u8; 8]) = ([1, 2, 3, 4, 9 + 16, 10, 11, 12], [5, 6, 7, 8, 13, 14 + 32, 15, 16]);
        for j in 0..4 {
            b[4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            b[4 + j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            b[4 + j + 8] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
        }
        for (i, q) in b[16..].iter_mut().enumerate() {
            *q = (i % 16) as u8 | (((i + 3) % 16) as u8) << 4;
        }
        let mut out = vec![];
        dequantize(DType::Q4K, &b, &mut out);
        for c in 0..4 {
            for l in 0..32 {
                let i = 32 * c + l;
                let lo = (sc[2 * c] as f32) * (i % 16) as f32 - 0.5 * mn[2 * c] as f32;
                let hi = (sc[2 * c + 1] as f32) * ((i + 3) % 16) as f32 - 0.5 * mn[2 * c + 1] as f32;
                assert_eq!(out[64 * c + l], lo, "chunk {c} low {l}");
                assert_eq!(out[64 * c + 32 + l], hi, "chunk {c} high {l}");
            }
        }
    }

    #[test]
    fn q6_k_block() {
        // Weight at half h, group g (0..4), lane l: 6-bit value v = (l + 7g + 3h) % 64, scale
        // sc[8h + l/16 + 2g] = index − 8, d = 0.25.
        let mut b = [0u8; 210];
        let v = |h: usize, g: usize, l: usize| ((l + 7 * g + 3 * h) % 64) as u8;
        for h in 0..2 {
            for l in 0..32 {
                let q = [v(h, 0, l), v(h, 1, l), v(h, 2, l), v(h, 3, l)];
                b[64 * h + l] = (q[0] & 0xf) | ((q[2] & 0xf) << 4);
                b[64 * h + l + 32] = (q[1] & 0xf) | ((q[3] & 0xf) << 4);
                b[128 + 32 * h + l] = (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
            }
        }
        for i in 0..16 {
            b[192 + i] = (i as i8 - 8) as u8;
        }
        b[208..210].copy_from_slice(&f16::from_f32(0.25).to_le_bytes());
        let mut out = vec![];
        dequantize(DType::Q6K, &b, &mut out);
        for h in 0..2 {
            for g in 0..4 {
                for l in 0..32 {
                    let sc = (8 * h + l / 16 + 2 * g) as f32 - 8.0;
                    let want = 0.25 * sc * (v(h, g, l) as f32 - 32.0);
                    assert_eq!(out[128 * h + 32 * g + l], want, "half {h} group {g} lane {l}");
                }
            }
        }
    }

    #[test]
    fn q8_0_round_trip_within_half_a_step() {
        let w: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 31.5) / 40.0).collect();
        let mut back = vec![];
        dequantize(DType::Q8_0, &quantize(DType::Q8_0, &w).unwrap(), &mut back);
        for (g, b) in w.chunks(32).zip(back.chunks(32)) {
            let step = g.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            // Half a step, plus d's rounding to f16 (relative 2⁻¹¹) over up to 127 steps.
            let bound = 0.5 * step + 127.0 * step * 2f32.powi(-11);
            assert!(g.iter().zip(b).all(|(a, b)| (a - b).abs() <= bound));
        }
        assert_eq!(DType::Q8_0.bytes_of(33), None);
        assert_eq!(DType::Q4K.bytes_of(512), Some(288));
    }
}
