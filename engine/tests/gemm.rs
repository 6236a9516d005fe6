//! The training path's blocked products (`lora::kernels::gemm`) against the generic kernels in
//! f64 (the readable reference), and equal bits on 1, 2 and 3 threads. Runs natively and in
//! wasm (simd128 kernel, Node; the pool is serial there).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use tinylm_engine::lora::kernels::{gemm, matmul, matmul_dw, matmul_dx};
use tinylm_engine::pool;
use tinylm_engine::randmodel::random_tokens;

/// `len` values in [-1, 1) from a deterministic stream.
fn values(seed: u64, len: usize) -> Vec<f32> {
    random_tokens(seed, len, 2001).iter().map(|&v| v as f32 / 1000.0 - 1.0).collect()
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Every element within 1e-5 of the reference, relative to the largest reference element: sums
/// of up to 300 products of values below 1 (f32 rounding, measured ≤ 1e-6 here).
fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let worst = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-5 * scale, "{what}: worst error {worst:e} (scale {scale})");
}

/// Shapes that are not multiples of sgemm's tiles, batches around `MIN_ROWS`, and a real one.
const SHAPES: [(usize, usize, usize); 5] = [(8, 5, 3), (9, 53, 41), (37, 64, 172), (64, 288, 17), (130, 31, 300)];

fn on_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    pool::install(pool::with_threads(n), f)
}

#[test]
fn forward_product_matches_the_reference() {
    for (i, &(n, n_in, n_out)) in SHAPES.iter().enumerate() {
        let (x, w) = (values(10 + i as u64, n * n_in), values(20 + i as u64, n_out * n_in));
        let mut want = vec![0f64; n * n_out];
        matmul(&mut want, &wide(&x), &wide(&w), n_in);
        let runs: Vec<Vec<f32>> = [1, 2, 3]
            .map(|t| {
                let mut y = vec![f32::NAN; n * n_out];
                on_threads(t, || gemm::x_wt(&mut y, &x, &w, n_in));
                y
            })
            .into();
        assert_close(&runs[0], &want, &format!("x_wt {n}x{n_in}x{n_out}"));
        assert_eq!(runs[0], runs[1], "2 threads");
        assert_eq!(runs[0], runs[2], "3 threads");
    }
}

#[test]
fn input_gradient_adds_the_scaled_product() {
    for (i, &(n, n_in, n_out)) in SHAPES.iter().enumerate() {
        let (dy, w, start) = (values(30 + i as u64, n * n_out), values(40 + i as u64, n_out * n_in), values(50, n * n_in));
        let mut want = wide(&start);
        matmul_dx(&mut want, &wide(&dy), &wide(&w), n_in, 0.5);
        let runs: Vec<Vec<f32>> = [1, 2, 3]
            .map(|t| {
                let mut dx = start.clone();
                on_threads(t, || gemm::dy_w(&mut dx, &dy, &w, n_in, 0.5));
                dx
            })
            .into();
        assert_close(&runs[0], &want, &format!("dy_w {n}x{n_in}x{n_out}"));
        assert_eq!(runs[0], runs[1], "2 threads");
        assert_eq!(runs[0], runs[2], "3 threads");
    }
}

#[test]
fn weight_gradient_adds_the_scaled_product() {
    for (i, &(n, n_in, n_out)) in SHAPES.iter().enumerate() {
        let (dy, x, start) = (values(60 + i as u64, n * n_out), values(70 + i as u64, n * n_in), values(80, n_out * n_in));
        let mut want = wide(&start);
        matmul_dw(&mut want, &wide(&dy), &wide(&x), n_in, 2.0);
        let runs: Vec<Vec<f32>> = [1, 2, 3]
            .map(|t| {
                let mut dw = start.clone();
                on_threads(t, || gemm::dyt_x(&mut dw, &dy, &x, n_in, 2.0));
                dw
            })
            .into();
        assert_close(&runs[0], &want, &format!("dyt_x {n}x{n_in}x{n_out}"));
        assert_eq!(runs[0], runs[1], "2 threads");
        assert_eq!(runs[0], runs[2], "3 threads");
    }
}
