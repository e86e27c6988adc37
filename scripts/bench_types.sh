# Step 10 of `make bench` (issue 22, reads of every type), sourced by
# scripts/bench.sh, which provides $work, $results, $instr, $pids,
# start_proxy, wait_http, wait_up, wait_link, free_port, wait_redis and
# cpu_ticks. Each figure with its goal beside it:
#
#   - redis-benchmark -t lrange_100 straight at Redis and through the proxy's
#     RESP port (served from the cache): rows redis_lrange and
#     resp_lrange, goal >= 1.5x; pipelined (-P 16), rows redis_lr_P16
#     and resp_lr_P16; and pipelined with two client threads (--threads 2
#     -P 16), rows redis_lr_T2 and resp_lr_T2. (redis-benchmark LPUSHes
#     its own elements to `mylist` before it times LRANGE; the list is
#     filled with 600 first, as its -t lpush would.) The req/s goal is bound by
#     redis-benchmark itself on 2 cores, so the cost of one LRANGE is
#     counted too (informative): Redis's instructions per `LRANGE mylist 0
#     99` against the proxy's per cached one.
#   - HGETALL of a 10-field hash from the cache against a GET hit of a
#     value whose reply has the same number of bytes: rows resp_hgetall and
#     resp_get_same (req/s, which also count redis-benchmark's own parse
#     of a 20-element reply, and the proxy's CPU per request from
#     /proc/PID/stat), and the proxy's own cost: its instructions per
#     request, goal HGETALL <= GET.
#   - memory per cached hash of 10 fields: the growth of the proxy's
#     redis_proxy_cache_bytes per hash read through it (and of its resident
#     memory, to show the charge is true), against the growth of Redis's
#     used_memory per hash written, same data: goal proxy <= Redis; and
#     again with 100-byte field values (VALUE_SIZE 1000, past Redis's
#     listpack limit of 64), informative.
#
# Instructions are counted as step 2b counts them (perf's hardware
# counters are not there in every VM): the server runs under valgrind's
# callgrind (the proxy with INVALIDATION=off, as in 2b), a warm-up run of
# redis-benchmark, then one of TYPES_CG_REQUESTS requests (-c
# TYPES_CG_CONNECTIONS) between `callgrind_control -z` and `-d`;
# user-space instructions divided by the requests. The cost figures and the memory figures are printed as tables
# of their own ($work/types.out).
#
# Settings: TYPES_REQUESTS (redis-benchmark -n, 100000), TYPES_KEYS (hashes
# for the memory figure, 10000), TYPES_CG_REQUESTS (requests counted under
# callgrind, 20000), TYPES_CG_CONNECTIONS (their redis-benchmark -c, 16),
# VALUE_SIZE (a hash's values together).

TYPES_REQUESTS=${TYPES_REQUESTS:-100000}
TYPES_KEYS=${TYPES_KEYS:-10000}
TYPES_CG_REQUESTS=${TYPES_CG_REQUESTS:-20000}
TYPES_CG_CONNECTIONS=${TYPES_CG_CONNECTIONS:-16}

# types_benchmark NAME PORT PID ARGS...: one redis-benchmark run (-c
# CONNECTIONS), each timed test a results line "NAME rps p50 p99 0 CPU",
# CPU the microseconds of CPU server PID used per request ("-" for a run
# that also fills a list: redis-benchmark's LPUSHes are not a figure here).
types_benchmark() {
  local name=$1 port=$2 pid=$3 out="$work/$1.csv" before after
  shift 3
  before=$(cpu_ticks "$pid")
  redis-benchmark -p "$port" -c "$CONNECTIONS" -n "$TYPES_REQUESTS" --csv -q "$@" >"$out" 2>/dev/null
  after=$(cpu_ticks "$pid")
  # redis-benchmark's own fill of mylist is not a figure of this step.
  awk -F'"' -v n="$name" -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v req="$TYPES_REQUESTS" '
    NR > 1 && $2 ~ /needed to benchmark/ { filled = 1 }
    NR > 1 && $2 !~ /needed to benchmark/ {
      cpu = filled ? "-" : sprintf("%.1f", t * 1e6 / hz / req)
      printf "%s %s %sms %sms 0 %s\n", n, $4, $10, $14, cpu
    }' "$out" >>"$results"
}

