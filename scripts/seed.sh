#!/usr/bin/env bash
# Writes seeded_key1..N (value: "seeded value N") into the Redis named by
# REDIS_ADDRESS (environment or .env). Usage: scripts/seed.sh [N], default 100.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

count=${1:-100}
case $count in ''|*[!0-9]*) echo "usage: $0 [count]" >&2; exit 2 ;; esac
ensure_command redis-cli redis-tools
url=$(redis_url "$(config_value REDIS_ADDRESS 127.0.0.1:6379)")
for i in $(seq 1 "$count"); do
  printf 'SET seeded_key%s "seeded value %s"\n' "$i" "$i"
done | redis-cli -u "$url" --no-auth-warning --pipe
echo "seeded seeded_key1..seeded_key$count"
