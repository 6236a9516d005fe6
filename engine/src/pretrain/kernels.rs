//! The kernels full training adds to the LoRA trainer's (`lora::kernels`): weight gradients on
//! the fast path, the RMSNorm gains' and the embedding lookup's gradients, the loss with its
//! z-loss and logit statistics, and the largest attention logit. Generic over `Real` like those;
//! `Kernels::Fast` takes `cpu::fast`'s SIMD where it has one.

use crate::cpu::{fast, Kernels};
use crate::lora::kernels::{self as k, AttnShape, IGNORE};
use crate::lora::Real;

/// Rows of `dW` one task owns in `matmul_dw`: with `in ≤ 256` they stay in L1 while the batch
/// rows stream past.
const DW_BLOCK: usize = 16;

/// `dw[out,in] += dy[N,out]ᵀ · x[N,in]`. With at least `gemm::MIN_ROWS` batch rows through
/// `gemm` (cache-blocked); with fewer, each element sums the batch rows in order, as the generic
/// `lora::kernels::matmul_dw` does, bit for bit (`fast::axpy` rounds as `d + g·x`).
pub fn matmul_dw<F: Real>(kn: Kernels, dw: &mut [F], dy: &[F], x: &[F], n_in: usize) {
    if kn == Kernels::Fast {
        if let (Some(dw), Some(dy), Some(x)) = (F::f32s_mut(dw), F::f32s(dy), F::f32s(x)) {
            return matmul_dw_f32(dw, dy, x, n_in);
        }
    }
    k::matmul_dw(dw, dy, x, n_in, F::ONE)
}

fn matmul_dw_f32(dw: &mut [f32], dy: &[f32], x: &[f32], n_in: usize) {
    if n_in > 0 && x.len() / n_in >= k::gemm::MIN_ROWS {
        return k::gemm::dyt_x(dw, dy, x, n_in, 1.0);
    }
    let n_out = dw.len() / n_in;
    let block = |(b, rows): (usize, &mut [f32])| {
        let o0 = b * DW_BLOCK;
        for (dyr, xr) in dy.chunks_exact(n_out).zip(x.chunks_exact(n_in)) {
            for (j, row) in rows.chunks_exact_mut(n_in).enumerate() {
                let g = dyr[o0 + j];
                if g != 0.0 {
                    fast::axpy(row, g, xr);
                }
            }
        }
    };
    match k::parallel(dw.len() * (dy.len() / n_out.max(1))) {
        Some(p) => crate::pool::for_chunks(&*p, dw, DW_BLOCK * n_in, |b, rows| block((b, rows))),
        None => dw.chunks_mut(DW_BLOCK * n_in).enumerate().for_each(block),
    }
}

/// The gain's gradient of `y = g ⊙ x · rs` per row of `dg.len()`: `dg_j += Σ_rows dy_j · (rs·x_j)`
/// (`eps`: the model's RMSNorm epsilon).
pub fn rmsnorm_bwd_gain<F: Real>(dg: &mut [F], x: &[F], dy: &[F], eps: F) {
    let d = dg.len();
    for (xr, dyr) in x.chunks_exact(d).zip(dy.chunks_exact(d)) {
        let s = k::inv_rms(xr, eps);
        for ((o, &xv), &g) in dg.iter_mut().zip(xr).zip(dyr) {
            *o += g * (s * xv);
        }
    }
}

/// The embedding lookup's gradient: row `tokens[n]` of `demb [vocab, d]` gains row `n` of `dx`.
pub fn embedding_bwd<F: Real>(demb: &mut [F], dx: &[F], tokens: &[u32], d: usize) {
    for (row, &t) in dx.chunks_exact(d).zip(tokens) {
        for (o, &g) in demb[t as usize * d..][..d].iter_mut().zip(row) {
            *o += g;
        }
    }
}

/// What the loss pass measured over the rows that have a target.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossStats {
    /// Rows counted.
    pub rows: usize,
    /// Σ cross-entropy, Σ logsumexp, Σ logsumexp².
    pub ce_sum: f64,
    pub lse_sum: f64,
    pub lse_sq_sum: f64,
    /// Σ and max of every logit of those rows.
    pub logit_sum: f64,
    pub logit_max: f64,
}

