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
echo "== demo voice line (the sandbox phone calls it)"
"$bin/canvass" voice lines add +919999900003 --flow ivr_survey
echo "== demo templates"
"$bin/canvass" templates load campaigns/examples/*.template.yaml
if [ "${CANVASS_PROVIDER:-sandbox}" = sandbox ]; then
  "$bin/canvass" templates submit booth_reminder
fi
echo
echo "== canvass: open http://127.0.0.1:5000 and sign in as admin@canvass.local"
echo "   (the password is printed above the first time; canvass users password admin@canvass.local makes a new one)"
echo "   Talk to the demo flows as a voter:  .venv/bin/canvass sandbox reply 9876543210 booth"
echo "   Take a call from the IVR survey flow:  http://127.0.0.1:5000/sandbox/phone"
echo "   Send a demo campaign:  .venv/bin/canvass campaigns create campaigns/examples/booth_reminder_whatsapp.yaml"
echo "                          .venv/bin/canvass campaigns launch ID && .venv/bin/canvass campaigns status ID --watch"
exec "$bin/canvass" up --host 127.0.0.1 --port "${PORT:-5000}"
