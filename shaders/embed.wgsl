// embed.wgsl — token embedding lookup from one row-chunk of the embedding table.
//
// Bindings (group 0): 0 `table` [dim, rows] read: embedding rows row0 .. row0 + rows, stored
// transposed like every weight chunk (the tied classifier shares it), read through
// `table_at1` in the weights' format (gpu::packing);
// 1 `tokens` [seq_len + 1] u32 read: the token at each position; 2 `x` [n_rows, dim] read_write;
// 3 `d` uniform. Computes x[t, :] = table[tokens[pos0 + t] - row0, :] (tokens[t] when each row is
// its own sequence: common.wgsl) for the rows whose token
// falls in this chunk; the table is split in chunks that fit a storage binding, and the token
// may only be known on the GPU (it was sampled there), so every chunk is dispatched.

struct Dims { row0: u32, rows: u32, dim: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> table: array<W1>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if (i >= d.dim || t >= step.n_rows) {
        return;
    }
    // Several sequences in one pass: row t's token is tokens[t].
    let tok = tokens[select(step.pos0 + t, t, step.seq_rows != 0u)];
    if (tok < d.row0 || tok >= d.row0 + d.rows) {
        return;
    }
    x[t * d.dim + i] = table_at1(i, tok - d.row0, d.rows, d.dim);
}
