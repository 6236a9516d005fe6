// The page's simd128 `rows` kernel (engine/src/cpu/fast_wasm.rs) for one row, in SSE: four
// 4-float accumulators, multiply then add (no FMA), summed as the wasm kernel sums them, then
// the tail. Shared by rows.c and ../wasm_kernel_analog.c.
#include <immintrin.h>

static inline float row_dot(const float *row, const float *x, int n) {
    int body = n - n % 16;
    __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < body; j += 16) {
        a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(row + j), _mm_loadu_ps(x + j)));
        a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(row + j + 4), _mm_loadu_ps(x + j + 4)));
        a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_loadu_ps(row + j + 8), _mm_loadu_ps(x + j + 8)));
        a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_loadu_ps(row + j + 12), _mm_loadu_ps(x + j + 12)));
    }
    float l[4];
    _mm_storeu_ps(l, _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)));
    float s = (l[0] + l[1]) + (l[2] + l[3]);
    for (int j = body; j < n; j++) s += row[j] * x[j];
    return s;
}
