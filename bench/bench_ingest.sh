#!/usr/bin/env bash
# Requests/s of POST /_telemetry/v1/events (20-event batches, bench/wrk_events.lua) against console-proxy's
# standalone app and, in the same run, against a bare Starlette endpoint that only parses the JSON and answers
# 202; both under the same uvicorn settings (one worker, loopback, access log off). Prints both and the ratio.
#
#   bench/bench_ingest.sh                       # DURATION=10s CONNECTIONS=16 THREADS=2
#   DURATION=30s CONNECTIONS=64 bench/bench_ingest.sh
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
command -v wrk >/dev/null || { echo "wrk not found (apt-get install -y wrk)" >&2; exit 1; }

STATE=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$STATE"
}
trap cleanup EXIT

# run NAME: serve bench/apps.py:NAME, drive it with wrk, print its requests/s.
run() {
  local name=$1 port
  port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  BENCH_STATE_DIR="$STATE/$name" "$PYTHON" -m uvicorn --factory --app-dir "$ROOT/bench" "apps:$name" \
    --host 127.0.0.1 --port "$port" --workers 1 --no-access-log --log-level warning &
  PID=$!
  "$PYTHON" - "$port" <<'PY'
import sys, time, httpx
url = f"http://127.0.0.1:{sys.argv[1]}/_telemetry/v1/events"
for _ in range(200):
    try:
        r = httpx.post(url, json={"events": [{"type": "A/B", "route": "/console"}]})
        if r.status_code == 202:
            break
    except httpx.TransportError:
        pass
    time.sleep(0.05)
else:
    sys.exit("the app did not answer 202")
PY
  local out
  out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$ROOT/bench/wrk_events.lua" "http://127.0.0.1:$port")
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: some answers were not 2xx:" >&2; echo "$out" >&2; exit 1; fi
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

echo "wrk -t $THREADS -c $CONNECTIONS -d $DURATION -s bench/wrk_events.lua, 20 events a request, $(nproc) CPUs"
BARE=$(run bare)
PROXY=$(run proxy)
NODISK=$(run proxy_nodisk)
echo "bare Starlette (parse JSON, 202):        $BARE req/s"
echo "console-proxy (local mode, fsynced):     $PROXY req/s"
awk -v p="$PROXY" -v b="$BARE" 'BEGIN { printf "ratio proxy/bare:                        %.2f\n", p / b }'
echo "for scale, console-proxy with a sink that keeps nothing (no disk): $NODISK req/s"
