#!/usr/bin/env bash
# CI benchmark smoke: catches a 10x per-request CPU regression or any failed/invalid response.
#
#   .ci/bench-smoke.sh            # called by .ci/run after the tests; runs locally as well
#
# Environment: SMOKE_RATE (200 req/s), SMOKE_DURATION (5s per kind), SMOKE_DRAIN_TIMEOUT (180 s),
# SMOKE_REFERENCE (loadtest/smoke-reference.env: reference CPU µs/request per kind and FACTOR).
#
# Builds release nova + nova-bench (shares no artifacts with the debug test build; timed), then
# runs loadtest/run-request-cost.sh once: seeds dataset S, starts the server, waits for the outbox
# to drain (bounded), and drives GET /healthz, `{ me { id username } }` and the 20-post home feed at
# SMOKE_RATE for SMOKE_DURATION each, every body validated. Prints the table, then fails only when
# a response failed or was invalid, or a kind's CPU µs/request exceeds FACTOR x its reference.
set -euo pipefail
cd "$(dirname "$0")/.."

RESULTS_DIR="$PWD/target/bench/smoke-$(date -u +%Y%m%dT%H%M%SZ)"
build_start=$SECONDS
timeout 1500 cargo build --release --locked -p nova -p nova-bench
echo "release build: $(( SECONDS - build_start )) s"

RESULTS_DIR=$RESULTS_DIR BUILD=0 RUNS=1 IDLE=0 WARMUP=0 PORT=18097 \
  RATES="${SMOKE_RATE:-200}" DURATION="${SMOKE_DURATION:-5s}" DRAIN_TIMEOUT="${SMOKE_DRAIN_TIMEOUT:-180}" \
  timeout 600 loadtest/run-request-cost.sh
python3 loadtest/request_cost.py check "$RESULTS_DIR" "${SMOKE_REFERENCE:-loadtest/smoke-reference.env}"
