// rope.wgsl — RoPE on q and k, and the KV-cache write, for a batch of rows. Prepended by
// common.wgsl and rope_pair.wgsl (the pair arithmetic and the cache layout).
//
// Bindings (group 0): 0 `qkv` [n_rows, q_dim + 2 kv_dim] read: wq·x | wk·x | wv·x per row;
// 1 `rope` read and 3 `kv` read_write: as rope_pair.wgsl; 2 `q` [n_rows, q_dim] read_write: the
// turned q rows; 4 `d` uniform RopeDims. Row t is at position row_pos(t) (pos0 + t, or pos0 for
// every row when each row is its own sequence: common.wgsl). One invocation per pair
// (x) and row (y).

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> rope: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> kv: array<f32>;
@group(0) @binding(4) var<uniform> d: RopeDims;

fn store_q(t: u32, i: u32, r0: f32, r1: f32) {
    q[t * d.q_dim + i] = r0;
    q[t * d.q_dim + i + 1u] = r1;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let width = d.q_dim + 2u * d.kv_dim;
    let i = gid.x * 2u;
    let t = gid.y;
    if (i >= width || t >= step.n_rows) {
        return;
    }
    rope_pair(d, t, row_pos(t), i, qkv[t * width + i], qkv[t * width + i + 1u]);
}
