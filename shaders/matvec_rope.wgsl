// matvec_rope.wgsl — appended to matvec.wgsl: the q|k|v matvec with RMSNorm before it and
// RoPE plus the KV-cache write after it (rope.wgsl's arithmetic and layout), so one dispatch
// takes the residual stream to rotated q and this position's cache rows. `out` (binding 2)
// is q [dim]; 5 `rope` read: rope.wgsl's (cos, sin) table; 6 `kv` [2, seq_len, kv_dim]
// read_write: this layer's keys then values; 7 `rd` uniform. One row (decode) at step.pos0.

struct RopeDims { dim: u32, kv_dim: u32, head_size: u32, seq_len: u32 }

@group(0) @binding(5) var<storage, read> rope: array<f32>;
@group(0) @binding(6) var<storage, read_write> kv: array<f32>;
@group(0) @binding(7) var<uniform> rd: RopeDims;

// Output columns (i, i + 1) of q|k|v: rotate q and k, copy v, as rope.wgsl does.
fn rope_pair(i: u32, v0: f32, v1: f32) {
    let pos = step.pos0;
    if (i >= rd.dim + rd.kv_dim) {
        let at = (rd.seq_len + pos) * rd.kv_dim + i - rd.dim - rd.kv_dim;
        kv[at] = v0;
        kv[at + 1u] = v1;
        return;
    }
    let r = (pos * (rd.head_size / 2u) + (i % rd.head_size) / 2u) * 2u;
    let fcr = rope[r];
    let fci = rope[r + 1u];
    let r0 = v0 * fcr - v1 * fci;
    let r1 = v0 * fci + v1 * fcr;
    if (i < rd.dim) {
        out[i] = r0;
        out[i + 1u] = r1;
    } else {
        let at = pos * rd.kv_dim + i - rd.dim;
        kv[at] = r0;
        kv[at + 1u] = r1;
    }
}

@compute @workgroup_size(MV_X, MV_Y)
fn norm_rope(@builtin(local_invocation_index) lane: u32, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    stage_norm(lane);
    let sum = dot_rows(lid, wg);
    if (owner(lid, wg)) {
        let i = d.col0 + (wg.x * MV_X + lid.x) * 4u;
        rope_pair(i, sum.x, sum.y);
        rope_pair(i + 2u, sum.z, sum.w);
    }
}
