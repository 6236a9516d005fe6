// pretrain.wgsl — what full training adds to the LoRA trainer's kernels (lora_*.wgsl): the
// embedding lookup and its scatter-add gradient, the RMSNorm gains' gradients, and the
// instruments' reductions (largest attention logit, update and weight norms per tensor).
// Prepended by common.wgsl (flat_invocation, F32_LOWEST). Each is the twin of a
// `pretrain::kernels` function or of a measurement of `pretrain::Pretrainer::step`.
//
// Bindings (group 0): 0 `tok` [rows] u32 read, 1 `a` read, 2 `b` read, 3 `c` read_write,
// 4 `out` read_write, 5 `d` uniform. An entry binds spare buffers where it names none.
// `embed`      tok, b = params → out = x [rows, width]: x[n, j] = b[off + tok[n]·width + j].
//              One invocation per element of x.
// `embed_grad` tok, b = dx [rows, width] → out = grads: out[off + tok[n]·width + j] += dx[n, j],
//              rows in order (as `embedding_bwd`). One invocation per column j.
// `inv_rms`    a = x [rows, width] → c = rs [rows]: 1 / sqrt(mean(x²) + eps). One per row.
// `gain_grad`  a = x, b = dy [rows, width], c = rs → out = grads: out[off + j] +=
//              Σ_n dy[n, j] · (rs[n] · x[n, j]), rows in order (as `rmsnorm_bwd_gain`). One per j.
// `attn_rows`  a = q [N, n_heads·width], b = k [N, n_kv_heads·width] (after RoPE) → out [rows]:
//              for each (b, h, t), max over t2 ≤ t of q·k / √width (width: the head size);
//              rows = batch·n_heads·seq. One invocation per (b, h, t).
// `max_into`   a = values [rows] → out[off] = their maximum. One workgroup of 256; (1, 1, 1).
// `seg_sums`   a = new, b = old (params before the update) → out[2·width] = Σ (new − old)²,
//              out[2·width + 1] = Σ old², over elements [off, off + rows). One workgroup of 256.
// Per-invocation entries: 64 per workgroup; dispatch a grid of ceil(n / 64) (x, then y rows).

struct Dims { rows: u32, width: u32, off: u32, eps: f32, batch: u32, seq: u32, n_heads: u32, n_kv_heads: u32 }

@group(0) @binding(0) var<storage, read> tok: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> d: Dims;

@compute @workgroup_size(64)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = flat_invocation(gid, nw);
    if (i >= d.rows * d.width) {
        return;
    }
    let n = i / d.width;
    let j = i % d.width;
    out[i] = b[d.off + tok[n] * d.width + j];
}

@compute @workgroup_size(64)
fn embed_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let j = flat_invocation(gid, nw);
    if (j >= d.width) {
        return;
    }
    for (var n = 0u; n < d.rows; n++) {
        let o = d.off + tok[n] * d.width + j;
        out[o] = out[o] + b[n * d.width + j];
    }
}

@compute @workgroup_size(64)
fn inv_rms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let row = flat_invocation(gid, nw);
    if (row >= d.rows) {
        return;
    }
    var ss = 0.0;
    for (var j = 0u; j < d.width; j++) {
        let v = a[row * d.width + j];
        ss += v * v;
    }
    ss = ss / f32(d.width) + d.eps;
    c[row] = 1.0 / sqrt(ss);
}

@compute @workgroup_size(64)
fn gain_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let j = flat_invocation(gid, nw);
    if (j >= d.width) {
        return;
    }
    var acc = out[d.off + j];
    for (var n = 0u; n < d.rows; n++) {
        acc += b[n * d.width + j] * (c[n] * a[n * d.width + j]);
    }
    out[d.off + j] = acc;
}

@compute @workgroup_size(64)
fn attn_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let id = flat_invocation(gid, nw);
    if (id >= d.rows) {
        return;
    }
    let hs = d.width;
    let t = id % d.seq;
    let h = (id / d.seq) % d.n_heads;
    let bi = id / (d.seq * d.n_heads);
    let qo = (bi * d.seq + t) * d.n_heads * hs + h * hs;
    let kv = d.n_kv_heads * hs;
    let ko = (h / (d.n_heads / d.n_kv_heads)) * hs;
    let scale = sqrt(f32(hs));
    var best = F32_LOWEST;
    for (var t2 = 0u; t2 <= t; t2++) {
        let kr = (bi * d.seq + t2) * kv + ko;
        var s = 0.0;
        for (var i = 0u; i < hs; i++) {
            s += a[qo + i] * b[kr + i];
        }
        best = max(best, s / scale);
    }
    out[id] = best;
}

var<workgroup> part: array<f32, 256>;
var<workgroup> part2: array<f32, 256>;

@compute @workgroup_size(256)
fn max_into(@builtin(local_invocation_id) lid: vec3<u32>) {
    var m = F32_LOWEST;
    for (var i = lid.x; i < d.rows; i += 256u) {
        m = max(m, a[i]);
    }
    part[lid.x] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            part[lid.x] = max(part[lid.x], part[lid.x + s]);
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out[d.off] = part[0];
    }
}

@compute @workgroup_size(256)
fn seg_sums(@builtin(local_invocation_id) lid: vec3<u32>) {
    var dd = 0.0;
    var ww = 0.0;
    for (var i = lid.x; i < d.rows; i += 256u) {
        let old = b[d.off + i];
        let delta = a[d.off + i] - old;
        dd += delta * delta;
        ww += old * old;
    }
    part[lid.x] = dd;
    part2[lid.x] = ww;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            part[lid.x] += part[lid.x + s];
            part2[lid.x] += part2[lid.x + s];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out[2u * d.width] = part[0];
        out[2u * d.width + 1u] = part2[0];
    }
}
