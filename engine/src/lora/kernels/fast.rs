//! The f32 training path on `cpu::fast`'s SIMD kernels, chosen by `Kernels`: with
//! `Kernels::Reference` (and always for f64) each function is the generic kernel beside it,
//! which stays the reference these are tested against. Every output element is computed by one
//! thread in a fixed order, so results do not depend on the thread count. Products of at least
//! `gemm::MIN_ROWS` rows go through `gemm` (cache-blocked); fewer rows, through `cpu::fast`.

use super::{gemm, AttnShape, IGNORE};
use crate::cpu::{fast, Kernels};
use crate::lora::real::Real;

/// `y[N,out] = x[N,in] · wᵀ` (`super::matmul`).
pub fn matmul<F: Real>(k: Kernels, y: &mut [F], x: &[F], w: &[F], n_in: usize) {
    if k == Kernels::Fast {
        if let (Some(y), Some(x), Some(w)) = (F::f32s_mut(y), F::f32s(x), F::f32s(w)) {
            if n_in > 0 && x.len() / n_in >= gemm::MIN_ROWS {
                return gemm::x_wt(y, x, w, n_in);
            }
            return fast::matmat(y, x, w, n_in);
        }
    }
    super::matmul(y, x, w, n_in)
}

/// `dx[N,in] += (s · dy[N,out]) · w` (`super::matmul_dx`).
pub fn matmul_dx<F: Real>(k: Kernels, dx: &mut [F], dy: &[F], w: &[F], n_in: usize, s: F) {
    if k == Kernels::Fast {
        if let (Some(dx), Some(dy), Some(w), Some(&[s])) = (F::f32s_mut(dx), F::f32s(dy), F::f32s(w), F::f32s(&[s])) {
            if n_in > 0 && dx.len() / n_in >= gemm::MIN_ROWS {
                return gemm::dy_w(dx, dy, w, n_in, s);
            }
            return fast::matmul_dx(dx, dy, w, n_in, s);
        }
    }
    super::matmul_dx(dx, dy, w, n_in, s)
}

/// RMSNorm per row of `g.len()` (`super::rmsnorm_eps`).
pub fn rmsnorm<F: Real>(k: Kernels, y: &mut [F], x: &[F], g: &[F], eps: F) {
    if k == Kernels::Fast {
        if let (Some(y), Some(x), Some(g), Some(&[e])) = (F::f32s_mut(y), F::f32s(x), F::f32s(g), F::f32s(&[eps])) {
            let d = g.len();
            for (yr, xr) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                fast::rmsnorm_eps(yr, xr, g, e);
            }
            return;
        }
    }
    super::rmsnorm_eps(y, x, g, eps)
}

/// `g = silu(h1) ⊙ h3` (`super::swiglu`).
pub fn swiglu<F: Real>(k: Kernels, g: &mut [F], h1: &[F], h3: &[F]) {
    if k == Kernels::Fast {
        if let (Some(g), Some(h1), Some(h3)) = (F::f32s_mut(g), F::f32s(h1), F::f32s(h3)) {
            g.copy_from_slice(h1);
            return fast::swiglu(g, h3);
        }
    }
    super::swiglu(g, h1, h3)
}

/// Causal attention over the batch (`super::attention`), one `fast::attend` per query and head.
pub fn attention<F: Real>(k: Kernels, out: &mut [F], probs: &mut [F], q: &[F], kk: &[F], v: &[F], s: AttnShape) {
    if k == Kernels::Fast {
        if let (Some(out), Some(probs), Some(q), Some(kk), Some(v)) =
            (F::f32s_mut(out), F::f32s_mut(probs), F::f32s(q), F::f32s(kk), F::f32s(v))
        {
            return attention_f32(out, probs, q, kk, v, s);
        }
    }
    super::attention(out, probs, q, kk, v, s)
}

