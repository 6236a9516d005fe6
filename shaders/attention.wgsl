// attention.wgsl — causal multi-head attention over the KV cache, one workgroup per (head, row).
//
// Bindings (group 0): 0 `q` [n_rows, q_dim] read (after RoPE); 1 `kv` [2, seq_len, kv_dim] read:
// this layer's keys then values; 2 `att` [n_rows, n_heads, seq_len] read_write: the softmax
// probabilities (kept: the trace capture copies them); 3 `o` [n_rows, q_dim] read_write; 4 `d`.
// Row t sits at position p = row_pos(t) (pos0 + t; pos0 when each row is its own sequence, whose
// cache then starts at row_kv(t): common.wgsl) and sees keys 0..=p. Head h reads kv head h / kv_mul.
// score_s = (q_h · k_s) / sqrt(head_size); probabilities = softmax(score) as run.c
// (subtract the max, exp, sum in s order, divide); o_h = Σ_s p_s v_s, in s order like the CPU.

struct Dims { n_heads: u32, head_size: u32, kv_dim: u32, kv_mul: u32, seq_len: u32, q_dim: u32, scale: f32, _pad: u32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kv: array<f32>;
@group(0) @binding(2) var<storage, read_write> att: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
@group(0) @binding(4) var<uniform> d: Dims;

// ATT_LANES, the workgroup size (a power of two, 64 untuned), is defined by the loader.
var<workgroup> red: array<f32, ATT_LANES>;

fn reduce_max(v: f32, lane: u32) -> f32 {
    red[lane] = v;
    workgroupBarrier();
    for (var w = ATT_LANES / 2u; w > 0u; w >>= 1u) {
        if (lane < w) {
            red[lane] = max(red[lane], red[lane + w]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// Σ att[ao + s] for s < n in s order, by one lane from workgroup memory, so it rounds exactly
// like the CPU's softmax loop. Lane l stages the entries it wrote itself (s ≡ l mod ATT_LANES).
const TILE: u32 = 1024u;
var<workgroup> stage: array<f32, 1024>;

fn sequential_sum(ao: u32, n: u32, lane: u32) -> f32 {
    var acc = 0.0;
    for (var t0 = 0u; t0 < n; t0 += TILE) {
        let m = min(TILE, n - t0);
        for (var i = lane; i < m; i += ATT_LANES) {
            stage[i] = att[ao + t0 + i];
        }
        workgroupBarrier();
        if (lane == 0u) {
            for (var i = 0u; i < m; i++) {
                acc += stage[i];
            }
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        red[0] = acc;
    }
    return workgroupUniformLoad(&red[0]);
}

// Attention of head h for row t (query row t, keys 0..=pos0 + t) into scratch slot `slot`:
// probabilities at att[(slot·n_heads + h)·seq_len ..], output at o[slot·q_dim + h·head_size ..].
// attention_wo.wgsl runs it once per output block (slot = block), so no two workgroups share
// scratch. Call from uniform control flow (it has barriers).
fn attend(h: u32, t: u32, slot: u32, lane: u32) {
    let n = row_pos(t) + 1u;
    let hs = d.head_size;
    let qo = t * d.q_dim + h * hs;
    let oo = slot * d.q_dim + h * hs;
    let ko = row_kv(t) + (h / d.kv_mul) * hs;
    let ao = (slot * d.n_heads + h) * d.seq_len;

    var mx = F32_LOWEST;
    for (var s = lane; s < n; s += ATT_LANES) {
        var dot = 0.0;
        for (var i = 0u; i < hs; i++) {
            dot += q[qo + i] * kv[s * d.kv_dim + ko + i];
        }
        let score = dot / d.scale;
        att[ao + s] = score;
        mx = max(mx, score);
    }
    let m = reduce_max(mx, lane);
    for (var s = lane; s < n; s += ATT_LANES) {
        att[ao + s] = exp_acc(att[ao + s] - m);
    }
    let total = sequential_sum(ao, n, lane);
    for (var s = lane; s < n; s += ATT_LANES) {
        att[ao + s] = att[ao + s] / total;
    }
    // Every lane reads every probability below.
    storageBarrier();
    let vo = d.seq_len * d.kv_dim + ko;
    for (var i = lane; i < hs; i += ATT_LANES) {
        var acc = 0.0;
        for (var s = 0u; s < n; s++) {
            acc += att[ao + s] * kv[vo + s * d.kv_dim + i];
        }
        o[oo + i] = acc;
    }
}

@compute @workgroup_size(ATT_LANES)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    attend(wg.x, wg.y, wg.y, lid.x);
}
