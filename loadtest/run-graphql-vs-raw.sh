#!/usr/bin/env bash
# GraphQL vs raw axum (P12: GraphQL >= 0.35x the throughput of a raw axum JSON handler in the same
# binary for a trivial query). Closed loop (wrk): peak throughput and CPU per request only.
#
#   loadtest/run-graphql-vs-raw.sh
#   RUNS=5 DURATION=15s CONNECTIONS=64 loadtest/run-graphql-vs-raw.sh
#
# Environment: RUNS (3), DURATION (10s per side and run), CONNECTIONS (32), THREADS (1 wrk
# thread), PORT (18095, GraphQL; PORT+1 raw), BUILD (1: cargo build --release -p nova-bench
# first), RESULTS_DIR (target/bench/graphql-vs-raw-<timestamp>).
#
# Starts `nova-bench serve-baseline` on a fresh data directory (migrated, empty: nothing to drain):
# the real node built by nova_app::App::build, plus `POST /raw` answering
# {"data":{"__typename":"Query"}} from a bare axum handler in the same process and runtime. Then,
# alternating, wrk drives `POST /graphql {"query":"{ __typename }"}` and `POST /raw` with the same
# connections and duration (loadtest/post_json.lua validates every body), reading the server's
# utime+stime around each. Prints req/s, CPU µs/request per side (medians) and the ratios.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/loadtest/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PORT=${PORT:-18095}
BUILD=${BUILD:-1}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/target/bench/graphql-vs-raw-$(date -u +%Y%m%dT%H%M%SZ)}
CLK_TCK=$(getconf CLK_TCK)

require_tools wrk python3 curl
cd "$ROOT"
mkdir -p "$RESULTS_DIR"
echo "results: $RESULTS_DIR"
DATA=$(mktemp -d /tmp/nova-graphql-vs-raw-XXXXXX)
cleanup() {
  stop_server
  rm -rf "$DATA"
}
trap cleanup EXIT

if [[ "$BUILD" == 1 ]]; then
  timeout 1800 cargo build --release -p nova-bench
fi
start_server "$RESULTS_DIR/server.log" target/release/nova-bench serve-baseline --data-dir "$DATA" \
  --listen "127.0.0.1:$PORT" --raw-listen "127.0.0.1:$(( PORT + 1 ))"
wait_ready "http://127.0.0.1:$PORT" "$RESULTS_DIR/server.log" 60

printf 'side\trun\treq_per_s\tvalidated\tinvalid\tcpu_us_per_req\tload_avg\n' >"$RESULTS_DIR/results.tsv"
for run in $(seq 1 "$RUNS"); do
  for side in graphql raw; do
    url="http://127.0.0.1:$PORT/graphql"
    [[ $side == raw ]] && url="http://127.0.0.1:$(( PORT + 1 ))/raw"
    out="$RESULTS_DIR/wrk-$side-$run.txt"
    before=$(cpu_ticks)
    BODY='{"query":"{ __typename }"}' EXPECT='"__typename":"Query' \
      timeout $(( $(secs "$DURATION") + 30 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
      -s loadtest/post_json.lua "$url" >"$out" 2>&1
    after=$(cpu_ticks)
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    read -r good bad < <(awk '/^validated/ { print $2, $4 }' "$out")
    cpu=$(python3 -c "print(f'{($after - $before) / $CLK_TCK * 1e6 / max(1, $good + $bad):.1f}')")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$side" "$run" "$rps" "$good" "$bad" "$cpu" "$(cut -d' ' -f1-3 /proc/loadavg)" \
      | tee -a "$RESULTS_DIR/results.tsv"
  done
done

python3 - "$RESULTS_DIR/results.tsv" <<'PY' | tee "$RESULTS_DIR/table.md"
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]]
med = {}
print("| side | runs | req/s (median) | CPU µs/req (median) | invalid responses |")
print("|---|---|---|---|---|")
for side in ("graphql", "raw"):
    group = [r for r in rows if r[0] == side]
    med[side] = (statistics.median(float(r[2]) for r in group), statistics.median(float(r[5]) for r in group))
    print(f"| {side} | {len(group)} | {med[side][0]:,.0f} | {med[side][1]:.1f} | {sum(int(r[4]) for r in group)} |")
print()
print(f"GraphQL / raw throughput: {med['graphql'][0] / med['raw'][0]:.3f}x (P12 target >= 0.35x); "
      f"raw / GraphQL CPU per request: {med['raw'][1] / med['graphql'][1]:.3f}x")
PY
