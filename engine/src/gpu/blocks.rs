//! `WeightFormat::Blocks`: matrices on the GPU in their own ggml blocks, the file's bytes as
//! they were (Q4_K at 4.5 bits a weight, Q6_K at 6.56, Q5_0 at 5.5, …), every type of a mixed
//! file in one buffer. The accessors decode a value where it lies, with the f32 operations of
//! `quant::dequantize_block`, so the kernels sum the dequantized reference's values.
//!
//! A chunk's buffer starts with a table of its segments (runs of rows of one matrix, hence one
//! type): word 0 is their number S; segment s takes words `1 + 4s ..= 4 + 4s`: the end of its
//! rows (exclusive, counted from the chunk's first row), its type (`code`; Q8_0 as the engine
//! holds it, an f32 scale per group, is `q8_code`), the byte where its first row starts and the
//! bytes of a row. Rows lie as in the file, one after another; each
//! segment starts on a word. A stacked q|k|v chunk whose wv is Q6_K and wq, wk Q4_K (llama.cpp's
//! Q4_K_M) is three segments.
//!
//! Rows are not transposed as the other formats' are: a block's bytes describe consecutive
//! inputs of one row, so lanes on adjacent outputs read addresses a row apart. Size first here;
//! how that reads on a real GPU is not measured yet.

use std::borrow::Cow;
use std::ops::Range;

use crate::cpu::q8::Q8Rows;
use crate::quant::DType;
use crate::quant_weights::MatrixRef;

/// The type number the accessors switch on.
pub fn code(t: DType) -> u32 {
    match t {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::BF16 => 2,
        DType::Q8_0 => 3,
        DType::Q4_0 => 4,
        DType::Q4_1 => 5,
        DType::Q5_0 => 6,
        DType::Q5_1 => 7,
        DType::Q4K => 8,
        DType::Q6K => 9,
    }
}

/// The type word of a Q8 matrix as the engine holds it (GGUF Q8_0, llama2.c v2: int8 values and
/// an f32 scale per group): `Q8_GROUPS` with the group size above the low byte, for groups that
/// lie within rows and keep words aligned; else `None`.
fn q8_code(m: &Q8Rows) -> Option<u32> {
    let fits = m.offset == 0 && m.group.is_multiple_of(4) && m.cols.is_multiple_of(m.group) && m.group < 1 << 24;
    fits.then_some(Q8_GROUPS | (m.group as u32) << 8)
}

/// Held Q8 groups as blocks of the f32 scale then the group's int8 values (`4 + group` bytes).
fn q8_blocks(m: Q8Rows) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.q.len() + 4 * m.scales.len());
    for (q, scale) in m.q.chunks_exact(m.group).zip(m.scales) {
        out.extend_from_slice(&scale.to_le_bytes());
        out.extend(q.iter().map(|&v| v as u8));
    }
    out
}

/// The type code of held Q8 groups (`q8_code`), after the ggml types' codes.
const Q8_GROUPS: u32 = 10;