fn attention_f32(out: &mut [f32], probs: &mut [f32], q: &[f32], k: &[f32], v: &[f32], s: AttnShape) {
    if let Some(pool) = sequence_pool(s) {
        return attention_by_sequence(&*pool, out, probs, q, k, v, s);
    }
    let (dim, kv, hs, seq) = (s.dim(), s.kv_dim(), s.head_size, s.seq);
    let kv_mul = s.n_heads / s.n_kv_heads;
    for b in 0..s.batch {
        let cache = b * seq * kv;
        for t in 0..seq {
            let row = b * seq + t;
            for h in 0..s.n_heads {
                let (qo, ko) = (h * hs, (h / kv_mul) * hs);
                let p = &mut probs[((b * s.n_heads + h) * seq + t) * seq..][..seq];
                let (qh, oh) = (&q[row * dim + qo..][..hs], &mut out[row * dim + qo..][..hs]);
                fast::attend(qh, &k[cache + ko..], &v[cache + ko..], kv, &mut p[..=t], oh);
                p[t + 1..].fill(0.0);
            }
        }
    }
}

/// Adds attention's gradients into `dq`, `dk`, `dv` (`super::attention_bwd`).
#[allow(clippy::too_many_arguments)]
pub fn attention_bwd<F: Real>(
    k: Kernels,
    dq: &mut [F],
    dk: &mut [F],
    dv: &mut [F],
    dout: &[F],
    probs: &[F],
    q: &[F],
    kk: &[F],
    v: &[F],
    s: AttnShape,
) {
    if k == Kernels::Fast {
        let grads = (F::f32s_mut(dq), F::f32s_mut(dk), F::f32s_mut(dv));
        let inputs = (F::f32s(dout), F::f32s(probs), F::f32s(q), F::f32s(kk), F::f32s(v));
        if let ((Some(dq), Some(dk), Some(dv)), (Some(dout), Some(probs), Some(q), Some(kk), Some(v))) = (grads, inputs) {
            return attention_bwd_f32([dq, dk, dv], [dout, probs, q, kk, v], s, &mut vec![0f32; s.batch * s.seq]);
        }
    }
    super::attention_bwd(dq, dk, dv, dout, probs, q, kk, v, s)
}

/// `attention_bwd` with the caller's scratch `ds` (at least `seq` long) on the fast path, so it
/// allocates nothing there.
#[allow(clippy::too_many_arguments)]
pub fn attention_bwd_into<F: Real>(
    k: Kernels,
    dq: &mut [F],
    dk: &mut [F],
    dv: &mut [F],
    dout: &[F],
    probs: &[F],
    q: &[F],
    kk: &[F],
    v: &[F],
    s: AttnShape,
    ds: &mut [F],
) {
    if k == Kernels::Fast {
        let grads = (F::f32s_mut(dq), F::f32s_mut(dk), F::f32s_mut(dv), F::f32s_mut(ds));
        let inputs = (F::f32s(dout), F::f32s(probs), F::f32s(q), F::f32s(kk), F::f32s(v));
        if let ((Some(dq), Some(dk), Some(dv), Some(ds)), (Some(dout), Some(probs), Some(q), Some(kk), Some(v))) = (grads, inputs)
        {
            return attention_bwd_f32([dq, dk, dv], [dout, probs, q, kk, v], s, ds);
        }
    }
    super::attention_bwd_with(dq, dk, dv, dout, probs, q, kk, v, s, ds)
}

fn attention_bwd_f32([dq, dk, dv]: [&mut [f32]; 3], [dout, probs, q, k, v]: [&[f32]; 5], s: AttnShape, ds: &mut [f32]) {
    if let Some(pool) = sequence_pool(s) {
        return attention_bwd_by_sequence(&*pool, [dq, dk, dv], [dout, probs, q, k, v], s, ds);
    }
    let (dim, kv, hs, seq) = (s.dim(), s.kv_dim(), s.head_size, s.seq);
    let kv_mul = s.n_heads / s.n_kv_heads;
    for b in 0..s.batch {
        let cache = b * seq * kv;
        for t in 0..seq {
            let row = b * seq + t;
            for h in 0..s.n_heads {
                let (qo, ko) = (h * hs, (h / kv_mul) * hs);
                let p = &probs[((b * s.n_heads + h) * seq + t) * seq..][..=t];
                let (qh, g) = (&q[row * dim + qo..][..hs], &dout[row * dim + qo..][..hs]);
                let dqh = &mut dq[row * dim + qo..][..hs];
                let (dkb, dvb) = (&mut dk[cache + ko..], &mut dv[cache + ko..]);
                fast::attend_bwd(dqh, dkb, dvb, kv, g, p, qh, &k[cache + ko..], &v[cache + ko..], &mut ds[..=t]);
            }
        }
    }
}

