// common.wgsl — prepended to every kernel by engine/src/gpu/kernels.rs.
//
// Group 1, binding 0: `step`, the per-submit uniform (one 256-byte slot per batch chunk plus one
// for the head, chosen with a dynamic offset). It is the only thing written per token; every
// other size is fixed per bind group at load time.

struct Step {
    // Rows (token positions) in this batch.
    n_rows: u32,
    // Position of row 0; rows are the consecutive positions pos0 .. pos0 + n_rows - 1.
    pos0: u32,
    // First input row the classifier reads (the last prompt row after a prefill).
    in_row0: u32,
    // Sampler: 0 argmax, 1 multinomial, 2 top-p.
    mode: u32,
    // run.c's coin, drawn on the CPU by `Rng::next_f32`.
    coin: f32,
    temperature: f32,
    topp: f32,
    // Top-p candidate cutoff (1 - topp) / (vocab - 1), computed on the CPU as run.c does.
    cutoff: f32,
    // 1 when each row is its own sequence (several stories in one pass): every row is then at
    // position pos0, reads its token from tokens[row], and keeps its KV cache `kv_stride` floats
    // after the previous row's in each layer's cache buffer; 0 for the rows of one sequence.
    seq_rows: u32,
    kv_stride: u32,
    _p0: u32,
    _p1: u32,
}

@group(1) @binding(0) var<uniform> step: Step;

// Row t's position, and where its KV cache starts in a layer's cache buffer.
fn row_pos(t: u32) -> u32 {
    return step.pos0 + select(t, 0u, step.seq_rows != 0u);
}
fn row_kv(t: u32) -> u32 {
    return select(0u, t * step.kv_stride, step.seq_rows != 0u);
}

// The lowest finite f32: the start of a running maximum (inf cannot be written in WGSL).
const F32_LOWEST: f32 = -0x1.fffffep+127f;

// e^x to about 1 ulp. WGSL's builtin exp only promises 3 + 2|x| ulp and some drivers (Mesa
// llvmpipe) are ~3e-5 relative off, enough to flip top-p cuts against the CPU's expf.
// x = k ln2 + r with ln2 split in two (the high part has 16 trailing zero bits, so k * LN2_HI
// is exact), e^r by its degree-7 Taylor polynomial on |r| <= ln2/2 (error < 1e-8), scaled by 2^k.
fn exp_acc(x: f32) -> f32 {
    if (x < -104.0) {
        return 0.0;
    }
    if (x > 88.8) {
        // The largest f32 rather than inf: WGSL rejects constant expressions that overflow
        // (Chromium's compiler enforces it), and no caller needs more than "huge".
        return 0x1.fffffep+127f;
    }
    let k = round(x * 1.4426950408889634);
    let r = (x - k * 0.693145751953125) - k * 1.4286068203094173e-6;
    var p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return ldexp(p, i32(k));
}

// The flat index of an invocation in a 2-D grid of 64-wide workgroups (x, then y rows): the
// training kernels' one-invocation-per-item dispatches, which may exceed 65535 workgroups in x.
fn flat_invocation(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
    return gid.y * nw.x * 64u + gid.x;
}