/// The loss statistics of `logits [N, vocab]` against `targets` (`IGNORE` skips a row); each
/// row's logsumexp goes to `lse[row]`. The cross-entropy is `lora::kernels::cross_entropy`'s.
pub fn loss_stats<F: Real>(logits: &[F], targets: &[u32], vocab: usize, lse: &mut [F]) -> LossStats {
    let mut s = LossStats { logit_max: f64::NEG_INFINITY, ..Default::default() };
    for ((l, &t), out) in logits.chunks_exact(vocab).zip(targets).zip(lse.iter_mut()) {
        if t == IGNORE {
            *out = F::ZERO;
            continue;
        }
        let max = l.iter().fold(l[0], |m, &v| if v > m { v } else { m });
        let mut sum = F::ZERO;
        let mut total = 0f64;
        for &v in l {
            sum += (v - max).exp();
            total += v.to_f64();
        }
        let z = sum.ln() + max;
        *out = z;
        s.rows += 1;
        s.ce_sum += (z - l[t as usize]).to_f64();
        s.lse_sum += z.to_f64();
        s.lse_sq_sum += z.to_f64() * z.to_f64();
        s.logit_sum += total;
        s.logit_max = s.logit_max.max(max.to_f64());
    }
    s
}

/// `∂/∂logits` of `scale · Σ_rows (ce + coef · lse²)`, in place: `scale · ((1 + 2·coef·lse) ·
/// softmax(l) − onehot(target))`, zero on ignored rows. With `coef` 0 this is exactly the LoRA
/// trainer's `cross_entropy_bwd`.
pub fn loss_bwd<F: Real>(kn: Kernels, logits: &mut [F], targets: &[u32], vocab: usize, scale: F, coef: f64, lse: &[F]) {
    if coef == 0.0 {
        return k::fast::cross_entropy_bwd(kn, logits, targets, vocab, scale);
    }
    let two_c = F::of(2.0 * coef);
    for ((l, &t), &z) in logits.chunks_exact_mut(vocab).zip(targets).zip(lse) {
        if t == IGNORE {
            l.fill(F::ZERO);
            continue;
        }
        softmax(kn, l);
        let w = F::ONE + two_c * z;
        for v in l.iter_mut() {
            *v *= w;
        }
        l[t as usize] -= F::ONE;
        for v in l.iter_mut() {
            *v *= scale;
        }
    }
}

fn softmax<F: Real>(kn: Kernels, x: &mut [F]) {
    if kn == Kernels::Fast {
        if let Some(x) = F::f32s_mut(x) {
            return fast::softmax(x);
        }
    }
    k::softmax(x)
}

/// The largest pre-softmax attention logit `q·k / √hs` over every batch row, head and causal
/// pair, from post-RoPE `q [N, n_heads·head_size]` and `k [N, kv_dim]`.
pub fn attention_logit_max<F: Real>(kn: Kernels, q: &[F], kk: &[F], s: AttnShape) -> f64 {
    if kn == Kernels::Fast {
        if let (Some(q), Some(kk)) = (F::f32s(q), F::f32s(kk)) {
            return logit_max_by(q, kk, s, fast::dot) as f64;
        }
    }
    logit_max_by(q, kk, s, |a, b| a.iter().zip(b).fold(F::ZERO, |acc, (&p, &q)| acc + p * q)).to_f64()
}

fn logit_max_by<F: Real>(q: &[F], k: &[F], s: AttnShape, dot: impl Fn(&[F], &[F]) -> F) -> F {
    let (dim, kv, hs, seq) = (s.dim(), s.kv_dim(), s.head_size, s.seq);
    let kv_mul = s.n_heads / s.n_kv_heads;
    let scale = F::of(hs as f64).sqrt();
    let mut best = F::of(f64::NEG_INFINITY);
    for b in 0..s.batch {
        for t in 0..seq {
            let row = b * seq + t;
            for h in 0..s.n_heads {
                let qh = &q[row * dim + h * hs..][..hs];
                let ko = (h / kv_mul) * hs;
                for t2 in 0..=t {
                    let v = dot(qh, &k[(b * seq + t2) * kv + ko..][..hs]) / scale;
                    if v > best {
                        best = v;
                    }
                }
            }
        }
    }
    best
}
