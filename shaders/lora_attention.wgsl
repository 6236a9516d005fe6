// lora_attention.wgsl — causal multi-head attention with grouped K/V heads over a batch of
// sequences, forward and backward. Prepended by common.wgsl (exp_acc).
//
// Bindings (group 0): 0..3 `r0`..`r3` read, 4 `w0` and 5 `w1` read_write, 6 `d` uniform.
// Rows are n = b·seq + t; q and attention outputs are [N, n_heads·hs], k and v [N, kv_heads·hs];
// probabilities are [batch, n_heads, seq, seq] with zeros above the diagonal. Query head h
// reads K/V head h / (n_heads / kv_heads).
// `forward`   r0 q, r1 k, r2 v (q, k after RoPE) → w0 probs, w1 out:
//             p = softmax(q·kᵀ / √hs) over t2 ≤ t, out = Σ p·v. One invocation per (b, h, t).
// `backward_q` r0 dout, r1 probs, r2 k, r3 v → w0 ds, w1 dq:
//             dp = dout·vᵀ, ds = p ⊙ (dp − Σ p·dp) / √hs (stored for `backward_kv`),
//             dq = ds·k. One invocation per (b, h, t).
// `backward_kv` r0 dout, r1 probs, r2 q, r3 ds → w0 dk, w1 dv: dk = Σ_h dsᵀ·q, dv = Σ_h pᵀ·dout
//             over the query heads sharing the K/V head. One invocation per element of dk/dv.
// Outputs are overwritten. Dispatch a grid of ceil(invocations / 64) workgroups (x, then y rows).

struct Dims { batch: u32, seq: u32, n_heads: u32, n_kv_heads: u32, head_size: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> r0: array<f32>;
@group(0) @binding(1) var<storage, read> r1: array<f32>;
@group(0) @binding(2) var<storage, read> r2: array<f32>;
@group(0) @binding(3) var<storage, read> r3: array<f32>;
@group(0) @binding(4) var<storage, read_write> w0: array<f32>;
@group(0) @binding(5) var<storage, read_write> w1: array<f32>;
@group(0) @binding(6) var<uniform> d: Dims;

struct Row { b: u32, h: u32, t: u32, row: u32, qo: u32, ko: u32, p0: u32 }

// The (b, h, t) of invocation `id`, with the offsets of its q slice, its K/V head's slice in
// row 0 of its sequence, and its probabilities row.
fn row_of(id: u32) -> Row {
    let t = id % d.seq;
    let h = (id / d.seq) % d.n_heads;
    let b = id / (d.seq * d.n_heads);
    let hs = d.head_size;
    let kvh = h / (d.n_heads / d.n_kv_heads);
    return Row(b, h, t, b * d.seq + t, (b * d.seq + t) * d.n_heads * hs + h * hs, b * d.seq * d.n_kv_heads * hs + kvh * hs, ((b * d.n_heads + h) * d.seq + t) * d.seq);
}

// w1[row's q slice] = Σ_{t2 ≤ t} w0[p0 + t2] · r2[t2's K/V head slice]: the output of forward
// (weights = probabilities, r2 = v) and dq of backward_q (weights = ds, r2 = k).
fn weigh_rows(r: Row) {
    let hs = d.head_size;
    let kv = d.n_kv_heads * hs;
    for (var i = 0u; i < hs; i++) {
        var o = 0.0;
        for (var t2 = 0u; t2 <= r.t; t2++) {
            o += w0[r.p0 + t2] * r2[r.ko + t2 * kv + i];
        }
        w1[r.qo + i] = o;
    }
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let id = flat_invocation(gid, nw);
    if (id >= d.batch * d.n_heads * d.seq) {
        return;
    }
    let r = row_of(id);
    let hs = d.head_size;
    let kv = d.n_kv_heads * hs;
    let scale = sqrt(f32(hs));
    var max = F32_LOWEST;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        var s = 0.0;
        for (var i = 0u; i < hs; i++) {
            s += r0[r.qo + i] * r1[r.ko + t2 * kv + i];
        }
        s = s / scale;
        w0[r.p0 + t2] = s;
        max = select(max, s, s > max);
    }
    var sum = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        let e = exp_acc(w0[r.p0 + t2] - max);
        w0[r.p0 + t2] = e;
        sum += e;
    }
    for (var t2 = 0u; t2 < d.seq; t2++) {
        w0[r.p0 + t2] = select(0.0, w0[r.p0 + t2] / sum, t2 <= r.t);
    }
    weigh_rows(r);
}

@compute @workgroup_size(64)
fn backward_q(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let id = flat_invocation(gid, nw);
    if (id >= d.batch * d.n_heads * d.seq) {
        return;
    }
    let r = row_of(id);
    let hs = d.head_size;
    let kv = d.n_kv_heads * hs;
    let scale = sqrt(f32(hs));
    var dot = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        var dp = 0.0;
        for (var i = 0u; i < hs; i++) {
            dp += r0[r.qo + i] * r3[r.ko + t2 * kv + i];
        }
        w0[r.p0 + t2] = dp;
        dot += r1[r.p0 + t2] * dp;
    }
    for (var t2 = 0u; t2 < d.seq; t2++) {
        w0[r.p0 + t2] = select(0.0, r1[r.p0 + t2] * (w0[r.p0 + t2] - dot) / scale, t2 <= r.t);
    }
    weigh_rows(r);
}

@compute @workgroup_size(64)
fn backward_kv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let id = flat_invocation(gid, nw);
    let hs = d.head_size;
    let kv = d.n_kv_heads * hs;
    if (id >= d.batch * d.seq * kv) {
        return;
    }
    let col = id % kv;
    let row = id / kv;
    let t2 = row % d.seq;
    let b = row / d.seq;
    let kvh = col / hs;
    let i = col % hs;
    let group = d.n_heads / d.n_kv_heads;
    let dim = d.n_heads * hs;
    var dk = 0.0;
    var dv = 0.0;
    for (var m = 0u; m < group; m++) {
        let h = kvh * group + m;
        for (var t = t2; t < d.seq; t++) {
            let p = ((b * d.n_heads + h) * d.seq + t) * d.seq + t2;
            let at = (b * d.seq + t) * dim + h * hs + i;
            dk += r3[p] * r2[at];
            dv += r1[p] * r0[at];
        }
    }
    w0[id] = dk;
    w1[id] = dv;
}
