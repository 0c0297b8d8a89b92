#!/usr/bin/env bash
# Compare WSGI servers for the chat API with wrk: POST /api/chat (model) and POST /api/echo (no model).
# Usage: benchmarks/bench_servers.sh [seconds] [rounds]   (needs wrk, gunicorn and waitress: pip install waitress)
# Each server is started in the background, measured, and stopped by its pid; rounds interleave the servers, because
# on a shared machine one run alone says little.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-1}
PORT=${PORT:-8765}
MODEL=${CHATBOT_MODEL:-models/chatbot.pt}
export CHATBOT_MODEL=$MODEL CHATBOT_BENCH_ENDPOINT=1 CHATBOT_LOG_LEVEL=WARNING OMP_NUM_THREADS=1
BIN=.venv/bin

wait_ready() {
  for _ in $(seq 100); do
    curl -sf -m 1 "http://127.0.0.1:$PORT/api/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start" >&2
  return 1
}

measure() {  # name, command...
  local name=$1
  shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  wait_ready
  for endpoint in chat echo; do
    echo "== $name  POST /api/$endpoint"
    wrk -t2 -c8 -d"${SECONDS_PER_RUN}s" --latency -s benchmarks/post_chat.lua "http://127.0.0.1:$PORT/api/$endpoint" |
      grep -E "Requests/sec|^ +(50|99)%|Socket errors|Non-2xx"
  done
  kill -TERM "$pid"
  wait "$pid" || true
}

APP='app:create_app()'
echo "$(getconf _NPROCESSORS_ONLN) cores; $(uptime)"
for round in $(seq "$ROUNDS"); do
  echo "### round $round"
  measure "gunicorn sync, 2 workers" $BIN/gunicorn -b 127.0.0.1:$PORT -w 2 -k sync --no-control-socket "$APP"
  measure "gunicorn gthread, 2 workers x 4 threads, keep-alive 5 s" \
    $BIN/gunicorn -b 127.0.0.1:$PORT -w 2 -k gthread --threads 4 --keep-alive 5 --no-control-socket "$APP"
  measure "waitress, 1 process x 4 threads" $BIN/waitress-serve --listen=127.0.0.1:$PORT --threads=4 --call app:create_app
  measure "chatbot serve (gunicorn gthread, 2 workers x 4 threads, no keep-alive)" \
    $BIN/chatbot serve --port $PORT --workers 2 --threads 4
done
