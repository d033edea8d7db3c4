#!/usr/bin/env bash
# Event-path drain and idle cost (docs/benchmarks.md, "Event path and idle cost").
#   loadtest/run-event-drain.sh BIN_DIR SEEDED_DATA_DIR RUN_DIR PORT [NOVA_X=y ...]
# Copies SEEDED_DATA_DIR (from `nova-bench seed --dataset s`) to RUN_DIR, starts BIN_DIR/nova on
# it, prints the seconds until /metrics outbox_backlog is 0 and outbox_published_total, then the
# nova process CPU (utime+stime from /proc) over 30 idle seconds. Loopback only.
set -euo pipefail
BIN=$1; SEEDED=$2; RUN=$3; PORT=$4; shift 4
rm -rf "$RUN"; cp -r "$SEEDED" "$RUN"
metric() { curl -fsS "http://127.0.0.1:$PORT/metrics" 2>/dev/null | awk -v m="$1" '$1 == m { print $2 }'; }
env "$@" NOVA_RATE_LIMIT__ENABLED=false NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 \
  "$BIN/nova" serve --data-dir "$RUN" --listen "127.0.0.1:$PORT" > "$RUN.server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
START=$(date +%s.%N)
until curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do sleep 0.1; done
seen=0
while :; do
  b=$(metric outbox_backlog); b=${b:-x}
  now=$(date +%s.%N)
  if [[ $b != x ]]; then
    if [[ $b != 0 ]]; then seen=1; fi
    if [[ $b == 0 && ( $seen == 1 || $(echo "$now - $START > 5" | bc) == 1 ) ]]; then break; fi
  fi
  sleep 0.5
done
END=$(date +%s.%N)
PUB=$(metric outbox_published_total)
echo "drain_seconds=$(echo "$END - $START" | bc) published=$PUB"
sleep 3
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$PID/stat)
sleep 30
read -r u2 s2 < <(awk '{print $14, $15}' /proc/$PID/stat)
TCK=$(getconf CLK_TCK)
echo "idle_cpu_percent=$(echo "scale=3; (($u2 + $s2) - ($u1 + $s1)) * 100 / $TCK / 30" | bc) load=$(cut -d' ' -f1-3 /proc/loadavg)"
kill $PID; wait $PID 2>/dev/null || true
