//! Matrix–vector products over Q8_0 weights kept quantized, on f32 activations: each group of
//! `group` int8 values shares one f32 scale, `w = q · scale`, so `W·x = Σ_g scale_g · Σ q·x`.
//! The activations stay f32 (llama2.c's `runq` quantizes them too; that is not done here), so the
//! result is the dequantized matrix's product up to f32 rounding.
//!
//! Groups run over the flattened matrix, as llama2.c v2 files store them (a group may straddle
//! two rows when `group` does not divide the row length: stories260K's w2 has rows of 172 and
//! groups of 64); GGUF's Q8_0 blocks (32 values) never straddle. Kernels: portable (the reference
//! the others are tested against), AVX2+FMA (x86_64, detected at run time) and simd128 (wasm32
//! built with it). Rows are split over the current pool in fixed blocks, and each row is summed
//! in the same order wherever its block starts, so any thread count gives the same bits.

use crate::pool;

/// Rows of a Q8_0 matrix, borrowed: row `r`'s values are `q[r·cols..(r+1)·cols]`; value `i` of the
/// view (counting from `q[0]`) has the scale `scales[(offset + i) / group]`.
#[derive(Debug, Clone, Copy)]
pub struct Q8Rows<'a> {
    pub cols: usize,
    pub group: usize,
    /// Where `q[0]` lies within its group (non-zero only for views starting inside a group).
    pub offset: usize,
    pub q: &'a [i8],
    pub scales: &'a [f32],
}

impl<'a> Q8Rows<'a> {
    /// Rows `first..first + n` of this view.
    pub fn rows(&self, first: usize, n: usize) -> Q8Rows<'a> {
        let start = self.offset + first * self.cols;
        let (g0, g1) = (start / self.group, (start + n * self.cols).div_ceil(self.group));
        Q8Rows {
            cols: self.cols,
            group: self.group,
            offset: start % self.group,
            q: &self.q[first * self.cols..(first + n) * self.cols],
            scales: &self.scales[g0..g1],
        }
    }

    /// The f32 row as long in bytes as one row here (int8 values: a quarter of the columns), how
    /// `pool::block_rows` sizes a task's rows.
    pub fn f32_width(&self) -> usize {
        self.cols.div_ceil(4)
    }

    pub fn n_rows(&self) -> usize {
        self.q.len() / self.cols.max(1)
    }

    /// Every group lies within one row (the kernels' fast case).
    fn aligned(&self) -> bool {
        self.offset == 0 && self.cols.is_multiple_of(self.group)
    }

    /// Row `r` as f32 (`q · scale`, as `quant::dequantize` gives it): the embedding lookup.
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        let at = self.offset + r * self.cols;
        for (i, (o, &q)) in out.iter_mut().zip(&self.q[r * self.cols..(r + 1) * self.cols]).enumerate() {
            *o = q as f32 * self.scales[(at + i) / self.group];
        }
    }
}

/// `out = W · x` on the fastest kernel here; large matrices split by rows over the current pool,
/// bit-identical to one thread.
pub fn matvec(out: &mut [f32], x: &[f32], w: Q8Rows) {
    let n = x.len();
    assert!(w.cols == n && w.q.len() >= out.len() * n, "q8 matvec: shapes disagree");
    if out.len() * n >= super::fast::PARALLEL_MIN {
        let pool = pool::current();
        if pool.threads() > 1 {
            let block = pool::block_rows(out.len(), w.f32_width(), pool.threads());
            return pool::for_chunks(&*pool, out, block, |b, o| rows(o, x, w.rows(b * block, o.len())));
        }
    }
    rows(out, x, w)
}

/// One thread's rows, on the fastest kernel for this view.
pub fn rows(out: &mut [f32], x: &[f32], w: Q8Rows) {
    if w.aligned() {
        #[cfg(target_arch = "x86_64")]
        if super::fast::has_avx2_fma() && w.group.is_multiple_of(8) {
            // SAFETY: AVX2 and FMA checked at run time; shapes asserted inside.
            return unsafe { x86::rows(out, x, w) };
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if w.group.is_multiple_of(16) {
            return wasm::rows(out, x, w);
        }
    }
    portable(out, x, w)
}

/// Name of the kernel `rows` uses for aligned groups of 32, for reports.
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if super::fast::has_avx2_fma() {
        return "q8 avx2+fma";
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return "q8 simd128";
    #[allow(unreachable_code)]
    "q8 portable"
}

/// The reference: per row, each run of values sharing a scale summed as `Σ q·x` in order, then
/// `acc += scale · sum`.
pub fn portable(out: &mut [f32], x: &[f32], w: Q8Rows) {
    let n = w.cols;
    let first_group = w.offset / w.group;
    for (r, o) in out.iter_mut().enumerate() {
        let row = &w.q[r * n..(r + 1) * n];
        let mut acc = 0f32;
        let mut j = 0;
        while j < n {
            let flat = w.offset + r * n + j;
            let end = (j + w.group - flat % w.group).min(n);
            let s = row[j..end].iter().zip(&x[j..end]).fold(0f32, |s, (&q, &v)| s + q as f32 * v);
            acc += w.scales[flat / w.group - first_group] * s;
            j = end;
        }
        *o = acc;
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "q8_x86.rs"]
mod x86;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[path = "q8_wasm.rs"]
mod wasm;
