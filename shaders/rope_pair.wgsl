// rope_pair.wgsl — one pair (i, i+1) of a q|k|v row at position `pos`: q and k turned by RoPE,
// v copied; k and v go to the KV cache. Shared by rope.wgsl (prefill rows) and matvec_rope.wgsl
// (decode, fused into the q|k|v matvec). The including kernel declares `rope` read: the
// (cos, sin) table [seq_len, head_size / 2, 2] of pos · freq_j (Config::rope_freqs), made on the CPU with
// the CPU path's own f32 arithmetic (WGSL sin/cos are too loose at large angles); `kv` read_write:
// this layer's cache [2, seq_len, kv_dim], keys then values; and `fn store_q(t, i, r0, r1)`,
// which writes row t's turned q pair.

struct RopeDims { q_dim: u32, kv_dim: u32, head_size: u32, seq_len: u32 }

fn rope_pair(rd: RopeDims, t: u32, pos: u32, i: u32, v0: f32, v1: f32) {
    // Row t's own cache (several sequences in one pass; 0 for one sequence).
    let base = row_kv(t);
    if (i >= rd.q_dim + rd.kv_dim) {
        let at = base + (rd.seq_len + pos) * rd.kv_dim + i - rd.q_dim - rd.kv_dim;
        kv[at] = v0;
        kv[at + 1u] = v1;
        return;
    }
    // dim is a multiple of head_size, so i mod head_size is also the index within a k head.
    let r = (pos * (rd.head_size / 2u) + (i % rd.head_size) / 2u) * 2u;
    let fcr = rope[r];
    let fci = rope[r + 1u];
    let r0 = v0 * fcr - v1 * fci;
    let r1 = v0 * fci + v1 * fcr;
    if (i < rd.q_dim) {
        store_q(t, i, r0, r1);
    } else {
        let at = base + pos * rd.kv_dim + i - rd.q_dim;
        kv[at] = r0;
        kv[at + 1u] = r1;
    }
}
