//! AVX2+FMA kernels for `fast.rs`. Every function needs AVX2 and FMA: callers check first.

use std::arch::x86_64::*;

/// Rows shorter than this go eight at a time (their per-row reduction would dominate);
/// longer rows one after another.
const SHORT_ROW: usize = 256;

/// `out = W · x`. Long rows are read one after another, so the weights stream through memory
/// in order (measured here: the hardware prefetcher follows one sequential stream about twice
/// as fast as four interleaved rows); four accumulators hide the FMA latency.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matvec(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    assert!(w.len() >= out.len() * n);
    let mut i = 0;
    if n < SHORT_ROW {
        while i + 8 <= out.len() {
            _mm256_storeu_ps(out.as_mut_ptr().add(i), dot8(w.as_ptr().add(i * n), x.as_ptr(), n));
            i += 8;
        }
    }
    for (r, o) in out.iter_mut().enumerate().skip(i) {
        *o = dot(w.as_ptr().add(r * n), x.as_ptr(), n);
    }
}

/// Eight consecutive rows of length `n` (from `w`) times `x`, as one vector.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot8(w: *const f32, x: *const f32, n: usize) -> __m256 {
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut j = 0;
    while j + 8 <= n {
        let xv = _mm256_loadu_ps(x.add(j));
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(_mm256_loadu_ps(w.add(k * n + j)), xv, *a);
        }
        j += 8;
    }
    if j < n {
        // The last n % 8 columns through a lane mask (masked-off lanes read nothing).
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - j) as i32), lanes);
        let xv = _mm256_maskload_ps(x.add(j), mask);
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(_mm256_maskload_ps(w.add(k * n + j), mask), xv, *a);
        }
    }
    hsum8(&acc)
}

/// `Σ a[j]·b[j]` over `n` floats.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut j = 0;
    while j + 32 <= n {
        for (k, s) in acc.iter_mut().enumerate() {
            *s = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(j + 8 * k)), _mm256_loadu_ps(b.add(j + 8 * k)), *s);
        }
        j += 32;
    }
    while j + 8 <= n {
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(j)), _mm256_loadu_ps(b.add(j)), acc[0]);
        j += 8;
    }
    let mut s = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    while j < n {
        s += *a.add(j) * *b.add(j);
        j += 1;
    }
    s
}

#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}

/// The eight horizontal sums of `a[0..8]`, in order, as one vector.
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum8(a: &[__m256; 8]) -> __m256 {
    let h01 = _mm256_hadd_ps(a[0], a[1]);
    let h23 = _mm256_hadd_ps(a[2], a[3]);
    let h45 = _mm256_hadd_ps(a[4], a[5]);
    let h67 = _mm256_hadd_ps(a[6], a[7]);
    let lo = _mm256_hadd_ps(h01, h23);
    let hi = _mm256_hadd_ps(h45, h67);
    _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31))
}

/// `att[t] = q·k_t / sqrt(hs)` for `hs = 8·C`; key `t` starts at `k + t·stride`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn scores<const C: usize>(q: &[f32], k: *const f32, stride: usize, att: &mut [f32]) {
    let scale = ((8 * C) as f32).sqrt();
    let mut qv = [_mm256_setzero_ps(); C];
    for (c, v) in qv.iter_mut().enumerate() {
        *v = _mm256_loadu_ps(q.as_ptr().add(8 * c));
    }
    let n = att.len();
    let mut t = 0;
    // Eight positions at a time: eight products, one transposing reduction.
    while t + 8 <= n {
        let mut a = [_mm256_setzero_ps(); 8];
        for (p, s) in a.iter_mut().enumerate() {
            let kp = k.add((t + p) * stride);
            for (c, v) in qv.iter().enumerate() {
                *s = _mm256_fmadd_ps(_mm256_loadu_ps(kp.add(8 * c)), *v, *s);
            }
        }
        _mm256_storeu_ps(att.as_mut_ptr().add(t), _mm256_div_ps(hsum8(&a), _mm256_set1_ps(scale)));
        t += 8;
    }
    while t < n {
        let kp = k.add(t * stride);
        let mut s = _mm256_setzero_ps();
        for (c, v) in qv.iter().enumerate() {
            s = _mm256_fmadd_ps(_mm256_loadu_ps(kp.add(8 * c)), *v, s);
        }
        att[t] = hsum(s) / scale;
        t += 1;
    }
}

