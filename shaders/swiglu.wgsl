// swiglu.wgsl — the FFN gate: o[t, j] = silu(h[t, j]) * h[t, hidden + j], silu(a) = a / (1 + e^-a).
//
// Bindings (group 0): 0 `h` [n_rows, 2 * hidden] read: w1·x then w3·x side by side (the two
// matrices are stacked into one at load); 1 `o` [n_rows, hidden] read_write; 2 `d` uniform.

struct Dims { hidden: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> h: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<uniform> d: Dims;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let t = gid.y;
    if (j >= d.hidden || t >= step.n_rows) {
        return;
    }
    let a = h[t * 2u * d.hidden + j];
    let b = h[t * 2u * d.hidden + d.hidden + j];
    o[t * d.hidden + j] = a * (1.0 / (1.0 + exp_acc(-a))) * b;
}