# count_types NAME PORT PID ARGS...: redis-benchmark ARGS (-c
# TYPES_CG_CONNECTIONS) against a server PID running under callgrind (its
# dumps in $work/types.cg.*): a warm-up of a tenth as many, then
# TYPES_CG_REQUESTS requests counted; "NAME instructions-per-request" to
# $instr (nothing if a run did not finish within 5 minutes).
count_types() {
  local name=$1 port=$2 pid=$3 ir
  shift 3
  timeout 300 redis-benchmark -p "$port" -c "$TYPES_CG_CONNECTIONS" -n "$((TYPES_CG_REQUESTS / 10))" \
    -q "$@" >/dev/null 2>&1 || return 0
  rm -f "$work/types.cg".[0-9]*
  callgrind_control -z "$pid" >/dev/null 2>&1
  timeout 300 redis-benchmark -p "$port" -c "$TYPES_CG_CONNECTIONS" -n "$TYPES_CG_REQUESTS" \
    -q "$@" >/dev/null 2>&1 || return 0
  callgrind_control -d "$pid" >/dev/null 2>&1
  # No dump: no figure (never a 0 that would read as a pass).
  ir=$(callgrind_totals "$work/types.cg")
  [ -n "$ir" ] || return 0
  echo "$name $((ir / TYPES_CG_REQUESTS))" >>"$instr"
}

# hash_commands PREFIX COUNT [SIZE]: HSET PREFIX:i with 10 fields
# (field:0..9, each value SIZE/10 bytes, SIZE VALUE_SIZE unless given), one
# a line for redis-cli.
hash_commands() {
  local fields="" v i size=${3:-$VALUE_SIZE}
  v=$(head -c "$((size / 10 > 0 ? size / 10 : 1))" /dev/zero | tr '\0' h)
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

# field PORT SECTION FIELD: a field of Redis's INFO SECTION.
field() {
  redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f {print $2}'
}

# rss PID: its resident memory in bytes.
rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }

# memory_per_hash SIZE: TYPES_KEYS hashes of 10 fields (SIZE bytes of
# values in all) written to a Redis of its own, then read through a fresh
# proxy; sets per_hash to Redis's used_memory growth per hash, the proxy's
# redis_proxy_cache_bytes growth per hash ("not-cached" if none: a proxy
# that forwards HGETALL is no figure at all) and its resident memory's.
memory_per_hash() {
  local size=$1 port proxy_port resp_port before after redis_per proxy_per rss_before rss_after
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >>"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_redis "$port"
  before=$(field "$port" memory used_memory)
  hash_commands hash "$TYPES_KEYS" "$size" | redis-cli -p "$port" >/dev/null
  after=$(field "$port" memory used_memory)
  redis_per=$(( (after - before) / TYPES_KEYS ))
  proxy_port=$(free_port); resp_port=$(free_port)
  start_proxy REDIS_ADDRESS="127.0.0.1:$port" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
    WORKERS="$WORKERS" CACHE_CAPACITY=$((TYPES_KEYS * 2)) GLOBAL_CACHE_EXPIRY=3600
  wait_http "$proxy_port" /healthz
  wait_link "$proxy_port"
  before=$(metric "$proxy_port" redis_proxy_cache_bytes)
  rss_before=$(rss "$proxy_pid")
  awk -v n="$TYPES_KEYS" 'BEGIN { for (i = 0; i < n; i++) printf "HGETALL hash:%d\n", i }' \
    | redis-cli -p "$resp_port" >/dev/null
  after=$(metric "$proxy_port" redis_proxy_cache_bytes)
  rss_after=$(rss "$proxy_pid")
  proxy_per=$(awk -v a="$after" -v b="$before" -v n="$TYPES_KEYS" 'BEGIN { printf "%d", (a - b) / n }')
  [ "$proxy_per" != 0 ] || proxy_per="not-cached"
  kill "${pids[-1]}"
  kill "${pids[-2]}"
  per_hash=("$redis_per" "$proxy_per" "$(( (rss_after - rss_before) / TYPES_KEYS ))")
}