/// `out = Σ_t att[t]·v_t` for `hs = 8·C`; value `t` starts at `v + t·stride`. Small heads take
/// positions in pairs so two chains of FMAs run at once.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn weighted_sum<const C: usize>(att: &[f32], v: *const f32, stride: usize, out: &mut [f32]) {
    let mut a = [_mm256_setzero_ps(); C];
    let mut b = [_mm256_setzero_ps(); C];
    let n = att.len();
    let mut t = 0;
    if C <= 4 {
        while t + 2 <= n {
            let (w0, w1) = (_mm256_set1_ps(att[t]), _mm256_set1_ps(att[t + 1]));
            let (v0, v1) = (v.add(t * stride), v.add((t + 1) * stride));
            for c in 0..C {
                a[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v0.add(8 * c)), a[c]);
                b[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(v1.add(8 * c)), b[c]);
            }
            t += 2;
        }
    }
    while t < n {
        let w0 = _mm256_set1_ps(att[t]);
        let v0 = v.add(t * stride);
        for (c, s) in a.iter_mut().enumerate() {
            *s = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v0.add(8 * c)), *s);
        }
        t += 1;
    }
    for c in 0..C {
        _mm256_storeu_ps(out.as_mut_ptr().add(8 * c), _mm256_add_ps(a[c], b[c]));
    }
}

/// `e^x` per lane (Cephes' range reduction and degree-5 polynomial, ~1 ulp); inputs are
/// clamped to ±87.3 so the result stays a normal float.
#[target_feature(enable = "avx2,fma")]
unsafe fn exp(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3)), _mm256_set1_ps(87.3));
    let n = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
    );
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
    let bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    _mm256_mul_ps(y, _mm256_castsi256_ps(bits))
}

/// In-place softmax: max, `e^(x-max)` with their sum, then divide, as `ops::softmax`; returns the
/// max and the sum.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax(x: &mut [f32]) -> (f32, f32) {
    let n = x.len();
    let body = n - n % 8;
    let p = x.as_mut_ptr();
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    for j in (0..body).step_by(8) {
        m = _mm256_max_ps(m, _mm256_loadu_ps(p.add(j)));
    }
    let mut max = hmax(m);
    for &v in &x[body..] {
        max = max.max(v);
    }
    let (mv, mut sv) = (_mm256_set1_ps(max), _mm256_setzero_ps());
    for j in (0..body).step_by(8) {
        let e = exp(_mm256_sub_ps(_mm256_loadu_ps(p.add(j)), mv));
        _mm256_storeu_ps(p.add(j), e);
        sv = _mm256_add_ps(sv, e);
    }
    let mut sum = hsum(sv);
    for v in &mut x[body..] {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = _mm256_set1_ps(1.0 / sum);
    for j in (0..body).step_by(8) {
        _mm256_storeu_ps(p.add(j), _mm256_mul_ps(_mm256_loadu_ps(p.add(j)), inv));
    }
    for v in &mut x[body..] {
        *v /= sum;
    }
    (max, sum)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn hmax(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps(s, s, 1)))
}

/// SwiGLU in place: `h = silu(h) · g`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn swiglu(h: &mut [f32], g: &[f32]) {
    let n = h.len().min(g.len());
    let body = n - n % 8;
    let (hp, gp) = (h.as_mut_ptr(), g.as_ptr());
    let one = _mm256_set1_ps(1.0);
    for j in (0..body).step_by(8) {
        let a = _mm256_loadu_ps(hp.add(j));
        let e = exp(_mm256_sub_ps(_mm256_setzero_ps(), a));
        let s = _mm256_div_ps(a, _mm256_add_ps(one, e));
        _mm256_storeu_ps(hp.add(j), _mm256_mul_ps(s, _mm256_loadu_ps(gp.add(j))));
    }
    for j in body..n {
        h[j] = crate::cpu::ops::silu(h[j]) * g[j];
    }
}

/// `y += a·x` with a separate multiply and add, so each element rounds as the scalar loop.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let body = n - n % 8;
    let (yp, xp, av) = (y.as_mut_ptr(), x.as_ptr(), _mm256_set1_ps(a));
    for j in (0..body).step_by(8) {
        let p = _mm256_mul_ps(av, _mm256_loadu_ps(xp.add(j)));
        _mm256_storeu_ps(yp.add(j), _mm256_add_ps(_mm256_loadu_ps(yp.add(j)), p));
    }
    for j in body..n {
        y[j] += a * x[j];
    }
}

/// `dx += (s·dy) · W` for one row: 32 columns of `dx` stay in registers while the rows of `W`
/// add into them in order (separate multiply and add: equal to the scalar loop bit for bit).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matmul_dx(dx: &mut [f32], dy: &[f32], w: &[f32], n_in: usize, s: f32) {
    assert!(dx.len() >= n_in && w.len() >= dy.len() * n_in);
    let body = n_in - n_in % 32;
    let (dp, wp) = (dx.as_mut_ptr(), w.as_ptr());
    for j in (0..body).step_by(32) {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm256_loadu_ps(dp.add(j + 8 * k));
        }
        for (o, &g) in dy.iter().enumerate() {
            let g = _mm256_set1_ps(g * s);
            let row = wp.add(o * n_in + j);
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(g, _mm256_loadu_ps(row.add(8 * k))));
            }
        }
        for (k, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(dp.add(j + 8 * k), *a);
        }
    }
    if body < n_in {
        for (o, &g) in dy.iter().enumerate() {
            axpy(&mut dx[body..n_in], g * s, &w[o * n_in + body..(o + 1) * n_in]);
        }
    }
}

