// lora_loss.wgsl — next-token cross-entropy over rows of logits, with its gradient in place.
// Prepended by common.wgsl (exp_acc, F32_LOWEST).
//
// Bindings (group 0): 0 `targets` [rows] u32 read (0xffffffff: the row takes no part),
// 1 `logits` [rows, vocab] read_write, 2 `loss` [rows] (with `stats`: [rows · 4]) read_write,
// 3 `d` uniform.
// Per row: loss = logsumexp(l) − l[target]; then, when `grad` = 1, the row becomes
// scale · ((1 + 2·coef·lse) · softmax(l) − onehot(target)), the gradient of
// scale · (ce + coef · lse²) (coef 0: the plain cross-entropy's; all zero for an ignored row).
// With `stats` = 1, loss[rows + 3·row ..] = (lse, Σ logits, max logit) of the row (full
// training's instruments; zeros for an ignored row).
// One workgroup of 256 per row; dispatch (rows, 1, 1).

struct Dims { rows: u32, vocab: u32, scale: f32, grad: u32, coef: f32, stats: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> targets: array<u32>;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;

var<workgroup> part: array<f32, 256>;

// Tree reduction of part[] by max (`op` 0) or sum (1); every lane gets the result.
fn reduce(lane: u32, v: f32, op: u32) -> f32 {
    part[lane] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lane < s) {
            let o = part[lane + s];
            part[lane] = select(part[lane] + o, max(part[lane], o), op == 0u);
        }
        workgroupBarrier();
    }
    let r = part[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let row = wg.x;
    let lane = lid.x;
    let o = row * d.vocab;
    let tgt = targets[row];
    if (tgt == 0xffffffffu) {
        if (lane == 0u) {
            loss[row] = 0.0;
            if (d.stats != 0u) {
                for (var k = 0u; k < 3u; k++) {
                    loss[d.rows + 3u * row + k] = 0.0;
                }
            }
        }
        if (d.grad != 0u) {
            for (var i = lane; i < d.vocab; i += 256u) {
                logits[o + i] = 0.0;
            }
        }
        return;
    }
    var m = F32_LOWEST;
    var total = 0.0;
    for (var i = lane; i < d.vocab; i += 256u) {
        m = max(m, logits[o + i]);
        total += logits[o + i];
    }
    m = reduce(lane, m, 0u);
    if (d.stats != 0u) {
        total = reduce(lane, total, 1u);
    }
    var s = 0.0;
    for (var i = lane; i < d.vocab; i += 256u) {
        s += exp_acc(logits[o + i] - m);
    }
    s = reduce(lane, s, 1u);
    let lse = log(s) + m;
    if (lane == 0u) {
        loss[row] = lse - logits[o + tgt];
        if (d.stats != 0u) {
            loss[d.rows + 3u * row] = lse;
            loss[d.rows + 3u * row + 1u] = total;
            loss[d.rows + 3u * row + 2u] = m;
        }
    }
    // Every lane has read logits[o + tgt] (lane 0 above) before any lane overwrites it.
    workgroupBarrier();
    if (d.grad != 0u) {
        for (var i = lane; i < d.vocab; i += 256u) {
            var p = exp_acc(logits[o + i] - m) / s;
            if (d.coef != 0.0) {
                p *= 1.0 + 2.0 * d.coef * lse;
            }
            if (i == tgt) {
                p -= 1.0;
            }
            logits[o + i] = p * d.scale;
        }
    }
}
