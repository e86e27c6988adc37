//! Client authentication: PROXY_PASSWORD, checked for both front ends the
//! same way (constant time, failures counted and logged rate-limited, the
//! password never in a log line).

use super::Service;

impl Service {
    /// Whether clients must give PROXY_PASSWORD before reading.
    pub fn requires_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether /metrics is served without the password (METRICS_OPEN).
    pub fn metrics_open(&self) -> bool {
        self.metrics_open || self.password.is_none()
    }

    /// Whether `given` is PROXY_PASSWORD (true when none is set), compared
    /// in constant time. A failure is counted for `protocol` and logged,
    /// rate-limited, without what was given.
    pub fn check_password(&self, given: &[u8], protocol: &str) -> bool {
        use subtle::ConstantTimeEq;
        let Some(password) = &self.password else {
            return true;
        };
        let right = bool::from(password.expose().ct_eq(given));
        if !right {
            self.auth_failed(protocol);
        }
        right
    }

    /// Counts (and logs, rate-limited) a refused authentication attempt.
    pub fn auth_failed(&self, protocol: &str) {
        self.metrics.auth_failure(protocol);
        self.auth_warnings
            .warn(format_args!("a {protocol} client gave wrong credentials"));
    }
}
