#!/usr/bin/env bash
# `make bench`: throughput and latency of the proxy next to what its parts can
# do at all, in one run, as one table. Loopback only; every run is bounded.
#
#   1. http_ceiling: tiny_http with the same worker pool and a fixed body
#   2. proxy, all hits            (wrk over 1000 cached keys; invalidation on)
#      1 and 2 run alternately, three rounds each, with the server's CPU per
#      request answered (utime + stime from /proc/PID/stat, before and after
#      each wrk run); each row shows the round with the median CPU. Both get
#      the same requests (the ceiling ignores their target), so the CPU rows
#      differ by what the proxy adds, not by how long the request line is.
#      2b: the same two, each under valgrind's callgrind for one wrk run:
#      the server's user-space instructions per request answered, which
#      other load on the machine does not change (the CPU time above moves
#      by +-20% between rounds on a shared machine). BENCH_ONLY=hits runs
#      steps 1-2b alone and prints their table.
#   3. proxy, all misses          (capacity 10, 100000 keys)
#   4. redis-benchmark GET straight at the backing Redis
#   5. redis-benchmark GET at the proxy's RESP port, all hits (if built in)
#      5b forwarded writes: redis-benchmark -t set,incr,lpush,hset -c 50
#      (and -P 16) at Redis, through the proxy and, when `nutcracker` is
#      installed, through twemproxy (a reference: rows twem_*), in
#      WRITE_ROUNDS (3) alternating rounds; each row its median round.
#      Beside it a table of CPU per request, user/system, of every process
#      in the path (scripts/bench_writes.sh). BENCH_ONLY=writes runs step
#      5b alone and prints its tables.
#   6. proxy, all hits with INVALIDATION=off, for the cost of tracking;
#      6b with PROXY_PASSWORD, 6c over HTTPS, 6d in front of a Redis Cluster
#   7. staleness after a write, and invalidations applied per second;
#      7b other clients' PING latency while one RESP client holds 100k
#      BCAST prefixes and Redis takes 20k writes
#   8. redis-py and node-redis with their own caches (CLIENT TRACKING)
#      through the proxy, and without: reads per second, and staleness at
#      the application
#   9. memory per cached key, next to Redis's for the same keys (MEMORY_KEYS)
#  10. reads of every type (scripts/bench_types.sh): -t lrange_100 at Redis
#      and from the cache, HGETALL hits against GET hits of the same size
#      (req/s, CPU and, under callgrind, instructions per request), memory
#      per cached hash against Redis's. BENCH_TYPES=0 skips it;
#      BENCH_ONLY=types runs it alone and prints its figures.
#
# The table's requests per second are also drawn as an SVG bar chart in
# target/bench/bench.svg (scripts/bench_chart.sh).
#
# Settings: DURATION (s, default 10), CG_DURATION (step 2b, 6), CONNECTIONS (64), THREADS (2),
# VALUE_SIZE (bytes, 100), WORKERS (the proxy's WORKERS, 16), REQUESTS
# (redis-benchmark -n, 200000), WRITE_ROUNDS (step 5b's rounds, 3),
# BENCH_ONLY (hits, writes or types: one part alone), BENCH_TYPES (0 skips
# step 10); step 10's own in scripts/bench_types.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
VALUE_SIZE=${VALUE_SIZE:-100}
WORKERS=${WORKERS:-16}
REQUESTS=${REQUESTS:-200000}

ensure_command wrk wrk
ensure_command redis-server redis-server
ensure_command redis-benchmark redis-tools
ensure_command openssl openssl
ensure_command valgrind valgrind
ensure_python_module redis redis
ensure_node_module redis redis@5
cargo build --release --quiet --bin redis-proxy --example http_ceiling --example staleness --example memory --example bcast_burst

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the proxy in the background with these VAR=value settings and no
# other environment (logging warnings into $work/proxy.log), and notes its
# pid in proxy_pid and pids (stopped by cleanup).
start_proxy() {
  env -i PATH="$PATH" RUST_LOG=warn "$@" target/release/redis-proxy 2>>"$work/proxy.log" &
  proxy_pid=$!
  pids+=("$proxy_pid")
}

wait_http() {
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "nothing answers on port $1" >&2
  cat "$work/proxy.log" >&2 2>/dev/null
  exit 1
}

