# Step 5b of `make bench` (scripts/bench.sh sources this file): forwarded
# writes, redis-benchmark -t set,incr,lpush,hset -c 50 (unpipelined and
# -P 16) at Redis, through the proxy and, when `nutcracker` is installed,
# through twemproxy, in WRITE_ROUNDS (3) alternating rounds.
#
# Besides req/s (each row its median round, in the main table), each run's
# CPU is read before and after from /proc (utime and stime in clock ticks;
# for the proxy also per thread) and from the shell's `times` for
# redis-benchmark itself, with Redis's commands per read from INFO stats.
# Why: on a 2-core machine a forwarded write's throughput is set by the CPU
# every process in the path spends per request, most of it in the kernel
# (docs/performance.md, "Where a forwarded write's time goes"); this table
# shows where it goes and how near each run is to using every core.
#
# Needs from bench.sh: work, results, redis_port, redis_pid, pids,
# REQUESTS, WORKERS, start_proxy (which sets proxy_pid), wait_http,
# wait_link, free_port, redis_answers.
# shellcheck shell=bash disable=SC2154 # (those variables: set by bench.sh)

# start_twemproxy: twemproxy (nutcracker), when installed, in front of the
# same Redis as a reference for step 5b: a throwaway config in $work, one
# connection to Redis (its default), free ports; its port in twem_port and
# pid in twem_pid, both empty when nutcracker is not on PATH.
start_twemproxy() {
  twem_port=
  twem_pid=
  command -v nutcracker >/dev/null 2>&1 || return 0
  twem_port=$(free_port)
  cat >"$work/twemproxy.yml" <<YML
bench:
  listen: 127.0.0.1:$twem_port
  redis: true
  hash: fnv1a_64
  distribution: ketama
  servers:
   - 127.0.0.1:$redis_port:1
YML
  nutcracker -c "$work/twemproxy.yml" -s "$(free_port)" -a 127.0.0.1 -o "$work/twemproxy.log" &
  twem_pid=$!
  pids+=("$twem_pid")
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$twem_port" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "twemproxy never answered on port $twem_port" >&2
  exit 1
}

# ticks_of PID: "utime stime" of the whole process PID in clock ticks
# (fields 14 and 15 of /proc/PID/stat; the name before them may hold
# spaces); "0 0" when PID is empty or gone.
ticks_of() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo "0 0"; return 0; }
  awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"
}

