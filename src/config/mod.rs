//! Configuration: read raw strings from the environment (after `.env`), then
//! validate them into a [`Config`] whose fields are already the types the
//! rest of the proxy needs. Every bad value is reported with the variable's
//! name and what it accepts, so start-up fails with one clear line.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::cache::MAX_CAPACITY;

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Standalone or cluster.
    pub redis_mode: RedisMode,
    /// Where the backing Redis is, as the redis crate takes it: the first
    /// seed node in cluster mode.
    pub redis_url: Url,
    /// Every address REDIS_ADDRESS lists: one in standalone mode, the seed
    /// nodes in cluster mode.
    pub redis_nodes: Vec<Url>,
    /// REDIS_SENTINEL_MASTER and REDIS_SENTINEL_PASSWORD, in sentinel mode.
    pub sentinel: Option<SentinelSettings>,
    /// For `rediss://`: the CA certificates to trust, PEM, if not the system's.
    pub redis_tls_ca: Option<Vec<u8>>,
    /// How long an entry stays fresh after insertion.
    pub cache_expiry: Duration,
    /// Most keys cached.
    pub cache_capacity: NonZeroUsize,
    /// CACHE_MAX_BYTES: most bytes the cached entries take, bookkeeping
    /// included; an entry over an eighth of it is not kept.
    pub cache_max_bytes: usize,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// WORKERS (formerly MAX_CLIENTS): the threads of each worker pool,
    /// the Redis pool's connections, and so the reads in service at once.
    /// (The field keeps its old name until the service and backend, which
    /// read it, are next changed.)
    pub max_clients: NonZeroUsize,
    /// Bound on every wait for Redis but a forwarded command's reply.
    pub redis_timeout: Duration,
    /// FORWARD_TIMEOUT_MS: how long a forwarded command's reply is waited
    /// for; `None` (0, the default) as long as Redis takes, as Redis's own
    /// clients wait (a slow script elsewhere must not fail a command that
    /// then runs).
    pub forward_timeout: Option<Duration>,
    /// Longest key the cache keeps or HTTP reads (a longer RESP GET/MGET
    /// is forwarded uncached): bounds what one entry's key costs.
    pub max_key_bytes: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// RESP listen address, if the RESP front end is on.
    pub resp_addr: Option<SocketAddr>,
    /// Most RESP connections open at once.
    pub max_connections: NonZeroUsize,
    /// RESP_MAX_REQUEST_BYTES: the largest RESP request taken.
    pub resp_max_request: usize,
    /// RESP_MAX_REPLY_BYTES: the largest reply (a batch's replies
    /// together) relayed from Redis, so what a huge reply makes the proxy
    /// hold is bounded too.
    pub resp_max_reply: usize,
    /// DEDICATED_CONNECTIONS: Redis connections held for clients' blocking
    /// commands and subscriptions at most.
    pub dedicated_connections: NonZeroUsize,
    /// Idle RESP connections are closed after this; zero for never, the
    /// default, as Redis's `timeout` (a proxy that closed idle clients
    /// Redis keeps would break clients pointed at it unchanged).
    pub client_idle_timeout: Duration,
    /// Idle (or stalled) HTTP connections are closed after this.
    pub http_idle_timeout: Duration,
    /// How writes in Redis reach the cache.
    pub invalidation: Invalidation,
    /// RESP_FORWARD: which commands the RESP port passes on to Redis.
    pub forwarding: Forwarding,
    /// RESP_REPORTED_VERSION: the version `HELLO` and `INFO` report, if
    /// fixed; `None` (`redis`, the default) reports the backing Redis's
    /// own, since clients pick commands by it and those reach that Redis.
    pub reported_version: Option<String>,
    /// Key prefixes tracked (and so cached); empty means every key.
    pub invalidation_prefixes: Vec<Vec<u8>>,
    /// How long past its freshness an entry may still be served when Redis
    /// cannot be read; zero for never.
    pub stale_if_error: Duration,
    /// CACHE_COMMANDS: the lower-case names of the reads whose replies are
    /// cached (empty: none).
    pub cache_commands: Vec<String>,
    /// The password clients must give, if any (never logged).
    pub proxy_password: Option<Secret>,
    /// Serve /metrics without the password.
    pub metrics_open: bool,
    /// Where the certificate and key are, when both front ends speak TLS.
    pub tls: Option<TlsFiles>,
    /// Keys remembered for RESP clients' `CLIENT TRACKING`, as Redis's
    /// `tracking-table-max-keys`.
    pub tracking_max_keys: usize,
    /// One warning per deprecated variable name the environment used (see
    /// [`RENAMED`]), and per variable set that the chosen mode ignores (the
    /// sentinel ones outside sentinel mode), for the caller to log once the
    /// logger is up.
    pub deprecations: Vec<String>,
    /// Bytes those keys may take (TRACKING_TABLE_MAX_BYTES): a key can be
    /// MAX_KEY_BYTES long, so a key count alone does not bound memory.
    pub tracking_max_bytes: usize,
    /// CORS_ALLOW_ORIGINS: other origins whose pages may read answers.
    pub cors_origins: CorsOrigins,
    /// REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE: the certificate the
    /// proxy presents to Redis over `rediss://`, for a Redis that asks for
    /// one (`tls-auth-clients yes`, redis-server's default).
    pub redis_tls_client: Option<RedisClientCert>,
}

