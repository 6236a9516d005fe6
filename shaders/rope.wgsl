// rope.wgsl — RoPE on q and k, and the KV-cache write.
//
// Bindings (group 0): 0 `qkv` [n_rows, dim + 2 kv_dim] read: wq·x | wk·x | wv·x per row;
// 1 `rope` [seq_len, head_size / 2, 2] read: (cos, sin) of pos · 10000^(-j/head_size), made on
// the CPU with the CPU path's own f32 arithmetic (WGSL sin/cos are too loose at large angles);
// 2 `q` [n_rows, dim] read_write; 3 `kv` [2, seq_len, kv_dim] read_write: this layer's keys then
// values; 4 `d` uniform. Adjacent pairs (i, i+1), j = i mod head_size, rotate by the angle;
// rotated q goes to `q`, rotated k and plain v to the cache at position pos0 + t.

struct Dims { dim: u32, kv_dim: u32, head_size: u32, seq_len: u32 }

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> rope: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> kv: array<f32>;
@group(0) @binding(4) var<uniform> d: Dims;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let width = d.dim + 2u * d.kv_dim;
    let i = gid.x * 2u;
    let t = gid.y;
    if (i >= width || t >= step.n_rows) {
        return;
    }
    let pos = step.pos0 + t;
    let v0 = qkv[t * width + i];
    let v1 = qkv[t * width + i + 1u];
    if (i >= d.dim + d.kv_dim) {
        let at = (d.seq_len + pos) * d.kv_dim + i - d.dim - d.kv_dim;
        kv[at] = v0;
        kv[at + 1u] = v1;
        return;
    }
    // dim is a multiple of head_size, so i mod head_size is also the index within a k head.
    let r = (pos * (d.head_size / 2u) + (i % d.head_size) / 2u) * 2u;
    let fcr = rope[r];
    let fci = rope[r + 1u];
    let r0 = v0 * fcr - v1 * fci;
    let r1 = v0 * fci + v1 * fcr;
    if (i < d.dim) {
        q[t * d.dim + i] = r0;
        q[t * d.dim + i + 1u] = r1;
    } else {
        let at = pos * d.kv_dim + i - d.dim;
        kv[at] = r0;
        kv[at + 1u] = r1;
    }
}
