//! simd128 kernels for `fast.rs` (wasm32 built with +simd128). simd128 has no fused multiply-add,
//! so each product and sum rounds on its own; several accumulators hide the add latency.

use std::arch::wasm32::*;

#[inline(always)]
fn load(s: &[f32], at: usize) -> v128 {
    let s = &s[at..at + 4];
    // SAFETY: `s` holds four floats (bounds checked above); v128_load takes unaligned pointers.
    unsafe { v128_load(s.as_ptr() as *const v128) }
}

#[inline(always)]
fn store(s: &mut [f32], at: usize, v: v128) {
    let s = &mut s[at..at + 4];
    // SAFETY: as `load`.
    unsafe { v128_store(s.as_mut_ptr() as *mut v128, v) }
}

#[inline(always)]
fn splat(v: f32) -> v128 {
    f32x4_splat(v)
}

/// `(l0 + l2) + (l1 + l3)`: the order of `sum4`'s per-lane reductions.
#[inline(always)]
fn hsum(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v)) + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v))
}

/// The four horizontal sums of `a`, in order, each in `hsum`'s order.
#[inline(always)]
fn sum4(a: [v128; 4]) -> v128 {
    let s01 = f32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a[0], a[1]), i32x4_shuffle::<2, 6, 3, 7>(a[0], a[1]));
    let s23 = f32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a[2], a[3]), i32x4_shuffle::<2, 6, 3, 7>(a[2], a[3]));
    f32x4_add(i32x4_shuffle::<0, 1, 4, 5>(s01, s23), i32x4_shuffle::<2, 3, 6, 7>(s01, s23))
}

/// `out = W · x`: rows in memory order, four accumulators (16 floats per step). (Pairing rows
/// to share the x loads measured twice as slow in V8: the eight accumulators spill.)
pub fn rows(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    let body = n - n % 16;
    let touch = touch_here();
    for (r, (o, row)) in out.iter_mut().zip(w.chunks_exact(n)).enumerate() {
        if touch {
            touch_ahead(w, r * n, n);
        }
        let mut acc = [splat(0.0); 4];
        let mut j = 0;
        while j < body {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: j + 16 <= body <= n, within both slices.
                let (r, xv) = unsafe {
                    (v128_load(row.as_ptr().add(j + 4 * k) as *const v128), v128_load(x.as_ptr().add(j + 4 * k) as *const v128))
                };
                *a = f32x4_add(*a, f32x4_mul(r, xv));
            }
            j += 16;
        }
        let a = f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3]));
        let mut s =
            (f32x4_extract_lane::<0>(a) + f32x4_extract_lane::<1>(a)) + (f32x4_extract_lane::<2>(a) + f32x4_extract_lane::<3>(a));
        for t in body..n {
            s += row[t] * x[t];
        }
        *o = s;
    }
}

