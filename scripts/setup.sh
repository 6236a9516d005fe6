#!/usr/bin/env bash
# Installs everything TinyLM Lab needs on Debian 12 (run as root), from package registries only.
# Idempotent: each tool is installed only when missing or at the wrong version, so re-runs
# take seconds. Non-interactive (works with CI=true and no stdin).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

APT_PACKAGES=(chromium chromium-driver mesa-vulkan-drivers libvulkan1)

apt_missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

install_apt() {
    local want=("${APT_PACKAGES[@]}")
    command -v node >/dev/null && command -v npm >/dev/null || want+=(nodejs npm)
    local missing
    missing=$(apt_missing "${want[@]}")
    if [[ -z "$missing" ]]; then
        echo "apt packages: already installed"
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "missing apt packages ($missing); run this script as root"
    log "apt-get install $missing"
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q $missing </dev/null
}

# Build tools, not shipped code: skip their fat LTO and single codegen unit (trunk's release
# profile) and optimise lightly, which roughly halves the one-time install on 2 cores.
quick_install() {
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false \
        cargo install "$@" </dev/null
}

install_rust_tools() {
    command -v cargo >/dev/null || die "Rust is not installed: install rustup with Rust 1.95 first"
    if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        echo "wasm32-unknown-unknown: already installed"
    else
        log "rustup target add wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
    # The threaded engine worker rebuilds std with atomics (scripts/threads-build.sh): std's
    # sources, and the crates std itself uses (fetch_std_crates), so that build runs offline.
    if rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
        echo "rust-src: already installed"
    else
        log "rustup component add rust-src"
        rustup component add rust-src
    fi
    if [[ "$(trunk --version 2>/dev/null)" == "trunk $TRUNK_VERSION" ]]; then
        echo "trunk $TRUNK_VERSION: already installed"
    else
        log "cargo install trunk $TRUNK_VERSION (a few minutes on 2 cores, once)"
        quick_install --locked trunk --version "$TRUNK_VERSION"
    fi
    if [[ "$(wasm-bindgen --version 2>/dev/null)" == "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
        echo "wasm-bindgen $WASM_BINDGEN_VERSION: already installed"
    else
        # Not --locked: its lock file names a webpki-roots version the registry no longer has.
        log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
        quick_install --force wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
    fi
}

# npm tools pinned by package-lock.json: binaryen@132 (wasm-opt), playwright-core and axe-core
# (the accessibility test). `npm ci` runs when any of them is missing or at another version.
install_node_tools() {
    local stale have_opt
    stale=$(node -p "Object.entries(require('./package.json').devDependencies).filter(([n, v]) => {
        try { return require('./node_modules/' + n + '/package.json').version !== v } catch { return true }
    }).map(([n]) => n).join(' ')")
    have_opt=$(wasm-opt --version 2>/dev/null || true)
    if [[ -z "$stale" && "$have_opt" == *"version 132"* ]]; then
        echo "npm tools: already installed ($have_opt)"
    else
        log "npm ci (${stale:-binaryen})"
        npm ci --no-audit --no-fund </dev/null
    fi
}

fetch_std_crates() {
    local lib
    lib="$(rustc --print sysroot)/lib/rustlib/src/rust/library"
    log "cargo fetch of std's own crates (for -Z build-std)"
    (cd /tmp && RUSTC_BOOTSTRAP=1 cargo fetch --manifest-path "$lib/Cargo.toml" </dev/null)
}

install_apt
install_rust_tools
install_node_tools
log "cargo fetch (so Trunk can build with --offline)"
cargo fetch </dev/null
fetch_std_crates
echo "setup: done"
