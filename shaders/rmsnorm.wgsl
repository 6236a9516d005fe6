// rmsnorm.wgsl — RMSNorm of each row, as run.c: o_j = g_j * (s * x_j), s = 1/sqrt(mean(x²) + 1e-5).
//
// Bindings (group 0): 0 `x` [n_rows, dim] read; 1 `g` [dim] read (the gains);
// 2 `o` [n_rows, dim] read_write; 3 `d` uniform. One workgroup per row.

struct Dims { dim: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let t = wg.x;
    let base = t * d.dim;
    var ss = 0.0;
    for (var i = lid.x; i < d.dim; i += 256u) {
        let v = x[base + i];
        ss += v * v;
    }
    part[lid.x] = ss;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (lid.x < w) {
            part[lid.x] += part[lid.x + w];
        }
        workgroupBarrier();
    }
    let s = 1.0 / sqrt(part[0] / f32(d.dim) + 1e-5);
    for (var i = lid.x; i < d.dim; i += 256u) {
        o[base + i] = g[i] * (s * x[base + i]);
    }
}
