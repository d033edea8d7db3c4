#!/usr/bin/env bash
# Request cost (P12/P13): server CPU per request for GET /healthz, `{ me { id username } }` and the
# 20-post home feed, SQLite, dataset S, open model (k6 constant-arrival-rate), one or two binaries
# compared A B A B ...
#
#   loadtest/run-request-cost.sh                                  # target/release/nova, 3 runs
#   BIN_A=/work/bin/nova-main-af6efe9 BIN_B=target/release/nova loadtest/run-request-cost.sh
#   RUNS=1 RATES=200 DURATION=5s IDLE=0 KINDS="healthz me" loadtest/run-request-cost.sh
#
# Environment: BIN_A (target/release/nova), BIN_B (none), RUNS (3), RATES ("100 300 1000"),
# DURATION (20s per kind and rate), WARMUP (5s per kind, at its first rate; 0 = none),
# IDLE (20: seconds of idle CPU sampled after the drain; 0 = skip), KINDS ("healthz me feed"),
# SEEDER (target/release/nova-bench; not NOVA_*: nova reads those as settings), PORT (18090), SEED (42), DRAIN_TIMEOUT (600 s), BUILD (1: cargo build --release -p nova
# -p nova-bench first; 0 = use target/release/nova-bench as it is), PROFILE (0; 1 = after the
# last run of A, `perf record -g -p PID -- sleep 10` under the home feed at PROFILE_RATE (300)
# req/s, report in perf-report.txt: not counted in the table), RESULTS_DIR
# (target/bench/request-cost-<timestamp>).
#
# Seeds dataset S once (`nova-bench seed --dataset s --seed $SEED`); for each run and binary copies
# the seeded directory fresh, starts `BIN serve --data-dir COPY --listen 127.0.0.1:$PORT` (rate
# limit off, no cost budget), waits for /readyz and for `outbox_backlog 0` on /metrics (drain time
# recorded), samples the idle CPU, then runs loadtest/request_cost.js per kind and rate and reads
# the server's utime+stime (/proc/PID/stat) around each k6 run. Prints the Markdown table of
# medians (loadtest/request_cost.py) with the B/A CPU ratio. Raw results: RESULTS_DIR/results.tsv,
# idle.tsv, the k6 summaries and server logs. Every step is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/loadtest/lib.sh"
BIN_A=$(realpath -m "${BIN_A:-$ROOT/target/release/nova}")
BIN_B=${BIN_B:+$(realpath -m "$BIN_B")}
SEEDER=$(realpath -m "${SEEDER:-$ROOT/target/release/nova-bench}")
RUNS=${RUNS:-3}
RATES=${RATES:-100 300 1000}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
IDLE=${IDLE:-20}
KINDS=${KINDS:-healthz me feed}
PORT=${PORT:-18090}
SEED=${SEED:-42}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
BUILD=${BUILD:-1}
PROFILE=${PROFILE:-0}
PROFILE_RATE=${PROFILE_RATE:-300}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/target/bench/request-cost-$(date -u +%Y%m%dT%H%M%SZ)}
BASE_URL="http://127.0.0.1:$PORT"
CLK_TCK=$(getconf CLK_TCK)
REPORT="$ROOT/loadtest/request_cost.py"

require_tools k6 python3 curl
cd "$ROOT"
mkdir -p "$RESULTS_DIR"
echo "results: $RESULTS_DIR"

WORK=$(mktemp -d /tmp/nova-request-cost-XXXXXX)
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

if [[ "$BUILD" == 1 ]]; then
  echo "== build (release)"
  timeout 1800 cargo build --release -p nova -p nova-bench
fi
labels=(A)
bins=("$BIN_A")
if [[ -n "$BIN_B" ]]; then labels+=(B); bins+=("$BIN_B"); fi
for i in "${!bins[@]}"; do
  [[ -x "${bins[$i]}" ]] || { echo "${labels[$i]}: ${bins[$i]} is not an executable" >&2; exit 1; }
  echo "${labels[$i]}	${bins[$i]}	$(sha256sum "${bins[$i]}" | cut -c1-16)" >>"$RESULTS_DIR/binaries.tsv"
done

echo "== seed dataset S (seed $SEED)"
timeout 300 "$SEEDER" seed --dataset s --data-dir "$WORK/seeded" --seed "$SEED" \
  >"$RESULTS_DIR/seed.log" 2>&1 || { tail -20 "$RESULTS_DIR/seed.log" >&2; exit 1; }