// On several threads, attention splits the batch's sequences over the pool: each sequence's rows
// of the outputs (and its K/V cache's gradients) belong to it alone, and each is computed as on
// one thread, so the result is the same bit for bit. One thread keeps the plain loops above
// (splitting there measured slower in Chromium, cause not found).

/// The pool to split the batch's sequences over: with several threads, several sequences and
/// enough work.
fn sequence_pool(s: AttnShape) -> Option<std::sync::Arc<dyn crate::pool::Pool>> {
    super::linear::parallel(s.batch * s.n_heads * s.seq * s.seq * s.head_size).filter(|_| s.batch > 1)
}

/// Sequence `b`'s `seq` rows of `width` in `x`.
fn seq_rows(x: &[f32], b: usize, seq: usize, width: usize) -> &[f32] {
    &x[b * seq * width..][..seq * width]
}

fn attention_by_sequence(
    pool: &dyn crate::pool::Pool,
    out: &mut [f32],
    probs: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    s: AttnShape,
) {
    let (dim, kv, hs, seq) = (s.dim(), s.kv_dim(), s.head_size, s.seq);
    let kv_mul = s.n_heads / s.n_kv_heads;
    let sizes = [seq * dim, s.n_heads * seq * seq];
    crate::pool::for_zipped_chunks(pool, [out, probs], sizes, |b, [out, probs]| {
        let (q, k, v) = (seq_rows(q, b, seq, dim), seq_rows(k, b, seq, kv), seq_rows(v, b, seq, kv));
        for t in 0..seq {
            for h in 0..s.n_heads {
                let (qo, ko) = (h * hs, (h / kv_mul) * hs);
                let p = &mut probs[(h * seq + t) * seq..][..seq];
                let (qh, oh) = (&q[t * dim + qo..][..hs], &mut out[t * dim + qo..][..hs]);
                fast::attend(qh, &k[ko..], &v[ko..], kv, &mut p[..=t], oh);
                p[t + 1..].fill(0.0);
            }
        }
    });
}

/// `ds`: scratch of at least `batch · seq` (a row per sequence; shorter: each task allocates its own).
fn attention_bwd_by_sequence(
    pool: &dyn crate::pool::Pool,
    [dq, dk, dv]: [&mut [f32]; 3],
    [dout, probs, q, k, v]: [&[f32]; 5],
    s: AttnShape,
    ds: &mut [f32],
) {
    let (dim, kv, hs, seq) = (s.dim(), s.kv_dim(), s.head_size, s.seq);
    let kv_mul = s.n_heads / s.n_kv_heads;
    let one = |b: usize, [dq, dk, dv, ds]: [&mut [f32]; 4]| {
        let (dout, q) = (seq_rows(dout, b, seq, dim), seq_rows(q, b, seq, dim));
        let (k, v, probs) = (seq_rows(k, b, seq, kv), seq_rows(v, b, seq, kv), seq_rows(probs, b, seq, s.n_heads * seq));
        for t in 0..seq {
            for h in 0..s.n_heads {
                let (qo, ko) = (h * hs, (h / kv_mul) * hs);
                let p = &probs[(h * seq + t) * seq..][..=t];
                let (qh, g, dqh) = (&q[t * dim + qo..][..hs], &dout[t * dim + qo..][..hs], &mut dq[t * dim + qo..][..hs]);
                fast::attend_bwd(dqh, &mut dk[ko..], &mut dv[ko..], kv, g, p, qh, &k[ko..], &v[ko..], &mut ds[..=t]);
            }
        }
    };
    let sizes = [seq * dim, seq * kv, seq * kv];
    if ds.len() >= s.batch * seq {
        let ds = &mut ds[..s.batch * seq];
        return crate::pool::for_zipped_chunks(pool, [dq, dk, dv, ds], [sizes[0], sizes[1], sizes[2], seq], one);
    }
    crate::pool::for_zipped_chunks(pool, [dq, dk, dv], sizes, |b, [dq, dk, dv]| one(b, [dq, dk, dv, &mut vec![0f32; seq]]));
}