/// RMSNorm (`ops::rmsnorm`) with the sum of squares over four accumulators.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rmsnorm(o: &mut [f32], x: &[f32], g: &[f32], eps: f32) {
    let n = x.len();
    let mut ss = dot(x.as_ptr(), x.as_ptr(), n);
    ss /= n as f32;
    ss += eps;
    let s = 1.0 / ss.sqrt();
    let m = n.min(o.len()).min(g.len());
    let body = m - m % 8;
    let (op, xp, gp, sv) = (o.as_mut_ptr(), x.as_ptr(), g.as_ptr(), _mm256_set1_ps(s));
    for j in (0..body).step_by(8) {
        let v = _mm256_mul_ps(_mm256_loadu_ps(gp.add(j)), _mm256_mul_ps(sv, _mm256_loadu_ps(xp.add(j))));
        _mm256_storeu_ps(op.add(j), v);
    }
    for j in body..m {
        o[j] = g[j] * (s * x[j]);
    }
}

/// `out_a = W · x_a` and `out_b = W · x_b` for rows of at least `SHORT_ROW` floats, each weight
/// load used for both: every sum is `dot`'s, operation for operation (the same four accumulators,
/// the same remainder and tail), so each output equals `matvec`'s bit for bit.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matvec_pair(out_a: &mut [f32], out_b: &mut [f32], xa: &[f32], xb: &[f32], w: &[f32]) {
    let n = xa.len();
    assert!(n >= SHORT_ROW && xb.len() == n && out_b.len() == out_a.len() && w.len() >= out_a.len() * n);
    let (pa, pb) = (xa.as_ptr(), xb.as_ptr());
    for (r, (oa, ob)) in out_a.iter_mut().zip(out_b.iter_mut()).enumerate() {
        let row = w.as_ptr().add(r * n);
        let (mut a, mut b) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
        let mut j = 0;
        while j + 32 <= n {
            for k in 0..4 {
                let wv = _mm256_loadu_ps(row.add(j + 8 * k));
                a[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(pa.add(j + 8 * k)), a[k]);
                b[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(pb.add(j + 8 * k)), b[k]);
            }
            j += 32;
        }
        while j + 8 <= n {
            let wv = _mm256_loadu_ps(row.add(j));
            a[0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(pa.add(j)), a[0]);
            b[0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(pb.add(j)), b[0]);
            j += 8;
        }
        let mut sa = hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
        let mut sb = hsum(_mm256_add_ps(_mm256_add_ps(b[0], b[1]), _mm256_add_ps(b[2], b[3])));
        while j < n {
            sa += *row.add(j) * *pa.add(j);
            sb += *row.add(j) * *pb.add(j);
            j += 1;
        }
        *oa = sa;
        *ob = sb;
    }
}

/// `outs[s] = W · xs[s]` for four vectors, rows of at least `SHORT_ROW` floats: two rows times
/// four vectors at a time, so each weight load serves four FMAs and each activation load two
/// (`matvec_pair` does one FMA a load and a half). Every sum is still `dot`'s, operation for
/// operation: `dot`'s four accumulators (accumulator `k` takes the eight columns at `32c + 8k`)
/// run one after another here instead of side by side, each over the same columns in the same
/// order, and are then added as `dot` adds them, so each output equals `matvec`'s bit for bit.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matvec_quad(mut outs: [&mut [f32]; 4], xs: [&[f32]; 4], w: &[f32]) {
    let (n, rows) = (xs[0].len(), outs[0].len());
    assert!(n >= SHORT_ROW && xs.iter().all(|x| x.len() == n) && outs.iter().all(|o| o.len() == rows) && w.len() >= rows * n);
    let x = xs.map(|x| x.as_ptr());
    let put = |outs: &mut [&mut [f32]; 4], r: usize, sums: &[[f32; 4]]| {
        for (i, row) in sums.iter().enumerate() {
            for (o, &s) in outs.iter_mut().zip(row) {
                o[r + i] = s;
            }
        }
    };
    let mut r = 0;
    while r + 2 <= rows {
        put(&mut outs, r, &rows_by_four::<2>(w.as_ptr().add(r * n), n, x));
        r += 2;
    }
    if r < rows {
        put(&mut outs, r, &rows_by_four::<1>(w.as_ptr().add(r * n), n, x));
    }
}