/// Rows `rows` of the matrices `views` stacked (their rows in order), `cols` inputs wide, as the
/// words of one chunk (module comment). `None` when a view's Q8 groups straddle rows (llama2.c
/// v2 files may; the int8 form takes those), the rows run past the stack or the chunk would pass
/// 4 GiB (byte addresses are u32).
pub fn pack_blocks(views: &[MatrixRef], cols: usize, rows: Range<usize>) -> Option<Vec<u32>> {
    // (first row, end, type, bytes), rows counted from the chunk's first.
    let mut segments: Vec<(usize, usize, u32, Cow<[u8]>)> = Vec::new();
    let mut first = 0;
    for v in views {
        let n = v.n_rows(cols);
        let (a, b) = (rows.start.max(first), rows.end.min(first + n));
        if a < b {
            let (t, bytes) = match v {
                MatrixRef::F32(m) => {
                    let vals = &m[(a - first) * cols..(b - first) * cols];
                    (code(DType::F32), Cow::Owned(vals.iter().flat_map(|x| x.to_le_bytes()).collect()))
                }
                MatrixRef::Blocks(m) => (code(m.dtype), Cow::Borrowed(m.rows(a - first, b - a).data)),
                MatrixRef::Q8(m) => (q8_code(m)?, Cow::Owned(q8_blocks(m.rows(a - first, b - a)))),
            };
            segments.push((a - rows.start, b - rows.start, t, bytes));
        }
        first += n;
    }
    if first < rows.end || rows.is_empty() {
        return None;
    }
    let mut words = vec![segments.len() as u32];
    let header = 4 * (1 + 4 * segments.len());
    let mut data = Vec::new();
    for (start, end, t, bytes) in &segments {
        let at = u32::try_from(header + data.len()).ok()?;
        words.extend([*end as u32, *t, at, (bytes.len() / (end - start)) as u32]);
        data.extend_from_slice(bytes);
        data.resize(data.len().div_ceil(4) * 4, 0);
    }
    u32::try_from(header + data.len()).ok()?;
    words.extend(data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    Some(words)
}

/// The WGSL accessors (`packing`'s interface) for bindings `vec4` and `scalar` in this format.
pub fn accessors(vec4: &[&str], scalar: &[&str]) -> String {
    let mut s = String::from("alias W4 = u32;\nalias W1 = u32;\n");
    let mut names: Vec<&str> = Vec::new();
    for n in vec4.iter().chain(scalar) {
        if !names.contains(n) {
            names.push(n);
            s += &decoder(n);
        }
    }
    for n in vec4 {
        s += &VEC4.replace("NAME", n);
    }
    s
}

/// Binding `n`'s readers: a byte, an f16 or bf16 at an even byte, one value of a row in any type
/// (`{n}_value`), and `{n}_at1`, which finds row j's segment.
fn decoder(n: &str) -> String {
    DECODER.replace("NAME", n)
}

/// The value decoders, written for one binding `NAME`: WGSL cannot pass a storage array to a
/// function without an extension not every browser has. Each case computes what
/// `quant::dequantize_block` does, in the same order.
const DECODER: &str = "fn NAME_byte(a: u32) -> u32 {
    return (NAME[a >> 2u] >> ((a & 3u) * 8u)) & 0xffu;
}
fn NAME_f16(a: u32) -> f32 {
    return unpack2x16float(NAME[a >> 2u] >> ((a & 2u) * 8u)).x;
}
fn NAME_bf16(a: u32) -> f32 {
    return bitcast<f32>(((NAME[a >> 2u] >> ((a & 2u) * 8u)) & 0xffffu) << 16u);
}
fn NAME_value(t: u32, row: u32, i: u32) -> f32 {
    var v = 0.0;
    switch t & 0xffu {
        case 0u: { v = bitcast<f32>(NAME[(row >> 2u) + i]); }
        case 1u: { v = NAME_f16(row + 2u * i); }
        case 2u: { v = NAME_bf16(row + 2u * i); }
        case 3u: {
            let b = row + (i / 32u) * 34u;
            let q = bitcast<i32>(NAME_byte(b + 2u + i % 32u) << 24u) >> 24u;
            v = f32(q) * NAME_f16(b);
        }
        case 4u: {
            let b = row + (i / 32u) * 18u;
            let r = i % 32u;
            let q = (NAME_byte(b + 2u + r % 16u) >> ((r / 16u) * 4u)) & 15u;
            v = f32(i32(q) - 8) * NAME_f16(b);
        }
        case 5u: {
            let b = row + (i / 32u) * 20u;
            let r = i % 32u;
            let q = (NAME_byte(b + 4u + r % 16u) >> ((r / 16u) * 4u)) & 15u;
            v = f32(q) * NAME_f16(b) + NAME_f16(b + 2u);
        }
        case 6u, 7u: {
            // Q5_0: d, 32 fifth bits, 16 bytes of nibbles; Q5_1: d, m, then the same.
            let with_min = t == 7u;
            let at = select(2u, 4u, with_min);
            let b = row + (i / 32u) * select(22u, 24u, with_min);
            let r = i % 32u;
            let high = (NAME_byte(b + at + r / 8u) >> (r % 8u)) & 1u;
            let q = ((NAME_byte(b + at + 4u + r % 16u) >> ((r / 16u) * 4u)) & 15u) | (high << 4u);
            if with_min {
                v = f32(q) * NAME_f16(b) + NAME_f16(b + 2u);
            } else {
                v = f32(i32(q) - 16) * NAME_f16(b);
            }
        }
        case 8u: {
            // Q4_K: d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; chunk c of
            // 64 weights: 32 low nibbles (scale 2c), then the same bytes' high nibbles (2c + 1).
            let b = row + (i / 256u) * 144u;
            let r = i % 256u;
            let c = r / 64u;
            let hi = (r % 64u) / 32u;
            let j = 2u * c + hi;
            let sb = b + 4u;
            var sc = 0u;
            var mn = 0u;
            if j < 4u {
                sc = NAME_byte(sb + j) & 63u;
                mn = NAME_byte(sb + j + 4u) & 63u;
            } else {
                sc = (NAME_byte(sb + j + 4u) & 15u) | ((NAME_byte(sb + j - 4u) >> 6u) << 4u);
                mn = (NAME_byte(sb + j + 4u) >> 4u) | ((NAME_byte(sb + j) >> 6u) << 4u);
            }
            let q = (NAME_byte(b + 16u + 32u * c + r % 32u) >> (4u * hi)) & 15u;
            v = (NAME_f16(b) * f32(sc)) * f32(q) - NAME_f16(b + 2u) * f32(mn);
        }
        case 9u: {
            // Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, d; half h of
            // 128 weights, quarter p of 32 in it.
            let b = row + (i / 256u) * 210u;
            let r = i % 256u;
            let h = r / 128u;
            let p = (r % 128u) / 32u;
            let l = r % 32u;
            let low = (NAME_byte(b + 64u * h + l + 32u * (p % 2u)) >> (4u * (p / 2u))) & 15u;
            let high = (NAME_byte(b + 128u + 32u * h + l) >> (2u * p)) & 3u;
            let sc = bitcast<i32>(NAME_byte(b + 192u + 8u * h + l / 16u + 2u * p) << 24u) >> 24u;
            v = (NAME_f16(b + 208u) * f32(sc)) * f32(i32(low | (high << 4u)) - 32);
        }
        case 10u: {
            // Q8 as held: blocks of an f32 scale and `g` int8 values, g in the type word.
            let g = t >> 8u;
            let b = row + (i / g) * (4u + g);
            let q = bitcast<i32>(NAME_byte(b + 4u + i % g) << 24u) >> 24u;
            v = f32(q) * bitcast<f32>(NAME[b >> 2u]);
        }
        default: {}
    }
    return v;
}
// The header words of row j's segment.
fn NAME_segment(j: u32) -> u32 {
    var s = 0u;
    while s + 1u < NAME[0] && j >= NAME[1u + 4u * s] {
        s += 1u;
    }
    return 1u + 4u * s;
}
// Where row j starts, in segment h.
fn NAME_row(h: u32, j: u32) -> u32 {
    let first = select(0u, NAME[h - 4u], h > 1u);
    return NAME[h + 2u] + (j - first) * NAME[h + 3u];
}
fn NAME_at1(i: u32, j: u32, m: u32, k: u32) -> f32 {
    let h = NAME_segment(j);
    return NAME_value(NAME[h + 1u], NAME_row(h, j), i);
}
";

