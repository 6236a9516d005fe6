//! How a weight matrix lies in a GPU buffer, both sides of it: the WGSL that reads one element
//! (written into each kernel's source at load, `accessors`) and the Rust that writes a chunk
//! (`pack_int8`; `model::Chunked` for f32 and f16).
//!
//! Every chunk holds rows `j` (outputs) of a `[m, k]` matrix TRANSPOSED, input `i` major, so
//! lanes on adjacent outputs read adjacent memory. The kernels never index a weight buffer
//! themselves: they call `NAME_at(i, j4, m4, k)` (the 4 outputs `4·j4 .. 4·j4 + 3` at input
//! `i`, as a vec4<f32>) or `NAME_at1(i, j, m, k)` (one output), where `NAME` is the binding, and
//! declare the binding as `array<W4>` or `array<W1>`, types the accessors define. So one kernel
//! source runs f32, f16, packed halves, int8 and ggml blocks; a model's matrices are all in one
//! format on the GPU (`Blocks` mixes types inside it).
//!
//! Half (`pack_half`), F16 and BF16 matrices as read: two values to a word, unpacked to f32 by the
//! accessors (exactly: every f16 and bf16 is an f32), 2 bytes a weight.
//!
//! Int8 (`pack_int8`), every quantized type in `quant_int8`'s form `q · scale − min`: word
//! `i·m/4 + j/4` holds the int8 values of rows `4·(j/4) .. +3` at input `i`, row `4·(j/4) + e` in
//! byte `e`; from word `k·m/4` on, the f32 scale of row `j`'s input group `g` (inputs
//! `g·QG .. g·QG + QG − 1`) at word `k·m/4 + g·m + j`; with mins, the mins after the scales in the
//! same order. The accessors compute `q · scale − min` in f32, the dequantized value the CPU
//! reference uses (bit for bit, `quant_int8`), so the sums are those of the f32 kernels over the
//! dequantized matrix. Q8_0 and Q4_0 take 1.125 bytes a weight, a Q4_K_M mix (groups of 16 with
//! mins) 1.5, against f32's 4. (Each value reads its scale; once per group would be faster, not
//! measured on a real GPU yet.)

use std::ops::Range;

use crate::quant::DType;
use crate::quant_int8;
use crate::quant_weights::MatrixRef;

/// The format of every weight chunk a kernel reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    F32,
    /// IEEE half floats, read as `f16` (the device needs shader-f16): the optional classifier,
    /// and a model's F16 matrices kept as read where the device has the feature (`Half`'s words).
    F16,
    /// Int8 values with a scale (and with `mins`, a min) per `group` inputs of a row.
    Int8 {
        group: u32,
        mins: bool,
    },
    /// F16 (or, `bf16`, BF16) values as read, two to a u32 word (`pack_half`): no shader-f16
    /// needed.
    Half {
        bf16: bool,
    },
    /// Every matrix in its own ggml blocks, the file's bytes, types mixed (`gpu::blocks`).
    Blocks,
}

impl WeightFormat {
    /// What must open the module (`enable` precedes every declaration).
    pub fn enable(self) -> &'static str {
        match self {
            WeightFormat::F16 => "enable f16;\n",
            _ => "",
        }
    }

    /// `W4`, `W1` and the accessors `NAME_at` for the bindings in `vec4` and `NAME_at1` for
    /// those in `scalar` (see the module comment). The f32 and f16 accessors ignore `k`.
    pub fn accessors(self, vec4: &[&str], scalar: &[&str]) -> String {
        let mut s = match self {
            WeightFormat::Blocks => return super::blocks::accessors(vec4, scalar),
            WeightFormat::F32 => "alias W4 = vec4<f32>;\nalias W1 = f32;\n".to_string(),
            WeightFormat::F16 => "alias W4 = vec4<f16>;\nalias W1 = f16;\n".to_string(),
            WeightFormat::Int8 { group, .. } => {
                format!("alias W4 = u32;\nalias W1 = u32;\nconst QG: u32 = {group}u;\n{Q8_UNPACK}")
            }
            WeightFormat::Half { bf16 } => {
                format!("alias W4 = u32;\nalias W1 = u32;\n{}", if bf16 { BF16_UNPACK } else { F16_UNPACK })
            }
        };
        for n in vec4 {
            s += &match self {
                WeightFormat::Int8 { mins, .. } => int8_vec4(n, mins),
                WeightFormat::Half { .. } => format!(
                    "fn {n}_at(i: u32, j4: u32, m4: u32, k: u32) -> vec4<f32> {{\n    \
                     let at = 2u * (i * m4 + j4);\n    \
                     return vec4<f32>(half_pair({n}[at]), half_pair({n}[at + 1u]));\n}}\n"
                ),
                _ => format!(
                    "fn {n}_at(i: u32, j4: u32, m4: u32, k: u32) -> vec4<f32> {{\n    return vec4<f32>({n}[i * m4 + j4]);\n}}\n"
                ),
            };
        }
        for n in scalar {
            s += &match self {
                WeightFormat::Int8 { mins, .. } => int8_scalar(n, mins),
                WeightFormat::Half { .. } => format!(
                    "fn {n}_at1(i: u32, j: u32, m: u32, k: u32) -> f32 {{\n    \
                     return half_pair({n}[i * (m / 2u) + j / 2u])[j % 2u];\n}}\n"
                ),
                _ => format!("fn {n}_at1(i: u32, j: u32, m: u32, k: u32) -> f32 {{\n    return f32({n}[i * m + j]);\n}}\n"),
            };
        }
        s
    }
}

