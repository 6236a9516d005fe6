//! How a weight matrix lies in a GPU buffer, both sides of it: the WGSL that reads one element
//! (written into each kernel's source at load, `accessors`) and the Rust that writes a chunk
//! (`pack_q8`; `model::Chunked` for f32 and f16).
//!
//! Every chunk holds rows `j` (outputs) of a `[m, k]` matrix TRANSPOSED, input `i` major, so
//! lanes on adjacent outputs read adjacent memory. The kernels never index a weight buffer
//! themselves: they call `NAME_at(i, j4, m4, k)` (the 4 outputs `4·j4 .. 4·j4 + 3` at input
//! `i`, as a vec4<f32>) or `NAME_at1(i, j, m, k)` (one output), where `NAME` is the binding, and
//! declare the binding as `array<W4>` or `array<W1>`, types the accessors define. So one kernel
//! source runs f32, f16 and Q8_0 weights; a model's matrices are all in one format on the GPU.
//!
//! Q8_0 (`pack_q8`): word `i·m/4 + j/4` holds the int8 values of rows `4·(j/4) .. +3` at input
//! `i`, row `4·(j/4) + e` in byte `e`; from word `k·m/4` on, the f32 scale of row `j`'s input
//! group `g` (inputs `g·QG .. g·QG + QG − 1`) at word `k·m/4 + g·m + j`. The accessors multiply
//! each value by its scale in f32, `q · scale`, the dequantized value the CPU reference uses
//! (`Matrix::dequantize`), so the sums are those of the f32 kernels over the dequantized matrix.
//! About 1.1 bytes a weight for groups of 32, against f32's 4.

use crate::cpu::q8::Q8Rows;

/// The format of every weight chunk a kernel reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    F32,
    /// IEEE half floats (the optional classifier; the device needs shader-f16).
    F16,
    /// Q8_0 with `group` inputs per scale, each row whole groups.
    Q8 {
        group: u32,
    },
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
            WeightFormat::F32 => "alias W4 = vec4<f32>;\nalias W1 = f32;\n".to_string(),
            WeightFormat::F16 => "alias W4 = vec4<f16>;\nalias W1 = f16;\n".to_string(),
            WeightFormat::Q8 { group } => format!("alias W4 = u32;\nalias W1 = u32;\nconst QG: u32 = {group}u;\n{Q8_UNPACK}"),
        };
        for n in vec4 {
            s += &match self {
                WeightFormat::Q8 { .. } => format!(
                    "fn {n}_at(i: u32, j4: u32, m4: u32, k: u32) -> vec4<f32> {{\n    \
                     let s = k * m4 + (i / QG) * 4u * m4 + 4u * j4;\n    \
                     let scale = vec4<f32>(bitcast<f32>({n}[s]), bitcast<f32>({n}[s + 1u]), bitcast<f32>({n}[s + 2u]), bitcast<f32>({n}[s + 3u]));\n    \
                     return q8_values({n}[i * m4 + j4]) * scale;\n}}\n"
                ),
                _ => format!("fn {n}_at(i: u32, j4: u32, m4: u32, k: u32) -> vec4<f32> {{\n    return vec4<f32>({n}[i * m4 + j4]);\n}}\n"),
            };
        }
        for n in scalar {
            s += &match self {
                WeightFormat::Q8 { .. } => format!(
                    "fn {n}_at1(i: u32, j: u32, m: u32, k: u32) -> f32 {{\n    \
                     let m4 = m / 4u;\n    \
                     return q8_values({n}[i * m4 + j / 4u])[j % 4u] * bitcast<f32>({n}[k * m4 + (i / QG) * m + j]);\n}}\n"
                ),
                _ => format!("fn {n}_at1(i: u32, j: u32, m: u32, k: u32) -> f32 {{\n    return f32({n}[i * m + j]);\n}}\n"),
            };
        }
        s
    }
}

/// The four int8 values of a word (byte e is value e), as f32. Sign extension by an arithmetic
/// shift keeps to core WGSL (unpack4xI8 is a language extension not every browser has).
const Q8_UNPACK: &str = "fn q8_values(w: u32) -> vec4<f32> {
    let v = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w));
    return vec4<f32>(v >> vec4<u32>(24u));
}
";

