#!/usr/bin/env bash
# One command that sets up and runs the app: http://127.0.0.1:8080/ (PORT=… to change).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
PORT="${PORT:-8080}"

bash scripts/setup.sh
log "trunk build --release (bundles models/stories260K.bin and models/tok512.bin)"
trunk build --release --offline
log "serving dist/ at http://127.0.0.1:$PORT/"
exec node tests/e2e/server.mjs dist "$PORT"
