//! The variables the proxy reads: names, defaults and help, in one list
//! that parsing, `--help` and the README's table (checked by a test) share.

/// One configuration variable: its name, default and meaning. The single
/// source for parsing, `--help` and the README table.
pub struct Variable {
    /// The environment variable's name.
    pub name: &'static str,
    /// The value used when it is unset.
    pub default: &'static str,
    /// What it means and accepts, for `--help`.
    pub help: &'static str,
}

/// Every variable the proxy reads, in `--help` order.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "REDIS_ADDRESS",
        default: "127.0.0.1:6379",
        help:
            "backing Redis: host:port, redis://[user:password@]host:port[/db], or rediss:// for TLS",
    },
    Variable {
        name: "REDIS_MODE",
        default: "standalone",
        help: "standalone (one Redis), cluster (REDIS_ADDRESS: seed nodes, comma-separated) or sentinel (REDIS_ADDRESS: the sentinels)",
    },
    Variable {
        name: "REDIS_SENTINEL_MASTER",
        default: "",
        help: "with REDIS_MODE=sentinel: the name of the master set the sentinels watch (required)",
    },
    Variable {
        name: "REDIS_SENTINEL_PASSWORD",
        default: "",
        help: "with REDIS_MODE=sentinel: the sentinels' password, if they ask for one",
    },
    Variable {
        name: "REDIS_TLS_CA",
        default: "",
        help: "for rediss://, a PEM file of CA certificates to trust (empty: the system's)",
    },
    Variable {
        name: "REDIS_TLS_CERT_FILE",
        default: "",
        help: "for rediss://, a PEM certificate chain (leaf first) the proxy presents to Redis and its sentinels, for a Redis that asks for one (tls-auth-clients yes, its default); with REDIS_TLS_KEY_FILE",
    },
    Variable {
        name: "REDIS_TLS_KEY_FILE",
        default: "",
        help: "the PEM private key for REDIS_TLS_CERT_FILE (PKCS#8, PKCS#1 or SEC1, not encrypted; both or neither)",
    },
    Variable {
        name: "INVALIDATION",
        default: "auto",
        help: "tracking: drop a key the moment Redis says it changed (CLIENT TRACKING); off: TTL only; auto: tracking if Redis allows it, else off",
    },
    Variable {
        name: "INVALIDATION_PREFIXES",
        default: "",
        help: "comma-separated key prefixes to track; keys outside them are read through uncached (empty: all keys)",
    },
    Variable {
        name: "STALE_IF_ERROR_SECS",
        default: "0",
        help: "when Redis is down or slow, serve an entry that stopped being fresh less than this long ago, marked STALE (0: never)",
    },
    Variable {
        name: "CACHE_COMMANDS",
        default: "",
        help: "reads whose replies are cached: empty for the documented list (README), none (alone), a list of names, or -NAME/+NAME to drop from or add to the list (only reads Redis flags readonly, not time- or chance-dependent)",
    },
    Variable {
        name: "GLOBAL_CACHE_EXPIRY",
        default: "60",
        help: "seconds an entry is kept after insertion (0.001 to a year; fractions allowed)",
    },
    Variable {
        name: "CACHE_CAPACITY",
        default: "10000",
        help: "keys held at most (>= 1)",
    },
    Variable {
        name: "CACHE_MAX_BYTES",
        default: "268435456",
        help: "bytes the cache's entries take at most: keys, values and 78 bytes of bookkeeping each (65536..=1099511627776; 256 MiB); a value over an eighth of it is served but not kept",
    },
    Variable {
        name: "PROXY_HOST",
        default: "127.0.0.1",
        help: "IP address both listeners (HTTP and RESP) bind to",
    },
    Variable {
        name: "PROXY_PORT",
        default: "8080",
        help: "HTTP port (0 picks a free one)",
    },
    Variable {
        name: "WORKERS",
        default: "16",
        help: "threads in each worker pool (HTTP, RESP) and connections in the Redis pool: fetches from Redis led at once (1..=1024; formerly MAX_CLIENTS)",
    },
    Variable {
        name: "MAX_KEY_BYTES",
        default: "8192",
        help: "longest key cached or read over HTTP (longer: HTTP 414; a RESP GET/MGET goes to Redis uncached, refused only with RESP_FORWARD=off) (1..=1048576)",
    },
    Variable {
        name: "REDIS_TIMEOUT_MS",
        default: "1000",
        help: "connect, read and pool-checkout timeout for Redis, in ms (>= 1): the proxy's own reads (the cache's; a RESP client's read they fail goes on as a forwarded command), probes, handshakes; not forwarded commands' replies (FORWARD_TIMEOUT_MS)",
    },
    Variable {
        name: "FORWARD_TIMEOUT_MS",
        default: "0",
        help: "how long a forwarded RESP command's reply is waited for, in ms; past it the client gets -ERR (the command may still run) and the connection is dropped; 0: as long as Redis takes, as Redis clients wait (0..=3600000)",
    },
    Variable {
        name: "HTTP_IDLE_TIMEOUT_SECS",
        default: "60",
        help: "an HTTP connection that sends nothing for this long is closed (408)",
    },
    Variable {
        name: "RESP_PORT",
        default: "6380",
        help: "Redis-protocol port on PROXY_HOST, or off",
    },
    Variable {
        name: "RESP_FORWARD",
        default: "all",
        help: "RESP commands the proxy does not answer itself: all go to Redis, reads (Redis's readonly ones) only, or off (refused)",
    },
    Variable {
        name: "DEDICATED_CONNECTIONS",
        default: "256",
        help: "Redis connections of their own for RESP clients' blocking commands (BLPOP...) and Pub/Sub subscriptions, at most; past it those commands are refused (1..=65536)",
    },
    Variable {
        name: "RESP_MAX_REQUEST_BYTES",
        default: "67108864",
        help: "largest RESP request, all its arguments together (2097152..=536870912; Redis's own proto-max-bulk-len is the most); a larger one is refused as soon as its declared lengths say so, and it bounds what one connection's input can make the proxy hold",
    },
    Variable {
        name: "RESP_MAX_REPLY_BYTES",
        default: "1073741824",
        help: "largest reply forwarded from Redis to a RESP client, a pipelined batch's replies together, and largest reply read for the cache or an HTTP typed read (answered 503 past it) (2097152..=4294967296); a larger one is answered -ERR (that client only) as soon as its length shows and the rest of it is dropped unread or read and thrown away, so it bounds what a huge reply (LRANGE of a long list, GETRANGE of a large string) makes the proxy hold",
    },
    Variable {
        name: "MAX_CONNECTIONS",
        default: "10000",
        help: "open RESP connections at most, as Redis's maxclients; more are told so and closed (1..=65536); lowered at start, with a warning, to the open files limit less 32 if that is lower, as Redis lowers maxclients",
    },
    Variable {
        name: "CLIENT_IDLE_TIMEOUT_SECS",
        default: "0",
        help: "a RESP connection with no request and no reply for this long is closed (not a subscriber, as Redis's timeout spares its own); 0: never, as Redis's timeout 0 (dead peers are found by TCP keepalive)",
    },
    Variable {
        name: "TRACKING_TABLE_MAX_KEYS",
        default: "1000000",
        help: "keys remembered for RESP clients with CLIENT TRACKING (1..=100000000); the oldest are invalidated past it",
    },
    Variable {
        name: "TRACKING_TABLE_MAX_BYTES",
        default: "67108864",
        help: "bytes those keys may take, bookkeeping included (1024..=1099511627776); the oldest are invalidated past it",
    },
    Variable {
        name: "RESP_REPORTED_VERSION",
        default: "redis",
        help: "the version HELLO and INFO report: redis (the backing Redis's own, 7.0.0 until it is read) or a fixed MAJOR.MINOR.PATCH, such as 7.4.0 to let redis-py's client-side cache on in front of an older Redis",
    },
    Variable {
        name: "PROXY_PASSWORD",
        default: "",
        help: "password clients must give (HTTP Bearer or Basic, RESP AUTH); empty: open",
    },
    Variable {
        name: "METRICS_OPEN",
        default: "false",
        help: "with PROXY_PASSWORD set, true serves /metrics without it",
    },
    Variable {
        name: "CORS_ALLOW_ORIGINS",
        default: "",
        help: "origins whose browser pages may read answers (comma-separated, such as https://app.example.com, or *); empty: no CORS headers",
    },
    Variable {
        name: "TLS_CERT_FILE",
        default: "",
        help: "PEM certificate chain: with TLS_KEY_FILE, HTTP becomes HTTPS and RESP speaks TLS",
    },
    Variable {
        name: "TLS_KEY_FILE",
        default: "",
        help: "PEM private key for TLS_CERT_FILE (both or neither)",
    },
    Variable {
        name: "SHUTDOWN_TIMEOUT_SECS",
        default: "10",
        help: "on SIGTERM/SIGINT, how long requests in flight may take to finish",
    },
];

/// Variables renamed, as (old name, new name): the old name is still read
/// when the new one is unset, and [`super::Config::deprecations`] says so.
pub const RENAMED: &[(&str, &str)] = &[("MAX_CLIENTS", "WORKERS")];

/// The `--help` text, built from [`VARIABLES`].
pub fn help_text() -> String {
    let mut text = String::from(
        "redis-proxy: a read-through LRU cache in front of Redis, served over HTTP.\n\n\
         Usage: redis-proxy [--help]\n\n\
         Configuration comes from the environment; a .env file in the working\n\
         directory is read first, and variables already set win over it.\n\n",
    );
    for var in VARIABLES {
        text.push_str(&format!(
            "  {:<22} {} (default: {})\n",
            var.name, var.help, var.default
        ));
    }
    text.push_str("  RUST_LOG               log filter for env_logger (default: info)\n");
    text
}

pub(super) fn default_of(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|var| var.name == name)
        .map_or("", |var| var.default)
}
