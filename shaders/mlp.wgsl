// mlp.wgsl — appended to matvec.wgsl: a layer's whole FFN for one row (decode) in one
// dispatch, split by blocks of hidden units into partial sums.
//
// Bindings (group 0): matvec.wgsl's 0 `x` [1 + parts, dim] read: the residual after attention
// (row 0) and attention_wo.wgsl's per-head partial sums (rows 1..=parts); 1 `w` read: w1
// and w3 stacked ([2·hidden, dim]) and stored TRANSPOSED (gpu::packing), hidden a multiple of 4; 2 `out` [1 + blocks, dim] read_write; 3 `d` (k = dim, m = 2·hidden, parts =
// n_heads, eps); 4 `g` [dim] read: the FFN RMSNorm gains; 5 `w2` read: w2 transposed, read
// through `w2_at` (the weights' format, as `w`); 6 `md` uniform.
// Workgroup b takes the hidden units u in [b·HB, b·HB + HB), HB = 4·MV_X:
//   r = x row 0 + rows 1..=parts in row order (workgroup 0 writes r to out row 0: the residual);
//   h_u = silu(w1_u · n) · (w3_u · n), n = rmsnorm(r) (matvec.wgsl's staging and y-split
//         sums; swiglu.wgsl's arithmetic);
//   out[1 + b, j] = Σ_{u in block} w2[j, u] · h_u, in u order.
// The next consumer (the next layer's q|k|v or the classifier: matvec.wgsl `norm` with parts =
// blocks) adds rows 1.. to row 0 in block order, completing x += w2 · h.
// Dispatch (ceil(hidden / HB), 1).

struct MlpDims { hidden: u32, dim: u32, _p0: u32, _p1: u32 }

@group(0) @binding(5) var<storage, read> w2: array<W4>;
@group(0) @binding(6) var<uniform> md: MlpDims;

@compute @workgroup_size(MV_X, MV_Y)
fn mlp(@builtin(local_invocation_index) lane: u32, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    stage_norm(lane);
    if (wg.x == 0u) {
        for (var i = lane; i < d.k; i += LANES) {
            out[i] = resid(i);
        }
    }
    let h4 = md.hidden / 4u;
    let m4 = 2u * h4;
    let u4 = wg.x * MV_X + lid.x;
    var a = vec4<f32>(0.0);
    var c = vec4<f32>(0.0);
    if (u4 < h4) {
        for (var i = lid.y; i < d.k; i += MV_Y) {
            a += w_at(i, u4, m4, d.k) * xs[i];
            c += w_at(i, h4 + u4, m4, d.k) * xs[i];
        }
    }
    let sa = reduce_y(lid, a);
    let sc = reduce_y(lid, c);
    // The block's h, 4 units per x lane, kept in `part` (free after the reductions). Units
    // past `hidden` have a = c = 0, so h = 0.
    if (lid.y == 0u) {
        var hv = vec4<f32>(0.0);
        for (var e = 0u; e < 4u; e++) {
            hv[e] = sa[e] * (1.0 / (1.0 + exp_acc(-sa[e]))) * sc[e];
        }
        part[lid.x] = hv;
    }
    workgroupBarrier();
    let u0 = wg.x * 4u * MV_X;
    let nu = min(4u * MV_X, md.hidden - u0);
    let dm4 = md.dim / 4u;
    for (var j4 = lane; j4 < dm4; j4 += LANES) {
        var acc = vec4<f32>(0.0);
        for (var u = 0u; u < nu; u++) {
            acc += w2_at(u0 + u, j4, dm4, md.hidden) * part[u / 4u][u % 4u];
        }
        let at = (1u + wg.x) * md.dim + 4u * j4;
        out[at] = acc.x;
        out[at + 1u] = acc.y;
        out[at + 2u] = acc.z;
        out[at + 3u] = acc.w;
    }
}
