"""`make bench` step 9: redis-py with its own cache (CLIENT TRACKING through
the proxy) against the same client without it.

Reads per second over a hot set of keys, each way, and the staleness an
application sees: from a write's acknowledgement by Redis until the cached
client reads the new value.

Usage: python3 scripts/client_cache.py RESP_PORT REDIS_PORT [SECONDS] [WRITES]

redis-py turns its cache on only for a Redis 7.4 or later: in front of an
older Redis, start the proxy with RESP_REPORTED_VERSION=7.4.0.
"""

import sys
import time

import redis
from redis.cache import CacheConfig

resp_port, redis_port = int(sys.argv[1]), int(sys.argv[2])
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
writes = int(sys.argv[4]) if len(sys.argv) > 4 else 500
keys = [f"hot:{i}" for i in range(100)]

direct = redis.Redis(port=redis_port)
for key in keys:
    direct.set(key, "v" * 100)


def reads_per_second(client):
    done, end = 0, time.time() + seconds
    while time.time() < end:
        for key in keys:
            client.get(key)
        done += len(keys)
    return done / seconds


plain = redis.Redis(port=resp_port, protocol=3)
cached = redis.Redis(port=resp_port, protocol=3, cache_config=CacheConfig(max_size=10000))
without, with_cache = reads_per_second(plain), reads_per_second(cached)

delays = []
for i in range(writes):
    key = keys[i % len(keys)]
    cached.get(key)
    value = f"w{i}".encode()
    direct.set(key, value)
    acked = time.perf_counter()
    deadline = time.time() + 5
    while cached.get(key) != value and time.time() < deadline:
        pass
    delays.append(time.perf_counter() - acked)
delays.sort()
p50, p99 = delays[len(delays) // 2], delays[int(len(delays) * 0.99) - 1]
print(
    f"redis-py through the proxy: {without:,.0f} reads/s without its cache, "
    f"{with_cache:,.0f} with it ({with_cache / without:,.0f}x); "
    f"staleness at the application over {writes} writes: p50 {p50 * 1e3:.3f} ms, "
    f"p99 {p99 * 1e3:.3f} ms, max {delays[-1] * 1e3:.3f} ms"
)