/// `∂loss/∂logits` in place (`super::cross_entropy_bwd`), with `fast::softmax`.
pub fn cross_entropy_bwd<F: Real>(k: Kernels, logits: &mut [F], targets: &[u32], vocab: usize, scale: F) {
    if k == Kernels::Fast {
        if let (Some(logits), Some(&[scale])) = (F::f32s_mut(logits), F::f32s(&[scale])) {
            rows_f32(logits, targets, vocab, Some(scale));
            return;
        }
    }
    super::cross_entropy_bwd(logits, targets, vocab, scale)
}

/// The summed loss and the rows counted (`super::cross_entropy`), with the logits as scratch (on
/// the fast path they become their softmax): each row's logsumexp is `max + ln(sum)` of its
/// vectorised softmax, where the generic loss takes a scalar `exp` a logit.
pub fn cross_entropy<F: Real>(k: Kernels, logits: &mut [F], targets: &[u32], vocab: usize) -> (f64, usize) {
    if k == Kernels::Fast {
        if let Some(logits) = F::f32s_mut(logits) {
            return rows_f32(logits, targets, vocab, None);
        }
    }
    super::cross_entropy(logits, targets, vocab)
}

/// The summed loss and the rows counted (`super::cross_entropy`), then `∂(mean loss)/∂logits` in
/// place. On the fast path in one pass: the loss is the max and sum of the gradient's softmax (the
/// loss's own scalar `exp` was about a tenth of a one-thread s15m LoRA step in wasm).
pub fn cross_entropy_and_bwd<F: Real>(k: Kernels, logits: &mut [F], targets: &[u32], vocab: usize) -> (f64, usize) {
    let count = targets.iter().filter(|&&t| t != IGNORE).count();
    let scale = F::of(1.0 / count as f64);
    if k == Kernels::Fast {
        if let (Some(logits), Some(&[scale])) = (F::f32s_mut(logits), F::f32s(&[scale])) {
            return rows_f32(logits, targets, vocab, Some(scale));
        }
    }
    let loss = super::cross_entropy(logits, targets, vocab);
    super::cross_entropy_bwd(logits, targets, vocab, scale);
    loss
}

/// Each row's softmax in place, turned into its gradient `scale · (softmax − onehot)` when `grad`
/// gives the scale (ignored rows zeroed); returns the summed loss `logsumexp − l[target]` and the
/// rows counted, summed in row order whatever the threads.
fn rows_f32(logits: &mut [f32], targets: &[u32], vocab: usize, grad: Option<f32>) -> (f64, usize) {
    let row = |l: &mut [f32], t: u32, loss: &mut f64| {
        if t == IGNORE {
            return l.fill(0.0);
        }
        let target = l[t as usize];
        let (max, sum) = fast::softmax_stats(l);
        // As `loss::row_loss`, in f32.
        *loss = (sum.ln() + max - target) as f64;
        if let Some(scale) = grad {
            l[t as usize] -= 1.0;
            for v in l.iter_mut() {
                *v *= scale;
            }
        }
    };
    let mut losses = vec![0.0; targets.len()];
    match super::linear::parallel(logits.len()) {
        Some(p) => crate::pool::for_chunks2(&*p, logits, vocab, &mut losses, 1, |i, l, loss| row(l, targets[i], &mut loss[0])),
        None => logits.chunks_exact_mut(vocab).zip(targets).zip(&mut losses).for_each(|((l, &t), loss)| row(l, t, loss)),
    }
    let counted = losses.iter().zip(targets).filter(|(_, &t)| t != IGNORE);
    counted.fold((0.0, 0), |(sum, n), (l, _)| (sum + l, n + 1))
}
