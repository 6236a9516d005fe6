// A native stand-in for the page's wasm decode on several threads (issue 20; not a test): the
// simd128 kernel's shape (`cpu/fast_wasm.rs` `rows`: four 4-float accumulators, separate multiply
// and add, no FMA) in SSE, over s15m's 60.8 MB of f32 weights on 4 KiB pages (V8 asks for no huge
// pages), split as the engine's pool splits a token: per layer q,k,v (864 rows, 40-row tasks),
// wo (288, 40), w1,w3 (1536, 96), w2 (768, 96), then the classifier (32,000 rows, 448-row tasks);
// every row 288 floats, one parallel loop per product. It tells how fast this kernel streams the
// weights with gcc's code and OpenMP's barriers, so the page's figure can be read against it.
//   gcc -O2 -mno-avx -msse4.2 -fopenmp scripts/wasm_kernel_analog.c -o /tmp/analog
//   /tmp/analog THREADS TOUCH      (TOUCH 1: one load 16 KiB ahead where a page begins, as the
//                                   engine's one-thread path does)
#define _GNU_SOURCE
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "kernel_bench/row_sse.h"

#define COLS 288
#define AHEAD 16384
static int touch;

static void rows(float *out, const float *x, const float *w, int n) {
  const char *base = (const char *)w;
  size_t span = (size_t)n * COLS * 4;
  for (int r = 0; r < n; r++) {
    if (touch) {
      uintptr_t at = (uintptr_t)base + (size_t)r * COLS * 4 + AHEAD;
      size_t page = ((at + 4095) & ~(uintptr_t)4095) - (uintptr_t)base;
      if (page < (size_t)(r + 1) * COLS * 4 + AHEAD && page < span) (void)*(volatile const char *)(base + page);
    }
    out[r] = row_dot(w + (size_t)r * COLS, x, COLS);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: analog THREADS TOUCH\n"), 2;
  int threads = atoi(argv[1]);
  touch = atoi(argv[2]);
  const int layer_rows[4] = {864, 288, 1536, 768}, layer_block[4] = {40, 40, 96, 96};
  size_t total = 6 * (864 + 288 + 1536 + 768) + 32000, bytes = total * COLS * 4;
  float *w = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise(w, bytes, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < total * COLS; i++) w[i] = (float)(i % 1000) * 1e-3f;
  float x[COLS], *out = malloc(total * 4);
  for (int i = 0; i < COLS; i++) x[i] = 1.0f / (i + 1);
  omp_set_num_threads(threads);
  double best = 1e9;
  for (int rep = 0; rep < 7; rep++) {
    double t0 = omp_get_wtime();
    for (int token = 0; token < 100; token++) {
      size_t first = 0;
      for (int p = 0; p < 25; p++) {
        int n = p == 24 ? 32000 : layer_rows[p % 4], block = p == 24 ? 448 : layer_block[p % 4];
#pragma omp parallel for schedule(dynamic, 1)
        for (int b = 0; b < (n + block - 1) / block; b++) {
          int r0 = b * block, m = r0 + block > n ? n - r0 : block;
          rows(out + first + r0, x, w + (first + r0) * COLS, m);
        }
        first += n;
      }
    }
    double t = (omp_get_wtime() - t0) / 100;
    if (t < best) best = t;
  }
  printf("threads %d, touch %d: %.1f tok/s (%.1f GB/s of weights), best of 7 × 100 tokens\n", threads, touch, 1 / best, bytes / best / 1e9);
  return 0;
}
