#!/usr/bin/env bash
# make run: migrate, load demo data, start web + worker + scheduler in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
REDIS_URL=$(scripts/ensure-redis.sh)
export REDIS_URL
bin=.venv/bin
echo "== database"
"$bin/canvass" db upgrade
echo "== demo data"
"$bin/canvass" demo
echo "== demo flows"
export CANVASS_ACTIONS="${CANVASS_ACTIONS:-flows.actions}"
"$bin/canvass" flows load
echo
echo "== canvass: open http://127.0.0.1:5000 and sign in as admin@canvass.local"
echo "   (the password is printed above the first time; canvass users password admin@canvass.local makes a new one)"
echo "   Talk to the demo flows as a voter:  .venv/bin/canvass sandbox reply 9876543210 booth"
exec "$bin/canvass" up --host 127.0.0.1 --port "${PORT:-5000}"
