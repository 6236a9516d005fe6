// matvec_rope.wgsl — appended to matvec.wgsl: the q|k|v matvec with RMSNorm before it and
// RoPE plus the KV-cache write after it (rope_pair.wgsl, placed between the two), so one
// dispatch takes the residual stream to rotated q and this position's cache rows. `out`
// (binding 2) is q [q_dim]; 5 `rope` read and 6 `kv` read_write: as rope_pair.wgsl; 7 `rd`
// uniform RopeDims; 8 `resid_out` [dim] read_write: workgroup 0 writes the residual it
// normalized (x row 0 plus its `parts` partial-sum rows; the three-dispatch layer's mlp.wgsl
// reads it). One row (decode) at step.pos0.

@group(0) @binding(5) var<storage, read> rope: array<f32>;
@group(0) @binding(6) var<storage, read_write> kv: array<f32>;
@group(0) @binding(7) var<uniform> rd: RopeDims;
@group(0) @binding(8) var<storage, read_write> resid_out: array<f32>;

// q is this dispatch's `out`.
fn store_q(t: u32, i: u32, r0: f32, r1: f32) {
    out[i] = r0;
    out[i + 1u] = r1;
}

@compute @workgroup_size(MV_X, MV_Y)
fn norm_rope(@builtin(local_invocation_index) lane: u32, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    stage_norm(lane);
    if (wg.x == 0u) {
        for (var i = lane; i < d.k; i += LANES) {
            resid_out[i] = resid(i);
        }
    }
    let sum = dot_rows(lid, wg);
    if (owner(lid, wg)) {
        let i = d.col0 + (wg.x * MV_X + lid.x) * 4u;
        rope_pair(rd, 0u, step.pos0, i, sum.x, sum.y);
        rope_pair(rd, 0u, step.pos0, i + 2u, sum.z, sum.w);
    }
}
