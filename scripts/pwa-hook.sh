#!/usr/bin/env bash
# Trunk post_build hook (see Trunk.toml): writes sw.js into the build from app/web/sw.js with
# the list of built files to precache and a version that is a hash of all of them, so any
# changed asset gives a new service worker (and a new cache). Runs standalone too:
#   bash scripts/pwa-hook.sh DIR     (re-stamps an existing build in DIR)
set -euo pipefail
dir=${1:-${TRUNK_STAGING_DIR:?run by trunk, or give the build folder}}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$dir"
# A build-time hub override (scripts/set-hub.mjs): before the files are hashed below.
if [ -n "${TINYLM_HUB:-}" ]; then
  # shellcheck disable=SC2086 # TINYLM_HUB_HOSTS is a space-separated list of hosts.
  node "$here/scripts/set-hub.mjs" . "$TINYLM_HUB" ${TINYLM_HUB_HOSTS:-}
fi
# Every file except the service worker itself, sorted, with paths relative to the site root.
mapfile -t files < <(find . -type f ! -name sw.js | sed 's|^\./||' | LC_ALL=C sort)
version=$(for f in "${files[@]}"; do printf '%s  ' "$f"; sha256sum < "$f"; done | sha256sum | cut -c1-16)
list=$(printf '"%s",' "${files[@]}")
# "./" is the page itself (the start URL); index.html serves it.
sed -e "s|__VERSION__|$version|" -e "s|__FILES__|[\"\",${list%,}]|" "$here/app/web/sw.js" > sw.js
echo "pwa-hook: sw.js version $version, ${#files[@]} files precached"
