#!/usr/bin/env bash
# Home-feed benchmark on Postgres (dataset M by default), open model (k6 constant-arrival-rate).
#
#   loadtest/run-home-feed-postgres.sh                              # 200, 500, 1000 req/s, 60 s each
#   RATES="50 100" DURATION=30s loadtest/run-home-feed-postgres.sh  # shorter sweep
#   VARIANT=next RATES=50 loadtest/run-home-feed-postgres.sh        # page 1 then page 2 by cursor
#   EXPLAIN_ONLY=1 loadtest/run-home-feed-postgres.sh               # seed/reuse + EXPLAIN, no load
#
# Environment: DATASET (m | s), SEED (42), PG_URL (postgres://postgres@127.0.0.1:5432/nova_bench_m;
# loopback only), DATA (target/bench/pg-data-<dataset>: tokens, jwt-secret, manifest), RESEED=1
# forces a fresh seed (otherwise an already-seeded database whose row counts match DATA/manifest.json
# and whose tokens are still valid is reused), GRAPH_SCALE (1.0; scales follows/likes down),
# POOL (16 = NOVA_DB__MAX_CONNECTIONS), RATES ("200 500 1000"), RUNS (1), DURATION (60s),
# WARMUP (30s, at the first rate), PORT (18081), P99_MS (15, the P1 target, k6 threshold),
# VARIANT (full | next | ids | me, see home_feed.js), RESULTS_DIR
# (target/bench/home-feed-pg-<timestamp>). Extra NOVA_* variables are passed to the server.
#
# Per rate and run: client p50/p90/p99/p99.9/max, errors (responses failing any check), achieved
# rate, dropped iterations, nova CPU-µs/request (/proc/PID/stat utime+stime), CPU-µs/request of
# the Postgres backends serving this database (pg_stat_activity pids, /proc), nova RSS.
# Every step is bounded by `timeout`. Nothing listens beyond 127.0.0.1.
set -euo pipefail

DATASET=${DATASET:-m}
SEED=${SEED:-42}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/nova_bench_$DATASET}
POOL=${POOL:-16}
RATES=${RATES:-200 500 1000}
RUNS=${RUNS:-1}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-30s}
PORT=${PORT:-18081}
P99_MS=${P99_MS:-15}
VARIANT=${VARIANT:-full}
GRAPH_SCALE=${GRAPH_SCALE:-1.0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/target/bench/pg-data-$DATASET}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/target/bench/home-feed-pg-$(date -u +%Y%m%dT%H%M%SZ)}
BASE_URL="http://127.0.0.1:$PORT"

for tool in k6 python3 curl psql; do
  command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done
[[ $PG_URL =~ ^postgres(ql)?://([^@/]*@)?(127\.0\.0\.1|localhost)(:[0-9]+)?/[A-Za-z0-9_]+$ ]] \
  || { echo "PG_URL must point at a database on 127.0.0.1, got $PG_URL" >&2; exit 1; }

secs() { # "60s" / "2m" / "90" -> seconds
  local v=$1
  case $v in
    *m) echo $(( ${v%m} * 60 )) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}
psql_q() { timeout 120 psql "$PG_URL" -X -v ON_ERROR_STOP=1 -tAq "$@"; }

mkdir -p "$RESULTS_DIR" "$DATA"
echo "results: $RESULTS_DIR"
cd "$ROOT"

echo "== build (release)"
timeout 1800 cargo build --release -p nova -p nova-bench

# Reuse the seeded database when its counts match the manifest and the tokens are still valid.
reusable() {
  [[ "${RESEED:-0}" != 1 && -f "$DATA/manifest.json" && -f "$DATA/tokens.json" ]] || return 1
  local counts
  counts=$(psql_q -c "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM follows) || ' ' || \
                             (SELECT count(*) FROM posts) || ' ' || (SELECT count(*) FROM likes)" 2>/dev/null) || return 1
  python3 - "$DATA/manifest.json" "$DATA/tokens.json" "$DATASET" "$SEED" "$GRAPH_SCALE" "$counts" <<'PY'
import json, sys, datetime
manifest, tokens, dataset, seed, scale, counts = sys.argv[1:]
m = json.load(open(manifest))
rows = m["database"]["rows"]
want = [rows["users"], rows["follows"], rows["posts"], rows["likes"]]
have = [int(c) for c in counts.split()]
expires = datetime.datetime.fromisoformat(json.load(open(tokens))["expires_at"])
ok = (m["dataset"].lower() == dataset.lower() and m["seed"] == int(seed)
      and float(m.get("graph_scale", 1.0)) == float(scale)
      and m["database"].get("backend") == "postgres" and want == have
      and expires > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2))
sys.exit(0 if ok else 1)
PY
}

if reusable; then
  echo "== reuse the seeded database (counts match $DATA/manifest.json)"
else
  echo "== seed dataset $DATASET (seed $SEED, graph scale $GRAPH_SCALE) into $PG_URL"
  rm -f "$DATA/manifest.json"
  /usr/bin/time -f "seed: %e s wall, %U s user, %S s sys, %M KiB max RSS" \
    timeout 1800 target/release/nova-bench seed --dataset "$DATASET" --postgres-url "$PG_URL" --reset \
      --graph-scale "$GRAPH_SCALE" --data-dir "$DATA" --seed "$SEED" --token-ttl-secs $(( 30 * 24 * 3600 )) \
    >"$RESULTS_DIR/seed.log" 2>"$RESULTS_DIR/seed.time" || { cat "$RESULTS_DIR/seed.time" >&2; exit 1; }
  cat "$RESULTS_DIR/seed.time"