/// The vec4 accessor: rows j .. j + 3 read through one segment lookup when they share it (they
/// do but at the rare segment end that is not a multiple of 4).
const VEC4: &str = "fn NAME_at(i: u32, j4: u32, m4: u32, k: u32) -> vec4<f32> {
    let j = 4u * j4;
    let h = NAME_segment(j);
    if j + 3u >= NAME[h] {
        return vec4<f32>(NAME_at1(i, j, 0u, k), NAME_at1(i, j + 1u, 0u, k), NAME_at1(i, j + 2u, 0u, k), NAME_at1(i, j + 3u, 0u, k));
    }
    let t = NAME[h + 1u];
    let row = NAME_row(h, j);
    let step = NAME[h + 3u];
    return vec4<f32>(NAME_value(t, row, i), NAME_value(t, row + step, i), NAME_value(t, row + 2u * step, i), NAME_value(t, row + 3u * step, i));
}
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::blocks::BlockRows;
    use crate::quant::quantize;

    #[test]
    fn a_stacked_chunk_is_a_table_of_segments_then_rows_as_read() {
        // Two Q8_0 rows (34 bytes each: segments start on a word) and three f32 rows, 32 wide.
        let w: Vec<f32> = (0..64).map(|i| i as f32 / 8.0 - 4.0).collect();
        let q = quantize(DType::Q8_0, &w).unwrap();
        let f: Vec<f32> = (0..96).map(|i| i as f32).collect();
        let views = [MatrixRef::Blocks(BlockRows { dtype: DType::Q8_0, cols: 32, data: &q }), MatrixRef::F32(&f)];
        // Rows 1..4: Q8_0 row 1, f32 rows 0 and 1.
        let words = pack_blocks(&views, 32, 1..4).unwrap();
        let header = 1 + 8;
        assert_eq!(words[..header], [2, 1, code(DType::Q8_0), 36, 34, 3, code(DType::F32), 36 + 36, 128]);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(&bytes[36..70], &q[34..68]);
        assert_eq!(&bytes[72..72 + 256], f[..64].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
        assert_eq!(bytes.len(), 72 + 256);
        assert!(pack_blocks(&views, 32, 4..6).is_none(), "past the stack");
    }
}
