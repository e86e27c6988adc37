//! The proxy run inside the test process: `redis_proxy::Proxy::start` on
//! port 0, which reports the ports it bound. No process to spawn, no port to
//! pick beforehand; what a test observes over the network is the same as
//! with the binary.
//!
//! What is process-wide stays untouched here: no logger is installed (the
//! tests that read the log run the binary), no signal handler, no change to
//! the open-files limit; process metrics (`process_*`) describe the test
//! process, so the tests of those run the binary too.

use std::ops::Deref;
use std::time::Duration;

use redis_proxy::clock::{Clock, ManualClock};
use redis_proxy::config::Config;

use super::endpoints::Endpoints;
use super::proxy::{variables, wait_until_serving};
use super::RedisServer;

/// How long dropping an [`InProcess`] waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// A proxy running in this process, on ports of its own, shut down on drop.
pub struct InProcess {
    proxy: redis_proxy::Proxy,
    endpoints: Endpoints,
}

impl Deref for InProcess {
    type Target = Endpoints;

    fn deref(&self) -> &Endpoints {
        &self.endpoints
    }
}

impl InProcess {
    /// Starts the proxy against `redis` with `env` overriding the defaults
    /// (as [`super::Proxy::start`]), and waits until it answers `/healthz`
    /// and its invalidation link has settled (up, or off).
    pub fn start(redis: &RedisServer, env: &[(&str, &str)]) -> InProcess {
        let proxy = InProcess::start_at(&redis.url(), env);
        proxy.wait_for_settled_link();
        proxy
    }

    /// [`InProcess::start`] with the cache's expiry read off `hand`'s
    /// clock: entries expire when the test moves it on, without sleeping.
    pub fn start_on(redis: &RedisServer, env: &[(&str, &str)], hand: &ManualClock) -> InProcess {
        let proxy = InProcess::start_with(&redis.url(), env, hand.clock());
        proxy.wait_for_settled_link();
        proxy
    }

    /// Starts the proxy against any Redis address; panics if the settings
    /// are refused or a listener cannot be opened.
    pub fn start_at(redis_address: &str, env: &[(&str, &str)]) -> InProcess {
        InProcess::start_with(redis_address, env, Clock::system())
    }

    fn start_with(redis_address: &str, env: &[(&str, &str)], clock: Clock) -> InProcess {
        let vars = variables(redis_address, env);
        let config = Config::from_lookup(|name| vars.get(name).cloned())
            .unwrap_or_else(|err| panic!("the test's settings are refused: {err}"));
        let proxy = redis_proxy::Proxy::start_with_clock(&config, clock)
            .unwrap_or_else(|err| panic!("the proxy cannot start: {err}"));
        let endpoints = Endpoints {
            addr: proxy.http_addr(),
            resp: proxy.resp_addr(),
        };
        wait_until_serving(endpoints.addr, endpoints.resp, config.tls.is_some());
        InProcess { proxy, endpoints }
    }
}

impl Drop for InProcess {
    /// Stops accepting (both listeners closed), lets what is in flight
    /// finish, then drops the proxy: its workers have exited, and the
    /// invalidation link ends within a second.
    fn drop(&mut self) {
        let _ = self.proxy.shutdown(DRAIN);
    }
}
