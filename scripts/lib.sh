# Shared shell helpers for the scripts in this folder; source it.

# Reads VAR from the environment, else from ./.env, else prints DEFAULT.
config_value() {
  local name=$1 default=$2 value
  value=$(printenv "$name" || true)
  if [ -z "$value" ] && [ -f .env ]; then
    value=$(sed -n "s/^[[:space:]]*$name[[:space:]]*=[[:space:]]*//p" .env | tail -n 1 | tr -d '"'"'"'\r')
  fi
  printf '%s\n' "${value:-$default}"
}

# Installs Debian packages when a command is missing: ensure_command CMD PKG...
ensure_command() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing $* (for $cmd) with apt-get" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
  command -v "$cmd" >/dev/null 2>&1 || { echo "could not install $cmd" >&2; return 1; }
}

# Installs a Python module with pip when python3 cannot import it:
# ensure_python_module MODULE PIP-PACKAGE (the tests drive redis-py).
ensure_python_module() {
  python3 -c "import $1" >/dev/null 2>&1 && return 0
  ensure_command python3 python3
  python3 -m pip --version >/dev/null 2>&1 || ensure_command pip3 python3-pip
  echo "installing $2 (for python3 -c 'import $1') with pip" >&2
  python3 -m pip install -q "$2" >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages "$2" >/dev/null
  python3 -c "import $1" >/dev/null 2>&1 || { echo "could not install $2" >&2; return 1; }
}

# Installs an npm package into target/node when missing, for the tests
# that drive node-redis and ioredis: ensure_node_module NAME NPM-SPEC.
ensure_node_module() {
  ensure_command node nodejs
  ensure_command npm npm
  [ -d "target/node/node_modules/$1" ] && return 0
  echo "installing $2 with npm into target/node" >&2
  mkdir -p target/node
  npm install --silent --no-audit --no-fund --prefix target/node "$2" >/dev/null
}

# Splits one REDIS_ADDRESS node (host:port, or redis:// or rediss:// then
# [user:password@]host:port[/db]; an IPv6 host in brackets) into
# REDIS_SCHEME (redis or rediss), REDIS_HOST (no brackets) and REDIS_PORT.
# Fails, leaving them empty, on a form the proxy would not take either.
split_redis_address() {
  local rest=$1
  REDIS_SCHEME=redis REDIS_HOST="" REDIS_PORT=""
  case $rest in
    redis://*) rest=${rest#redis://} ;;
    rediss://*) REDIS_SCHEME=rediss; rest=${rest#rediss://} ;;
    *://*) return 1 ;;
  esac
  rest=${rest%%/*}
  rest=${rest##*@}
  local host port
  case $rest in
    \[*\]:*) host=${rest%%]:*}; host=${host#[}; port=${rest##*]:} ;;
    *:*) host=${rest%:*}; port=${rest##*:} ;;
    *) return 1 ;;
  esac
  case $host in *:*) [[ $rest == \[* ]] || return 1 ;; esac
  [[ -n $host && $port =~ ^[0-9]+$ ]] && ((10#$port >= 1 && 10#$port <= 65535)) || return 1
  REDIS_HOST=$host REDIS_PORT=$((10#$port))
}

# True when HOST is this machine's loopback, where `make run` may start a
# redis-server: 127.0.0.0/8, localhost or ::1.
is_local_host() {
  case $1 in
    localhost|::1|0:0:0:0:0:0:0:1) return 0 ;;
    127.*) [[ $1 =~ ^127(\.[0-9]{1,3}){3}$ ]] ;;
    *) return 1 ;;
  esac
}

# The address as a redis:// (or rediss://) URL, for redis-cli -u.
redis_url() {
  case $1 in
    redis://*|rediss://*) printf '%s\n' "$1" ;;
    *) printf 'redis://%s\n' "$1" ;;
  esac
}

# True when a TCP connection to HOST PORT opens within 3 s (an IPv6 host
# without brackets; localhost tries 127.0.0.1 and ::1). With PING as a
# third argument, a Redis must also answer it (a refusal for want of a
# password counts as an answer). No redis-cli needed.
redis_answers() {
  local host=$1 port=$2 ping=${3:-PING}
  if [ "$host" = localhost ]; then
    redis_answers 127.0.0.1 "$port" "$ping" || redis_answers ::1 "$port" "$ping"
    return
  fi
  # The connect in a child bash, so that a host that drops packets cannot
  # hold the caller longer than the timeout.
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    [ "$3" = PING ] || exit 0
    printf "PING\r\n" >&3
    read -r -t 2 reply <&3 || exit 1
    case $reply in +PONG*|-NOAUTH*|-ERR*|-WRONGPASS*) exit 0 ;; *) exit 1 ;; esac
  ' redis_answers "$host" "$port" "$ping" 2>/dev/null
}

# True when something accepts TCP connections at HOST PORT (rediss://: a
# TLS Redis, checked no further than that).
tcp_open() {
  redis_answers "$1" "$2" CONNECT
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  local port
  while :; do
    # Below Linux's ephemeral range (32768+), where outgoing connections
    # may hold a port that nothing listens on.
    port=$((20000 + RANDOM % 12000))
    if ! { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      echo "$port"
      return 0
    fi
    exec 3<&- 3>&-
  done
}

# Waits up to 5 s for a Redis to answer PING at PORT on HOST (127.0.0.1
# unless given): wait_redis PORT [HOST].
wait_redis() {
  local host=${2:-127.0.0.1}
  for _ in $(seq 1 100); do
    redis_answers "$host" "$1" && return 0
    sleep 0.05
  done
  echo "no Redis answers on port $1 of $host" >&2
  return 1
}

# A port for a Redis Cluster node: its bus port (+10000) must be free too,
# and both below the ephemeral range.
cluster_port() {
  local port
  while :; do
    port=$((4000 + RANDOM % 6000))
    if ! { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null \
      && ! { exec 4<>"/dev/tcp/127.0.0.1/$((port + 10000))"; } 2>/dev/null; then
      echo "$port"
      return 0
    fi
    exec 3<&- 3>&- 4<&- 4>&-
  done
}
