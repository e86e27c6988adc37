# Step 10 of `make bench` (issue 22, reads of every type), sourced by
# scripts/bench.sh, which provides $work, $results, $pids, start_proxy,
# wait_http, wait_link, free_port and wait_redis. Three figures, each with
# its goal beside it:
#
#   - redis-benchmark -t lrange_100 straight at Redis and through the proxy's
#     RESP port (served from the cache): rows redis_lrange and
#     resp_lrange, goal >= 1.5x; and pipelined (-P 16), rows
#     redis_lr_P16 and resp_lr_P16. (redis-benchmark LPUSHes its own
#     elements to `mylist` before it times LRANGE; the list is filled with
#     600 first, as its -t lpush would.)
#   - HGETALL of a 10-field hash from the cache against a GET hit of a
#     value whose reply has the same number of bytes: rows resp_hgetall and
#     resp_get_same, goal >= 1.0 (a cached HGETALL costs no more).
#   - memory per cached hash of 10 fields: the growth of the proxy's
#     redis_proxy_cache_bytes per hash read through it, against the growth
#     of Redis's used_memory per hash written, same data: goal proxy <=
#     Redis. Printed as a table of its own ($work/types.out).
#
# Settings: TYPES_REQUESTS (redis-benchmark -n, 100000), TYPES_KEYS (hashes
# for the memory figure, 10000), VALUE_SIZE (a hash's values together).

TYPES_REQUESTS=${TYPES_REQUESTS:-100000}
TYPES_KEYS=${TYPES_KEYS:-10000}

# types_benchmark NAME PORT ARGS...: one redis-benchmark run (-c
# CONNECTIONS), each timed test a results line "NAME rps p50 p99 0".
types_benchmark() {
  local name=$1 port=$2 out="$work/$1.csv"
  shift 2
  redis-benchmark -p "$port" -c "$CONNECTIONS" -n "$TYPES_REQUESTS" --csv -q "$@" >"$out" 2>/dev/null
  # redis-benchmark's own fill of mylist is not a figure of this step.
  awk -F'"' -v n="$name" 'NR > 1 && $2 !~ /needed to benchmark/ {printf "%s %s %sms %sms 0\n", n, $4, $10, $14}' "$out" >>"$results"
}

# hash_commands PREFIX COUNT: HSET PREFIX:i with 10 fields (field:0..9,
# each value VALUE_SIZE/10 bytes), one a line for redis-cli.
hash_commands() {
  local fields="" v i
  v=$(head -c "$((VALUE_SIZE / 10 > 0 ? VALUE_SIZE / 10 : 1))" /dev/zero | tr '\0' h)
  for i in 0 1 2 3 4 5 6 7 8 9; do fields+=" field:$i $v"; done
  awk -v p="$1" -v n="$2" -v f="$fields" 'BEGIN { for (i = 0; i < n; i++) printf "HSET %s:%d%s\n", p, i, f }'
}

