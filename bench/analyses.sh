#!/usr/bin/env bash
# Set-wise analyses at scale: a release `casebook serve` over a demo trial of BENCH_DEMO participants (default 10,000),
# each route asked RUNS times (default 7) one after another; prints the median and the slowest, in milliseconds.
#   bench/analyses.sh [sqlite] [postgres]     postgres needs CASEBOOK_BENCH_POSTGRES_URL (an empty database it may fill)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product casebook >&2
BIN="$(swift build -c release --show-bin-path)/casebook"
RUNS=${RUNS:-7}
PW="bench-password-$$"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }
timed() { # name, url, header
  local times
  times=$(for _ in $(seq 1 "$RUNS"); do curl -fs -o /dev/null -w '%{time_total}\n' -H "$3" "$2" || echo fail; done)
  if grep -q fail <<<"$times"; then echo "| $1 | failed | |"; return; fi
  sort -n <<<"$times" | awk -v name="$1" '{t[NR] = $1 * 1000} END {printf "| %s | %.1f | %.1f |\n", name, t[int((NR + 1) / 2)], t[NR]}'
}

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $RUNS requests per route, one at a time"
echo
echo "| route | median ms | slowest ms |"
echo "|---|---|---|"
for database in "${@:-sqlite}"; do
  work=$(mktemp -d)
  if [ "$database" = postgres ]; then
    : "${CASEBOOK_BENCH_POSTGRES_URL:?set CASEBOOK_BENCH_POSTGRES_URL to an empty PostgreSQL database}"
    export DATABASE_URL="$CASEBOOK_BENCH_POSTGRES_URL"
  else
    unset DATABASE_URL
    export CASEBOOK_SQLITE_PATH="$work/casebook.sqlite"
  fi
  export LOG_LEVEL=error CASEBOOK_BCRYPT_COST=10
  start=$(date +%s.%N)
  "$BIN" demo --participants "${BENCH_DEMO:-10000}" --seed 1 >"$work/demo.txt"
  echo "| $database: casebook demo --participants ${BENCH_DEMO:-10000} | $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.0f", (e - s) * 1000}') | |"
  # Every site of the study in force, read from its definition.
  sites=$("$BIN" study show --json | python3 -c 'import json,sys; print(" ".join("--site " + s["code"] for s in json.load(sys.stdin)["sites"]))')
  # shellcheck disable=SC2086
  echo "$PW" | "$BIN" users create --username bench --role coordinator $sites >/dev/null
  TOKEN=$("$BIN" tokens create --username bench)
  PORT=$(free_port)
  "$BIN" serve --port "$PORT" >"$work/serve.log" 2>&1 & serve=$!
  wait_for "http://127.0.0.1:$PORT/health"
  cookie=$(python3 bench/session.py "http://127.0.0.1:$PORT" bench "$PW")
  base="http://127.0.0.1:$PORT"
  timed "$database: GET /safety (page)" "$base/safety" "Cookie: casebook_session=$cookie"
  timed "$database: GET /api/v1/endpoints" "$base/api/v1/endpoints" "Authorization: Bearer $TOKEN"
  timed "$database: GET /api/v1/primary-endpoint" "$base/api/v1/primary-endpoint" "Authorization: Bearer $TOKEN"
  timed "$database: GET /api/v1/participants?limit=50" "$base/api/v1/participants?limit=50" "Authorization: Bearer $TOKEN"
  after=$(curl -fs -H "Authorization: Bearer $TOKEN" "$base/api/v1/participants?limit=500" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')
  timed "$database: GET /api/v1/participants?limit=50&after= (page 11)" "$base/api/v1/participants?limit=50&after=$after" "Authorization: Bearer $TOKEN"
  timed "$database: GET /api/v1/screening-log" "$base/api/v1/screening-log" "Authorization: Bearer $TOKEN"
  timed "$database: GET /participants (page)" "$base/participants" "Cookie: casebook_session=$cookie"
  timed "$database: GET / (dashboard)" "$base/" "Cookie: casebook_session=$cookie"
  kill "$serve"; wait "$serve" 2>/dev/null || true
  rm -rf "$work"
done