/// Which master set to ask the sentinels for, and how to talk to them.
#[derive(Clone, Debug, PartialEq)]
pub struct SentinelSettings {
    /// REDIS_SENTINEL_MASTER.
    pub master: String,
    /// REDIS_SENTINEL_PASSWORD, if set (never logged).
    pub password: Option<Secret>,
}

/// TLS_CERT_FILE and TLS_KEY_FILE: read at start-up (see `tls::load`), so
/// the configuration stays plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// A variable whose value is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// The rejected value.
    pub value: String,
    /// What the variable accepts.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: expected {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Largest MAX_KEY_BYTES accepted: well inside what one RESP request may
/// carry (RESP_MAX_REQUEST_BYTES is at least 2 MiB).
const MAX_KEY_LIMIT: usize = 1024 * 1024;

/// Largest RESP_MAX_REQUEST_BYTES accepted: Redis's own
/// `proto-max-bulk-len`, the largest value it takes.
const MAX_REQUEST_LIMIT: usize = 512 * 1024 * 1024;

/// Largest RESP_MAX_REPLY_BYTES accepted: 4 GiB (the crate is built for
/// 64-bit targets only: CACHE_MAX_BYTES' bound is 1 TiB).
const MAX_REPLY_LIMIT: usize = 4 << 30;

/// Largest WORKERS accepted: each is an OS thread in each pool and a Redis
/// connection.
const MAX_WORKERS: usize = 1024;

impl Config {
    /// Loads `.env` from the working directory into the environment
    /// (variables already set win). Called before the logger starts, so
    /// `RUST_LOG` may come from it; a malformed file is not fatal (its
    /// variables are then reported as unset or invalid), so its error comes
    /// back as a warning for the caller to log once the logger is up.
    pub fn load_dotenv() -> Option<String> {
        match dotenvy::dotenv() {
            Err(err) if !err.not_found() => Some(format!("ignoring .env: {err}")),
            _ => None,
        }
    }

