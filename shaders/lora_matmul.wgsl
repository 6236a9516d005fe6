// lora_matmul.wgsl — C = scale · op(A) · op(B) (or C += …) for LoRA training, with every
// operand addressed by an offset and two strides, so one kernel serves the forward `x·Wᵀ`, the
// input gradient `dy·W` and the weight gradient `dyᵀ·x` without transposed copies.
//
// Bindings (group 0): 0 `a` read, 1 `b` read, 2 `c` read_write, 3 `d` uniform `Dims`.
// A(i, k) = a[a_off + i·a_rs + k·a_cs], B(k, j) = b[b_off + k·b_rs + j·b_cs],
// C(i, j) = c[c_off + i·c_rs + j], for i < m, j < n, summing k < kk in increasing order.
// `accumulate` = 1 adds into C (residual adds and gradient sums), 0 overwrites it.
// Workgroup: a 16 × 16 tile of C, K staged through workgroup memory 16 at a time;
// dispatch (ceil(n / 16), ceil(m / 16)).

struct Dims {
    m: u32, n: u32, kk: u32, accumulate: u32,
    a_off: u32, a_rs: u32, a_cs: u32, scale: f32,
    b_off: u32, b_rs: u32, b_cs: u32, _p0: u32,
    c_off: u32, c_rs: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;

var<workgroup> at: array<f32, 256>; // [16 i][16 k]
var<workgroup> bt: array<f32, 256>; // [16 k][16 j]

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let i = wg.y * 16u + lid.y;
    let j = wg.x * 16u + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < d.kk; k0 += 16u) {
        let ka = k0 + lid.x;
        var av = 0.0;
        if (i < d.m && ka < d.kk) {
            av = a[d.a_off + i * d.a_rs + ka * d.a_cs];
        }
        at[lid.y * 16u + lid.x] = av;
        let kb = k0 + lid.y;
        var bv = 0.0;
        if (j < d.n && kb < d.kk) {
            bv = b[d.b_off + kb * d.b_rs + j * d.b_cs];
        }
        bt[lid.y * 16u + lid.x] = bv;
        workgroupBarrier();
        for (var q = 0u; q < 16u; q++) {
            acc += at[lid.y * 16u + q] * bt[q * 16u + lid.x];
        }
        workgroupBarrier();
    }
    if (i < d.m && j < d.n) {
        let o = d.c_off + i * d.c_rs + j;
        if (d.accumulate != 0u) {
            c[o] = c[o] + acc * d.scale;
        } else {
            c[o] = acc * d.scale;
        }
    }
}
