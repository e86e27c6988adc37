#!/usr/bin/env bash
# Checks a running proxy with curl: exits non-zero on the first wrong answer.
# Needs `make seed` first. Usage: scripts/smoke.sh [base-url].
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

base=${1:-http://$(config_value PROXY_HOST 127.0.0.1):$(config_value PROXY_PORT 8080)}
failures=0

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
expect GET "/proxy?key=seeded_key1" 200 "seeded value 1"
expect GET "/proxy?key=seeded_key1" 200 "seeded value 1"
expect GET "/proxy?key=no_such_key_for_smoke" 404
expect GET "/proxy" 400
expect GET "/proxy?key=a&key=b" 400
expect POST "/proxy?key=seeded_key1" 405
expect GET "/nowhere" 404
expect GET "/metrics" 200

if [ "$failures" -ne 0 ]; then
  echo "$failures smoke check(s) failed"
  exit 1
fi
echo "all smoke checks passed"
