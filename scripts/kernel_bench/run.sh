#!/usr/bin/env bash
# The page's matrix–vector kernel alone, by kind of memory (issue 20; not a test): V8 (Node, the
# engine of Chromium's workers) against gcc on the same loop, on one and two threads (the rows
# split in halves, one barrier a product in C, none in wasm), the C loop over its weights in
# anonymous memory (as a wasm memory's), a mapped file (as run.c reads its checkpoint) and
# MADV_HUGEPAGE memory. ROUNDS alternating rounds; medians.
#   bash scripts/kernel_bench/run.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-9}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A shared, imported memory, as the threaded worker's (atomics are unstable: RUSTC_BOOTSTRAP).
RUSTC_BOOTSTRAP=1 rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -C opt-level=3 \
    -C target-feature=+simd128,+atomics,+bulk-memory -C panic=abort -C link-arg=--import-memory \
    -C link-arg=--shared-memory -C link-arg=--max-memory=268435456 "$here/rows.rs" -o "$tmp/rows.wasm" 2>/dev/null
gcc -O2 -msse4.2 "$here/rows.c" -o "$tmp/rows1"
gcc -O2 -msse4.2 -fopenmp "$here/rows.c" -o "$tmp/rows2"
# The weights as a file for `file`: 32000 × 288 floats (contents do not matter to the timing).
head -c $((4 * 288 * 32000)) /dev/urandom > "$tmp/w.bin"
for ((r = 0; r < rounds; r++)); do
    node "$here/run.mjs" "$tmp/rows.wasm" 1 | sed 's/^/1 /'
    node "$here/run.mjs" "$tmp/rows.wasm" 2 | sed 's/^/2 /'
    for kind in anon file huge; do
        OMP_NUM_THREADS=1 "$tmp/rows1" $kind "$tmp/w.bin" | sed 's/^/1 c-/'
        OMP_NUM_THREADS=2 "$tmp/rows2" $kind "$tmp/w.bin" | sed 's/^/2 c-/'
    done
done | awk '{k = $1 " thread(s), " $2; g[k] = g[k] " " $5} END {for (k in g) print k ":" g[k]}' | sort |
    while read -r line; do
        name=${line%%:*}
        median=$(echo "${line#*:}" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
        echo "$name: median $median GB/s (${line#*:} )"
    done
