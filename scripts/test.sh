#!/usr/bin/env bash
# make test: lint, then the whole suite. Database tests run on SQLite and PostgreSQL
# (TEST_DATABASE_URL); with CI=true an unreachable PostgreSQL fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

if [ -z "${TEST_REDIS_URL:-}" ]; then
  base=$(scripts/ensure-redis.sh)
  # Tests use their own database number, away from make run's data (they flush it).
  TEST_REDIS_URL="${base%/*}/13"
fi
export TEST_REDIS_URL
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"

if ! "$bin/python" - <<'PY' 2>/dev/null
import os, psycopg
psycopg.connect(os.environ["TEST_DATABASE_URL"], connect_timeout=3).close()
PY
then
  # A stopped local cluster is started when we may (root, Debian's pg_ctlcluster).
  if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    for v in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 || true
    done
  fi
fi

echo "== lint (ruff)"
"$bin/ruff" check .
"$bin/ruff" format --check .
echo "== types (mypy, the pure flow engine)"
"$bin/mypy" bot/engine
echo "== tests (redis: $TEST_REDIS_URL, postgresql: $TEST_DATABASE_URL)"
"$bin/python" -m pytest "$@"
