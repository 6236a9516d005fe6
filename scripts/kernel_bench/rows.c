// The page's simd128 `rows` kernel (engine/src/cpu/fast_wasm.rs) in SSE, over s15m's classifier
// (32000 × 288 f32), its weights in one of three kinds of memory (argv[1]): `anon` (anonymous
// 4 KiB pages, what a wasm memory is), `file` (a mapped file, as run.c reads its checkpoint: the
// page cache, which ext4 may hold in large folios) or `huge` (anonymous, MADV_HUGEPAGE). Built
// with -fopenmp the rows split over OMP_NUM_THREADS threads. Prints ms per product and GB/s.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "row_sse.h"

__attribute__((noinline)) static void rows(float *out, int nrows, const float *x, const float *w, int n) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < nrows; r++) out[r] = row_dot(w + (size_t)r * n, x, n);
}

int main(int argc, char **argv) {
    const int n = 288, nr = 32000;
    const size_t sz = (size_t)4 * n * nr;
    const char *kind = argc > 1 ? argv[1] : "anon";
    float *x = aligned_alloc(64, 4 * n), *o = malloc(4 * nr), *w;
    if (kind[0] == 'f') {
        // argv[2]: a file of at least sz bytes (run.sh writes one).
        int fd = open(argv[2], O_RDONLY);
        w = mmap(0, sz, PROT_READ, MAP_PRIVATE, fd, 0);
    } else {
        w = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        // Small pages unless asked, whatever the system's transparent-huge-page default.
        madvise(w, sz, kind[0] == 'h' ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        for (size_t i = 0; i < (size_t)n * nr; i++) w[i] = (i % 7) * 0.1f;
    }
    if (w == MAP_FAILED) return 1;
    for (int i = 0; i < n; i++) x[i] = i * 0.01f;
    for (int i = 0; i < 300; i++) rows(o, nr, x, w, n);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    const int R = 300;
    for (int i = 0; i < R; i++) rows(o, nr, x, w, n);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / R;
    printf("%s %.3f ms %.1f GB/s (check %f)\n", kind, ms, sz / ms / 1e6, o[5]);
    return 0;
}
