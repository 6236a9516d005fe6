#!/usr/bin/env bash
# Trunk's post_build hook (Trunk.toml): the threaded engine worker, then sw.js over every file.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${TRUNK_STAGING_DIR:?run by trunk}
profile=debug
[ "${TRUNK_PROFILE:-}" = release ] && profile=release
if [ -n "${TINYLM_THREADS_FROM:-}" ]; then
  # A build whose threaded worker is already made (deploy.test.mjs's second build of the same
  # code): its two files do not depend on the page's URLs, so they are copied, not rebuilt.
  cp "$TINYLM_THREADS_FROM/worker_mt.js" "$TINYLM_THREADS_FROM/worker_mt_bg.wasm" "$dir/"
else
  bash "$here/threads-build.sh" "$dir" "$profile"
fi
bash "$here/pwa-hook.sh" "$dir"
