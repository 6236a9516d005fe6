// matmul.wgsl — out = W · x for a row-chunk of a weight matrix, over a batch of rows.
//
// Bindings (group 0): 0 `x` [*, k] read: input rows, row t read at in_row0 + t;
// 1 `w` [k, m] read: rows col0 .. col0 + m of a row-major [out, in] matrix (one storage-sized
// chunk), stored TRANSPOSED, so consecutive outputs are adjacent in memory, and read through
// `w_at1` in the weights' format (gpu::packing: f32 or Q8_0);
// 2 `out` [n_rows, out_stride] read_write; 3 `d` uniform.
// Computes out[t, col0 + j] = (accumulate ? out[t, col0 + j] : 0) + Σ_i W[j, i] · x[in_row0 + t, i],
// `accumulate` fuses the residual add (x += W·y).
// Entry points: `matvec` for one row (decode: 16 outputs × 16 k-slices per workgroup) and
// `matmul` for a batch (prefill: 16 rows × 64 outputs per workgroup, tiles in workgroup
// memory, each output summed in i order like the CPU's scalar loop).

struct Dims { m: u32, k: u32, out_stride: u32, col0: u32, accumulate: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<W1>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;

fn store(t: u32, j: u32, v: f32) {
    let at = t * d.out_stride + d.col0 + j;
    if (d.accumulate != 0u) {
        out[at] = out[at] + v;
    } else {
        out[at] = v;
    }
}

// 16 outputs × 16 k-slices per workgroup: lane (x, y) sums k ≡ y (mod 16) for output x, so
// each step reads 16 rows of 16 adjacent floats (coalesced), and a big GPU gets 16 lanes per
// output to hide memory latency; one barrier, then lane y = 0 adds the 16 partial sums in
// slice order. Dispatch (ceil(m / 16), n_rows).
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn matvec(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let j = wg.x * 16u + lid.x;
    let t = wg.y;
    var acc = 0.0;
    if (j < d.m) {
        let xo = (step.in_row0 + t) * d.k;
        for (var i = lid.y; i < d.k; i += 16u) {
            acc += w_at1(i, j, d.m, d.k) * x[xo + i];
        }
    }
    part[lid.y * 16u + lid.x] = acc;
    workgroupBarrier();
    if (lid.y == 0u && j < d.m) {
        var sum = 0.0;
        for (var y = 0u; y < 16u; y++) {
            sum += part[y * 16u + lid.x];
        }
        store(t, j, sum);
    }
}

var<workgroup> xs: array<f32, 256>;   // [16 rows][16 k]
var<workgroup> ws: array<f32, 1024>;  // [16 k][64 outputs]

// Workgroup = 16 × 16 lanes computing 16 rows × 64 outputs; dispatch (ceil(m / 64), ceil(n_rows / 16)).
@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let t = wg.y * 16u + ty;
    let j0 = wg.x * 64u;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var k0 = 0u; k0 < d.k; k0 += 16u) {
        var xv = 0.0;
        if (t < step.n_rows && k0 + tx < d.k) {
            xv = x[(step.in_row0 + t) * d.k + k0 + tx];
        }
        xs[ty * 16u + tx] = xv;
        for (var e = 0u; e < 4u; e++) {
            let idx = e * 256u + ty * 16u + tx;
            let r = j0 + idx % 64u;
            let c = k0 + idx / 64u;
            var wv = 0.0;
            if (r < d.m && c < d.k) {
                wv = w_at1(c, r, d.m, d.k);
            }
            ws[idx] = wv;
        }
        workgroupBarrier();
        for (var c = 0u; c < 16u; c++) {
            let xc = xs[ty * 16u + c];
            for (var e = 0u; e < 4u; e++) {
                acc[e] += ws[c * 64u + tx + 16u * e] * xc;
            }
        }
        workgroupBarrier();
    }
    if (t < step.n_rows) {
        for (var e = 0u; e < 4u; e++) {
            let j = j0 + tx + 16u * e;
            if (j < d.m) {
                store(t, j, acc[e]);
            }
        }
    }
}
