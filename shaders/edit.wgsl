// edit.wgsl — knock-outs and steering (trace::Edits) on the rows of one activation.
//
// Bindings (group 0): 0 `v` [dim] read: what knocked-out heads output (zeros or their means), or
// the steering addend (strength · direction); 1 `mask` [dim] read: 1 at the elements of a
// knocked-out head (read by `replace` only); 2 `x` [n_rows, dim] read_write: the heads' outputs
// before the output projection (`replace`; dim = n_heads · head_size) or the residual after the
// layer (`add`; dim = the model's); 3 `d`.
// `replace`: x[t, i] = v[i] where mask[i] != 0. `add`: x[t, i] += v[i] (as the CPU's hook).

struct Dims { dim: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> v: array<f32>;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;

@compute @workgroup_size(64)
fn replace(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if (i >= d.dim || t >= step.n_rows) {
        return;
    }
    if (mask[i] != 0u) {
        x[t * d.dim + i] = v[i];
    }
}

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if (i >= d.dim || t >= step.n_rows) {
        return;
    }
    x[t * d.dim + i] = x[t * d.dim + i] + v[i];
}
