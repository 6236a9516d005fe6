// attention_wo.wgsl — appended to attention.wgsl: one row's (decode) attention and the output
// projection in one dispatch, the projection split by heads into partial sums.
//
// Bindings (group 0): attention.wgsl's 0–4, where `att` [blocks, n_heads, seq_len] and `o`
// [blocks, q_dim] are per-block scratch; 5 `wo` read: wo stored TRANSPOSED
// (matvec.wgsl's layout, read through `wo_at` in the weights' format, gpu::packing), dim a
// multiple of 4; 6 `parts` [1 + n_heads, dim]
// read_write: row 1 + h receives head h's share (row 0, the residual, is not touched); 7 `wd`.
// Workgroup (h, b): head h's attention for row 0 at step.pos0 (attention.wgsl's `attend`, each
// block into its own scratch slot b, so blocks recompute it rather than share it), then
//   parts[1 + h, j] = Σ_{i < head_size} wo[j, h·head_size + i] · o_h[i], summed in i order,
// for the 4 outputs j = 4·j4 .. 4·j4 + 3, j4 = b·ATT_LANES + lane. The consumer (matvec.wgsl's
// `norm` staging with parts = n_heads, in mlp.wgsl) adds rows 1.. to the residual in head
// order: x += wo · o with the sum over i split at head boundaries.
// Dispatch (n_heads, ceil(dim / 4 / ATT_LANES)).

struct WoDims { dim: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(5) var<storage, read> wo: array<W4>;
@group(0) @binding(6) var<storage, read_write> parts: array<f32>;
@group(0) @binding(7) var<uniform> wd: WoDims;

@compute @workgroup_size(ATT_LANES)
fn attend_wo(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let h = wg.x;
    let b = wg.y;
    attend(h, 0u, b, lid.x);
    // Every lane reads every entry of o_h below.
    storageBarrier();
    let m4 = wd.dim / 4u;
    let j4 = b * ATT_LANES + lid.x;
    if (j4 >= m4) {
        return;
    }
    let hs = d.head_size;
    let oo = b * d.q_dim + h * hs;
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < hs; i++) {
        acc += wo_at(h * hs + i, j4, m4, d.q_dim) * o[oo + i];
    }
    let at = (1u + h) * wd.dim + 4u * j4;
    parts[at] = acc.x;
    parts[at + 1u] = acc.y;
    parts[at + 2u] = acc.z;
    parts[at + 3u] = acc.w;
}