/// `fast::attend_bwd` for a head of `4·C` floats, operation for operation (each gradient equals
/// the `dot`/`axpy` call per key loop's bit for bit): `dout`, `q` and `dq` stay in registers
/// across the keys instead of a call per key (stories260K's heads are eight floats, where those
/// calls cost more than their arithmetic).
#[allow(clippy::too_many_arguments)]
pub fn attend_bwd<const C: usize>(
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    stride: usize,
    dout: &[f32],
    att: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    ds: &mut [f32],
) {
    let hs = 4 * C;
    let (dov, qv): ([v128; C], [v128; C]) = (std::array::from_fn(|c| load(dout, 4 * c)), std::array::from_fn(|c| load(q, 4 * c)));
    let scale = (hs as f32).sqrt();
    let mut sum = 0f32;
    for (t, (&p, d)) in att.iter().zip(ds.iter_mut()).enumerate() {
        let at = t * stride;
        let (vt, dvt) = (&v[at..at + hs], &mut dv[at..at + hs]);
        let mut acc = splat(0.0);
        for (c, o) in dov.iter().enumerate() {
            acc = f32x4_add(acc, f32x4_mul(*o, load(vt, 4 * c)));
        }
        *d = hsum(acc);
        let pv = splat(p);
        for (c, o) in dov.iter().enumerate() {
            store(dvt, 4 * c, f32x4_add(load(dvt, 4 * c), f32x4_mul(pv, *o)));
        }
        sum += p * *d;
    }
    let mut dqv: [v128; C] = std::array::from_fn(|c| load(dq, 4 * c));
    for (t, (&p, &d)) in att.iter().zip(ds.iter()).enumerate() {
        let at = t * stride;
        let (kt, dkt) = (&k[at..at + hs], &mut dk[at..at + hs]);
        let g = splat(p * (d - sum) / scale);
        for (c, (a, qc)) in dqv.iter_mut().zip(&qv).enumerate() {
            *a = f32x4_add(*a, f32x4_mul(g, load(kt, 4 * c)));
            store(dkt, 4 * c, f32x4_add(load(dkt, 4 * c), f32x4_mul(g, *qc)));
        }
    }
    for (c, a) in dqv.iter().enumerate() {
        store(dq, 4 * c, *a);
    }
}

/// Reads one element `TOUCH_AHEAD` bytes past the row `s[at..at + len]`'s span, where a 4 KiB
/// page begins there, and drops it (kernels call it once a row where `touch_here`). V8 does not
/// ask Linux for huge pages, so a wasm memory lies on 4 KiB pages, and a product streaming its
/// weights stalls at each one: a TLB miss (in a VM, a walk of two page tables) and a hardware
/// prefetcher that stops at the page's end. One load a few pages ahead takes the miss and starts
/// the fetch while the rows before it are summed. Measured under Node (s15m decode, one thread,
/// 2-core EPYC VM, builds alternating): 282–302 tok/s without, 357–390 with a load 16 KiB ahead
/// (4 KiB: 355–362, 8 KiB: 353–360, 32 KiB: 372–379, 64 KiB: 380–386); in Chromium 321 → 390.
#[inline(always)]
pub(crate) fn touch_ahead<T: Copy>(s: &[T], at: usize, len: usize) {
    let size = std::mem::size_of::<T>();
    let page = (at * size + TOUCH_AHEAD).next_multiple_of(PAGE);
    if page >= (at + len) * size + TOUCH_AHEAD {
        return;
    }
    if let Some(v) = s.get(page / size) {
        // SAFETY: `v` is a reference to an initialized `T`; a volatile read is not optimized away.
        std::hint::black_box(unsafe { std::ptr::read_volatile(v) });
    }
}

/// Whether products on this thread touch ahead: not inside a pool's task. In Chromium on two
/// threads, where both cores stream weights at once, touching made s15m decode slower (562 →
/// 536 tok/s, 5 alternating rounds, `tests/e2e/bench-threads.mjs` with `OTHER=`), so it is kept
/// to the one-thread path, where it is 21% faster.
pub(crate) fn touch_here() -> bool {
    !crate::pool::in_task()
}

/// The page size the touches step by (Linux's small page).
const PAGE: usize = 4 << 10;

/// How far ahead `touch_ahead` reads: four pages.
const TOUCH_AHEAD: usize = 16 << 10;

/// `Σ a[j]·b[j]` for short vectors (a head): one accumulator, `hsum`, then the tail.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let body = n - n % 4;
    let mut acc = splat(0.0);
    for j in (0..body).step_by(4) {
        acc = f32x4_add(acc, f32x4_mul(load(a, j), load(b, j)));
    }
    let mut s = hsum(acc);
    for t in body..n {
        s += a[t] * b[t];
    }
    s
}

/// `y += a·x` (each element rounds as the scalar `y + a·x`).
#[inline(always)]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let body = n - n % 4;
    let av = splat(a);
    for j in (0..body).step_by(4) {
        store(y, j, f32x4_add(load(y, j), f32x4_mul(av, load(x, j))));
    }
    for t in body..n {
        y[t] += a * x[t];
    }
}

