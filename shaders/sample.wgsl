// sample.wgsl — run.c's sampler on the GPU, one workgroup of 256 lanes; writes only a token id.
//
// Bindings (group 0): 0 `logits` [vocab] read (row 0 of the classifier output); 1 `probs`
// [vocab] read_write (scratch); 2 `tokens` [seq_len + 1] u32 read_write: the sampled id goes to
// tokens[pos0 + 1], where the next position's embedding lookup reads it; 3 `d` uniform.
// Entry points:
// - `argmax`: the first maximum of the logits (temperature 0).
// - `sample`: softmax(logits / temperature) as run.c, then with the CPU-drawn `step.coin`:
//   mode 1 multinomial (first index whose cdf exceeds the coin, the last on rounding);
//   the softmax total and the multinomial cdf are summed in index order by one lane, so the
//   probabilities round exactly as run.c's;
//   mode 2 top-p: candidates p >= cutoff in descending order (ties by index, as run.c's stable
//   sort), the shortest prefix whose sum exceeds topp (all candidates if none), r = coin · sum,
//   first element of that prefix whose running sum exceeds r. Instead of sorting, the crossing
//   element is found by bisecting on the probability's bit pattern (monotone for p >= 0) with
//   parallel sums of the mass at or above it, then walking the equal-probability ties in index
//   order. Those masses are parallel sums while run.c sums the kept prefix in sorted order,
//   so a token can differ from the CPU's where the two orders round to different sides of
//   the cut or the coin.