/// Binding `n`'s int8 accessor for 4 adjacent outputs.
fn int8_vec4(n: &str, mins: bool) -> String {
    let vec = |at: &str| {
        format!("vec4<f32>(bitcast<f32>({n}[{at}]), bitcast<f32>({n}[{at} + 1u]), bitcast<f32>({n}[{at} + 2u]), bitcast<f32>({n}[{at} + 3u]))")
    };
    let value = match mins {
        false => format!("q8_values({n}[i * m4 + j4]) * {}", vec("s")),
        true => format!("q8_values({n}[i * m4 + j4]) * {} - {}", vec("s"), vec("t")),
    };
    format!(
        "fn {n}_at(i: u32, j4: u32, m4: u32, k: u32) -> vec4<f32> {{\n    \
         let s = k * m4 + (i / QG) * 4u * m4 + 4u * j4;\n    \
         let t = s + (k / QG) * 4u * m4;\n    \
         return {value};\n}}\n"
    )
}

/// Binding `n`'s int8 accessor for one output.
fn int8_scalar(n: &str, mins: bool) -> String {
    let min = if mins { format!(" - bitcast<f32>({n}[s + (k / QG) * m])") } else { String::new() };
    format!(
        "fn {n}_at1(i: u32, j: u32, m: u32, k: u32) -> f32 {{\n    \
         let s = k * (m / 4u) + (i / QG) * m + j;\n    \
         return q8_values({n}[i * (m / 4u) + j / 4u])[j % 4u] * bitcast<f32>({n}[s]){min};\n}}\n"
    )
}

/// The four int8 values of a word (byte e is value e), as f32. Sign extension by an arithmetic
/// shift keeps to core WGSL (unpack4xI8 is a language extension not every browser has).
const Q8_UNPACK: &str = "fn q8_values(w: u32) -> vec4<f32> {
    let v = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w));
    return vec4<f32>(v >> vec4<u32>(24u));
}
";

/// The two half floats of a word (the low 16 bits first) as f32.
const F16_UNPACK: &str = "fn half_pair(w: u32) -> vec2<f32> {
    return unpack2x16float(w);
}
";

/// The two bfloat16 of a word (the low 16 bits first) as f32: each is the top half of an f32.
const BF16_UNPACK: &str = "fn half_pair(w: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}
";

/// Rows `rows` (an even number) of the F16 or BF16 matrices `views` stacked, `cols` inputs
/// wide, as the words of one chunk: word `i·m/2 + j/2` holds rows `2·(j/2)` (low half) and
/// `2·(j/2) + 1` (high half) at input `i`, their bits as read. `None` when a view is not of one
/// such type or the rows are not whole words.
pub fn pack_half(views: &[MatrixRef], cols: usize, rows: Range<usize>) -> Option<Vec<u32>> {
    let stack: Vec<_> = views.iter().flat_map(|v| (0..v.n_rows(cols)).map(move |r| (v, r))).collect();
    let chunk = stack.get(rows)?;
    if !chunk.len().is_multiple_of(2) {
        return None;
    }
    let m2 = chunk.len() / 2;
    let mut out = vec![0u32; cols * m2];
    for (j2, pair) in chunk.chunks_exact(2).enumerate() {
        let [lo, hi] = [pair[0], pair[1]].map(|(v, r)| match v {
            MatrixRef::Blocks(b) if matches!(b.dtype, DType::F16 | DType::BF16) => Some(b.rows(r, 1).data),
            _ => None,
        });
        let (lo, hi) = (lo?, hi?);
        for i in 0..cols {
            out[i * m2 + j2] = u32::from_le_bytes([lo[2 * i], lo[2 * i + 1], hi[2 * i], hi[2 * i + 1]]);
        }
    }
    Some(out)
}