    /// Reads the process environment (after [`Config::load_dotenv`]). A
    /// value that is not UTF-8 is refused, never taken for unset: its
    /// default would be used in silence (a mistyped `PROXY_PASSWORD`, no
    /// password at all).
    pub fn from_env() -> Result<Config, ConfigError> {
        let names = VARIABLES.iter().map(|var| var.name);
        for name in names.chain(RENAMED.iter().map(|(old, _)| *old)) {
            if let Err(std::env::VarError::NotUnicode(value)) = std::env::var(name) {
                return Err(ConfigError {
                    variable: name,
                    value: value.to_string_lossy().into_owned(),
                    expected: "a value in UTF-8".to_owned(),
                });
            }
        }
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds a config from any name-to-value lookup; unset names take their
    /// defaults. Tests pass a closure over a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // A renamed variable set under its old name only is read from there,
        // and an error names the one the user set.
        let raw = |name: &'static str| -> Raw {
            if let Some(value) = lookup(name) {
                return Raw { name, value };
            }
            let old = RENAMED
                .iter()
                .find(|(_, new)| *new == name)
                .map(|(old, _)| *old);
            match old.and_then(|old| Some((old, lookup(old)?))) {
                Some((old, value)) => Raw { name: old, value },
                None => Raw {
                    name,
                    value: default_of(name).to_owned(),
                },
            }
        };
        let mut deprecations: Vec<String> = RENAMED
            .iter()
            .filter(|(old, _)| lookup(old).is_some())
            .map(|(old, new)| match lookup(new) {
                Some(_) => format!("{old} is ignored: {new}, its new name, is set too"),
                None => format!("{old} is deprecated: it is now called {new}"),
            })
            .collect();
        let host = raw("PROXY_HOST");
        let ip: IpAddr = host
            .value
            .trim()
            .parse()
            .map_err(|_| host.error("an IP address, such as 127.0.0.1 or 0.0.0.0"))?;
        let port = raw("PROXY_PORT").parse_in::<u16>(0, u16::MAX, "a port number 0..=65535")?;
        let redis_mode = parse_mode(raw("REDIS_MODE"))?;
        // Set, yet without effect: said at start rather than ignored in
        // silence (a REDIS_MODE left out, say).
        if redis_mode != RedisMode::Sentinel {
            for name in ["REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD"] {
                if lookup(name).is_some_and(|value| !value.trim().is_empty()) {
                    deprecations.push(format!(
                        "{name} is ignored: REDIS_MODE is {}, not sentinel",
                        redis_mode.name()
                    ));
                }
            }
        }
        let redis_nodes = parse_redis_addresses(raw("REDIS_ADDRESS"), redis_mode)?;
        let tls_to_redis = redis_nodes[0].scheme() == "rediss";
        let sentinel = parse_sentinel(
            redis_mode,
            raw("REDIS_SENTINEL_MASTER"),
            raw("REDIS_SENTINEL_PASSWORD"),
        )?;
        Ok(Config {
            redis_mode,
            sentinel,
            redis_url: redis_nodes[0].clone(),
            redis_nodes,
            redis_tls_ca: redis_tls::read_ca(raw("REDIS_TLS_CA"), tls_to_redis)?,
            cache_expiry: parse_seconds(raw("GLOBAL_CACHE_EXPIRY"))?,
            cache_capacity: raw("CACHE_CAPACITY")
                .parse_non_zero(MAX_CAPACITY, "a whole number 1..=4294967294")?,
            cache_max_bytes: raw("CACHE_MAX_BYTES").parse_in::<usize>(
                1 << 16,
                1 << 40,
                "a whole number of bytes 65536..=1099511627776",
            )?,
            http_addr: SocketAddr::new(ip, port),
            max_clients: raw("WORKERS").parse_non_zero(MAX_WORKERS, "a whole number 1..=1024")?,
            redis_timeout: Duration::from_millis(raw("REDIS_TIMEOUT_MS").parse_in::<u64>(
                1,
                3_600_000,
                "milliseconds 1..=3600000",
            )?),
            forward_timeout: parse_millis_or_never(raw("FORWARD_TIMEOUT_MS"))?,
            max_key_bytes: raw("MAX_KEY_BYTES").parse_in::<usize>(
                1,
                MAX_KEY_LIMIT,
                "a whole number of bytes 1..=1048576",
            )?,
            shutdown_timeout: parse_seconds(raw("SHUTDOWN_TIMEOUT_SECS"))?,
            resp_addr: parse_resp_port(raw("RESP_PORT"))?.map(|port| SocketAddr::new(ip, port)),
            max_connections: raw("MAX_CONNECTIONS")
                .parse_non_zero(65_536, "a whole number 1..=65536")?,
            resp_max_request: raw("RESP_MAX_REQUEST_BYTES").parse_in::<usize>(
                2 << 20,
                MAX_REQUEST_LIMIT,
                "a whole number of bytes 2097152..=536870912",
            )?,
            resp_max_reply: raw("RESP_MAX_REPLY_BYTES").parse_in::<usize>(
                2 << 20,
                MAX_REPLY_LIMIT,
                "a whole number of bytes 2097152..=4294967296",
            )?,
            dedicated_connections: raw("DEDICATED_CONNECTIONS")
                .parse_non_zero(65_536, "a whole number 1..=65536")?,
            client_idle_timeout: parse_seconds_or_never(raw("CLIENT_IDLE_TIMEOUT_SECS"))?,
            http_idle_timeout: parse_seconds(raw("HTTP_IDLE_TIMEOUT_SECS"))?,
            invalidation: parse_invalidation(raw("INVALIDATION"))?,
            forwarding: parse_forwarding(raw("RESP_FORWARD"))?,
            reported_version: parse_reported_version(raw("RESP_REPORTED_VERSION"))?,
            invalidation_prefixes: parse_prefixes(raw("INVALIDATION_PREFIXES"))?,
            stale_if_error: parse_seconds_or_never(raw("STALE_IF_ERROR_SECS"))?,
            cache_commands: cached::parse_cache_commands(raw("CACHE_COMMANDS"))?,
            proxy_password: Some(raw("PROXY_PASSWORD").value)
                .filter(|p| !p.is_empty())
                .map(Secret),
            metrics_open: parse_bool(raw("METRICS_OPEN"))?,
            tls: parse_tls(raw("TLS_CERT_FILE"), raw("TLS_KEY_FILE"))?,
            tracking_max_keys: raw("TRACKING_TABLE_MAX_KEYS").parse_in::<usize>(
                1,
                100_000_000,
                "a whole number 1..=100000000",
            )?,
            deprecations,
            tracking_max_bytes: raw("TRACKING_TABLE_MAX_BYTES").parse_in::<usize>(
                1024,
                1 << 40,
                "a whole number of bytes 1024..=1099511627776",
            )?,
            cors_origins: cors::parse_cors(raw("CORS_ALLOW_ORIGINS"))?,
            redis_tls_client: redis_tls::read_client_cert(
                raw("REDIS_TLS_CERT_FILE"),
                raw("REDIS_TLS_KEY_FILE"),
                tls_to_redis,
            )?,
        })
    }

    /// The configuration as a log line, with any Redis password masked.
    pub fn describe(&self) -> String {
        format!(
            "redis={} mode={} invalidation={} expiry={:?} capacity={} max_bytes={} http={} resp={} workers={} max_connections={} redis_timeout={:?} forward_timeout={} client_auth={} tls={}",
            self.redis_nodes.iter().map(masked).collect::<Vec<_>>().join(","),
            self.redis_mode.name(),
            self.invalidation.name(),
            self.cache_expiry,
            self.cache_capacity,
            self.cache_max_bytes,
            self.http_addr,
            self.resp_addr.map_or("off".to_owned(), |a| a.to_string()),
            self.max_clients,
            self.max_connections,
            self.redis_timeout,
            self.forward_timeout.map_or("none".to_owned(), |t| format!("{t:?}")),
            if self.proxy_password.is_some() { "password" } else { "off" },
            if self.tls.is_some() { "on" } else { "off" },
        )
    }
}

mod cached;
mod cors;
mod open_files;
mod parse;
mod redis_tls;
mod settings;
mod variables;
pub use cached::DEFAULT_CACHE_COMMANDS;
pub use cors::CorsOrigins;
use parse::*;
pub use redis_tls::RedisClientCert;
pub use settings::{Forwarding, Invalidation, RedisMode, Secret};
use variables::default_of;
pub use variables::{help_text, Variable, RENAMED, VARIABLES};

#[cfg(test)]
mod tests;
