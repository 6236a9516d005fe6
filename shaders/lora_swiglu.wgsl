// lora_swiglu.wgsl — SwiGLU g = silu(h1) ⊙ h3, forward and backward, elementwise.
// Prepended by common.wgsl (exp_acc).
//
// Bindings (group 0): 0 `h1` read, 1 `h3` read, 2 `dg` read (unused by `forward`),
// 3 `o1` read_write, 4 `o2` read_write (unused by `forward`), 5 `d` uniform.
// `forward`:  o1 = h1 · σ(h1) · h3.
// `backward`: o1 = dg · h3 · σ(h1)(1 + h1(1 − σ(h1))) (∂/∂h1), o2 = dg · silu(h1) (∂/∂h3).
// One invocation per element; dispatch a grid of ceil(len / 64) workgroups (x, then y rows).

struct Dims { len: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> h1: array<f32>;
@group(0) @binding(1) var<storage, read> h3: array<f32>;
@group(0) @binding(2) var<storage, read> dg: array<f32>;
@group(0) @binding(3) var<storage, read_write> o1: array<f32>;
@group(0) @binding(4) var<storage, read_write> o2: array<f32>;
@group(0) @binding(5) var<uniform> d: Dims;

fn sigmoid(a: f32) -> f32 {
    return 1.0 / (1.0 + exp_acc(-a));
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = id.y * nw.x * 64u + id.x;
    if (i >= d.len) {
        return;
    }
    let a = h1[i];
    o1[i] = a * sigmoid(a) * h3[i];
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = id.y * nw.x * 64u + id.x;
    if (i >= d.len) {
        return;
    }
    let a = h1[i];
    let sig = sigmoid(a);
    let g = dg[i];
    o1[i] = g * h3[i] * sig * (1.0 + a * (1.0 - sig));
    o2[i] = g * (a * sig);
}
