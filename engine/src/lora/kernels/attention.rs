//! Causal multi-head attention with grouped K/V heads over a batch, forward and backward.

use super::pointwise::softmax;
use crate::lora::real::Real;

/// The sizes attention needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnShape {
    pub batch: usize,
    pub seq: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_size: usize,
}

impl AttnShape {
    pub fn dim(&self) -> usize {
        self.n_heads * self.head_size
    }
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_size
    }
    /// Length of the probabilities buffer `[batch, n_heads, seq, seq]`.
    pub fn probs_len(&self) -> usize {
        self.batch * self.n_heads * self.seq * self.seq
    }
    /// Offset of query `h`'s slice in a `q` row and of its K/V head's slice in a `k`/`v` row.
    fn offsets(&self, h: usize) -> (usize, usize) {
        let kv_mul = self.n_heads / self.n_kv_heads;
        (h * self.head_size, (h / kv_mul) * self.head_size)
    }
    fn probs_row(&self, b: usize, h: usize, t: usize) -> usize {
        ((b * self.n_heads + h) * self.seq + t) * self.seq
    }
}

/// `out[N,dim]` and `probs[batch,heads,seq,seq]` (zeros above the diagonal) from post-RoPE
/// `q[N,dim]`, `k[N,kv_dim]` and `v[N,kv_dim]`, in the operation order of `cpu::forward`.
pub fn attention<F: Real>(out: &mut [F], probs: &mut [F], q: &[F], k: &[F], v: &[F], s: AttnShape) {
    let (dim, kv, hs, seq) = (s.dim(), s.kv_dim(), s.head_size, s.seq);
    let scale = F::of(hs as f64).sqrt();
    for b in 0..s.batch {
        for t in 0..seq {
            let row = b * seq + t;
            for h in 0..s.n_heads {
                let (qo, ko) = s.offsets(h);
                let qh = &q[row * dim + qo..][..hs];
                let p = &mut probs[s.probs_row(b, h, t)..][..seq];
                for (t2, pv) in p[..=t].iter_mut().enumerate() {
                    let kh = &k[(b * seq + t2) * kv + ko..][..hs];
                    let mut score = F::ZERO;
                    for i in 0..hs {
                        score += qh[i] * kh[i];
                    }
                    *pv = score / scale;
                }
                softmax(&mut p[..=t]);
                p[t + 1..].fill(F::ZERO);
                let oh = &mut out[row * dim + qo..][..hs];
                oh.fill(F::ZERO);
                for (t2, &a) in p[..=t].iter().enumerate() {
                    let vh = &v[(b * seq + t2) * kv + ko..][..hs];
                    for i in 0..hs {
                        oh[i] += a * vh[i];
                    }
                }
            }
        }
    }
}

/// Adds the gradients of `attention` w.r.t. (post-RoPE) `q`, `k`, `v` into `dq`, `dk`, `dv`,
/// given `dout` and the forward's `probs`. With `ds = p ⊙ (dp − Σ p·dp)`, `dp = dout·vᵀ`:
/// `dq = ds·k / √hs`, `dk = dsᵀ·q / √hs`, `dv = pᵀ·dout`.
#[allow(clippy::too_many_arguments)]
pub fn attention_bwd<F: Real>(
    dq: &mut [F],
    dk: &mut [F],
    dv: &mut [F],
    dout: &[F],
    probs: &[F],
    q: &[F],
    k: &[F],
    v: &[F],
    s: AttnShape,
) {
    attention_bwd_with(dq, dk, dv, dout, probs, q, k, v, s, &mut vec![F::ZERO; s.seq])
}

/// `attention_bwd` with the caller's scratch `ds` (at least `seq` long).
#[allow(clippy::too_many_arguments)]
pub fn attention_bwd_with<F: Real>(
    dq: &mut [F],
    dk: &mut [F],
    dv: &mut [F],
    dout: &[F],
    probs: &[F],
    q: &[F],
    k: &[F],
    v: &[F],
    s: AttnShape,
    ds: &mut [F],
) {
    let (dim, kv, hs, seq) = (s.dim(), s.kv_dim(), s.head_size, s.seq);
    let scale = F::of(hs as f64).sqrt();
    for b in 0..s.batch {
        for t in 0..seq {
            let row = b * seq + t;
            for h in 0..s.n_heads {
                let (qo, ko) = s.offsets(h);
                let p = &probs[s.probs_row(b, h, t)..][..=t];
                let g = &dout[row * dim + qo..][..hs];
                // dp and dv.
                let mut dot = F::ZERO;
                for (t2, &pv) in p.iter().enumerate() {
                    let at = (b * seq + t2) * kv + ko;
                    let mut dp = F::ZERO;
                    for i in 0..hs {
                        dp += g[i] * v[at + i];
                        dv[at + i] += pv * g[i];
                    }
                    ds[t2] = dp;
                    dot += pv * dp;
                }
                // Softmax backward, then the scores' gradients into q and k.
                let qh = &q[row * dim + qo..][..hs];
                for (t2, &pv) in p.iter().enumerate() {
                    let d = pv * (ds[t2] - dot) / scale;
                    let at = (b * seq + t2) * kv + ko;
                    for i in 0..hs {
                        dq[row * dim + qo + i] += d * k[at + i];
                        dk[at + i] += d * qh[i];
                    }
                }
            }
        }
    }
}
