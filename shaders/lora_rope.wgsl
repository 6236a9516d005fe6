// lora_rope.wgsl — RoPE on whole rows of heads, in place, forward and backward.
// Prepended by common.wgsl (flat_invocation).
//
// Bindings (group 0): 0 `table` read: (cos, sin) pairs [seq_len, head_size / 2], computed on
// the CPU exactly as the CPU kernel computes them; 1 `x` [rows, width] read_write; 2 `d` uniform.
// Row n sits at position n mod seq. Pair (i, i+1) with j = (i mod head_size) / 2 turns by the
// angle of (pos, j): `forward` by +angle, `backward` (the gradient) by −angle.
// One invocation per pair; dispatch a grid of ceil(rows · width / 2 / 64) workgroups
// (x, then y rows).

struct Dims { rows: u32, width: u32, seq: u32, head_size: u32 }

@group(0) @binding(0) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<uniform> d: Dims;

fn turn(id: u32, sign: f32) {
    let half = d.width / 2u;
    if (id >= d.rows * half) {
        return;
    }
    let row = id / half;
    let i = (id % half) * 2u;
    let pos = row % d.seq;
    let cs = table[pos * (d.head_size / 2u) + (i % d.head_size) / 2u];
    let sin = sign * cs.y;
    let o = row * d.width + i;
    let v0 = x[o];
    let v1 = x[o + 1u];
    x[o] = v0 * cs.x - v1 * sin;
    x[o + 1u] = v0 * sin + v1 * cs.x;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    turn(flat_invocation(gid, nw), 1.0);
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    turn(flat_invocation(gid, nw), -1.0);
}