# thread_ticks PID: "utime stime" of the proxy's resp-loop threads, then of
# its invalidation-link threads (comm is cut to 15 characters:
# "invalidation-li"), summed over /proc/PID/task/*/stat, so a link thread
# started again after a reconnection is still counted from then on (read
# through cat, which skips a thread that ended since the glob was expanded).
thread_ticks() {
  cat /proc/"$1"/task/*/stat 2>/dev/null | awk '{
      comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\)[^)]*$/, "", comm)
      rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      if (comm == "resp-loop") { lu += f[12]; ls += f[13] }
      if (comm == "invalidation-li") { iu += f[12]; is += f[13] }
    } END { print lu + 0, ls + 0, iu + 0, is + 0 }'
}

# redis_reads: "commands reads" Redis has processed so far (INFO stats), for
# its commands per read: how many requests each read(2) of Redis carried.
redis_reads() {
  redis-cli -p "$redis_port" info stats | tr -d '\r' | awk -F: '
    $1 == "total_commands_processed" { c = $2 }
    $1 == "total_reads_processed" { r = $2 }
    END { print c + 0, r + 0 }'
}

# cpu_snapshot: one line of counters that only grow, taken before and after
# each redis-benchmark run (the difference is that run's share): wall clock
# (ns), Redis, the proxy, its resp-loop and link threads, twemproxy (ticks),
# Redis's commands and reads.
cpu_snapshot() {
  echo "$(date +%s%N) $(ticks_of "$redis_pid") $(ticks_of "$proxy_pid") $(thread_ticks "$proxy_pid")" \
    "$(ticks_of "$twem_pid") $(redis_reads)"
}

# seconds_ms TIME: bash's `times` format (1m2.345s) as milliseconds.
seconds_ms() { awk -v t="$1" 'BEGIN { split(t, a, /[ms]/); printf "%.0f", (a[1] * 60 + a[2]) * 1000 }'; }

# run_writes PREFIX PORT PIPELINE: redis-benchmark's SET, INCR, LPUSH and
# HSET (-c 50, -P PIPELINE), one results line each (PREFIX_set ...), and one
# line of CPU counters each to $cpu_rounds. One redis-benchmark per command,
# so each command's CPU is its own; redis-benchmark's own CPU comes from a
# subshell's `times` (its children: redis-benchmark alone).
run_writes() {
  local prefix=$1 port=$2 pipeline=$3 out="$work/$1.csv" test before after bench
  : >"$out"
  for test in set incr lpush hset; do
    before=$(cpu_snapshot)
    bench=$( (redis-benchmark -p "$port" -c 50 -P "$pipeline" -n "$REQUESTS" -r 1000 -t "$test" --csv -q \
      >"$work/$prefix.$test.csv" 2>"$work/$prefix.$test.err" || exit 1; times) | tail -1) || {
      echo "redis-benchmark -t $test failed against ${prefix%%_*} (port $port):" >&2
      cat "$work/$prefix.$test.err" >&2
      exit 1
    }
    after=$(cpu_snapshot)
    tail -n +2 "$work/$prefix.$test.csv" >>"$out"
    echo "${prefix}_$test $REQUESTS $(seconds_ms "${bench% *}") $(seconds_ms "${bench#* }") $before $after" >>"$cpu_rounds"
  done
  awk -F'"' -v p="$prefix" '{printf "%s_%s %s %sms %sms 0\n", p, tolower($2), $4, $10, $14}' "$out" >>"$results"
}

# print_cpu_table: $cpu_rounds as a Markdown table, each row's rounds summed
# (more clock ticks than one round has, so a closer figure): CPU per request
# in microseconds, user/system, of redis-benchmark, Redis, the redis-proxy
# process (all threads) and its resp-loop and invalidation-link threads,
# twemproxy; their total; the cores they kept busy (total CPU over wall
# time) and the req/s that total would allow with every core busy; Redis's
# commands per read.
print_cpu_table() {
  echo "CPU per request, us user/system (rounds summed; /proc ticks of 1/$(getconf CLK_TCK) s; proxy = the"
  echo "whole redis-proxy process, its link runs in every row; cores = total CPU / wall time of $(nproc);"
  echo "ceiling = req/s the total allows with all $(nproc) cores busy; cmds/read = Redis INFO stats)"
  # Fields: name requests bench_ms_user bench_ms_sys, then two snapshots of
  # 13 fields each (wall_ns redis_u redis_s proxy_u proxy_s loop_u loop_s
  # link_u link_s twem_u twem_s commands reads): before from $5, after from $18.
  awk -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" '
function pair(u, s, n) { return sprintf("%.2f/%.2f", u * 1e6 / hz / n, s * 1e6 / hz / n) }
{
  name = $1
  if (!(name in req)) order[++rows] = name
  req[name] += $2
  bench_u[name] += $3; bench_s[name] += $4
  wall[name] += ($18 - $5) / 1e9
  for (i = 1; i <= 10; i++) d[name, i] += $(18 + i) - $(5 + i)
  cmds[name] += $29 - $16; reads[name] += $30 - $17
}
END {
  printf "| %-15s | %11s | %11s | %11s | %11s | %11s | %11s | %7s | %5s | %9s | %9s |\n", "run", "bench", "redis", "proxy", "resp-loop", "link", "twemproxy", "total", "cores", "ceiling", "cmds/read"
  print "|-----------------|-------------|-------------|-------------|-------------|-------------|-------------|---------|-------|-----------|-----------|"
  for (r = 1; r <= rows; r++) {
    name = order[r]; n = req[name]
    # redis-benchmark in ms, the rest in ticks: all to us per request.
    total = (bench_u[name] + bench_s[name]) * 1e3 / n
    for (i = 1; i <= 4; i++) total += d[name, i] * 1e6 / hz / n
    for (i = 9; i <= 10; i++) total += d[name, i] * 1e6 / hz / n
    twem = (name ~ /^twem_/) ? pair(d[name, 9], d[name, 10], n) : "-"
    printf "| %-15s | %11s | %11s | %11s | %11s | %11s | %11s | %7.2f | %5.2f | %9.0f | %9.1f |\n", name,
      sprintf("%.2f/%.2f", bench_u[name] * 1e3 / n, bench_s[name] * 1e3 / n),
      pair(d[name, 1], d[name, 2], n), pair(d[name, 3], d[name, 4], n), pair(d[name, 5], d[name, 6], n),
      pair(d[name, 7], d[name, 8], n), twem, total, total * n / 1e6 / wall[name], cores * 1e6 / total,
      (reads[name] > 0 ? cmds[name] / reads[name] : 0)
  }
}' "$cpu_rounds"
}

# bench_writes: step 5b. The proxy (and twemproxy, when installed) in
# front of the Redis on redis_port; WRITE_ROUNDS (default 3) rounds of
# run_writes at Redis, through the proxy and through twemproxy in turn,
# unpipelined and -P 16; each row's median round by req/s to $results, the
# CPU table (print_cpu_table) to $work/writes_cpu.out.
bench_writes() {
  local rounds_file="$work/write_rounds" name pipeline
  cpu_rounds="$work/write_cpu_rounds"
  : >"$rounds_file"
  : >"$cpu_rounds"
  proxy_port=$(free_port); resp_port=$(free_port)
  start_proxy REDIS_ADDRESS="127.0.0.1:$redis_port" PROXY_PORT="$proxy_port" RESP_PORT="$resp_port" \
    WORKERS="$WORKERS" CACHE_CAPACITY=10000
  wait_http "$proxy_port" /healthz
  wait_link "$proxy_port"
  local proxy=${pids[-1]}
  # Built without the RESP port: nothing to compare.
  redis_answers 127.0.0.1 "$resp_port" || { kill "$proxy"; return 0; }
  start_twemproxy
  for _ in $(seq 1 "${WRITE_ROUNDS:-3}"); do
    for pipeline in 1 16; do
      results="$rounds_file" run_writes "redis_P$pipeline" "$redis_port" "$pipeline"
      results="$rounds_file" run_writes "fwd_P$pipeline" "$resp_port" "$pipeline"
      [ -z "$twem_port" ] || results="$rounds_file" run_writes "twem_P$pipeline" "$twem_port" "$pipeline"
    done
  done
  awk '!seen[$1]++ {print $1}' "$rounds_file" | while read -r name; do
    grep "^$name " "$rounds_file" | sort -g -k2 | awk '{line[NR] = $0} END {print line[int((NR + 1) / 2)]}' >>"$results"
  done
  print_cpu_table >"$work/writes_cpu.out"
  [ -z "$twem_pid" ] || kill "$twem_pid"
  kill "$proxy"
}