struct Dims { vocab: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;
@group(0) @binding(2) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(3) var<uniform> d: Dims;

const LANES: u32 = 256u;
const NONE: u32 = 0xffffffffu;

var<workgroup> rf: array<f32, 256>;
var<workgroup> ru: array<u32, 256>;
// Probabilities staged for the one lane that sums in index order, as run.c does.
const TILE: u32 = 2048u;
var<workgroup> tile: array<f32, 2048>;

// Loads probs[base .. base + TILE) into `tile`; returns how many are real.
fn load_tile(base: u32, lane: u32) -> u32 {
    for (var i = lane; i < TILE; i += LANES) {
        if (base + i < d.vocab) {
            tile[i] = probs[base + i];
        }
    }
    workgroupBarrier();
    return min(TILE, d.vocab - base);
}

fn broadcast_f(v: f32, lane: u32) -> f32 {
    if (lane == 0u) {
        rf[0] = v;
    }
    let r = workgroupUniformLoad(&rf[0]);
    workgroupBarrier();
    return r;
}

fn broadcast_u(v: u32, lane: u32) -> u32 {
    if (lane == 0u) {
        ru[0] = v;
    }
    let r = workgroupUniformLoad(&ru[0]);
    workgroupBarrier();
    return r;
}

// Σ probs in index order, summed by one lane so it rounds exactly like run.c's loop (a
// parallel sum of 32000 terms differs from it by ~3e-5 relative, enough to move top-p cuts).
fn sequential_sum(lane: u32) -> f32 {
    var acc = 0.0;
    for (var base = 0u; base < d.vocab; base += TILE) {
        let n = load_tile(base, lane);
        if (lane == 0u) {
            for (var k = 0u; k < n; k++) {
                acc += tile[k];
            }
        }
        workgroupBarrier();
    }
    return broadcast_f(acc, lane);
}

fn sum_all(v: f32, lane: u32) -> f32 {
    rf[lane] = v;
    workgroupBarrier();
    for (var w = LANES / 2u; w > 0u; w >>= 1u) {
        if (lane < w) {
            rf[lane] += rf[lane + w];
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&rf[0]);
    workgroupBarrier();
    return r;
}

fn max_all(v: f32, lane: u32) -> f32 {
    rf[lane] = v;
    workgroupBarrier();
    for (var w = LANES / 2u; w > 0u; w >>= 1u) {
        if (lane < w) {
            rf[lane] = max(rf[lane], rf[lane + w]);
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&rf[0]);
    workgroupBarrier();
    return r;
}

fn count_all(v: u32, lane: u32) -> u32 {
    ru[lane] = v;
    workgroupBarrier();
    for (var w = LANES / 2u; w > 0u; w >>= 1u) {
        if (lane < w) {
            ru[lane] += ru[lane + w];
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&ru[0]);
    workgroupBarrier();
    return r;
}

fn min_all(v: u32, lane: u32) -> u32 {
    ru[lane] = v;
    workgroupBarrier();
    for (var w = LANES / 2u; w > 0u; w >>= 1u) {
        if (lane < w) {
            ru[lane] = min(ru[lane], ru[lane + w]);
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&ru[0]);
    workgroupBarrier();
    return r;
}

fn value(i: u32, from_probs: bool) -> f32 {
    if (from_probs) {
        return probs[i];
    }
    return logits[i];
}

// Index of the first maximum: each lane keeps its first maximum, then (value, index) pairs meet.
fn first_max(from_probs: bool, lane: u32) -> u32 {
    var bv = 0.0;
    var bi = NONE;
    for (var i = lane; i < d.vocab; i += LANES) {
        let v = value(i, from_probs);
        if (bi == NONE || v > bv) {
            bv = v;
            bi = i;
        }
    }
    rf[lane] = bv;
    ru[lane] = bi;
    workgroupBarrier();
    for (var w = LANES / 2u; w > 0u; w >>= 1u) {
        if (lane < w) {
            let ov = rf[lane + w];
            let oi = ru[lane + w];
            let mi = ru[lane];
            if (oi != NONE && (mi == NONE || ov > rf[lane] || (ov == rf[lane] && oi < mi))) {
                rf[lane] = ov;
                ru[lane] = oi;
            }
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&ru[0]);
    workgroupBarrier();
    return r;
}

// probs = softmax(logits / temperature): subtract the max, exp, sum in index order, divide.
fn softmax(lane: u32) {
    var mx = F32_LOWEST;
    for (var i = lane; i < d.vocab; i += LANES) {
        mx = max(mx, logits[i] / step.temperature);
    }
    let m = max_all(mx, lane);
    for (var i = lane; i < d.vocab; i += LANES) {
        probs[i] = exp_acc(logits[i] / step.temperature - m);
    }
    storageBarrier();
    let total = sequential_sum(lane);
    for (var i = lane; i < d.vocab; i += LANES) {
        probs[i] = probs[i] / total;
    }
    storageBarrier();
}

// The contiguous block of indices lane `lane` walks when order matters.
fn block(lane: u32) -> vec2<u32> {
    let per = (d.vocab + LANES - 1u) / LANES;
    let lo = min(lane * per, d.vocab);
    return vec2<u32>(lo, min(lo + per, d.vocab));
}

// run.c sample_mult: first index whose cdf exceeds the coin; the last index on rounding. The
// cdf is walked in index order by one lane, as run.c does.
fn multinomial(lane: u32) -> u32 {
    var cdf = 0.0;
    var found = NONE;
    for (var base = 0u; base < d.vocab; base += TILE) {
        let n = load_tile(base, lane);
        if (lane == 0u) {
            for (var k = 0u; k < n; k++) {
                cdf += tile[k];
                if (step.coin < cdf) {
                    found = base + k;
                    break;
                }
            }
        }
        if (broadcast_u(found, lane) != NONE) {
            break;
        }
    }
    let f = broadcast_u(found, lane);
    if (f == NONE) {
        return d.vocab - 1u;
    }
    return f;
}

fn is_candidate(p: f32) -> bool {
    return p >= step.cutoff;
}

// Mass of the candidates whose probability bits are >= vb.
fn mass(vb: u32, lane: u32) -> f32 {
    var s = 0.0;
    for (var i = lane; i < d.vocab; i += LANES) {
        let p = probs[i];
        if (is_candidate(p) && bitcast<u32>(p) >= vb) {
            s += p;
        }
    }
    return sum_all(s, lane);
}

// Number of candidates whose probability bits equal vb.
fn ties(vb: u32, lane: u32) -> u32 {
    var c = 0u;
    for (var i = lane; i < d.vocab; i += LANES) {
        let p = probs[i];
        if (is_candidate(p) && bitcast<u32>(p) == vb) {
            c++;
        }
    }
    return count_all(c, lane);
}

// The largest bit pattern v >= lo with mass(v) > s, given mass(lo) > s. It is the probability
// of the element, in descending order, at which the running sum first exceeds s.
fn crossing(lo0: u32, s: f32, lane: u32) -> u32 {
    var lo = lo0;
    var hi = 0x7f800000u; // +inf: no probability reaches it, so mass(hi) = 0 <= s
    loop {
        if (hi - lo <= 1u) {
            break;
        }
        let mid = lo + (hi - lo) / 2u;
        if (mass(mid, lane) > s) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// Walks the n ties of probability p in index order from the running sum `base`: returns
// (how many are taken until the sum first exceeds s, capped at n; the sum then).
fn walk(base: f32, p: f32, n: u32, s: f32) -> vec2<f32> {
    var cum = base;
    var j = 0u;
    loop {
        if (j >= n) {
            break;
        }
        j++;
        cum += p;
        if (cum > s) {
            break;
        }
    }
    return vec2<f32>(f32(j), cum);
}

// Index of the j-th (1-based) candidate, in index order, whose probability bits equal vb.
fn nth_tie(vb: u32, j: u32, lane: u32) -> u32 {
    let b = block(lane);
    var c = 0u;
    for (var i = b.x; i < b.y; i++) {
        let p = probs[i];
        if (is_candidate(p) && bitcast<u32>(p) == vb) {
            c++;
        }
    }
    ru[lane] = c;
    workgroupBarrier();
    if (lane == 0u) {
        var acc = 0u;
        for (var k = 0u; k < LANES; k++) {
            let v = ru[k];
            ru[k] = acc;
            acc += v;
        }
    }
    workgroupBarrier();
    let before = ru[lane];
    var found = NONE;
    if (before < j && before + c >= j) {
        var seen = before;
        for (var i = b.x; i < b.y; i++) {
            let p = probs[i];
            if (is_candidate(p) && bitcast<u32>(p) == vb) {
                seen++;
                if (seen == j) {
                    found = i;
                    break;
                }
            }
        }
    }
    return min_all(found, lane);
}

// run.c sample_topp.
fn topp(lane: u32) -> u32 {
    var n_cand = 0u;
    for (var i = lane; i < d.vocab; i += LANES) {
        if (is_candidate(probs[i])) {
            n_cand++;
        }
    }
    if (count_all(n_cand, lane) == 0u) {
        return first_max(true, lane);
    }
    // The kept prefix ends with the floor_j-th tie of probability bits floor_b.
    let all = mass(bitcast<u32>(step.cutoff), lane);
    var floor_b = 0u;
    var floor_j = 0u;
    var cum = all;
    if (all <= step.topp) {
        var lowest = NONE;
        for (var i = lane; i < d.vocab; i += LANES) {
            let p = probs[i];
            if (is_candidate(p)) {
                lowest = min(lowest, bitcast<u32>(p));
            }
        }
        floor_b = min_all(lowest, lane);
        floor_j = ties(floor_b, lane);
    } else {
        floor_b = crossing(bitcast<u32>(step.cutoff), step.topp, lane);
        let w = walk(mass(floor_b + 1u, lane), bitcast<f32>(floor_b), ties(floor_b, lane), step.topp);
        floor_j = u32(w.x);
        cum = w.y;
    }
    let r = step.coin * cum;
    var pick_b = floor_b;
    var pick_j = floor_j;
    if (mass(floor_b, lane) > r) {
        pick_b = crossing(floor_b, r, lane);
        let w = walk(mass(pick_b + 1u, lane), bitcast<f32>(pick_b), ties(pick_b, lane), r);
        pick_j = u32(w.x);
        if (pick_b == floor_b) {
            pick_j = min(pick_j, floor_j);
        }
    }
    return nth_tie(pick_b, pick_j, lane);
}

@compute @workgroup_size(256)
fn argmax(@builtin(local_invocation_id) lid: vec3<u32>) {
    let tok = first_max(false, lid.x);
    if (lid.x == 0u) {
        tokens[step.pos0 + 1u] = tok;
    }
}

@compute @workgroup_size(256)
fn sample(@builtin(local_invocation_id) lid: vec3<u32>) {
    softmax(lid.x);
    var tok = 0u;
    if (step.mode == 2u) {
        tok = topp(lid.x);
    } else {
        tok = multinomial(lid.x);
    }
    if (lid.x == 0u) {
        tokens[step.pos0 + 1u] = tok;
    }
}
