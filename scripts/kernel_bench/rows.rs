// The page's simd128 `rows` kernel (engine/src/cpu/fast_wasm.rs) as a standalone wasm function,
// for run.mjs: the same loop V8 runs in the page, without the engine around it.
#![no_std]
use core::arch::wasm32::*;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// `out = W · x` for `nrows` rows of `n` floats, four accumulators of four lanes.
///
/// # Safety
/// The pointers hold `nrows`, `n` and `nrows · n` floats.
#[no_mangle]
pub unsafe extern "C" fn rows(out: *mut f32, nrows: usize, x: *const f32, w: *const f32, n: usize) {
    let body = n - n % 16;
    for r in 0..nrows {
        let row = w.add(r * n);
        let mut acc = [f32x4_splat(0.0); 4];
        let mut j = 0;
        while j < body {
            for (k, a) in acc.iter_mut().enumerate() {
                let (rv, xv) = (v128_load(row.add(j + 4 * k) as *const v128), v128_load(x.add(j + 4 * k) as *const v128));
                *a = f32x4_add(*a, f32x4_mul(rv, xv));
            }
            j += 16;
        }
        let a = f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3]));
        let mut s = (f32x4_extract_lane::<0>(a) + f32x4_extract_lane::<1>(a)) + (f32x4_extract_lane::<2>(a) + f32x4_extract_lane::<3>(a));
        for t in body..n {
            s += *row.add(t) * *x.add(t);
        }
        *out.add(r) = s;
    }
}
