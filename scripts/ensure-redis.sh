#!/usr/bin/env bash
# Print the URL of a Redis that answers: $REDIS_URL, else the local default, else a
# private redis-server started here on a free port (kept under var/redis/).
set -euo pipefail
cd "$(dirname "$0")/.."
py="$PWD/.venv/bin/python"

ping() { "$py" - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PY
}

# LOCAL_REDIS_URL only exists so that a test can pretend no local Redis answers.
for url in "${REDIS_URL:-}" "${LOCAL_REDIS_URL:-redis://127.0.0.1:6379/0}"; do
  if [ -n "$url" ] && ping "$url"; then echo "$url"; exit 0; fi
done

dir="${CANVASS_VAR_DIR:-$PWD/var}/redis"
mkdir -p "$dir"
if [ -f "$dir/port" ]; then
  url="redis://127.0.0.1:$(cat "$dir/port")/0"
  if ping "$url"; then echo "$url"; exit 0; fi
fi
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
echo "$port" > "$dir/port"
url="redis://127.0.0.1:$port/0"
for _ in $(seq 50); do ping "$url" && { echo "ensure-redis: started a private redis-server on port $port" >&2; echo "$url"; exit 0; }; sleep 0.1; done
echo "ensure-redis: redis-server on port $port did not answer; see $dir/redis.log" >&2
exit 1
