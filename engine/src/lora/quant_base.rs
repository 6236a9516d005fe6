//! A quantized base for LoRA training: the frozen matrices stay in their file's type (Q8_0,
//! Q4_0, Q4_K, Q6_K) and each product dequantizes `TILE_ROWS` rows of the matrix at a time into
//! a scratch tile, so a step needs a tile of f32, not an f32 copy of the model. The adapter, the
//! activations and the sums stay f32; a tile's values are `quant::dequantize`'s, so the forward
//! equals the dense base's and the input gradients differ only in summation order.

use super::kernels::fast;
use super::real::Real;
use crate::cpu::Kernels;
use crate::pool;
use crate::quant_weights::MatrixRef;

/// One frozen matrix of the base: f32 values, or rows kept quantized.
#[derive(Debug, Clone, Copy)]
pub enum BaseMatrix<'a, F> {
    Dense(&'a [F]),
    Quant(MatrixRef<'a>),
}

/// Rows dequantized at once: enough for the cache-blocked products to run at full speed.
pub const TILE_ROWS: usize = 256;

/// Rows `first..first + n` of `m` (rows of `row.len()`) as `F`, into `tile`: f32 rows written in
/// place, split over the current pool (the products after it are, too); other types through
/// `row`, on this thread.
fn dequantize_rows<F: Real>(m: MatrixRef, first: usize, n: usize, row: &mut [f32], tile: &mut Vec<F>) {
    let cols = row.len();
    tile.resize(n * cols, F::ZERO);
    if let Some(t32) = F::f32s_mut(tile) {
        let pool = pool::current();
        let per = n.div_ceil(pool.threads()).max(1);
        return pool::for_chunks(&*pool, t32, per * cols, |i, chunk| {
            for (j, out) in chunk.chunks_exact_mut(cols).enumerate() {
                m.row_f32(first + i * per + j, out);
            }
        });
    }
    for (r, out) in (first..first + n).zip(tile.chunks_exact_mut(cols)) {
        m.row_f32(r, row);
        out.iter_mut().zip(row.iter()).for_each(|(o, &v)| *o = F::of(v as f64));
    }
}

/// `y[N,out] = x[N,in] · wᵀ` (`fast::matmul`), a quantized `w` a tile of rows at a time.
pub fn matmul<F: Real>(k: Kernels, y: &mut [F], x: &[F], w: BaseMatrix<F>, n_in: usize) {
    let m = match w {
        BaseMatrix::Dense(w) => return fast::matmul(k, y, x, w, n_in),
        BaseMatrix::Quant(m) => m,
    };
    let n = x.len() / n_in;
    let n_out = y.len() / n.max(1);
    let (mut row, mut tile, mut yt) = (vec![0f32; n_in], Vec::new(), vec![F::ZERO; n * TILE_ROWS.min(n_out)]);
    for first in (0..n_out).step_by(TILE_ROWS) {
        let t = TILE_ROWS.min(n_out - first);
        dequantize_rows(m, first, t, &mut row, &mut tile);
        fast::matmul(k, &mut yt[..n * t], x, &tile, n_in);
        for (yr, ytr) in y.chunks_exact_mut(n_out).zip(yt.chunks_exact(t)) {
            yr[first..first + t].copy_from_slice(ytr);
        }
    }
}

/// `dx[N,in] += (s · dy[N,out]) · w` (`fast::matmul_dx`), a quantized `w` a tile of rows at a time.
pub fn matmul_dx<F: Real>(k: Kernels, dx: &mut [F], dy: &[F], w: BaseMatrix<F>, n_in: usize, s: F) {
    let m = match w {
        BaseMatrix::Dense(w) => return fast::matmul_dx(k, dx, dy, w, n_in, s),
        BaseMatrix::Quant(m) => m,
    };
    let n = dx.len() / n_in;
    let n_out = dy.len() / n.max(1);
    let (mut row, mut tile, mut dyt) = (vec![0f32; n_in], Vec::new(), Vec::with_capacity(n * TILE_ROWS.min(n_out)));
    for first in (0..n_out).step_by(TILE_ROWS) {
        let t = TILE_ROWS.min(n_out - first);
        dequantize_rows(m, first, t, &mut row, &mut tile);
        dyt.clear();
        dy.chunks_exact(n_out).for_each(|r| dyt.extend_from_slice(&r[first..first + t]));
        fast::matmul_dx(k, dx, &dyt, &tile, n_in, s);
    }
}

/// Row `r` of `w` (an embedding), as `F`.
pub fn row<F: Real>(w: BaseMatrix<F>, r: usize, out: &mut [F]) {
    match w {
        BaseMatrix::Dense(w) => out.copy_from_slice(&w[r * out.len()..(r + 1) * out.len()]),
        BaseMatrix::Quant(m) => {
            let mut f = vec![0f32; out.len()];
            m.row_f32(r, &mut f);
            out.iter_mut().zip(&f).for_each(|(o, &v)| *o = F::of(v as f64));
        }
    }
}
