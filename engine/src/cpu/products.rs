//! Matrix–vector products of one layer's matrices, each held as f32, Q8_0 or blocks, on the chosen
//! kernels; products that share an input (a decode step's q, k and v; w1 and w3) in **one** pool
//! call. On several threads a token waits on the pool once per call, so three and two calls
//! becoming one each cuts a layer's waits from 8 to 5; rows are split in the blocks a lone
//! product uses, so every output equals its own product's bit for bit.

use super::kernels::Kernels;
use super::{blocks, fast, ops, q8};
use crate::pool;
use crate::quant_weights::MatrixRef;

/// `out = m · x` on `kernels` (rows split over the current pool when large).
pub fn matvec(kernels: Kernels, m: MatrixRef, out: &mut [f32], x: &[f32]) {
    match (m, kernels) {
        (MatrixRef::F32(m), Kernels::Reference) => ops::matmul(out, x, m),
        (MatrixRef::F32(m), Kernels::Fast) => fast::matmul(out, x, m),
        (MatrixRef::Q8(m), Kernels::Reference) => q8::portable(out, x, m),
        (MatrixRef::Q8(m), Kernels::Fast) => q8::matvec(out, x, m),
        (MatrixRef::Blocks(m), Kernels::Reference) => blocks::portable(out, x, m),
        (MatrixRef::Blocks(m), Kernels::Fast) => blocks::matvec(out, x, m),
    }
}

/// `outs[j] = m_j · x` for every `j`: on the fast kernels and several threads, one pool call
/// whose tasks are the row blocks of every product; otherwise one product after another.
pub fn matvecs<const N: usize>(kernels: Kernels, x: &[f32], parts: [(MatrixRef, &mut [f32]); N]) {
    let pool = pool::current();
    let work: usize = parts.iter().map(|(_, o)| o.len() * x.len()).sum();
    if kernels == Kernels::Reference || pool.threads() == 1 || work < fast::PARALLEL_MIN {
        return parts.into_iter().for_each(|(m, out)| matvec(kernels, m, out, x));
    }
    let threads = pool.threads();
    let mats = parts.each_ref().map(|(m, _)| *m);
    let sizes = parts.each_ref().map(|(m, o)| block_rows(m, o.len(), threads));
    let outs = parts.map(|(_, o)| o);
    pool::for_chunks_of(&*pool, outs, sizes, |j, b, o| rows(mats[j], b * sizes[j], o, x));
}

/// Rows per task of `m`, as its lone product splits it (`fast::matmul`, `q8::matvec`,
/// `blocks::matvec`).
fn block_rows(m: &MatrixRef, rows: usize, threads: usize) -> usize {
    let width = match m {
        MatrixRef::F32(w) => w.len() / rows.max(1),
        MatrixRef::Q8(w) => w.f32_width(),
        MatrixRef::Blocks(w) => w.f32_width(),
    };
    pool::block_rows(rows, width, threads)
}

/// Rows `first..first + out.len()` of `m · x` on this thread, on the fast kernels.
fn rows(m: MatrixRef, first: usize, out: &mut [f32], x: &[f32]) {
    let n = out.len();
    match m {
        MatrixRef::F32(w) => fast::rows(out, x, &w[first * x.len()..][..n * x.len()]),
        MatrixRef::Q8(w) => q8::rows(out, x, w.rows(first, n)),
        MatrixRef::Blocks(w) => blocks::rows(out, x, w.rows(first, n)),
    }
}
