//! Rate-limited warnings, so an outage is reported, not flooded.
//!
//! While Redis is down every miss fails; logging each would write thousands
//! of identical lines a second. A [`LogLimiter`] lets one line through per
//! interval and counts the rest, reporting the count with the next line.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Lets one warning through per interval. Lock-free; share by reference.
pub struct LogLimiter {
    epoch: Instant,
    interval_ms: u64,
    /// Milliseconds after `epoch` before which nothing more is logged.
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    /// At most one warning per `interval`.
    pub fn new(interval: Duration) -> LogLimiter {
        LogLimiter {
            epoch: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Logs `message` at warn level unless one was logged within the
    /// interval; then it is only counted. Returns true if it was logged.
    pub fn warn(&self, message: fmt::Arguments<'_>) -> bool {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Relaxed);
        let due = now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms.saturating_add(self.interval_ms),
                    Relaxed,
                    Relaxed,
                )
                .is_ok();
        if !due {
            self.suppressed.fetch_add(1, Relaxed);
            return false;
        }
        match self.suppressed.swap(0, Relaxed) {
            0 => log::warn!("{message}"),
            n => log::warn!("{message} ({n} similar warnings suppressed)"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval() {
        let limiter = LogLimiter::new(Duration::from_secs(3600));
        assert!(limiter.warn(format_args!("first")));
        assert!(!limiter.warn(format_args!("second")));
        assert!(!limiter.warn(format_args!("third")));
        assert_eq!(limiter.suppressed.load(Relaxed), 2);
    }

    #[test]
    fn logs_again_after_the_interval() {
        let limiter = LogLimiter::new(Duration::ZERO);
        assert!(limiter.warn(format_args!("first")));
        assert!(limiter.warn(format_args!("second")));
    }
}
