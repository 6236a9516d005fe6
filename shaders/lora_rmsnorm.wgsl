// lora_rmsnorm.wgsl — RMSNorm over rows, forward and backward to x (the gain's own gradient is
// pretrain.wgsl's `gain_grad`).
// Prepended by common.wgsl (flat_invocation).
//
// Bindings (group 0): 0 `x` [rows, width] read, 1 `g` read (the gain: [width] from element
// `g_off`), 2 `dy` [rows, width] read (unused by `forward`), 3 `y` [rows, width] read_write,
// 4 `d` uniform.
// `forward`:  y = g ⊙ x · rs with rs = 1 / sqrt(mean(x²) + eps), as run.c (eps: the model's).
// `backward`: y (+)= rs·g ⊙ dy − x · rs³ · Σ(g ⊙ dy ⊙ x) / width, the gradient w.r.t. x of the
// forward given dy; `accumulate` = 1 adds it (the residual stream's gradient), 0 overwrites.
// One invocation per row, 64 per workgroup; dispatch a grid of ceil(rows / 64) workgroups (x, then y rows).

struct Dims { rows: u32, width: u32, accumulate: u32, eps: f32, g_off: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> d: Dims;

fn inv_rms(o: u32) -> f32 {
    var ss = 0.0;
    for (var i = 0u; i < d.width; i++) {
        ss += x[o + i] * x[o + i];
    }
    ss = ss / f32(d.width) + d.eps;
    return 1.0 / sqrt(ss);
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let row = flat_invocation(gid, nw);
    if (row >= d.rows) {
        return;
    }
    let o = row * d.width;
    let s = inv_rms(o);
    for (var i = 0u; i < d.width; i++) {
        y[o + i] = g[d.g_off + i] * (s * x[o + i]);
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let row = flat_invocation(gid, nw);
    if (row >= d.rows) {
        return;
    }
    let o = row * d.width;
    let s = inv_rms(o);
    var dot = 0.0;
    for (var i = 0u; i < d.width; i++) {
        dot += g[d.g_off + i] * dy[o + i] * x[o + i];
    }
    let c = dot * s * s * s / f32(d.width);
    for (var i = 0u; i < d.width; i++) {
        let v = s * g[d.g_off + i] * dy[o + i] - c * x[o + i];
        if (d.accumulate != 0u) {
            y[o + i] = y[o + i] + v;
        } else {
            y[o + i] = v;
        }
    }
}
