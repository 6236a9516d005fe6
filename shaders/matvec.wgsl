// matvec.wgsl — the decode (one row) matvec with its input's producer fused in, vec4 loads.
//
// Bindings (group 0): 0 `x` read: the input row (in_row0) — the residual stream for `norm`,
// the stacked [w1·x, w3·x] row for `swiglu`, the finished input for `plain`; 1 `w` read: a row
// chunk of a [out, in] matrix stored TRANSPOSED ([k, m], as in matmul.wgsl; gpu::packing), m a
// multiple of 4; 2 `out` read_write; 3 `d` uniform (matmul.wgsl's Dims); 4 `g` [k] read:
// the RMSNorm gains (`norm` only).
// out[col0 + j] = (accumulate ? out[col0 + j] : 0) + Σ_i W[j, i] · in_i, where `in` is staged
// once per workgroup in workgroup memory:
//   plain:  in_i = x_i
//   norm:   in_i = g_i * (s * r_i), s = 1/sqrt(mean(r²) + eps) — rmsnorm.wgsl's arithmetic,
//           the squares summed in index order by one lane so it rounds like the CPU — where
//           r = x row in_row0, plus rows 1..=parts of `x` when `parts` > 0: the residual with
//           its pending partial sums (the three-dispatch layer, layer.wgsl), added in row order;
//   swiglu: in_i = silu(x_i) * x_{k+i} — swiglu.wgsl's arithmetic.
// So RMSNorm → matvec and SwiGLU → matvec are one dispatch each. The workgroup is MV_X × MV_Y
// lanes (constants the loader defines, chosen by gpu::tune; 16 × 16 untuned): lane (x, y) sums
// k ≡ y (mod MV_Y) for outputs 4(wg·MV_X + x) .. +3 with one vec4 load per step, and lanes
// y = 0 add the MV_Y partial sums in y order. Wider MV_X reads longer contiguous runs of a
// weight row; deeper MV_Y shortens each lane's walk along k but adds reduction steps.
// Dispatch (ceil(m / (4 MV_X)), 1). The plan uses it only when k <= MAXK.
// `W4` and `w_at` (4 adjacent outputs at one input, as vec4<f32>) are defined by the loader
// for the weights' format (gpu::packing): f32, f16 for the optional half-precision classifier
// (with `enable f16`), or Q8_0 (int8 values and scales, dequantized as they are read); the
// sums stay f32 in every format.

struct Dims { m: u32, k: u32, out_stride: u32, col0: u32, accumulate: u32, eps: f32, parts: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<W4>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;
@group(0) @binding(4) var<storage, read> g: array<f32>;

const MAXK: u32 = 2816u;
const LANES: u32 = MV_X * MV_Y;
var<workgroup> xs: array<f32, MAXK>;
var<workgroup> part: array<vec4<f32>, LANES>;
var<workgroup> total: f32;

// Σ over y of each lane's `acc`, in y order: complete in lanes with lid.y = 0. Ends with a
// barrier, so it can be called again at once.
fn reduce_y(lid: vec3<u32>, acc: vec4<f32>) -> vec4<f32> {
    part[lid.y * MV_X + lid.x] = acc;
    workgroupBarrier();
    var sum = vec4<f32>(0.0);
    if (lid.y == 0u) {
        for (var y = 0u; y < MV_Y; y++) {
            sum += part[y * MV_X + lid.x];
        }
    }
    workgroupBarrier();
    return sum;
}

// Σ_i W[j, i] · xs[i] for this lane's 4 outputs, complete in lanes with lid.y = 0.
fn dot_rows(lid: vec3<u32>, wg: vec3<u32>) -> vec4<f32> {
    let j4 = wg.x * MV_X + lid.x;
    let m4 = d.m / 4u;
    var acc = vec4<f32>(0.0);
    if (j4 < m4) {
        for (var i = lid.y; i < d.k; i += MV_Y) {
            acc += w_at(i, j4, m4, d.k) * xs[i];
        }
    }
    return reduce_y(lid, acc);
}

// The lane's first output column (col0 + 4 j4) when it holds finished sums, else none.
fn owner(lid: vec3<u32>, wg: vec3<u32>) -> bool {
    return lid.y == 0u && wg.x * MV_X + lid.x < d.m / 4u;
}

fn store4(wg: vec3<u32>, lid: vec3<u32>, sum: vec4<f32>) {
    if (!owner(lid, wg)) {
        return;
    }
    for (var e = 0u; e < 4u; e++) {
        let at = d.col0 + (wg.x * MV_X + lid.x) * 4u + e;
        if (d.accumulate != 0u) {
            out[at] = out[at] + sum[e];
        } else {
            out[at] = sum[e];
        }
    }
}

fn stage_plain(lane: u32) {
    let xo = step.in_row0 * d.k;
    for (var i = lane; i < d.k; i += LANES) {
        xs[i] = x[xo + i];
    }
    workgroupBarrier();
}

// The residual entry i: x row in_row0, plus the `parts` partial-sum rows after row 0.
fn resid(i: u32) -> f32 {
    var v = x[step.in_row0 * d.k + i];
    for (var p = 1u; p <= d.parts; p++) {
        v += x[p * d.k + i];
    }
    return v;
}

fn stage_norm(lane: u32) {
    for (var i = lane; i < d.k; i += LANES) {
        let v = resid(i);
        xs[i] = v * v;
    }
    workgroupBarrier();
    if (lane == 0u) {
        var ss = 0.0;
        for (var i = 0u; i < d.k; i++) {
            ss += xs[i];
        }
        total = ss;
    }
    let s = 1.0 / sqrt(workgroupUniformLoad(&total) / f32(d.k) + d.eps);
    for (var i = lane; i < d.k; i += LANES) {
        xs[i] = g[i] * (s * resid(i));
    }
    workgroupBarrier();
}

fn stage_swiglu(lane: u32) {
    let xo = step.in_row0 * 2u * d.k;
    for (var i = lane; i < d.k; i += LANES) {
        let a = x[xo + i];
        let b = x[xo + d.k + i];
        xs[i] = a * (1.0 / (1.0 + exp_acc(-a))) * b;
    }
    workgroupBarrier();
}

@compute @workgroup_size(MV_X, MV_Y)
fn plain(@builtin(local_invocation_index) lane: u32, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    stage_plain(lane);
    store4(wg, lid, dot_rows(lid, wg));
}

@compute @workgroup_size(MV_X, MV_Y)
fn norm(@builtin(local_invocation_index) lane: u32, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    stage_norm(lane);
    store4(wg, lid, dot_rows(lid, wg));
}

@compute @workgroup_size(MV_X, MV_Y)
fn swiglu(@builtin(local_invocation_index) lane: u32, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    stage_swiglu(lane);
    store4(wg, lid, dot_rows(lid, wg));
}
