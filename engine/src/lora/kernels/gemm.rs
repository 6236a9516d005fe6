//! The training path's large matrix products through `matrixmultiply`'s cache-blocked sgemm
//! (issue 22: the per-row dot products of `cpu::fast` re-read each weight matrix once per row,
//! so a batch of 256 rows was bound by memory, not arithmetic).
//!
//! Output rows are split over the current pool in blocks; sgemm sums each output element over
//! `k` in the same blocked order whichever rows a call holds, so results do not depend on the
//! thread count. They differ from the per-row kernels in the last bits (sum order, FMA), within
//! the tolerances the training tests state.

use crate::pool;

/// Products with fewer rows than this stay on the per-row kernels (packing costs more there).
pub const MIN_ROWS: usize = 8;

/// A matrix operand: element (i, j) at `data[i·rs + j·cs]`.
struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl Mat<'_> {
    /// Whether every element of a `rows × cols` view lies inside `data`.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `c[m, n] = alpha · a[m, k] · b[k, n] + beta · c` (c row-major).
#[allow(clippy::too_many_arguments)]
fn sgemm(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    assert!(c.len() >= m * n && a.holds(m, k) && b.holds(k, n));
    // SAFETY: the assert bounds every element sgemm reads or writes; `c` is a unique borrow,
    // so it aliases neither operand.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

/// Runs `f(rows_of_out, first_row)` over blocks of `out`'s rows (each `width` long), on the pool
/// when there is enough work.
fn blocks(out: &mut [f32], width: usize, work: usize, f: impl Fn(&mut [f32], usize) + Sync) {
    let n = out.len() / width;
    match super::linear::parallel(work) {
        Some(p) if n >= 2 * MIN_ROWS => {
            let per = n.div_ceil(p.threads()).max(MIN_ROWS);
            pool::for_chunks(&*p, out, per * width, |b, o| f(o, b * per))
        }
        _ => f(out, 0),
    }
}

/// `y[N,out] = x[N,in] · wᵀ` (w row-major `[out, in]`).
pub fn x_wt(y: &mut [f32], x: &[f32], w: &[f32], n_in: usize) {
    let n_out = w.len() / n_in;
    blocks(y, n_out, y.len() * n_in, |y, r0| {
        let m = y.len() / n_out;
        let a = Mat { data: &x[r0 * n_in..][..m * n_in], rs: n_in, cs: 1 };
        let b = Mat { data: w, rs: 1, cs: n_in };
        sgemm(m, n_in, n_out, 1.0, a, b, 0.0, y)
    })
}

/// `dx[N,in] += s · dy[N,out] · w`, the input gradient of `x_wt`.
pub fn dy_w(dx: &mut [f32], dy: &[f32], w: &[f32], n_in: usize, s: f32) {
    let n_out = w.len() / n_in;
    blocks(dx, n_in, dx.len() * n_out, |dx, r0| {
        let m = dx.len() / n_in;
        let a = Mat { data: &dy[r0 * n_out..][..m * n_out], rs: n_out, cs: 1 };
        let b = Mat { data: w, rs: n_in, cs: 1 };
        sgemm(m, n_out, n_in, s, a, b, 1.0, dx)
    })
}

/// `dw[out,in] += s · dy[N,out]ᵀ · x[N,in]`, the weight gradient of `x_wt`.
pub fn dyt_x(dw: &mut [f32], dy: &[f32], x: &[f32], n_in: usize, s: f32) {
    let n_out = dw.len() / n_in;
    let n = x.len() / n_in;
    blocks(dw, n_in, dw.len() * n, |dw, o0| {
        let m = dw.len() / n_in;
        // dyᵀ's rows o0.. are dy's columns: element (o, t) at t·n_out + o.
        let a = Mat { data: &dy[o0..], rs: 1, cs: n_out };
        let b = Mat { data: x, rs: n_in, cs: 1 };
        sgemm(m, n, n_in, s, a, b, 1.0, dw)
    })
}