# same_size_value: a value whose GET reply has as many bytes as HGETALL's
# reply of one of hash_commands' hashes (RESP2).
same_size_value() {
  local v=$((VALUE_SIZE / 10 > 0 ? VALUE_SIZE / 10 : 1)) reply len
  # *20, then 10 field names of 7 bytes and 10 values, each $LEN CRLF DATA CRLF.
  reply=$((5 + 10 * (4 + 7 + 2) + 10 * (1 + ${#v} + 2 + v + 2)))
  len=$reply
  while [ $((len + ${#len} + 3)) -gt "$reply" ]; do len=$((len - 1)); done
  head -c "$len" /dev/zero | tr '\0' g
}

# metric PORT NAME: one series of the proxy's /metrics.
metric() {
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'
}

# info_field PORT FIELD: a field of Redis's INFO memory.
info_field() {
  redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'
}

bench_types() {
  local redis=$1 proxy_port resp_port mem_port before after redis_per proxy_per
  redis-cli -p "$redis" del mylist myhash typeget >/dev/null
  for _ in $(seq 1 6); do redis-cli -p "$redis" lpush mylist $(printf 'xxx %.0s' $(seq 1 100)) >/dev/null; done
  hash_commands myhash 1 | sed 's/myhash:0/myhash/' | redis-cli -p "$redis" >/dev/null
  redis-cli -p "$redis" set typeget "$(same_size_value)" >/dev/null
  proxy_port=$(free_port); resp_port=$(free_port)
  start_proxy REDIS_ADDRESS="127.0.0.1:$redis" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
    WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600
  wait_http "$proxy_port" /healthz
  wait_link "$proxy_port"
  types_benchmark redis_lrange "$redis" -t lrange_100
  types_benchmark resp_lrange "$resp_port" -t lrange_100
  # Pipelined (-P 16): redis-benchmark itself is then no longer the bound
  # on a 2-core machine, so what a cached reply saves shows.
  types_benchmark redis_lr_P16 "$redis" -P 16 -t lrange_100
  types_benchmark resp_lr_P16 "$resp_port" -P 16 -t lrange_100
  # Filled by the first request of each run; every other is a hit.
  types_benchmark resp_get_same "$resp_port" GET typeget
  types_benchmark resp_hgetall "$resp_port" HGETALL myhash
  kill "${pids[-1]}"

  # Memory: a Redis of its own, TYPES_KEYS hashes written, then read
  # through a fresh proxy.
  mem_port=$(free_port)
  redis-server --port "$mem_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >>"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_redis "$mem_port"
  before=$(info_field "$mem_port" used_memory)
  hash_commands hash "$TYPES_KEYS" | redis-cli -p "$mem_port" >/dev/null
  after=$(info_field "$mem_port" used_memory)
  redis_per=$(( (after - before) / TYPES_KEYS ))
  proxy_port=$(free_port); resp_port=$(free_port)
  start_proxy REDIS_ADDRESS="127.0.0.1:$mem_port" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
    WORKERS="$WORKERS" CACHE_CAPACITY=$((TYPES_KEYS * 2)) GLOBAL_CACHE_EXPIRY=3600
  wait_http "$proxy_port" /healthz
  wait_link "$proxy_port"
  before=$(metric "$proxy_port" redis_proxy_cache_bytes)
  awk -v n="$TYPES_KEYS" 'BEGIN { for (i = 0; i < n; i++) printf "HGETALL hash:%d\n", i }' \
    | redis-cli -p "$resp_port" >/dev/null
  after=$(metric "$proxy_port" redis_proxy_cache_bytes)
  proxy_per=$(awk -v a="$after" -v b="$before" -v n="$TYPES_KEYS" 'BEGIN { printf "%d", (a - b) / n }')
  # Nothing cached (a proxy that forwards HGETALL) is no figure at all.
  [ "$proxy_per" != 0 ] || proxy_per="not-cached"
  kill "${pids[-1]}"
  kill "${pids[-2]}"
  {
    echo "step 10's req/s rows: redis-benchmark -c$CONNECTIONS -n$TYPES_REQUESTS (not -n$REQUESTS)"
    echo "memory per cached hash (10 fields, values of $VALUE_SIZE bytes in all; $TYPES_KEYS hashes):"
    echo "| figure                        | bytes per hash | ratio | goal            |"
    echo "|-------------------------------|----------------|-------|-----------------|"
    printf "| proxy redis_proxy_cache_bytes | %14s | %5s | <= Redis's      |\n" "$proxy_per" \
      "$(awk -v p="$proxy_per" -v r="$redis_per" 'BEGIN { if (r > 0 && p + 0 > 0) printf "%.2f", p / r; else print "-" }')"
    printf "| Redis used_memory             | %14s | %5s | -               |\n" "$redis_per" 1
  } >"$work/types.out"
}