/// `dx[N,in] += (s·dy[N,out]) · W`: per input row, 16 columns of `dx` stay in registers while
/// every row of `W` adds into them in order (each element rounds as the scalar loop).
pub fn matmul_dx(dx: &mut [f32], dy: &[f32], w: &[f32], n_in: usize, s: f32) {
    let n_out = w.len() / n_in;
    let body = n_in - n_in % 16;
    for (dxr, dyr) in dx.chunks_exact_mut(n_in).zip(dy.chunks_exact(n_out)) {
        let mut j = 0;
        while j < body {
            let mut acc = [load(dxr, j), load(dxr, j + 4), load(dxr, j + 8), load(dxr, j + 12)];
            for (o, &g) in dyr.iter().enumerate() {
                let g = splat(g * s);
                // SAFETY: o < n_out and j + 16 <= n_in, so these 16 floats lie within
                // w[..n_out · n_in] (n_out = w.len() / n_in).
                let row = unsafe { w.as_ptr().add(o * n_in + j) };
                for (k, a) in acc.iter_mut().enumerate() {
                    // SAFETY: as above.
                    let wv = unsafe { v128_load(row.add(4 * k) as *const v128) };
                    *a = f32x4_add(*a, f32x4_mul(g, wv));
                }
            }
            for (k, a) in acc.into_iter().enumerate() {
                store(dxr, j + 4 * k, a);
            }
            j += 16;
        }
        for (o, &g) in dyr.iter().enumerate() {
            let g = g * s;
            for (d, &wv) in dxr[body..].iter_mut().zip(&w[o * n_in + body..(o + 1) * n_in]) {
                *d += g * wv;
            }
        }
    }
}

/// `e^x` per lane: Cephes' range reduction and degree-5 polynomial (as the AVX2 `exp`, with
/// separate multiplies and adds), inputs clamped to ±87.3 so the result stays a normal float.
#[inline(always)]
fn exp(x: v128) -> v128 {
    let x = f32x4_pmin(f32x4_pmax(x, splat(-87.3)), splat(87.3));
    let n = f32x4_nearest(f32x4_mul(x, splat(std::f32::consts::LOG2_E)));
    let r = f32x4_sub(x, f32x4_mul(n, splat(0.693_359_4)));
    let r = f32x4_sub(r, f32x4_mul(n, splat(-2.121_944_4e-4)));
    let mut p = splat(1.987_569_1e-4);
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = f32x4_add(f32x4_mul(p, r), splat(c));
    }
    let y = f32x4_add(f32x4_add(f32x4_mul(p, f32x4_mul(r, r)), r), splat(1.0));
    let bits = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
    f32x4_mul(y, bits)
}

