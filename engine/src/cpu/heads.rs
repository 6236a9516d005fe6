//! One position's attention over every head of a layer, the heads split over the current pool
//! (`crate::pool`) when the work is large: each head is one task, computed as on one thread.

use super::fast::PARALLEL_MIN;
use crate::config::Config;
use crate::pool;

/// `attend(q, keys, values, stride, att, out)` for one head (`ops::attend`, `fast::attend`).
pub type AttendFn = fn(&[f32], &[f32], &[f32], usize, &mut [f32], &mut [f32]);

/// Head `h` attends with `q[h·hs..]` over positions `0..=pos` of its kv head in the layer's
/// `keys` / `values` (`[seq_len, kv_dim]`), writing its probabilities to `att[h·seq_len..][..=pos]`
/// and its output to `out[h·hs..]`.
#[allow(clippy::too_many_arguments)]
pub fn attend_heads(
    attend: AttendFn,
    parallel: bool,
    c: &Config,
    pos: usize,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    att: &mut [f32],
    out: &mut [f32],
) {
    let (hs, kv_dim, kv_mul, seq) = (c.head_size(), c.kv_dim(), c.kv_mul(), c.seq_len);
    let head = |h: usize, att: &mut [f32], out: &mut [f32]| {
        let kv_off = (h / kv_mul) * hs;
        attend(&q[h * hs..(h + 1) * hs], &keys[kv_off..], &values[kv_off..], kv_dim, &mut att[..=pos], out);
    };
    let (att, out) = (&mut att[..c.n_heads * seq], &mut out[..c.n_heads * hs]);
    if parallel && c.n_heads > 1 && c.n_heads * (pos + 1) * hs * 2 >= PARALLEL_MIN {
        let pool = pool::current();
        if pool.threads() > 1 {
            return pool::for_chunks2(&*pool, att, seq, out, hs, head);
        }
    }
    for (h, (a, o)) in att.chunks_exact_mut(seq).zip(out.chunks_exact_mut(hs)).enumerate() {
        head(h, a, o);
    }
}
