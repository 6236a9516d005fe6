#!/usr/bin/env bash
# The threaded engine worker (issue 20): the worker binary built again with wasm threads
# (atomics, a shared imported memory) into worker_mt.js / worker_mt_bg.wasm beside Trunk's
# plain worker. The page starts it (worker_mt_loader.js) only where it is cross-origin isolated.
#   bash scripts/threads-build.sh DIR [release|debug]   (Trunk's post_build hook passes both)
# std itself must be rebuilt with atomics (-Z build-std; stable rustc with RUSTC_BOOTSTRAP, as
# docs/wasm-threads.md explains), so it has its own target folder.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$here/scripts/lib.sh"
dir=${1:?give the build folder}
profile=${2:-release}
target_dir="$here/target/threads"
flags=(
  -C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals
  --cfg 'getrandom_backend="wasm_js"'
  # A shared memory the loader creates and hands to every thread; 4 GiB is wasm32's ceiling.
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
  # wasm-bindgen's thread start-up sets up each thread's thread-locals with these.
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
)
args=(--target wasm32-unknown-unknown -p tinylm-app --bin worker -Z build-std=std,panic_abort)
[ "$profile" = release ] && args+=(--release)
(
  cd "$here"
  export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir"
  CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f'; echo "${flags[*]}")
  export CARGO_ENCODED_RUSTFLAGS
  cargo build --offline "${args[@]}"
)
wasm-bindgen --target no-modules --no-typescript --out-dir "$dir" --out-name worker_mt \
  "$target_dir/wasm32-unknown-unknown/$profile/worker.wasm"
if [ "$profile" = release ]; then
  # The features rustc 1.95 emits for this target, threads and SIMD included.
  wasm-opt -O3 --enable-threads --enable-simd --enable-bulk-memory --enable-mutable-globals \
    --enable-sign-ext --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "$dir/worker_mt_bg.wasm" -o "$dir/worker_mt_bg.wasm"
fi
echo "threads-build: worker_mt.js and worker_mt_bg.wasm ($(stat -c %s "$dir/worker_mt_bg.wasm") bytes)"