/// Rows `rows` (a multiple of 4 long) of the matrices `views` stacked (wq, wk, wv: one matrix of
/// their rows in order), each `cols` inputs wide, in int8 groups of `group` (with mins when
/// `mins`), as the words of one chunk (module comment). `None` when a row cannot take that form
/// (f32, groups straddling rows, a group size not dividing its own) or the rows are not whole
/// words.
pub fn pack_int8(views: &[MatrixRef], cols: usize, rows: Range<usize>, group: usize, mins: bool) -> Option<Vec<u32>> {
    if group == 0 || !cols.is_multiple_of(group) || !rows.len().is_multiple_of(4) {
        return None;
    }
    // Row j of the stack: (its view, its row there).
    let stack: Vec<_> = views.iter().flat_map(|v| (0..v.n_rows(cols)).map(move |r| (v, r))).collect();
    let chunk = stack.get(rows)?;
    let (m, m4, groups) = (chunk.len(), chunk.len() / 4, cols / group);
    let tables = if mins { 2 } else { 1 };
    let mut out = vec![0u32; cols * m4 + tables * groups * m];
    let mut q = vec![vec![0i8; cols]; 4];
    let (mut scales, mut lows) = (Vec::new(), Vec::new());
    for (j4, four) in chunk.chunks_exact(4).enumerate() {
        for (e, (v, r)) in four.iter().enumerate() {
            scales.clear();
            lows.clear();
            quant_int8::row(v, *r, group, mins, &mut q[e], &mut scales, &mut lows)?;
            let j = 4 * j4 + e;
            for g in 0..groups {
                out[cols * m4 + g * m + j] = scales[g].to_bits();
                if mins {
                    out[cols * m4 + (groups + g) * m + j] = lows[g].to_bits();
                }
            }
        }
        for i in 0..cols {
            out[i * m4 + j4] = u32::from_le_bytes([q[0][i], q[1][i], q[2][i], q[3][i]].map(|v| v as u8));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::blocks::BlockRows;
    use crate::cpu::q8::Q8Rows;
    use crate::quant::DType;

    /// The value the accessors compute at (input `i`, output `j`) of a chunk of `m` rows,
    /// `cols` inputs wide: the WGSL's arithmetic in Rust.
    fn read(words: &[u32], cols: usize, m: usize, group: usize, mins: bool, i: usize, j: usize) -> f32 {
        let (m4, groups) = (m / 4, cols / group);
        let q = (words[i * m4 + j / 4] >> (8 * (j % 4))) as u8 as i8;
        let s = cols * m4 + (i / group) * m + j;
        let v = q as f32 * f32::from_bits(words[s]);
        if mins {
            v - f32::from_bits(words[s + groups * m])
        } else {
            v
        }
    }

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// F16 and BF16 rows stacked from two views, a chunk crossing their seam, read back as the
    /// accessors read them (the low half of word `i·m/2 + j/2` for even `j`): the rows' values bit
    /// for bit; odd chunks and rows of another type are refused.
    #[test]
    fn packed_halves_read_back_as_the_rows() {
        for t in [DType::F16, DType::BF16] {
            let cols = 24;
            let data = bytes(2 * 12 * cols, 3 + t.ggml_id() as u64);
            let (a, b) = (&data[..2 * 8 * cols], &data[2 * 8 * cols..]);
            let view = |d| MatrixRef::Blocks(BlockRows { dtype: t, cols, data: d });
            let words = pack_half(&[view(a), view(b)], cols, 4..12).unwrap();
            assert_eq!(words.len(), cols * 4);
            let mut row = vec![0.0; cols];
            for j in 0..8 {
                view(&data).row_f32(4 + j, &mut row);
                for (i, want) in row.iter().enumerate() {
                    let w = words[i * 4 + j / 2] >> (16 * (j % 2));
                    let got = match t {
                        DType::F16 => half::f16::from_bits(w as u16).to_f32(),
                        _ => f32::from_bits(w << 16),
                    };
                    assert!(
                        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                        "{} input {i}, row {j}",
                        t.name()
                    );
                }
            }
            assert!(pack_half(&[view(a)], cols, 1..4).is_none(), "three rows");
        }
        let f = [0f32; 48];
        assert!(pack_half(&[MatrixRef::F32(&f)], 24, 0..2).is_none(), "f32 rows");
    }

    /// A chunk crossing the seam of two stacked Q8_0 views, and Q4_K and Q6_K rows re-grouped in
    /// 16s with mins (the Q4_K_M form), read back as the accessors read them: the dequantized
    /// rows, bit for bit, at every (input, output).
    #[test]
    fn packed_rows_read_back_as_the_dequantized_rows() {
        let (cols, group) = (64, 32);
        let q: Vec<i8> = (0..12 * cols).map(|i| ((i * 37 + 11) % 255) as i8).collect();
        let scales: Vec<f32> = (0..12 * cols / group).map(|g| 0.01 * (g as f32 + 1.0)).collect();
        let view = |q, scales| MatrixRef::Q8(Q8Rows { cols, group, offset: 0, q, scales });
        let (a, b) = (view(&q[..8 * cols], &scales[..16]), view(&q[8 * cols..], &scales[16..]));
        let words = pack_int8(&[a, b], cols, 4..12, group, false).unwrap();
        assert_eq!(words.len(), cols * 2 + (cols / group) * 8);
        for (i, j) in (0..cols).flat_map(|i| (0..8).map(move |j| (i, j))) {
            let want = q[(4 + j) * cols + i] as f32 * scales[((4 + j) * cols + i) / group];
            assert_eq!(read(&words, cols, 8, group, false, i, j).to_bits(), want.to_bits(), "input {i}, output {j}");
        }

        for t in [DType::Q4K, DType::Q6K] {
            let cols = 256;
            let mut data = bytes(4 * t.block().1, 7 + t.ggml_id() as u64);
            // Finite f16 scales (see quant_int8's test).
            let halves: &[usize] = if t == DType::Q4K { &[0, 2] } else { &[208] };
            for blk in data.chunks_exact_mut(t.block().1) {
                halves.iter().for_each(|&at| blk[at + 1] &= 0x3b);
            }
            let m = MatrixRef::Blocks(BlockRows { dtype: t, cols, data: &data });
            let words = pack_int8(&[m], cols, 0..4, 16, true).unwrap();
            let mut row = vec![0.0; cols];
            for j in 0..4 {
                m.row_f32(j, &mut row);
                for (i, want) in row.iter().enumerate() {
                    assert_eq!(
                        read(&words, cols, 4, 16, true, i, j).to_bits(),
                        want.to_bits(),
                        "{} input {i}, row {j}",
                        t.name()
                    );
                }
            }
        }
    }

    #[test]
    fn rows_that_cannot_take_the_form_are_not_packed() {
        let q = vec![1i8; 8 * 48];
        let view = |s: &'static [f32], g| MatrixRef::Q8(Q8Rows { cols: 48, group: g, offset: 0, q: &q, scales: s });
        let s32: &'static [f32] = Box::leak(vec![1.0f32; 12].into_boxed_slice());
        let s16: &'static [f32] = Box::leak(vec![1.0f32; 24].into_boxed_slice());
        // 48 inputs: groups of 32 straddle rows (llama2.c v2 files can do this).
        assert!(pack_int8(&[view(s32, 32)], 48, 0..8, 32, false).is_none());
        assert!(pack_int8(&[view(s16, 16)], 48, 0..8, 16, false).is_some());
        assert!(pack_int8(&[view(s16, 16)], 48, 0..8, 32, false).is_none(), "groups of 16 are not groups of 32");
        assert!(pack_int8(&[view(s16, 16)], 48, 0..6, 16, false).is_none(), "6 rows are not whole words");
        let f = vec![0.5f32; 8 * 48];
        assert!(pack_int8(&[MatrixRef::F32(&f)], 48, 0..8, 16, false).is_none(), "f32 rows");
    }
}
