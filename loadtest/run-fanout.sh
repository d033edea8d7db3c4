#!/usr/bin/env bash
# Live subscriptions: publish → deliver latency with N WebSocket subscribers (B5 in
# docs/benchmarks.md).
#
#   loadtest/run-fanout.sh                          # 1,000 sockets, 100 posts at 10/s
#   SOCKETS=1000 POSTS=200 RATE=20 loadtest/run-fanout.sh
#
# Starts `nova serve` (release, SQLite, in-process bus) on a fresh data directory on 127.0.0.1
# with rate limits off and cheap password hashing (registering the subscribers is set-up, not
# what is measured), runs `nova-bench fanout` against it and prints its JSON report. Every
# step is bounded by `timeout`.
set -euo pipefail

SOCKETS=${SOCKETS:-1000}
POSTS=${POSTS:-100}
RATE=${RATE:-10}
PORT=${PORT:-18081}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

timeout 1800 cargo build --release -p nova -p nova-bench
DATA=$(mktemp -d /tmp/nova-fanout-XXXXXX)
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

NOVA_RATE_LIMIT__ENABLED=false \
NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 \
NOVA_AUTH__ARGON2_MEMORY_KIB=1024 NOVA_AUTH__ARGON2_ITERATIONS=1 \
NOVA_LOG__FILTER=warn \
  target/release/nova serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
timeout 900 target/release/nova-bench fanout --url "http://127.0.0.1:$PORT" \
  --sockets "$SOCKETS" --posts "$POSTS" --rate "$RATE" --server-pid "$PID"