# wait_link PORT: until the proxy's invalidation link is up, so reads cache.
wait_link() {
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$1/readyz" | grep -q '"invalidation":"up"' && return 0; sleep 0.05; done
  echo "the invalidation link on port $1 never came up" >&2
  exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
redis_pid=$!
wait_redis "$redis_port"
value=$(head -c "$VALUE_SIZE" /dev/zero | tr '\0' v)
# Keys as redis-benchmark -r names them: key:000000000042.
for i in $(seq 0 99999); do printf 'SET key:%012d %s\n' "$i" "$value"; done | redis-cli -p "$redis_port" --pipe >/dev/null

# wrk script: a random key out of KEYS per request.
cat >"$work/keys.lua" <<'LUA'
local keys = tonumber(os.getenv("KEYS") or "1000")
local auth = os.getenv("AUTH")
if auth then wrk.headers["Authorization"] = "Bearer " .. auth end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/proxy?key=key:%012d", math.random(0, keys - 1)))
end
LUA

# run_wrk NAME PORT KEYS: prints "NAME rps p50 p99" to results
results="$work/results"
run_wrk() {
  local name=$1 port=$2 keys=$3 out="$work/$1.wrk"
  KEYS=$keys wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/keys.lua" "${SCHEME:-http}://127.0.0.1:$port/" >"$out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1=="50%" {print $2}' "$out")
  p99=$(awk '$1=="99%" {print $2}' "$out")
  errors=$(awk '/Non-2xx/ {print $NF}' "$out")
  echo "$name ${rps:-0} ${p50:--} ${p99:--} ${errors:-0}" >>"$results"
}

# cpu_ticks PID: the CPU time PID has used, user and system, in clock ticks
# (fields 14 and 15 of /proc/PID/stat; the name before them may hold spaces).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# run_wrk_cpu NAME PID PORT KEYS: run_wrk, then the server's CPU per request
# answered (microseconds) appended to the line as a sixth field; the line
# goes to $rounds instead of $results.
rounds="$work/rounds"
run_wrk_cpu() {
  local name=$1 pid=$2 before after requests
  before=$(cpu_ticks "$pid")
  results="$rounds" run_wrk "$name" "$3" "$4"
  after=$(cpu_ticks "$pid")
  requests=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
  sed -i "\$s/\$/ $(awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v n="${requests:-0}" \
    'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }')/" "$rounds"
}

# median_round NAME: the round of NAME with the median CPU per request, to
# the results table.
median_round() {
  grep "^$1 " "$rounds" | sort -g -k6 | sed -n 2p >>"$results"
}

# count_instructions NAME PORT PID: one wrk run (-t1 -c50, CG_DURATION
# seconds) against a server running under callgrind; its instructions are
# zeroed just before and dumped just after, and their count per request
# answered goes to $instr as "NAME count".
instr="$work/instr"
: >"$instr"
# callgrind_totals PREFIX: the instructions counted in the first dump
# PREFIX.N a callgrind_control -d asked for, waiting for it (the server
# writes it soon after the request; its totals line comes last); nothing
# if none came.
callgrind_totals() {
  local dump
  for _ in $(seq 1 100); do
    dump=$(ls "$1".[0-9]* 2>/dev/null | head -1 || true)
    if [ -n "$dump" ] && grep -q '^totals:' "$dump"; then
      awk '/^totals:/ {print $2; exit}' "$dump"
      return 0
    fi
    sleep 0.1
  done
}

count_instructions() {
  local name=$1 port=$2 pid=$3 out="$work/$1.instr.wrk" ir requests
  callgrind_control -z "$pid" >/dev/null 2>&1
  KEYS=1000 wrk -t1 -c50 -d"${CG_DURATION:-6}s" -s "$work/keys.lua" "http://127.0.0.1:$port/" >"$out"
  callgrind_control -d "$pid" >/dev/null 2>&1
  ir=$(callgrind_totals "$work/$name.cg")
  requests=$(awk '/requests in/ {print $1}' "$out")
  [ -n "$ir" ] && [ "${requests:-0}" -gt 0 ] || return 0
  echo "$name $((ir / requests))" >>"$instr"
}

# wait_up PORT PATH: like wait_http, with the time valgrind takes to start.
wait_up() {
  for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "nothing answers on port $1" >&2
  exit 1
}

# run_redis_benchmark NAME PORT: GET over 1000 keys (redis-benchmark's own key
# pattern key:__rand_int__, which our seed matches)
run_redis_benchmark() {
  local name=$1 port=$2 out="$work/$1.csv"
  redis-benchmark -p "$port" -c "$CONNECTIONS" -n "$REQUESTS" -r 1000 -t get --csv -q >"$out" 2>/dev/null
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  awk -F'"' -v n="$name" '$2 ~ /^GET/ {printf "%s %s %sms %sms 0\n", n, $4, $10, $14}' "$out" >>"$results"
}

# print_table: the results so far, as a Markdown table.
print_table() {
  echo "$(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; redis-benchmark -c$CONNECTIONS -n$REQUESTS (writes: -c 50); values of $VALUE_SIZE bytes; WORKERS=$WORKERS"
  awk '
    FILENAME == ARGV[1] { instr[$1] = $2; next }
    { n++; name[n]=$1; rps[n]=$2; p50[n]=$3; p99[n]=$4; err[n]=$5; cpu[n]=(NF >= 6 ? $6 : "-"); idx[$1]=n }
    END {
      printf "| %-13s | %12s | %10s | %10s | %7s | %9s | %9s | %-44s |\n", "run", "req/s", "p50", "p99", "non-2xx", "CPU/req", "instr/req", "ratio"
      printf "|%s|%s|%s|%s|%s|%s|%s|%s|\n", "---------------", "--------------", "------------", "------------", "---------", "-----------", "-----------", "----------------------------------------------"
      for (i = 1; i <= n; i++) {
        ratio = ""
        if (name[i] == "proxy_hits" && ("http_ceiling" in idx)) ratio = sprintf("%.0f%% of http_ceiling, CPU %.2fx", 100 * rps[i] / rps[idx["http_ceiling"]], cpu[i] / cpu[idx["http_ceiling"]])
        if (name[i] == "proxy_hits" && ("proxy_hits" in instr) && ("http_ceiling" in instr)) ratio = ratio sprintf(", instr %.3fx", instr["proxy_hits"] / instr["http_ceiling"])
        if (name[i] == "proxy_misses" && ("redis_get" in idx)) ratio = sprintf("%.0f%% of redis_get", 100 * rps[i] / rps[idx["redis_get"]])
        if (name[i] == "resp_hits" && ("redis_get" in idx)) ratio = sprintf("%.0f%% of redis_get", 100 * rps[i] / rps[idx["redis_get"]])
        if (name[i] == "hits_with_auth" && ("proxy_hits" in idx)) ratio = sprintf("%.2f of proxy_hits", rps[i] / rps[idx["proxy_hits"]])
        if (name[i] == "hits_https" && ("proxy_hits" in idx)) ratio = sprintf("%.2f of proxy_hits", rps[i] / rps[idx["proxy_hits"]])
        if (name[i] == "cluster_hits" && ("proxy_hits" in idx)) ratio = sprintf("%.2f of proxy_hits", rps[i] / rps[idx["proxy_hits"]])
        if (name[i] == "cluster_misses" && ("proxy_misses" in idx)) ratio = sprintf("%.2f of proxy_misses", rps[i] / rps[idx["proxy_misses"]])
        if (name[i] ~ /^(fwd|twem)_/) { r = name[i]; sub(/^(fwd|twem)_/, "redis_", r); if (r in idx) ratio = sprintf("%.2f of %s", rps[i] / rps[idx[r]], r) }
        if (name[i] == "resp_lrange" && ("redis_lrange" in idx)) ratio = sprintf("%.2fx redis_lrange (goal >= 1.5x)", rps[i] / rps[idx["redis_lrange"]])
        if (name[i] == "resp_lrange" && ("redis_lrange" in instr) && ("resp_lrange" in instr)) ratio = ratio sprintf(", instr %.2fx", instr["resp_lrange"] / instr["redis_lrange"])
        if (name[i] == "resp_lr_P16" && ("redis_lr_P16" in idx)) ratio = sprintf("%.2fx redis_lr_P16 (goal >= 1.5x)", rps[i] / rps[idx["redis_lr_P16"]])
        if (name[i] == "resp_lr_T2" && ("redis_lr_T2" in idx)) ratio = sprintf("%.2fx redis_lr_T2 (goal >= 1.5x)", rps[i] / rps[idx["redis_lr_T2"]])
        if (name[i] == "resp_hgetall" && ("resp_get_same" in idx)) ratio = sprintf("%.2f of resp_get_same (goal >= 1.0)", rps[i] / rps[idx["resp_get_same"]])
        if (name[i] == "resp_hgetall" && ("resp_get_same" in instr) && ("resp_hgetall" in instr)) ratio = ratio sprintf(", instr %.2fx (goal <= 1.0)", instr["resp_hgetall"] / instr["resp_get_same"])
        if (name[i] == "hits_ttl_only" && ("proxy_hits" in idx)) ratio = sprintf("tracking on: %.2f of this", rps[idx["proxy_hits"]] / rps[i])
        printf "| %-13s | %12.0f | %10s | %10s | %7s | %9s | %9s | %-44s |\n", name[i], rps[i], p50[i], p99[i], err[i], (cpu[i] == "-" ? "-" : cpu[i] " us"), (name[i] in instr ? instr[name[i]] : "-"), ratio
      }
    }' "$instr" "$results"
}

. scripts/bench_writes.sh
# BENCH_ONLY=writes: step 5b alone.
if [ "${BENCH_ONLY:-}" = writes ]; then
  echo "== 5b/9 forwarded writes, ${WRITE_ROUNDS:-3} alternating rounds"
  bench_writes
  print_table
  echo
  cat "$work/writes_cpu.out"
  exit 0
fi

. scripts/bench_types.sh
if [ "${BENCH_ONLY:-}" = types ]; then
  echo "== 10 reads of every type, alone (BENCH_ONLY=types)"
  bench_types "$redis_port"
  print_table
  cat "$work/types.out"
  exit 0
fi

echo "== 1-2/9 http_ceiling and proxy, all hits: three alternating rounds, CPU per request"
ceiling_port=$(free_port)
PORT=$ceiling_port WORKERS=$WORKERS BODY_SIZE=$VALUE_SIZE target/release/examples/http_ceiling 2>/dev/null &
pids+=($!)
ceiling_pid=$!
wait_http "$ceiling_port" /
proxy_port=$(free_port); resp_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
  WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600
wait_http "$proxy_port" /healthz
wait_link "$proxy_port"
for i in $(seq 0 999); do curl -fs "http://127.0.0.1:$proxy_port/proxy?key=key:$(printf %012d "$i")" >/dev/null; done
for _ in 1 2 3; do
  run_wrk_cpu proxy_hits "$proxy_pid" "$proxy_port" 1000
  run_wrk_cpu http_ceiling "$ceiling_pid" "$ceiling_port" 1000
done
median_round http_ceiling
median_round proxy_hits
kill "$ceiling_pid"
resp_enabled=0
redis_answers 127.0.0.1 "$resp_port" && resp_enabled=1
if [ "$resp_enabled" = 1 ] && [ -z "${BENCH_ONLY:-}" ]; then
  echo "== 5/9 redis-benchmark at the proxy's RESP port, all hits"
  run_redis_benchmark resp_hits "$resp_port"
fi
kill "${pids[-1]}"

echo "== 2b/9 http_ceiling and proxy hits under callgrind: instructions per request"
# INVALIDATION=off: valgrind slows the proxy enough to break its
# invalidation link now and then, whose reconnection flushes the cache and
# would mix refetches into the hits; a hit's path is the same either way.
ceiling_port=$(free_port)
PORT=$ceiling_port WORKERS=$WORKERS BODY_SIZE=$VALUE_SIZE valgrind --tool=callgrind \
  --callgrind-out-file="$work/http_ceiling.cg" target/release/examples/http_ceiling 2>/dev/null &
pids+=($!)
wait_up "$ceiling_port" /
count_instructions http_ceiling "$ceiling_port" "${pids[-1]}"
kill "${pids[-1]}"
proxy_port=$(free_port)
env -i PATH="$PATH" RUST_LOG=warn REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT=off \
  WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600 INVALIDATION=off \
  valgrind --tool=callgrind --callgrind-out-file="$work/proxy_hits.cg" target/release/redis-proxy 2>>"$work/proxy.log" &
pids+=($!)
wait_up "$proxy_port" /healthz
# The 1000 keys read once, on one connection (a curl each would take a
# while against a proxy under valgrind).
curl -fs $(for i in $(seq 0 999); do printf 'http://127.0.0.1:%s/proxy?key=key:%012d ' "$proxy_port" "$i"; done) >/dev/null
count_instructions proxy_hits "$proxy_port" "${pids[-1]}"
kill "${pids[-1]}"
[ "${BENCH_ONLY:-}" = hits ] && { print_table; exit 0; }

echo "== 3/9 proxy, all misses"
proxy_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT=off \
  WORKERS="$WORKERS" CACHE_CAPACITY=10
wait_http "$proxy_port" /healthz
run_wrk proxy_misses "$proxy_port" 100000
kill "${pids[-1]}"

echo "== 4/9 redis-benchmark GET at the backing Redis"
run_redis_benchmark redis_get "$redis_port"

echo "== 5b/9 forwarded writes: redis-benchmark -t set,incr,lpush,hset at Redis and through the proxy, ${WRITE_ROUNDS:-3} alternating rounds"
bench_writes

echo "== 6/9 proxy, all hits, INVALIDATION=off"
proxy_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT=off \
  WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600 INVALIDATION=off
wait_http "$proxy_port" /healthz
for i in $(seq 0 999); do curl -fs "http://127.0.0.1:$proxy_port/proxy?key=key:$(printf %012d "$i")" >/dev/null; done
run_wrk hits_ttl_only "$proxy_port" 1000
kill "${pids[-1]}"

echo "== 6b/9 proxy, all hits, PROXY_PASSWORD set (every request authenticated)"
proxy_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT=off \
  WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600 PROXY_PASSWORD=bench-pw
wait_http "$proxy_port" /healthz
wait_link "$proxy_port"
for i in $(seq 0 999); do curl -fs -H "Authorization: Bearer bench-pw" "http://127.0.0.1:$proxy_port/proxy?key=key:$(printf %012d "$i")" >/dev/null; done
AUTH=bench-pw run_wrk hits_with_auth "$proxy_port" 1000
kill "${pids[-1]}"

echo "== 6c/9 proxy, all hits over HTTPS (TLS_CERT_FILE, TLS_KEY_FILE)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.pem" 2>/dev/null
proxy_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT=off \
  WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600 TLS_CERT_FILE="$work/tls.pem" \
  TLS_KEY_FILE="$work/tls.key"
for _ in $(seq 1 200); do curl -fs --cacert "$work/tls.pem" "https://127.0.0.1:$proxy_port/readyz" | grep -q '"invalidation":"up"' && break; sleep 0.05; done
for i in $(seq 0 999); do curl -fs --cacert "$work/tls.pem" "https://127.0.0.1:$proxy_port/proxy?key=key:$(printf %012d "$i")" >/dev/null; done
SCHEME=https run_wrk hits_https "$proxy_port" 1000
kill "${pids[-1]}"

echo "== 6d/9 proxy in front of a Redis Cluster (3 masters): hits, then misses"
cluster_ports=()
for _ in 1 2 3; do
  port=$(cluster_port)
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$work/nodes-$port.conf" \
    --cluster-node-timeout 2000 --save "" --appendonly no --daemonize no >>"$work/redis.log" 2>&1 &
  pids+=($!)
  cluster_ports+=("$port")
done
for port in "${cluster_ports[@]}"; do wait_redis "$port"; done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") --cluster-yes >/dev/null
for _ in $(seq 1 200); do redis-cli -p "${cluster_ports[0]}" cluster info | grep -q cluster_state:ok && break; sleep 0.05; done
for i in $(seq 0 999); do printf 'key:%012d\n' "$i"; done \
  | while read -r key; do redis-cli -c -p "${cluster_ports[0]}" set "$key" "$value" >/dev/null; done
seeds="127.0.0.1:${cluster_ports[0]},127.0.0.1:${cluster_ports[1]}"
for capacity in 10000 10; do
  proxy_port=$(free_port)
  start_proxy REDIS_MODE=cluster REDIS_ADDRESS="$seeds" PROXY_PORT="$proxy_port" RESP_PORT=off \
    WORKERS="$WORKERS" CACHE_CAPACITY="$capacity" GLOBAL_CACHE_EXPIRY=3600
  wait_http "$proxy_port" /healthz
  wait_link "$proxy_port"
  if [ "$capacity" = 10000 ]; then
    for i in $(seq 0 999); do curl -fs "http://127.0.0.1:$proxy_port/proxy?key=key:$(printf %012d "$i")" >/dev/null; done
    run_wrk cluster_hits "$proxy_port" 1000
  else
    run_wrk cluster_misses "$proxy_port" 1000
  fi
  kill "${pids[-1]}"
done

echo "== 7/9 staleness and invalidation rate (INVALIDATION=tracking)"
proxy_port=$(free_port); resp_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
  WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600 INVALIDATION=tracking
wait_http "$proxy_port" /healthz
wait_link "$proxy_port"
RESP_ADDR="127.0.0.1:$resp_port" HTTP_ADDR="127.0.0.1:$proxy_port" REDIS_URL="redis://127.0.0.1:$redis_port" \
  WRITES="${WRITES:-10000}" target/release/examples/staleness >"$work/staleness.out"
kill "${pids[-1]}"

echo "== 7b/9 PING latency while one client holds 100k BCAST prefixes and Redis takes 20k writes"
proxy_port=$(free_port); resp_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
  WORKERS="$WORKERS"
wait_http "$proxy_port" /healthz
wait_link "$proxy_port"
RESP_ADDR="127.0.0.1:$resp_port" HTTP_ADDR="127.0.0.1:$proxy_port" REDIS_URL="redis://127.0.0.1:$redis_port" \
  PREFIXES="${BCAST_PREFIXES:-100000}" WRITES="${BCAST_WRITES:-20000}" target/release/examples/bcast_burst >"$work/bcast.out"
kill "${pids[-1]}"

echo "== 8/9 redis-py with its own cache through the proxy (CLIENT TRACKING), and without it"
proxy_port=$(free_port); resp_port=$(free_port)
# redis-py turns its cache on only for a Redis 7.4 or later: reported so,
# as docs/forwarding.md says, in front of an older one.
start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
  WORKERS="$WORKERS" CACHE_CAPACITY=10000 GLOBAL_CACHE_EXPIRY=3600 RESP_REPORTED_VERSION=7.4.0
wait_http "$proxy_port" /healthz
wait_link "$proxy_port"
python3 scripts/client_cache.py "$resp_port" "$redis_port" 3 "${CACHE_WRITES:-500}" >"$work/client_cache.out"
NODE_PATH=target/node/node_modules node scripts/client_cache.js "$resp_port" "$redis_port" 3 >>"$work/client_cache.out"
kill "${pids[-1]}"

echo "== 9/9 memory per key, proxy and Redis side by side"
mem_redis_port=$(free_port)
redis-server --port "$mem_redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >>"$work/redis.log" 2>&1 &
pids+=($!)
wait_redis "$mem_redis_port"
proxy_port=$(free_port); resp_port=$(free_port)
start_proxy REDIS_ADDRESS="127.0.0.1:$mem_redis_port" PROXY_PORT="$proxy_port" \
  RESP_PORT="$resp_port" CACHE_CAPACITY=2000000 GLOBAL_CACHE_EXPIRY=3600
wait_http "$proxy_port" /healthz
wait_link "$proxy_port"
REDIS_URL="redis://127.0.0.1:$mem_redis_port" RESP_ADDR="127.0.0.1:$resp_port" PROXY_PID="${pids[-1]}" \
  KEYS="${MEMORY_KEYS:-1000000}" VALUE_SIZE="$VALUE_SIZE" target/release/examples/memory >"$work/memory.out"
kill "${pids[-1]}"

if [ "${BENCH_TYPES:-1}" != 0 ]; then
  echo "== 10 reads of every type: LRANGE and HGETALL from the cache, memory per cached hash"
  bench_types "$redis_port"
fi

echo
print_table
# The same figures as a chart, beside the table (scripts/bench_chart.sh).
mkdir -p target/bench
scripts/bench_chart.sh "$results" target/bench/bench.svg \
  "make bench: requests per second ($(nproc) cores, loopback)" \
  && echo "chart: target/bench/bench.svg"
echo
[ ! -f "$work/writes_cpu.out" ] || cat "$work/writes_cpu.out"
cat "$work/staleness.out"
cat "$work/bcast.out"
cat "$work/memory.out"
[ ! -f "$work/types.out" ] || cat "$work/types.out"
cat "$work/client_cache.out"
