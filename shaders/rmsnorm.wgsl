// rmsnorm.wgsl — RMSNorm of each row, as run.c: o_j = g_j * (s * x_j), s = 1/sqrt(mean(x²) + eps)
// (eps: the model's, 1e-5 in llama2.c).
//
// Bindings (group 0): 0 `x` [n_rows, dim] read; 1 `g` [dim] read (the gains);
// 2 `o` [n_rows, dim] read_write; 3 `d` uniform. One workgroup per row.
// The squares are computed in parallel and staged in workgroup memory; one lane adds them in
// index order, so the sum rounds exactly like the CPU's loop (a tree sum drifts from it, and
// over 512 positions that drift alone reaches ~1e-5 in attention probabilities).

struct Dims { dim: u32, eps: f32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;

const LANES: u32 = 64u;
const TILE: u32 = 2048u;
var<workgroup> sq: array<f32, 2048>;
var<workgroup> total: f32;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let base = wg.x * d.dim;
    var ss = 0.0;
    for (var t0 = 0u; t0 < d.dim; t0 += TILE) {
        let n = min(TILE, d.dim - t0);
        for (var i = lid.x; i < n; i += LANES) {
            let v = x[base + t0 + i];
            sq[i] = v * v;
        }
        workgroupBarrier();
        if (lid.x == 0u) {
            for (var i = 0u; i < n; i++) {
                ss += sq[i];
            }
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        total = ss;
    }
    let s = 1.0 / sqrt(workgroupUniformLoad(&total) / f32(d.dim) + d.eps);
    for (var i = lid.x; i < d.dim; i += LANES) {
        o[base + i] = g[i] * (s * x[base + i]);
    }
}
