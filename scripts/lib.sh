# Shared by setup.sh, serve.sh and test.sh: repository root, PATH and logging. Source it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# cargo-installed tools (trunk, wasm-bindgen) and npm tools (wasm-opt from binaryen@132).
# node_modules/.bin comes first so Trunk never picks up Debian's binaryen (it breaks the wasm).
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export DEBIAN_FRONTEND=noninteractive

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# wgpu's Vulkan loader wants a private runtime dir; give it one when the session has none.
ensure_runtime_dir() {
    if [[ -z "${XDG_RUNTIME_DIR:-}" || ! -d "${XDG_RUNTIME_DIR}" || ! -w "${XDG_RUNTIME_DIR}" ]]; then
        XDG_RUNTIME_DIR="$(mktemp -d -t tinylm-xdg-XXXXXX)"
        chmod 700 "$XDG_RUNTIME_DIR"
        export XDG_RUNTIME_DIR
    fi
}
