#!/usr/bin/env bash
# Event-path drain on Postgres (docs/benchmarks.md, "Event path and idle cost").
#   loadtest/run-event-drain-postgres.sh BIN_DIR TEMPLATE_DB RUN_DB DATA_DIR PORT BROKERS|- [NOVA_X=y ...]
# TEMPLATE_DB: the seeded S database with the SQLite seed's outbox rows copied in (see the doc);
# it is copied to RUN_DB (dropped first) so every run starts from the same 89,325 unsent rows.
# DATA_DIR: the seed's data directory (jwt secret). BROKERS `-`: in-process bus, done when
# /metrics outbox_backlog is 0. With BROKERS (host:port): Kafka bus (topic prefix RUN_DB.), done
# when the backlog is 0 and processed_events holds every applied seed event (APPLIED, default
# 80176); prints the time from the first applied event too (the consumer-group join takes ~20 s).
# Loopback only; local trust auth (user postgres).
set -euo pipefail
BIN=$1; TEMPLATE=$2; DB=$3; DATA=$4; PORT=$5; BROKERS=$6; shift 6
[[ $BROKERS == - ]] && BROKERS=""
APPLIED=${APPLIED:-80176}
PSQL="psql -h 127.0.0.1 -U postgres -At"
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
$PSQL -d postgres -c "CREATE DATABASE $DB TEMPLATE $TEMPLATE" >/dev/null
metric() { curl -fsS "http://127.0.0.1:$PORT/metrics" 2>/dev/null | awk -v m="$1" '$1 == m { print $2 }'; }
BUS=()
if [[ -n $BROKERS ]]; then
  BUS=(NOVA_EVENTS__BUS=kafka "NOVA_EVENTS__KAFKA_BROKERS=$BROKERS" "NOVA_EVENTS__KAFKA_PREFIX=$DB.")
fi
env "${BUS[@]}" "$@" "NOVA_DB__URL=postgres://postgres@127.0.0.1:5432/$DB" NOVA_RATE_LIMIT__ENABLED=false \
  NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 \
  "$BIN/nova" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" > "/tmp/$DB.server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
START=$(date +%s.%N)
until curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
  kill -0 $PID 2>/dev/null || { echo "nova exited: /tmp/$DB.server.log" >&2; exit 1; }
  sleep 0.1
done
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$PID/stat)
seen=0; first=""
while :; do
  b=$(metric outbox_backlog); b=${b:-x}
  if [[ -n $BROKERS ]]; then
    p=$($PSQL -d "$DB" -c "SELECT count(*) FROM processed_events")
    if [[ -z $first && $p != 0 ]]; then first=$(date +%s.%N); fi
    if [[ $p == "$APPLIED" && $b == 0 ]]; then break; fi
  elif [[ $b != x ]]; then
    if [[ $b != 0 ]]; then seen=1; fi
    if [[ $b == 0 && $seen == 1 ]]; then break; fi
  fi
  sleep 0.5
done
END=$(date +%s.%N)
read -r u2 s2 < <(awk '{print $14, $15}' /proc/$PID/stat)
echo "drain_seconds=$(echo "$END - $START" | bc) from_first_apply=${first:+$(echo "$END - $first" | bc)}" \
  "published=$(metric outbox_published_total)" \
  "nova_cpu_seconds=$(echo "scale=1; (($u2 + $s2) - ($u1 + $s1)) / $(getconf CLK_TCK)" | bc)" \
  "load=$(cut -d' ' -f1-3 /proc/loadavg)"
$PSQL -d "$DB" -c "SELECT (SELECT count(*) FROM notifications), (SELECT count(*) FROM notification_actors), (SELECT count(*) FROM processed_events)" \
  | awk -F'|' '{ print "groups=" $1 " actor_rows=" $2 " processed=" $3 }'
kill $PID; wait $PID 2>/dev/null || true