cp "$WORK/seeded/manifest.json" "$RESULTS_DIR/manifest.json"

run_k6() { # kind rate duration summary-file
  local variant=full rc=0
  [[ $1 == me ]] && variant=me
  timeout $(( $(secs "$3") + 60 )) k6 run --quiet --no-color \
    -e KIND="$1" -e VARIANT="$variant" -e BASE_URL="$BASE_URL" -e TOKENS="$WORK/seeded/tokens.json" \
    -e RATE="$2" -e DURATION="$3" --summary-export "$4" loadtest/request_cost.js >"$4.log" 2>&1 || rc=$?
  # 99 = thresholds crossed: a result (errors, dropped arrivals, p99), not a harness failure.
  if [[ $rc != 0 && $rc != 99 ]]; then echo "k6 failed ($rc); see $4.log" >&2; tail -20 "$4.log" >&2; return 1; fi
}

python3 "$REPORT" header >"$RESULTS_DIR/results.tsv"
printf 'bin\trun\tdrain_s\tdrain_cpu_s\tidle_cpu_pct\tload_avg\n' >"$RESULTS_DIR/idle.tsv"
for run in $(seq 1 "$RUNS"); do
  for i in "${!bins[@]}"; do
    label=${labels[$i]}
    tag="$label-$run"
    echo "== run $run/$RUNS, $label (${bins[$i]})"
    rm -rf "$WORK/copy"
    cp -r "$WORK/seeded" "$WORK/copy"
    t0=$(date +%s.%N)
    start_server "$RESULTS_DIR/server-$tag.log" "${bins[$i]}" serve --data-dir "$WORK/copy" --listen "127.0.0.1:$PORT"
    wait_ready "$BASE_URL" "$RESULTS_DIR/server-$tag.log" 30
    wait_drain "$BASE_URL" "$DRAIN_TIMEOUT"
    drain=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
    drain_cpu=$(python3 -c "print(f'{$(cpu_ticks) / $CLK_TCK:.1f}')")
    idle_pct=-
    if (( IDLE > 0 )); then
      before=$(cpu_ticks); i0=$(date +%s.%N)
      sleep "$IDLE"
      after=$(cpu_ticks); i1=$(date +%s.%N)
      idle_pct=$(python3 -c "print(f'{($after - $before) / $CLK_TCK / ($i1 - $i0) * 100:.2f}')")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$run" "$drain" "$drain_cpu" "$idle_pct" "$(cut -d' ' -f1-3 /proc/loadavg)" \
      | tee -a "$RESULTS_DIR/idle.tsv"
    for kind in $KINDS; do
      if [[ "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
        run_k6 "$kind" "${RATES%% *}" "$WARMUP" "$RESULTS_DIR/warmup-$tag-$kind.json"
      fi
      for rate in $RATES; do
        out="$RESULTS_DIR/k6-$tag-$kind-$rate.json"
        before=$(cpu_ticks); k0=$(date +%s.%N)
        run_k6 "$kind" "$rate" "$DURATION" "$out"
        k1=$(date +%s.%N); after=$(cpu_ticks)
        python3 "$REPORT" row "$out" "$label" "$run" "$kind" "$rate" "$before" "$after" "$CLK_TCK" "$k0" "$k1" \
          | tee -a "$RESULTS_DIR/results.tsv"
      done
    done
    if [[ "$PROFILE" == 1 && $run == "$RUNS" && $label == A ]]; then
      echo "== profile: perf record -g during the home feed at $PROFILE_RATE req/s"
      run_k6 feed "$PROFILE_RATE" 20s "$RESULTS_DIR/k6-profile.json" &
      k6_pid=$!
      sleep 5
      timeout 60 perf record -g -o "$RESULTS_DIR/perf.data" -p "$SERVER_PID" -- sleep 10 \
        >"$RESULTS_DIR/perf-record.log" 2>&1 || echo "perf record failed: see perf-record.log" >&2
      wait "$k6_pid" || true
      perf report -i "$RESULTS_DIR/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null \
        >"$RESULTS_DIR/perf-report.txt" || true
      perf report -i "$RESULTS_DIR/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null \
        >"$RESULTS_DIR/perf-top.txt" || true
      awk '!/^#/ && /%/ && n++ < 15' "$RESULTS_DIR/perf-top.txt"
    fi
    stop_server
  done
done

echo "== medians (client latency in ms; CPU µs/req = server utime+stime / completed requests)"
python3 "$REPORT" table "$RESULTS_DIR" | tee "$RESULTS_DIR/table.md"
