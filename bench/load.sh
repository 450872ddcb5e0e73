#!/usr/bin/env bash
# Load benchmark: a release `casebook serve` on a fresh database, driven by wrk on 127.0.0.1, beside the limit rows
# of `casebook bench-server` (a bare "ok" route and a bare one-row insert) in the same run.
#   bench/load.sh [sqlite] [postgres]     postgres needs CASEBOOK_BENCH_POSTGRES_URL (an empty database it may fill)
# Needs wrk (Debian: apt-get install wrk). DURATION (default 10s) sets each run's length. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
swift build -c release --product casebook >&2
BIN="$(swift build -c release --show-bin-path)/casebook"
DURATION=${DURATION:-10s}
PW="bench-password-$$"
PORT=18080; LIMIT_PORT=18090

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }
report() { # name, wrk output
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$2")
  p50=$(awk '$1=="50%" {print $2}' <<<"$2")
  p99=$(awk '$1=="99%" {print $2}' <<<"$2")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$2"); errors=${errors:-0}
  echo "| $1 | ${rps} | ${p50} | ${p99} | ${errors} |"
}

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo
echo "| scenario | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
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
  PORT=$(free_port); LIMIT_PORT=$(free_port)
  echo "$PW" | "$BIN" users create --username bench --role coordinator --site SYSU3 >/dev/null
  TOKEN=$("$BIN" tokens create --username bench)
  "$BIN" serve --port "$PORT" >"$work/serve.log" 2>&1 & serve=$!
  wait_for "http://127.0.0.1:$PORT/health"
  python3 bench/setup.py "http://127.0.0.1:$PORT" "$TOKEN" "${BENCH_PARTICIPANTS:-3200}" >"$work/ids.txt"
  export BENCH_TOKEN="$TOKEN" BENCH_COLLECTED_AT="$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M)"
  run=0
  for c in 1 16 64; do
    t=$(( c < 2 ? 1 : 2 )); run=$((run + 1))
    out=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -s bench/lab.lua "http://127.0.0.1:$PORT" -- "$work/ids.txt" "$t" "$run")
    report "$database: save one lab result (API, graded, audited), $c connections" "$out"
  done
  "$BIN" bench-server --port "$LIMIT_PORT" >"$work/limit.log" 2>&1 & limit=$!
  wait_for "http://127.0.0.1:$LIMIT_PORT/ok"
  report "$database: limit, bare \"ok\" route, 64 connections" "$(wrk -t2 -c64 -d"$DURATION" --latency "http://127.0.0.1:$LIMIT_PORT/ok")"
  report "$database: limit, bare one-row insert, 64 connections" "$(wrk -t2 -c64 -d"$DURATION" --latency -s bench/insert.lua "http://127.0.0.1:$LIMIT_PORT/insert")"
  kill "$limit"; wait "$limit" 2>/dev/null || true
  # A monitor paging through casebooks: one participant's page in a demo trial of BENCH_DEMO participants.
  kill "$serve"; wait "$serve" 2>/dev/null || true
  start=$(date +%s.%N)
  "$BIN" demo --participants "${BENCH_DEMO:-1000}" --seed 1 >"$work/demo.txt"
  echo "| $database: casebook demo --participants ${BENCH_DEMO:-1000} | $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f s", e - s}') | | | |"
  "$BIN" serve --port "$PORT" >>"$work/serve.log" 2>&1 & serve=$!
  wait_for "http://127.0.0.1:$PORT/health"
  cookie=$(python3 bench/session.py "http://127.0.0.1:$PORT" bench "$PW")
  page=$(python3 bench/pick.py "http://127.0.0.1:$PORT" "$TOKEN" DEMO)
  report "$database: read one casebook page (demo trial), 64 connections" "$(wrk -t2 -c64 -d"$DURATION" --latency -H "Cookie: casebook_session=$cookie" "http://127.0.0.1:$PORT/participants/$page")"
  start=$(date +%s.%N)
  "$BIN" audit verify >"$work/verify.txt"
  echo "| $database: casebook audit verify ($(grep -o '[0-9]* events' "$work/verify.txt")) | $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f s", e - s}') | | | |"
  kill "$serve"; wait "$serve" 2>/dev/null || true
  # The audit trail at a million events: appended through the real append (hidden bench-audit), then verified.
  events=${BENCH_AUDIT:-1000000}
  [ "$database" = sqlite ] && export CASEBOOK_SQLITE_PATH="$work/audit.sqlite"
  "$BIN" bench-audit --events "$events" >/dev/null
  start=$(date +%s.%N)
  "$BIN" audit verify >"$work/verify.txt"
  echo "| $database: casebook audit verify ($(grep -o '[0-9]* events' "$work/verify.txt"), after bench-audit) | $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f s", e - s}') | | | |"
  rm -rf "$work"
done
