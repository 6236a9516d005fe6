// lora_adamw.wgsl — the optimizer step over all LoRA parameters as one flat array: the global
// gradient norm, optional clipping to it, and AdamW with torch's semantics.
//
// Bindings (group 0): 0 `grads` read, 1 `params` read_write, 2 `m` read_write, 3 `v`
// read_write (AdamW's moments), 4 `norm` [1] read_write, 5 `d` uniform (its scalars are formed
// on the CPU in f64 per step, as torch forms them in Python).
// Both work on elements [start, start + len) (full training updates each tensor with its own
// decay; LoRA: start 0, every parameter).
// `norm_main`: norm[0] = sqrt(Σ grads²). One workgroup of 256; dispatch (1, 1, 1).
// `update`: g = grads · min(1, clip / (norm + 1e-6)) when clip > 0; then p *= 1 − lr·wd;
//           m += (1 − β1)(g − m); v = β2·v + (1 − β2)·g²; p −= step_size · m / (√v / bc2 + eps).
//           One invocation per parameter; dispatch a grid of ceil(len / 64) workgroups.

struct Dims { len: u32, clip: f32, decay: f32, w1: f32, b2: f32, w2: f32, bc2_sqrt: f32, step_size: f32, eps: f32, start: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> grads: array<f32>;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> norm: array<f32>;
@group(0) @binding(5) var<uniform> d: Dims;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn norm_main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    for (var j = lid.x; j < d.len; j += 256u) {
        let i = d.start + j;
        s += grads[i] * grads[i];
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (lid.x < k) {
            part[lid.x] += part[lid.x + k];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        norm[0] = sqrt(part[0]);
    }
}

@compute @workgroup_size(64)
fn update(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let j = id.y * nw.x * 64u + id.x;
    if (j >= d.len) {
        return;
    }
    let i = d.start + j;
    var g = grads[i];
    if (d.clip > 0.0) {
        let c = d.clip / (norm[0] + 1e-6);
        if (c < 1.0) {
            g = g * c;
        }
    }
    var p = params[i] * d.decay;
    let mi = m[i] + d.w1 * (g - m[i]);
    let vi = v[i] * d.b2 + d.w2 * g * g;
    let denom = sqrt(vi) / d.bc2_sqrt + d.eps;
    p = p - d.step_size * (mi / denom);
    params[i] = p;
    m[i] = mi;
    v[i] = vi;
}
