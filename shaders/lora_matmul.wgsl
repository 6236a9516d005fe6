// lora_matmul.wgsl — C = scale · op(A) · op(B) (or C += …) for LoRA training, with every
// operand addressed by an offset and two strides, so one kernel serves the forward `x·Wᵀ`, the
// input gradient `dy·W` and the weight gradient `dyᵀ·x` without transposed copies.
//
// Bindings (group 0): 0 `a` read, 1 `b` read, 2 `c` read_write, 3 `d` uniform `Dims`.
// A(i, k) = a[a_off + i·a_rs + k·a_cs], B(k, j) = b[b_off + k·b_rs + j·b_cs],
// C(i, j) = c[c_off + i·c_rs + j], for i < m, j < n, summing k < kk in increasing order.
// `accumulate` = 1 adds into C (residual adds and gradient sums), 0 overwrites it.
// Workgroup: 16 × 16 lanes computing a 64 × 64 tile of C (4 × 4 outputs per lane, so few
// workgroups and barriers), K staged through workgroup memory 16 at a time;
// dispatch (ceil(n / 64), ceil(m / 64)).

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

var<workgroup> at: array<f32, 1024>; // [64 i][16 k]
var<workgroup> bt: array<f32, 1024>; // [16 k][64 j]

// Slot `idx` (< 1024) of a 64 × 16 operand tile as (row or column within 64, k within 16).
// Neighbouring lanes take neighbouring addresses: along k when k is the operand's contiguous
// direction, otherwise along the 64.
fn tile_slot(idx: u32, k_contiguous: bool) -> vec2<u32> {
    if (k_contiguous) {
        return vec2<u32>(idx / 16u, idx % 16u);
    }
    return vec2<u32>(idx % 64u, idx / 64u);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let i0 = wg.y * 64u;
    let j0 = wg.x * 64u;
    let tid = lid.y * 16u + lid.x;
    // Lane (x, y) owns rows i0 + y + 16·r and columns j0 + x + 16·cc, r, cc < 4: acc[r][cc]
    // (vectors, not an indexed array, so they stay in registers).
    var acc = array<vec4<f32>, 4>();
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    for (var k0 = 0u; k0 < d.kk; k0 += 16u) {
        for (var e = 0u; e < 4u; e++) {
            let idx = e * 256u + tid;
            let ak = tile_slot(idx, d.a_cs == 1u); // (i, k)
            var av = 0.0;
            if (i0 + ak.x < d.m && k0 + ak.y < d.kk) {
                av = a[d.a_off + (i0 + ak.x) * d.a_rs + (k0 + ak.y) * d.a_cs];
            }
            at[ak.x * 16u + ak.y] = av;
            let bk = tile_slot(idx, d.b_cs != 1u); // (j, k)
            var bv = 0.0;
            if (j0 + bk.x < d.n && k0 + bk.y < d.kk) {
                bv = b[d.b_off + (k0 + bk.y) * d.b_rs + (j0 + bk.x) * d.b_cs];
            }
            bt[bk.y * 64u + bk.x] = bv;
        }
        workgroupBarrier();
        for (var q = 0u; q < 16u; q++) {
            let y = lid.y * 16u + q;
            let a4 = vec4<f32>(at[y], at[y + 256u], at[y + 512u], at[y + 768u]);
            let x = q * 64u + lid.x;
            let b4 = vec4<f32>(bt[x], bt[x + 16u], bt[x + 32u], bt[x + 48u]);
            acc0 += a4.x * b4;
            acc1 += a4.y * b4;
            acc2 += a4.z * b4;
            acc3 += a4.w * b4;
        }
        workgroupBarrier();
    }
    acc[0] = acc0;
    acc[1] = acc1;
    acc[2] = acc2;
    acc[3] = acc3;
    for (var r = 0u; r < 4u; r++) {
        let i = i0 + lid.y + 16u * r;
        for (var cc = 0u; cc < 4u; cc++) {
            let j = j0 + lid.x + 16u * cc;
            if (i < d.m && j < d.n) {
                let o = d.c_off + i * d.c_rs + j;
                let v = acc[r][cc] * d.scale;
                if (d.accumulate != 0u) {
                    c[o] = c[o] + v;
                } else {
                    c[o] = v;
                }
            }
        }
    }
}
