//! Matrix–vector products over matrices kept in ggml's blocks as read (layouts in `quant.rs`): the
//! block types Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K, and F16 and BF16 rows (blocks of one value, as
//! ggml counts them), on f32 activations (nothing is done to `x`): Q4_0 takes 4.5 bits a weight,
//! Q4_K 4.5, Q6_K 6.56, F16 and BF16 16, against Q8_0's 9 (as `cpu::q8` holds it) and f32's 32.
//!
//! A row is a whole number of blocks (GGUF requires it). Kernels: portable (the reference the
//! others are tested against: each block dequantized by `quant::dequantize_block` into a small
//! buffer, then `Σ w·x` in order), AVX2+FMA (x86_64, with F16C, detected at run time: the
//! block's integers unpacked and widened to f32, each run sharing a scale summed on its own and
//! then scaled) and simd128 (wasm32 built with it: the same sums four lanes wide). Rows are split
//! over the current pool as `cpu::q8` splits them, each row summed in the same order wherever its
//! block starts, so any thread count gives the same bits.

use crate::pool;
use crate::quant::{dequantize_block, DType};

/// Rows of a block-quantized matrix, borrowed: row `r` is the bytes
/// `data[r·row_bytes()..(r+1)·row_bytes()]`, `cols / per-block` whole blocks of `dtype`.
#[derive(Debug, Clone, Copy)]
pub struct BlockRows<'a> {
    pub dtype: DType,
    pub cols: usize,
    pub data: &'a [u8],
}

impl<'a> BlockRows<'a> {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        let (per, bytes) = self.dtype.block();
        self.cols / per * bytes
    }

    /// Rows `first..first + n` of this view.
    pub fn rows(&self, first: usize, n: usize) -> BlockRows<'a> {
        let rb = self.row_bytes();
        BlockRows { data: &self.data[first * rb..(first + n) * rb], ..*self }
    }

    /// The f32 row as long in bytes as one row here, how `pool::block_rows` sizes a task's rows.
    pub fn f32_width(&self) -> usize {
        self.row_bytes().div_ceil(4)
    }

    pub fn n_rows(&self) -> usize {
        self.data.len() / self.row_bytes().max(1)
    }

    /// Row `r` as f32, as `quant::dequantize` gives it (the embedding lookup).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        let (per, bytes) = self.dtype.block();
        let row = &self.rows(r, 1).data;
        for (b, o) in row.chunks_exact(bytes).zip(out.chunks_exact_mut(per)) {
            dequantize_block(self.dtype, b, o);
        }
    }
}

/// `out = W · x` on the fastest kernel here; large matrices split by rows over the current pool,
/// bit-identical to one thread.
pub fn matvec(out: &mut [f32], x: &[f32], w: BlockRows) {
    let n = x.len();
    assert!(w.cols == n && w.n_rows() >= out.len(), "block matvec: shapes disagree");
    if out.len() * n >= super::fast::PARALLEL_MIN {
        let pool = pool::current();
        if pool.threads() > 1 {
            let block = pool::block_rows(out.len(), w.f32_width(), pool.threads());
            return pool::for_chunks(&*pool, out, block, |b, o| rows(o, x, w.rows(b * block, o.len())));
        }
    }
    rows(out, x, w)
}

/// Where the parts of a 32-value block of Q4_1, Q5_0 or Q5_1 lie (offsets in bytes; `d` at 0):
/// weights `(v − sub)·d (+ m)`, `v` a nibble of the 16 bytes at `qs` (the low nibbles are values
/// 0..16) with, for Q5, bit `j` of the u32 at `qh` as value `j`'s fifth bit.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
#[derive(Clone, Copy)]
struct Layout32 {
    qs: usize,
    qh: Option<usize>,
    sub: i32,
    min: Option<usize>,
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
impl Layout32 {
    fn of(t: DType) -> Option<Layout32> {
        Some(match t {
            DType::Q4_1 => Layout32 { qs: 4, qh: None, sub: 0, min: Some(2) },
            DType::Q5_0 => Layout32 { qs: 6, qh: Some(2), sub: 16, min: None },
            DType::Q5_1 => Layout32 { qs: 8, qh: Some(4), sub: 0, min: Some(2) },
            _ => return None,
        })
    }
}

/// One thread's rows, on the fastest kernel for this type.
pub fn rows(out: &mut [f32], x: &[f32], w: BlockRows) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: AVX2, FMA and F16C checked at run time; shapes asserted inside.
        return unsafe { x86::rows(out, x, w) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::rows(out, x, w);
    #[allow(unreachable_code)]
    portable(out, x, w)
}

/// AVX2 and FMA (`fast`'s test) and F16C, which every AVX2 processor has.
#[cfg(target_arch = "x86_64")]
fn has_avx2_fma_f16c() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| super::fast::has_avx2_fma() && is_x86_feature_detected!("f16c"))
}

/// Name of the kernel `rows` uses, for reports.
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        return "avx2+fma";
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return "simd128";
    #[allow(unreachable_code)]
    "portable"
}

/// The reference: per row, each block dequantized as `quant.rs` does, then `acc += w·x` over the
/// row in order.
pub fn portable(out: &mut [f32], x: &[f32], w: BlockRows) {
    let (per, bytes) = w.dtype.block();
    assert!(w.dtype != DType::F32 && w.cols.is_multiple_of(per) && x.len() == w.cols, "block matvec: shapes disagree");
    let mut buf = [0f32; 256];
    let buf = &mut buf[..per];
    for (r, o) in out.iter_mut().enumerate() {
        let row = w.rows(r, 1).data;
        let mut acc = 0f32;
        for (b, xs) in row.chunks_exact(bytes).zip(x.chunks_exact(per)) {
            dequantize_block(w.dtype, b, buf);
            acc = buf.iter().zip(xs).fold(acc, |a, (&v, &x)| a + v * x);
        }
        *o = acc;
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "blocks_x86.rs"]
mod x86;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[path = "blocks_wasm.rs"]
mod wasm;
