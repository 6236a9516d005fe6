//! The Hugging Face row layout of q and k: HF's `q_proj`/`k_proj` are llama2.c's `wq`/`wk` with
//! the rows of every head permuted (llama2.c's RoPE turns row pairs (2j, 2j+1), HF's
//! `rotate_half` pairs j with j + hs/2): HF row `c·hs/2 + j` of a head is llama2.c row `2j + c`.

use super::Target;
use crate::config::Config;

/// Heads whose rows HF permutes in this projection's output, if any.
fn hf_heads(t: Target, c: &Config) -> Option<usize> {
    match t {
        Target::Q => Some(c.n_heads),
        Target::K => Some(c.n_kv_heads),
        _ => None,
    }
}

/// Moves rows of `[out, r]` between layouts: `to_hf` maps llama2.c row `2j + c` of each head to
/// HF row `c·hs/2 + j`; otherwise the reverse.
fn permute_rows<F: Copy>(m: &[F], t: Target, c: &Config, r: usize, to_hf: bool) -> Vec<F> {
    let Some(heads) = hf_heads(t, c) else { return m.to_vec() };
    let (hs, half) = (c.head_size(), c.head_size() / 2);
    let mut out = m.to_vec();
    for h in 0..heads {
        for j in 0..half {
            for cc in 0..2 {
                let l2c = h * hs + 2 * j + cc;
                let hf = h * hs + cc * half + j;
                let (from, to) = if to_hf { (l2c, hf) } else { (hf, l2c) };
                out[to * r..(to + 1) * r].copy_from_slice(&m[from * r..(from + 1) * r]);
            }
        }
    }
    out
}

/// B (or its gradient) from HF to llama2.c row order.
pub(crate) fn rows_from_hf<F: Copy>(b: &[F], t: Target, c: &Config, r: usize) -> Vec<F> {
    permute_rows(b, t, c, r, false)
}

/// B (or its gradient) from llama2.c to HF row order.
pub(crate) fn rows_to_hf<F: Copy>(b: &[F], t: Target, c: &Config, r: usize) -> Vec<F> {
    permute_rows(b, t, c, r, true)
}
