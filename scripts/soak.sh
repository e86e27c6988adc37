#!/usr/bin/env bash
# `make soak`: mixed HTTP and RESP load for SOAK_SECONDS (default 300) over
# 100k keys whose values encode key and version, while every value is
# rewritten every 20 s and Redis is restarted twice (at 1/3 and 2/3). Reports
# requests, outcomes by status, wrong values (must be 0), stale reads after a
# rewrite's invalidations have all arrived (must be 0), and the proxy's
# RSS at start and end (must stay bounded by its capacity). Loopback only;
# stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

SOAK_SECONDS=${SOAK_SECONDS:-300}
KEYS=${KEYS:-100000}
CAPACITY=${CAPACITY:-20000}
ensure_command redis-server redis-server
cargo build --release --quiet --bin redis-proxy --example soak

work=$(mktemp -d)
redis_pid=""; proxy_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >>"$work/redis.log" 2>&1 &
  redis_pid=$!
  wait_redis "$redis_port"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$proxy_pid/status"; }

redis_port=$(free_port); http_port=$(free_port); resp_port=$(free_port)
start_redis
env -i PATH="$PATH" REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$http_port" RESP_PORT="$resp_port" \
  CACHE_CAPACITY="$CAPACITY" GLOBAL_CACHE_EXPIRY=10 REDIS_TIMEOUT_MS=500 RUST_LOG=warn \
  target/release/redis-proxy 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$http_port/healthz" >/dev/null && break; sleep 0.05; done
rss_start=$(rss_kb)

HTTP_ADDR="127.0.0.1:$http_port" RESP_ADDR="127.0.0.1:$resp_port" REDIS_URL="redis://127.0.0.1:$redis_port" \
  KEYS="$KEYS" SECONDS="$SOAK_SECONDS" REWRITE_SECS=20 target/release/examples/soak >"$work/soak.out" &
load_pid=$!

for third in 1 2; do
  sleep $((SOAK_SECONDS / 3))
  echo "restarting Redis ($third of 2)"
  kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
  sleep 1
  start_redis
done
status=0
wait "$load_pid" || status=$?
rss_end=$(rss_kb)

cat "$work/soak.out"
echo "proxy RSS: ${rss_start} kB at start, ${rss_end} kB at end (capacity $CAPACITY keys)"
# Bound: the start plus 2 KiB per cached key, far above a ~30-byte value's cost.
bound=$((rss_start + CAPACITY * 2))
if [ "$rss_end" -gt "$bound" ]; then
  echo "FAIL: RSS above ${bound} kB"; status=1
fi
[ "$status" -eq 0 ] && echo "soak passed" || echo "soak FAILED"
exit "$status"
