//! Client authentication: PROXY_PASSWORD, checked for both front ends the
//! same way (constant time, failures counted and logged rate-limited, the
//! password never in a log line).

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Secret};
use crate::log_limit::LogLimiter;
use crate::metrics::Metrics;

/// PROXY_PASSWORD and METRICS_OPEN, and the record of failed attempts.
pub(super) struct Auth {
    /// PROXY_PASSWORD, if clients must give one.
    password: Option<Secret>,
    metrics_open: bool,
    warnings: LogLimiter,
    metrics: Arc<Metrics>,
}

impl Auth {
    /// The settings of `config`, failures counted in `metrics`.
    pub(super) fn new(config: &Config, metrics: Arc<Metrics>) -> Auth {
        Auth {
            password: config.proxy_password.clone(),
            metrics_open: config.metrics_open,
            warnings: LogLimiter::new(Duration::from_secs(5)),
            metrics,
        }
    }

    /// Whether clients must give PROXY_PASSWORD before reading.
    pub(super) fn requires_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether /metrics is served without the password (METRICS_OPEN).
    pub(super) fn metrics_open(&self) -> bool {
        self.metrics_open || self.password.is_none()
    }

    /// Whether `given` is PROXY_PASSWORD (true when none is set), compared
    /// in constant time. A failure is counted for `protocol` and logged,
    /// rate-limited, without what was given.
    pub(super) fn check_password(&self, given: &[u8], protocol: &str) -> bool {
        use subtle::ConstantTimeEq;
        let Some(password) = &self.password else {
            return true;
        };
        let right = bool::from(password.expose().ct_eq(given));
        if !right {
            self.failed(protocol);
        }
        right
    }

    /// Counts (and logs, rate-limited) a refused authentication attempt.
    pub(super) fn failed(&self, protocol: &str) {
        self.metrics.auth_failure(protocol);
        self.warnings
            .warn(format_args!("a {protocol} client gave wrong credentials"));
    }
}