/// In-place softmax: max, `e^(x-max)` with their sum, then divide (as `ops::softmax`); returns the
/// max and the sum.
pub fn softmax(x: &mut [f32]) -> (f32, f32) {
    let n = x.len();
    let body = n - n % 4;
    let mut m = splat(f32::NEG_INFINITY);
    for j in (0..body).step_by(4) {
        m = f32x4_pmax(m, load(x, j));
    }
    let mut max = f32x4_extract_lane::<0>(m)
        .max(f32x4_extract_lane::<1>(m))
        .max(f32x4_extract_lane::<2>(m).max(f32x4_extract_lane::<3>(m)));
    for &v in &x[body..] {
        max = max.max(v);
    }
    let (mv, mut sv) = (splat(max), splat(0.0));
    for j in (0..body).step_by(4) {
        let e = exp(f32x4_sub(load(x, j), mv));
        store(x, j, e);
        sv = f32x4_add(sv, e);
    }
    let mut sum = hsum(sv);
    for v in &mut x[body..] {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = splat(1.0 / sum);
    for j in (0..body).step_by(4) {
        store(x, j, f32x4_mul(load(x, j), inv));
    }
    for v in &mut x[body..] {
        *v /= sum;
    }
    (max, sum)
}

/// SwiGLU in place: `h = silu(h) · g`.
pub fn swiglu(h: &mut [f32], g: &[f32]) {
    let n = h.len().min(g.len());
    let body = n - n % 4;
    for j in (0..body).step_by(4) {
        let a = load(h, j);
        let s = f32x4_div(a, f32x4_add(splat(1.0), exp(f32x4_neg(a))));
        store(h, j, f32x4_mul(s, load(g, j)));
    }
    for j in body..n {
        h[j] = crate::cpu::ops::silu(h[j]) * g[j];
    }
}

/// RMSNorm, `o = g ⊙ (s·x)` with `s = 1/sqrt(mean(x²) + eps)`; the sum of squares over four
/// accumulators.
pub fn rmsnorm(o: &mut [f32], x: &[f32], g: &[f32], eps: f32) {
    let n = x.len();
    let body = n - n % 16;
    let mut acc = [splat(0.0); 4];
    for j in (0..body).step_by(16) {
        for (k, a) in acc.iter_mut().enumerate() {
            let v = load(x, j + 4 * k);
            *a = f32x4_add(*a, f32x4_mul(v, v));
        }
    }
    let mut ss = hsum(f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3])));
    for v in &x[body..] {
        ss += v * v;
    }
    let s = 1.0 / (ss / n as f32 + eps).sqrt();
    let n = n.min(o.len()).min(g.len());
    let body = n - n % 4;
    for j in (0..body).step_by(4) {
        store(o, j, f32x4_mul(load(g, j), f32x4_mul(splat(s), load(x, j))));
    }
    for j in body..n {
        o[j] = g[j] * (s * x[j]);
    }
}

/// One head's attention for `hs = 4·C`: scores four positions at a time, softmax, weighted sum
/// of values in registers (two positions at a time for small heads).
pub fn attend<const C: usize>(q: &[f32], k: &[f32], v: &[f32], stride: usize, att: &mut [f32], out: &mut [f32]) {
    scores::<C>(q, k, stride, att);
    softmax(att);
    weighted_sum::<C>(att, v, stride, out);
}

fn scores<const C: usize>(q: &[f32], k: &[f32], stride: usize, att: &mut [f32]) {
    let scale = ((4 * C) as f32).sqrt();
    let qv: [v128; C] = std::array::from_fn(|c| load(q, 4 * c));
    let one = |t: usize| {
        let mut s = splat(0.0);
        for (c, qc) in qv.iter().enumerate() {
            s = f32x4_add(s, f32x4_mul(load(k, t * stride + 4 * c), *qc));
        }
        s
    };
    let n = att.len();
    let mut t = 0;
    while t + 4 <= n {
        let a = [one(t), one(t + 1), one(t + 2), one(t + 3)];
        store(att, t, f32x4_div(sum4(a), splat(scale)));
        t += 4;
    }
    while t < n {
        att[t] = hsum(one(t)) / scale;
        t += 1;
    }
}

fn weighted_sum<const C: usize>(att: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
    let mut a = [splat(0.0); C];
    let mut b = [splat(0.0); C];
    let n = att.len();
    let mut t = 0;
    if C <= 4 {
        while t + 2 <= n {
            let (w0, w1) = (splat(att[t]), splat(att[t + 1]));
            for c in 0..C {
                a[c] = f32x4_add(a[c], f32x4_mul(w0, load(v, t * stride + 4 * c)));
                b[c] = f32x4_add(b[c], f32x4_mul(w1, load(v, (t + 1) * stride + 4 * c)));
            }
            t += 2;
        }
    }
    while t < n {
        let w0 = splat(att[t]);
        for (c, s) in a.iter_mut().enumerate() {
            *s = f32x4_add(*s, f32x4_mul(w0, load(v, t * stride + 4 * c)));
        }
        t += 1;
    }
    for c in 0..C {
        store(out, 4 * c, f32x4_add(a[c], b[c]));
    }
}
