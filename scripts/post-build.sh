#!/usr/bin/env bash
# Trunk's post_build hook (Trunk.toml): the threaded engine worker, then sw.js over every file.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${TRUNK_STAGING_DIR:?run by trunk}
profile=debug
[ "${TRUNK_PROFILE:-}" = release ] && profile=release
bash "$here/threads-build.sh" "$dir" "$profile"
bash "$here/pwa-hook.sh" "$dir"
