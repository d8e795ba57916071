#!/usr/bin/env bash
# Install the system packages canvass needs when they are missing and we may: as root on
# Debian/Ubuntu. Elsewhere, say what is missing.
#   scripts/system-deps.sh          what `make run` needs: ffmpeg, espeak-ng, redis-server
#   scripts/system-deps.sh --tests  also what `make test` needs: Debian's chromium, which the
#                                   console's browser tests drive (Playwright never downloads one)
set -euo pipefail

declare -A needs=( [ffmpeg]=ffmpeg [ffprobe]=ffmpeg [espeak-ng]=espeak-ng [redis-server]=redis-server )
if [ "${1:-}" = "--tests" ]; then
  needs[chromium]=chromium
fi
missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
# Headless Chromium draws text with whatever fonts the machine has; a bare one has none.
if [ "${1:-}" = "--tests" ] && [ -z "$(find /usr/share/fonts -name '*.[ot]tf' -print -quit 2>/dev/null)" ]; then
  missing+=(fonts-dejavu-core)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-deps: missing ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