# ratio A B: A / B to two places, "-" unless both are numbers.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'
}

bench_types() {
  local redis=$1 proxy_port resp_port redis_pid cg_port mem big per_hash
  redis-cli -p "$redis" del mylist myhash typeget >/dev/null
  for _ in $(seq 1 6); do redis-cli -p "$redis" lpush mylist $(printf 'xxx %.0s' $(seq 1 100)) >/dev/null; done
  hash_commands myhash 1 | sed 's/myhash:0/myhash/' | redis-cli -p "$redis" >/dev/null
  redis-cli -p "$redis" set typeget "$(same_size_value)" >/dev/null
  redis_pid=$(field "$redis" server process_id)
  proxy_port=$(free_port); resp_port=$(free_port)
  start_proxy REDIS_ADDRESS="127.0.0.1:$redis" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
    WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600
  wait_http "$proxy_port" /healthz
  wait_link "$proxy_port"
  types_benchmark redis_lrange "$redis" "$redis_pid" -t lrange_100
  types_benchmark resp_lrange "$resp_port" "$proxy_pid" -t lrange_100
  # Pipelined (-P 16): redis-benchmark itself is then no longer the bound
  # on a 2-core machine, so what a cached reply saves shows.
  types_benchmark redis_lr_P16 "$redis" "$redis_pid" -P 16 -t lrange_100
  types_benchmark resp_lr_P16 "$resp_port" "$proxy_pid" -P 16 -t lrange_100
  # redis-benchmark parsing a 100-element reply costs about as much as Redis
  # building it, so even pipelined one client thread is the bound on 2
  # cores. Given two threads (both cores), req/s is set by the CPU the
  # client and the server take together: what a cached reply saves shows.
  types_benchmark redis_lr_T2 "$redis" "$redis_pid" --threads 2 -P 16 -t lrange_100
  types_benchmark resp_lr_T2 "$resp_port" "$proxy_pid" --threads 2 -P 16 -t lrange_100
  # Filled by the first request of each run; every other is a hit.
  types_benchmark resp_get_same "$resp_port" "$proxy_pid" GET typeget
  types_benchmark resp_hgetall "$resp_port" "$proxy_pid" HGETALL myhash
  kill "${pids[-1]}"

  # Instructions per request: the proxy under callgrind, then a Redis of
  # its own holding the same list.
  proxy_port=$(free_port); resp_port=$(free_port)
  env -i PATH="$PATH" RUST_LOG=warn REDIS_ADDRESS="127.0.0.1:$redis" PROXY_PORT="$proxy_port" \
    RESP_PORT="$resp_port" WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600 \
    INVALIDATION=off valgrind --tool=callgrind --callgrind-out-file="$work/types.cg" \
    target/release/redis-proxy 2>>"$work/proxy.log" &
  pids+=($!)
  wait_up "$proxy_port" /healthz
  # Under valgrind the RESP port opens a while after HTTP's (a
  # redis-benchmark that finds it closed spins instead of failing).
  for _ in $(seq 1 600); do redis-cli -p "$resp_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  count_types resp_get_same "$resp_port" "${pids[-1]}" GET typeget
  count_types resp_hgetall "$resp_port" "${pids[-1]}" HGETALL myhash
  count_types resp_lrange "$resp_port" "${pids[-1]}" LRANGE mylist 0 99
  kill "${pids[-1]}"
  cg_port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$work/types.cg" redis-server --port "$cg_port" \
    --bind 127.0.0.1 --save "" --appendonly no --daemonize no >>"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do redis-cli -p "$cg_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  for _ in $(seq 1 6); do redis-cli -p "$cg_port" lpush mylist $(printf 'xxx %.0s' $(seq 1 100)) >/dev/null; done
  count_types redis_lrange "$cg_port" "${pids[-1]}" LRANGE mylist 0 99
  kill "${pids[-1]}"

  # Memory: a Redis of its own per figure, TYPES_KEYS hashes written, then
  # read through a fresh proxy.
  memory_per_hash "$VALUE_SIZE"
  mem=("${per_hash[@]}")
  memory_per_hash 1000
  big=("${per_hash[@]}")
  {
    echo "step 10's req/s rows: redis-benchmark -c$CONNECTIONS -n$TYPES_REQUESTS (not -n$REQUESTS)"
    echo "cost per request (instructions: the server under callgrind, redis-benchmark -c$TYPES_CG_CONNECTIONS -n$TYPES_CG_REQUESTS after a warm-up; CPU: /proc, in the req/s runs):"
    awk -v cg="$TYPES_CG_REQUESTS" '
      FILENAME == ARGV[1] { instr[$1] = $2; next }
      { cpu[$1] = $6 }
      END {
        r = (instr["resp_get_same"] > 0) ? sprintf("%.2f", instr["resp_hgetall"] / instr["resp_get_same"]) : "-"
        l = (instr["redis_lrange"] > 0) ? sprintf("%.2f", instr["resp_lrange"] / instr["redis_lrange"]) : "-"
        printf "| %-30s | %9s | %9s | %5s | %-26s |\n", "figure", "instr/req", "CPU/req", "ratio", "goal"
        printf "|--------------------------------|-----------|-----------|-------|----------------------------|\n"
        printf "| %-30s | %9s | %9s | %5s | %-26s |\n", "resp_get_same (proxy, GET hit)", instr["resp_get_same"], cpu["resp_get_same"] " us", "1", "-"
        printf "| %-30s | %9s | %9s | %5s | %-26s |\n", "resp_hgetall (proxy, HGETALL)", instr["resp_hgetall"], cpu["resp_hgetall"] " us", r, "<= 1.0 (instr)"
        printf "| %-30s | %9s | %9s | %5s | %-26s |\n", "redis_lrange (Redis, LRANGE)", instr["redis_lrange"], "-", "1", "-"
        printf "| %-30s | %9s | %9s | %5s | %-26s |\n", "resp_lrange (proxy, cached)", instr["resp_lrange"], "-", l, "informative"
      }' "$instr" "$results"
    echo "memory per cached hash (10 fields; $TYPES_KEYS hashes; proxy RSS, informative: its resident memory's growth, also what the charge leaves out, the allocator's rounding, the filling workers' malloc arenas, the arena's and table's room to grow, which weigh most at few keys):"
    echo "| figure                                 | bytes per hash | ratio | goal            |"
    echo "|----------------------------------------|----------------|-------|-----------------|"
    printf "| proxy redis_proxy_cache_bytes (%4s B) | %14s | %5s | <= Redis's      |\n" "$VALUE_SIZE" "${mem[1]}" "$(ratio "${mem[1]}" "${mem[0]}")"
    printf "| proxy RSS                     (%4s B) | %14s | %5s | -               |\n" "$VALUE_SIZE" "${mem[2]}" "$(ratio "${mem[2]}" "${mem[0]}")"
    printf "| Redis used_memory             (%4s B) | %14s | %5s | -               |\n" "$VALUE_SIZE" "${mem[0]}" 1
    printf "| proxy redis_proxy_cache_bytes (%4s B) | %14s | %5s | informative     |\n" 1000 "${big[1]}" "$(ratio "${big[1]}" "${big[0]}")"
    printf "| proxy RSS                     (%4s B) | %14s | %5s | -               |\n" 1000 "${big[2]}" "$(ratio "${big[2]}" "${big[0]}")"
    printf "| Redis used_memory             (%4s B) | %14s | %5s | -               |\n" 1000 "${big[0]}" 1
  } >"$work/types.out"
}
