#!/usr/bin/env bash
# Checks a running proxy with curl and reports every wrong answer (exit 1 if
# any). It writes its own key into the Redis named by REDIS_ADDRESS
# (environment or .env), a fresh one each run, and deletes it after: it
# holds whatever keys the README's steps or anything else left in Redis.
# Usage: scripts/smoke.sh [base-url].
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

base=${1:-http://$(config_value PROXY_HOST 127.0.0.1):$(config_value PROXY_PORT 8080)}
failures=0
ensure_command redis-cli redis-tools || exit 1
redis() {
  redis-cli -u "$(redis_url "$(config_value REDIS_ADDRESS 127.0.0.1:6379)")" --no-auth-warning "$@"
}
# A key no earlier run has cached: its value comes from Redis, now.
key="redis-proxy:smoke:$$:$(date +%s%N)"
value="smoke value $RANDOM"
if [ "$(redis SET "$key" "$value")" != "OK" ]; then
  echo "FAIL could not write $key to Redis at $(config_value REDIS_ADDRESS 127.0.0.1:6379)"
  exit 1
fi
trap 'redis DEL "$key" >/dev/null' EXIT

# expect METHOD PATH STATUS [BODY]
expect() {
  local method=$1 path=$2 status=$3 body=${4-} out got
  out=$(mktemp)
  got=$(curl -s -o "$out" -w '%{http_code}' -X "$method" "$base$path") || got="no answer"
  if [ "$got" != "$status" ]; then
    echo "FAIL $method $path: status $got, expected $status: $(head -c 200 "$out")"
    failures=$((failures + 1))
  elif [ -n "$body" ] && [ "$(cat "$out")" != "$body" ]; then
    echo "FAIL $method $path: body $(head -c 200 "$out"), expected $body"
    failures=$((failures + 1))
  else
    echo "ok   $method $path -> $got"
  fi
  rm -f "$out"
}

expect GET "/healthz" 200
expect GET "/proxy?key=$key" 200 "$value"   # a miss, read through
expect GET "/proxy?key=$key" 200 "$value"   # again
expect GET "/proxy?key=$key:absent" 404
expect GET "/proxy" 400
expect GET "/proxy?key=a&key=b" 400
expect POST "/proxy?key=$key" 405
expect GET "/nowhere" 404
expect GET "/metrics" 200

if [ "$failures" -ne 0 ]; then
  echo "$failures smoke check(s) failed"
  exit 1
fi
echo "all smoke checks passed"
