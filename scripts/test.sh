#!/usr/bin/env bash
# Runs every test of TinyLM Lab: setup, native engine/CLI tests, clippy, the release web build,
# and the browser tests (headless Chromium against a static server the tests start themselves).
# Every step runs even after a failure; the exit status is non-zero if any step failed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_runtime_dir
# Each run compiles the workspace's crates once (CI's from a clean clone): incremental
# compilation's bookkeeping makes that slower and saves nothing (the engine's library 66 → 42 s
# without it on the 2-core machine). Dependencies are never built incrementally anyway.
export CARGO_INCREMENTAL=0

declare -a SUMMARY=()
FAILED=0

# step NAME COMMAND...: runs and times one step, recording the outcome for the summary.
step() {
    local name=$1
    shift
    log "$name: $*"
    local t0=$SECONDS
    if "$@"; then
        SUMMARY+=("$(printf 'PASS  %-28s %4ds' "$name" $((SECONDS - t0)))")
    else
        SUMMARY+=("$(printf 'FAIL  %-28s %4ds' "$name" $((SECONDS - t0)))")
        FAILED=1
    fi
}

skip() {
    SUMMARY+=("$(printf 'SKIP  %-28s  (%s)' "$1" "$2")")
    FAILED=1
}

summary() {
    printf '\n==> summary (%ds in all)\n' "$SECONDS"
    printf '%s\n' "${SUMMARY[@]}"
    if ((FAILED)); then echo "RESULT: FAILED"; else echo "RESULT: all tests passed"; fi
}

step "setup" bash scripts/setup.sh
if [[ ${SUMMARY[-1]} == FAIL* ]]; then
    summary
    exit 1
fi

# Formatting (rustfmt.toml): seconds, and it keeps diffs about content.
step "cargo fmt --check" cargo fmt --all -- --check
# No module of engine/src, app/src/page or app/src/worker imports another in a circle.
step "import cycles" python3 scripts/check-imports.py

# Lints deny warnings, and run inside the builds: clippy-driver as the workspace's rustc, as
# `cargo clippy` runs it, with -D warnings. A separate `cargo clippy` would check every dependency
# once more (2 minutes natively, 5 for wasm32 on a 2-core machine). TINYLM_CLIPPY=0 skips them.
lint=""
clippy=()
if [[ "${TINYLM_CLIPPY:-1}" != 0 ]]; then
    clippy=(env RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
        CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__")
    lint=" with clippy"
fi

# Engine, CLI and the app's pure parts (protocol, links, form checks, the worker's model store)
# natively, in one build so shared crates compile once; linted as they compile (every target:
# libraries, binaries, unit and integration tests). The page itself is wasm-only and is tested
# in the browser below.
step "cargo test (engine, cli, app)$lint" "${clippy[@]}" cargo test --workspace --no-fail-fast
# The engine's GPU path on WebGPU in headless Chromium (SwiftShader), compared with the CPU path.
step "engine on WebGPU (wasm, Chromium)" env WASM_BINDGEN_TEST_TIMEOUT=600 \
    CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p tinylm-engine --target wasm32-unknown-unknown --test gpu_browser --test gpu_lora_browser
# The CPU path's simd128 kernels against the scalar reference, and full training against the
# PyTorch run, compiled to wasm and run in Node (reuses the engine build of the step above).
step "engine CPU kernels (wasm simd128, Node)" env CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p tinylm-engine --target wasm32-unknown-unknown --test fast_kernels --test pretrain_wasm --test gemm
# The app's page code and the engine for wasm32 are linted inside the release build, the same
# way. Exported, so that deploy.test.mjs's second build of the same code finds cargo's build
# under the same rustc.
if ((${#clippy[@]})); then
    export "${clippy[@]:1}"
fi

rm -rf dist
step "trunk build --release$lint" trunk build --release --offline
if [[ -f dist/index.html ]]; then
    # The CLI the browser tests compare with is the one `cargo test` just built (a separate
    # dev-profile build would recompile every dependency).
    cli="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tinylm"
    [[ -x "$cli" ]] && export TINYLM_CLI="$cli"
    step "browser tests (e2e)" node --test --test-concurrency=1 tests/e2e/
    page_wasm=$(gzip -9c dist/app-*_bg.wasm | wc -c)
    worker_wasm=$(gzip -9c dist/worker_bg.wasm | wc -c)
    mt_wasm=$(gzip -9c dist/worker_mt_bg.wasm | wc -c)
    js=$(cat dist/app-*.js dist/boot.js dist/worker.js dist/worker_loader.js | gzip -9c | wc -c)
    SUMMARY+=("$(printf 'info  gzipped: page wasm %d B, worker wasm %d B (threaded %d B), js %d B' "$page_wasm" "$worker_wasm" "$mt_wasm" "$js")")
else
    skip "browser tests (e2e)" "no dist/index.html"
fi

summary
exit "$FAILED"