/// How far ahead (in rows) `rows_by_four` asks for weights.
const PREFETCH_ROWS: usize = 4;

/// `R` consecutive rows (from `w`, each `n` long) times four vectors: `[row][vector]`, each sum
/// as `dot` forms it (see `matvec_quad`).
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_by_four<const R: usize>(w: *const f32, n: usize, x: [*const f32; 4]) -> [[f32; 4]; R] {
    let full = n - n % 32;
    // parts[row][vector][k]: accumulator k of that row's `dot` with that vector.
    let mut parts = [[[_mm256_setzero_ps(); 4]; 4]; R];
    for k in 0..4 {
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        // Accumulator 0 also takes the eight-column blocks after the last 32, as in `dot`.
        let end = if k == 0 { n - n % 8 } else { full };
        let mut j = 8 * k;
        while j < end {
            if k == 0 {
                // Ask for the rows PREFETCH_ROWS ahead while these are summed: with four FMAs a
                // weight load the hardware prefetcher alone fell behind (measured: about half the
                // single-vector kernel's bytes/s, the loads stalling).
                for i in 0..R {
                    let ahead = w.wrapping_add((i + PREFETCH_ROWS) * n + j);
                    _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(16) as *const i8);
                }
            }
            let xv = x.map(|p| _mm256_loadu_ps(p.add(j)));
            for (i, a) in acc.iter_mut().enumerate() {
                let wv = _mm256_loadu_ps(w.add(i * n + j));
                for (s, v) in a.iter_mut().enumerate() {
                    *v = _mm256_fmadd_ps(wv, xv[s], *v);
                }
            }
            j += if j < full { 32 } else { 8 };
        }
        for (p, a) in parts.iter_mut().zip(acc) {
            for (ps, v) in p.iter_mut().zip(a) {
                ps[k] = v;
            }
        }
    }
    let mut sums = [[0f32; 4]; R];
    for (i, (sum, p)) in sums.iter_mut().zip(&parts).enumerate() {
        for (s, (o, a)) in sum.iter_mut().zip(p).enumerate() {
            *o = hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
            for j in n - n % 8..n {
                *o += *w.add(i * n + j) * *x[s].add(j);
            }
        }
    }
    sums
}

/// `fast::attend_bwd` for a head of `8·C` floats, operation for operation (each gradient equals
/// the generic loop's bit for bit): `dout`, `q` and `dq` stay in registers across the keys
/// instead of going through a `dot` or `axpy` call per key and head (stories260K's heads are
/// eight floats, where those calls cost more than their arithmetic).
/// Key `t`'s `k`, `v`, `dk` and `dv` start at `t·stride`; every pointer holds `att.len()` keys.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn attend_bwd<const C: usize>(
    dq: &mut [f32],
    dk: *mut f32,
    dv: *mut f32,
    stride: usize,
    dout: &[f32],
    att: &[f32],
    q: &[f32],
    k: *const f32,
    v: *const f32,
    ds: &mut [f32],
) {
    let load = |p: *const f32| -> [__m256; C] { std::array::from_fn(|c| _mm256_loadu_ps(p.add(8 * c))) };
    let (dov, qv) = (load(dout.as_ptr()), load(q.as_ptr()));
    let scale = ((8 * C) as f32).sqrt();
    let mut sum = 0f32;
    for (t, (&p, d)) in att.iter().zip(ds.iter_mut()).enumerate() {
        let at = t * stride;
        // `dot(dout, v_t)`: chunk 4m + i into accumulator i, chunks after the last four into 0.
        let mut acc = [_mm256_setzero_ps(); 4];
        for (c, o) in dov.iter().enumerate() {
            let i = if c < C / 4 * 4 { c % 4 } else { 0 };
            acc[i] = _mm256_fmadd_ps(*o, _mm256_loadu_ps(v.add(at + 8 * c)), acc[i]);
        }
        *d = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        let pv = _mm256_set1_ps(p);
        for (c, o) in dov.iter().enumerate() {
            let y = dv.add(at + 8 * c);
            _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(pv, *o)));
        }
        sum += p * *d;
    }
    let mut dqv = load(dq.as_ptr());
    for (t, (&p, &d)) in att.iter().zip(ds.iter()).enumerate() {
        let at = t * stride;
        let g = _mm256_set1_ps(p * (d - sum) / scale);
        for (c, (a, qc)) in dqv.iter_mut().zip(&qv).enumerate() {
            *a = _mm256_add_ps(*a, _mm256_mul_ps(g, _mm256_loadu_ps(k.add(at + 8 * c))));
            let y = dk.add(at + 8 * c);
            _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_mul_ps(g, *qc)));
        }
    }
    for (c, a) in dqv.iter().enumerate() {
        _mm256_storeu_ps(dq.as_mut_ptr().add(8 * c), *a);
    }
}
