#!/usr/bin/env bash
# Copy the console's JavaScript packages from npm into web/static/vendor/ (the console
# serves them itself: never from a CDN). The versions are pinned in package-lock.json.
# Without npm, the files already vendored are kept; with none, Debian's nodejs and npm are
# installed when we may (root), else we stop and say what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=web/static/vendor
# package file -> name in web/static/vendor/
declare -A files=( [chart.js/dist/chart.umd.min.js]=chart.umd.min.js )

have_all() {
  local f
  for f in "${files[@]}"; do [ -s "$out/$f" ] || return 1; done
}

if ! command -v npm >/dev/null 2>&1; then
  if have_all; then
    echo "vendor-js: npm not found; keeping the files already in $out"
    exit 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "vendor-js: installing nodejs npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "vendor-js: npm is missing and $out is empty; install Node.js and npm (e.g. sudo apt-get install nodejs npm)" >&2
    exit 1
  fi
fi

npm ci --no-audit --no-fund --loglevel=error
mkdir -p "$out"
for src in "${!files[@]}"; do
  cp "node_modules/$src" "$out/${files[$src]}"
done
echo "vendor-js: ${files[*]} -> $out"