/// Rows `rows` (a multiple of 4 long) of the matrices `views` stacked (wq, wk, wv: one matrix of
/// their rows in order), each view `cols` inputs wide and whole groups per row, as the words of
/// one Q8_0 chunk (module comment). `None` when a row is not whole groups or the rows not whole
/// words.
pub fn pack_q8(views: &[Q8Rows], rows: std::ops::Range<usize>) -> Option<Vec<u32>> {
    let (cols, group) = (views.first()?.cols, views[0].group);
    let whole = |v: &Q8Rows| v.cols == cols && v.group == group && v.offset == 0 && cols.is_multiple_of(group);
    if !views.iter().all(whole) || !rows.len().is_multiple_of(4) {
        return None;
    }
    // Row j of the stack: (its values, its scales).
    let mut stack = Vec::new();
    for v in views {
        let per = cols / group;
        stack.extend((0..v.n_rows()).map(|r| (&v.q[r * cols..(r + 1) * cols], &v.scales[r * per..(r + 1) * per])));
    }
    let chunk = stack.get(rows)?;
    let (m, m4, groups) = (chunk.len(), chunk.len() / 4, cols / group);
    let mut out = vec![0u32; cols * m4 + groups * m];
    for (j4, four) in chunk.chunks_exact(4).enumerate() {
        for i in 0..cols {
            let bytes = [four[0].0[i], four[1].0[i], four[2].0[i], four[3].0[i]].map(|q| q as u8);
            out[i * m4 + j4] = u32::from_le_bytes(bytes);
        }
    }
    for (j, (_, scales)) in chunk.iter().enumerate() {
        for (g, s) in scales.iter().enumerate() {
            out[cols * m4 + g * m + j] = s.to_bits();
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(q: &'a [i8], scales: &'a [f32], cols: usize, group: usize) -> Q8Rows<'a> {
        Q8Rows { cols, group, offset: 0, q, scales }
    }

    /// The packed words read back as the accessors read them (the WGSL's arithmetic in Rust)
    /// equal the dequantized rows, at every (input, output).
    #[test]
    fn packed_q8_reads_back_as_the_dequantized_rows() {
        let (cols, group) = (64, 32);
        let q: Vec<i8> = (0..12 * cols).map(|i| ((i * 37 + 11) % 255) as i8).collect();
        let scales: Vec<f32> = (0..12 * cols / group).map(|g| 0.01 * (g as f32 + 1.0)).collect();
        // Rows 4..12 of two stacked views of 8 and 4 rows (a chunk crossing the seam).
        let (a, b) = (view(&q[..8 * cols], &scales[..16], cols, group), view(&q[8 * cols..], &scales[16..], cols, group));
        let words = pack_q8(&[a, b], 4..12).unwrap();
        let (m, m4) = (8, 2);
        assert_eq!(words.len(), cols * m4 + (cols / group) * m);
        for i in 0..cols {
            for j in 0..m {
                let row = 4 + j;
                let want = q[row * cols + i] as f32 * scales[(row * cols + i) / group];
                let byte = (words[i * m4 + j / 4] >> (8 * (j % 4))) as u8 as i8;
                let got = byte as f32 * f32::from_bits(words[cols * m4 + (i / group) * m + j]);
                assert_eq!(got.to_bits(), want.to_bits(), "input {i}, output {j}");
            }
        }
    }

    #[test]
    fn rows_that_are_not_whole_groups_or_words_are_not_packed() {
        let q = vec![1i8; 8 * 48];
        let s = vec![1.0f32; 8 * 48 / 32];
        // 48 inputs: groups of 32 straddle rows (llama2.c v2 files can do this).
        assert!(pack_q8(&[view(&q, &s, 48, 32)], 0..8).is_none());
        let s = vec![1.0f32; 8 * 48 / 16];
        assert!(pack_q8(&[view(&q, &s, 48, 16)], 0..8).is_some());
        assert!(pack_q8(&[view(&q, &s, 48, 16)], 0..6).is_none(), "6 rows are not whole words");
    }
}
