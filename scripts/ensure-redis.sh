#!/usr/bin/env bash
# Makes sure the Redis named by REDIS_ADDRESS (environment or .env) answers,
# before `make run` starts the proxy. Only one plain redis:// address on
# this machine's loopback (127.0.0.1, localhost, [::1]) with nothing
# answering there gets a redis-server: installed with apt-get if needed,
# started in the background on that address (data in .redis-local/,
# persistence off); `make stop` stops it. A remote Redis, rediss:// (TLS),
# a list of nodes and REDIS_MODE=cluster or sentinel are never started:
# they are only checked for reachability, and the proxy, started anyway,
# reports its own errors. Exits non-zero only when it fails to start the
# redis-server it set out to start.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

address=$(config_value REDIS_ADDRESS 127.0.0.1:6379)
mode=$(config_value REDIS_MODE standalone | tr '[:upper:]' '[:lower:]')
mode=${mode//[[:space:]]/}
address=${address//[[:space:]]/}

# Says whether each node answers; never starts anything.
check_only() {
  local why=$1 node
  echo "REDIS_ADDRESS is $why: nothing is started for it, the proxy reports what it cannot reach"
  IFS=, read -ra nodes <<<"$address"
  for node in "${nodes[@]}"; do
    node=${node//[[:space:]]/}
    if ! split_redis_address "$node"; then
      echo "  $node: not an address the proxy takes (it will say so)" >&2
    elif [ "$REDIS_SCHEME" = rediss ]; then
      if tcp_open "$REDIS_HOST" "$REDIS_PORT"; then
        echo "  $REDIS_HOST:$REDIS_PORT accepts connections (TLS not checked here)"
      else
        echo "  $REDIS_HOST:$REDIS_PORT does not accept connections" >&2
      fi
    elif redis_answers "$REDIS_HOST" "$REDIS_PORT"; then
      echo "  Redis answers at $REDIS_HOST:$REDIS_PORT"
    else
      echo "  no Redis answers at $REDIS_HOST:$REDIS_PORT" >&2
    fi
  done
  exit 0
}

case $address in *,*) check_only "a list of nodes" ;; esac
case $mode in standalone) ;; *) check_only "for REDIS_MODE=$mode" ;; esac
split_redis_address "$address" || check_only "not host:port or a redis:// URL"
[ "$REDIS_SCHEME" = redis ] || check_only "a TLS (rediss://) address"
is_local_host "$REDIS_HOST" || check_only "not on this machine"

if redis_answers "$REDIS_HOST" "$REDIS_PORT"; then
  echo "Redis answers at $REDIS_HOST:$REDIS_PORT"
  exit 0
fi
# localhost: the IPv4 loopback, which every resolver gives for it.
bind=$REDIS_HOST
[ "$bind" = localhost ] && bind=127.0.0.1
ensure_command redis-server redis-server
mkdir -p .redis-local
echo "starting redis-server on $REDIS_HOST port $REDIS_PORT (make stop stops it)"
redis-server --bind "$bind" --port "$REDIS_PORT" --daemonize yes \
  --dir "$PWD/.redis-local" --pidfile "$PWD/.redis-local/redis.pid" \
  --logfile "$PWD/.redis-local/redis.log" --save "" --appendonly no
wait_redis "$REDIS_PORT" "$bind" || { echo "see .redis-local/redis.log" >&2; exit 1; }