fi
cp "$DATA/manifest.json" "$RESULTS_DIR/manifest.json"

echo "== EXPLAIN (ANALYZE, BUFFERS) -> $RESULTS_DIR/explain.txt"
PG_URL="$PG_URL" DATA="$DATA" timeout 900 "$ROOT/loadtest/pg-explain.sh" >"$RESULTS_DIR/explain.txt" 2>&1 \
  || echo "explain failed; see $RESULTS_DIR/explain.txt" >&2
[[ "${EXPLAIN_ONLY:-0}" == 1 ]] && exit 0

SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

echo "== start nova on $BASE_URL (Postgres pool $POOL)"
# The load comes from one address (127.0.0.1) and reuses a few accounts: the per-address rate limit
# and the per-account cost budget would turn it into 429s.
NOVA_RATE_LIMIT__ENABLED=false NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 NOVA_DB__URL="$PG_URL" NOVA_DB__MAX_CONNECTIONS="$POOL" \
  target/release/nova serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
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
# "pid:ticks ..." of the Postgres backends connected to this database (our pool).
pg_ticks() {
  local pids out=""
  pids=$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" 2>/dev/null || true)
  for p in $pids; do
    [[ -r /proc/$p/stat ]] && out+="$p:$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) "
  done
  echo "${out:-none}"
}

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

WARMUP_RATE=${WARMUP_RATE:-$(echo "$RATES" | awk '{ print $1 }')}
echo "== warm-up: $WARMUP at $WARMUP_RATE req/s"
run_k6 "$WARMUP_RATE" "$WARMUP" "$RESULTS_DIR/warmup.json" >/dev/null

echo "rate run p50_ms p90_ms p99_ms p99.9_ms max_ms errors achieved_rps dropped nova_cpu_us_per_req pg_cpu_us_per_req nova_cores pg_cores k6_cores rss_mib hwm_mib thresholds" \
  >"$RESULTS_DIR/results.txt"
for rate in $RATES; do
  for run in $(seq 1 "$RUNS"); do
    echo "== measure: $rate req/s for $DURATION (run $run/$RUNS, variant $VARIANT)"
    out="$RESULTS_DIR/k6-$rate-$run.json"
    before=$(cpu_ticks); pg_before=$(pg_ticks); t0=$(date +%s.%N)
    rc=$(run_k6 "$rate" "$DURATION" "$out")
    t1=$(date +%s.%N); after=$(cpu_ticks); pg_after=$(pg_ticks)
    python3 - "$out" "$rate" "$run" "$before" "$after" "$CLK_TCK" "$t0" "$t1" "$(rss_kib)" "$(hwm_kib)" "$rc" \
      "$pg_before" "$pg_after" "$VARIANT" >>"$RESULTS_DIR/results.txt" <<'PY'
import json, sys
(path, rate, run, before, after, tck, t0, t1, rss, hwm, rc, pg_before, pg_after, variant) = sys.argv[1:]
m = json.load(open(path))["metrics"]
# For VARIANT=next report the second page (the cursor request); the first page is in the JSON.
d = m.get("http_req_duration{name:homeFeedNext}") if variant == "next" else None
d = d or m["http_req_duration"]
reqs = m["http_reqs"]["count"]
ok = m.get("feed_ok", {})
errors = ok.get("fails", 0) / max(1, ok.get("passes", 0) + ok.get("fails", 0))
dropped = m.get("dropped_iterations", {}).get("count", 0)
tck = int(tck)
cpu_s = (int(after) - int(before)) / tck
def parse(s):
    return {} if s == "none" else {int(p): int(t) for p, t in (x.split(":") for x in s.split())}
pb, pa = parse(pg_before), parse(pg_after)
pg_s = sum(t - pb.get(p, 0) for p, t in pa.items()) / tck
wall = float(t1) - float(t0)
k6u, k6s = map(float, open(path + ".k6time").read().split()[-2:])
print(rate, run,
      f'{d["med"]:.2f}', f'{d["p(90)"]:.2f}', f'{d["p(99)"]:.2f}', f'{d["p(99.9)"]:.2f}', f'{d["max"]:.2f}',
      f"{errors:.4%}", f'{m["http_reqs"]["rate"]:.1f}', int(dropped),
      f"{cpu_s * 1e6 / max(1, reqs):.0f}", f"{pg_s * 1e6 / max(1, reqs):.0f}",
      f"{cpu_s / wall:.2f}", f"{pg_s / wall:.2f}", f"{(k6u + k6s) / wall:.2f}",
      f"{int(rss) / 1024:.1f}", f"{int(hwm) / 1024:.1f}", "pass" if rc == "0" else "FAIL")
PY
    tail -1 "$RESULTS_DIR/results.txt"
  done
done

echo "== results (client latency in ms; cpu_us_per_req = utime+stime / requests)"
column -t "$RESULTS_DIR/results.txt" | tee "$RESULTS_DIR/results.table"
grep -c '"status":503\|UNAVAILABLE' "$RESULTS_DIR/server.log" 2>/dev/null | sed 's/^/server log lines mentioning 503\/UNAVAILABLE: /' || true
echo "server log: $RESULTS_DIR/server.log"
