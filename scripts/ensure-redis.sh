#!/usr/bin/env bash
# Makes sure the Redis named by REDIS_ADDRESS (environment or .env) answers.
# When it is on this machine and nothing answers, installs redis-server with
# apt-get if needed and starts one in the background (data in .redis-local/,
# persistence off); `make stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

address=$(config_value REDIS_ADDRESS 127.0.0.1:6379)
split_redis_address "$address"
if redis_answers "$REDIS_HOST" "$REDIS_PORT"; then
  echo "Redis answers at $REDIS_HOST:$REDIS_PORT"
  exit 0
fi
case $REDIS_HOST in
  127.*|localhost|::1|\[::1\]) ;;
  *) echo "no Redis answers at $REDIS_HOST:$REDIS_PORT, and it is not local: start it, or set REDIS_ADDRESS" >&2
     exit 1 ;;
esac
ensure_command redis-server redis-server
mkdir -p .redis-local
echo "starting redis-server on $REDIS_HOST:$REDIS_PORT (make stop stops it)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
  --dir "$PWD/.redis-local" --pidfile "$PWD/.redis-local/redis.pid" \
  --logfile "$PWD/.redis-local/redis.log" --save "" --appendonly no
wait_redis "$REDIS_PORT" || { echo "see .redis-local/redis.log" >&2; exit 1; }
