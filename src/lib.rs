//! redis-proxy: a read-through LRU cache in front of Redis, served over HTTP
//! and the Redis protocol, kept coherent by Redis's own invalidations.
//!
//! A request for a key is answered from an in-memory LRU cache; on a miss the
//! proxy asks the backing Redis once (however many requests want that key at
//! the same moment), keeps the value for a global lifetime or until Redis
//! says the key changed, and evicts the least recently read key when full.
//!
//! Modules (see docs/architecture.md):
//! - [`cache`]: the LRU with expiry; a pure data structure, no I/O, no locks.
//! - [`clock`]: the time the cache's expiry is read against, injected.
//! - [`commands`]: Redis's command table (flags, key specs, what the proxy
//!   may do with each command), read from its `COMMAND` reply; pure.
//! - [`config`]: environment and `.env`, validated into a [`config::Config`].
//! - `backend`: everything that talks to Redis: the pool and the one read we
//!   make, the readiness probe, and the invalidation link.
//! - `service`: the read-through logic: lookup, coalescing of misses, fill,
//!   and what invalidations do to the cache.
//! - `metrics`: atomic counters and their Prometheus exposition.
//! - `log_limit`: rate-limited warnings, so an outage does not flood the log.
//! - `limit`: a first-come, first-served semaphore (the WORKERS places).
//! - [`http`]: the HTTP front end (tiny_http with a fixed worker pool).
//! - [`resp`]: the Redis protocol front end (one mio event loop, which
//!   also sends most forwarded commands to Redis itself, plus workers for
//!   reads that need Redis and the batches it does not send).
//!
//! The front ends call `service` only. [`Proxy`] wires them together;
//! `main.rs` parses flags, logs and waits for signals.
#![deny(missing_docs)]

// Public: what the binary, the benches, the examples, the fuzz targets and
// the integration tests use. The rest is the proxy's own.
pub(crate) mod backend;
pub mod cache;
pub mod clock;
pub mod commands;
pub mod config;
pub mod http;
pub(crate) mod limit;
pub(crate) mod log_limit;
pub(crate) mod metrics;
pub mod resp;
pub(crate) mod service;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{Backend, InvalidationLink, InvalidationSink};
use crate::clock::Clock;
use crate::config::{Config, Invalidation};
use crate::http::HttpServer;
use crate::metrics::Metrics;
use crate::resp::{RespServer, RespSettings};
use crate::service::Service;

/// Why the proxy could not start: which part, and the cause.
#[derive(Debug)]
pub enum StartError {
    /// The Redis address could not be turned into a client.
    Redis(String),
    /// The HTTP listener could not be opened at this address.
    Http(SocketAddr, std::io::Error),
    /// The RESP listener could not be opened at this address.
    Resp(SocketAddr, std::io::Error),
    /// The invalidation link's threads could not start.
    Invalidation(std::io::Error),
    /// TLS_CERT_FILE or TLS_KEY_FILE cannot be used.
    Tls(tls::TlsError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Redis(why) => write!(f, "REDIS_ADDRESS is not usable: {why}"),
            StartError::Http(addr, err) => {
                write!(
                    f,
                    "cannot serve HTTP on {addr} (PROXY_HOST/PROXY_PORT): {err}"
                )
            }
            StartError::Resp(addr, err) => {
                write!(
                    f,
                    "cannot serve RESP on {addr} (PROXY_HOST/RESP_PORT): {err}"
                )
            }
            StartError::Invalidation(err) => {
                write!(f, "cannot start the invalidation link: {err}")
            }
            StartError::Tls(err) => write!(f, "cannot serve TLS: {err}"),
        }
    }
}

impl std::error::Error for StartError {}

impl StartError {
    /// Whether a setting's value is at fault (a certificate or key file
    /// that cannot be used), which the binary reports as it does a bad
    /// value (exit code 2), rather than the machine's state (a port taken).
    pub fn is_configuration(&self) -> bool {
        matches!(self, StartError::Tls(_))
    }
}

/// A running proxy: the shared service and its front ends.
pub struct Proxy {
    http: HttpServer,
    resp: Option<RespServer>,
    _invalidation: Option<InvalidationLink>,
}

impl Proxy {
    /// Starts every front end of `config`. Does not wait for Redis: the proxy
    /// serves (hits, and clear errors for misses) while Redis is down.
    pub fn start(config: &Config) -> Result<Proxy, StartError> {
        Proxy::start_with_clock(config, Clock::system())
    }

    /// [`Proxy::start`] with the cache's expiry read off `clock`: for
    /// tests, which pass a [`clock::ManualClock`]'s so entries expire when
    /// the test moves the time on, not after real seconds.
    pub fn start_with_clock(config: &Config, clock: Clock) -> Result<Proxy, StartError> {
        // rustls needs a process-wide crypto provider for rediss://; a second
        // proxy in the same process finds it installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = match &config.tls {
            Some(files) => Some(tls::load(files).map_err(StartError::Tls)?),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        metrics.set_max_connections(config.max_connections.get());
        let backend = Backend::new(config).map_err(|err| StartError::Redis(err.to_string()))?;
        let topology = backend.topology();
        let linked = backend.linked();
        let service = Arc::new(Service::new(config, backend, metrics, clock));
        let invalidation = match config.invalidation {
            Invalidation::Off => None,
            Invalidation::Auto | Invalidation::Tracking => Some(
                InvalidationLink::spawn(
                    config,
                    Arc::clone(&service) as Arc<dyn InvalidationSink>,
                    topology,
                    linked,
                )
                .map_err(StartError::Invalidation)?,
            ),
        };
        let http = HttpServer::start(
            config.http_addr,
            config.max_clients.get(),
            config.http_idle_timeout,
            tls.as_ref(),
            http::cors::Cors::new(config.cors_origins.clone()),
            Arc::clone(&service),
        )
        .map_err(|err| StartError::Http(config.http_addr, err))?;
        let resp = match config.resp_addr {
            Some(addr) => Some(
                RespServer::start(
                    addr,
                    RespSettings {
                        max_connections: config.max_connections.get(),
                        dedicated: config.dedicated_connections.get(),
                        idle_timeout: config.client_idle_timeout,
                        workers: config.max_clients.get(),
                        tls: tls.as_ref().map(|tls| Arc::clone(&tls.config)),
                        tracking_max_keys: config.tracking_max_keys,
                        tracking_max_bytes: config.tracking_max_bytes,
                    },
                    Arc::clone(&service),
                )
                .map_err(|err| StartError::Resp(addr, err))?,
            ),
            None => None,
        };
        Ok(Proxy {
            http,
            resp,
            _invalidation: invalidation,
        })
    }

    /// Where the HTTP front end listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// Where the RESP front end listens, if it is on.
    pub fn resp_addr(&self) -> Option<SocketAddr> {
        self.resp.as_ref().map(RespServer::local_addr)
    }

    /// Graceful shutdown: stops accepting connections, lets the requests
    /// already received finish, and returns true if they all did within
    /// `timeout`.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.http.begin_shutdown();
        if let Some(resp) = &self.resp {
            resp.begin_shutdown();
        }
        let deadline = Instant::now() + timeout;
        while !self.http.is_drained() || !self.resp.as_ref().is_none_or(RespServer::is_drained) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}
