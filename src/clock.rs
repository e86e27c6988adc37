//! The proxy's clock: what "now" is for the cache's expiry, read once per
//! call before the cache's lock is taken, and handed to the cache as a
//! [`Time`] (the cache itself has no clock).
//!
//! The service gets its clock from whoever builds it: the system's
//! monotonic clock in the proxy, or a [`ManualClock`] in tests, which moves
//! only when told, so expiry is tested without waiting real seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::Time;

/// Reads the time as [`Time`], counted from when the clock was made.
#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    /// The monotonic clock, from this origin.
    System(Instant),
    /// Nanoseconds a [`ManualClock`] sets.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The system's monotonic clock, whose origin is now: the proxy's.
    pub fn system() -> Clock {
        Clock(Source::System(Instant::now()))
    }

    /// The current time: one reading of the monotonic clock (or of the
    /// manual clock's hand).
    pub fn now(&self) -> Time {
        match &self.0 {
            Source::System(origin) => Time::ZERO + origin.elapsed(),
            Source::Manual(nanos) => Time::from_nanos(nanos.load(Ordering::Acquire)),
        }
    }

    /// The time `instant` was, for a caller that has just read the system
    /// clock for its own use (a request's start, which the latency
    /// histogram also takes): a subtraction instead of a second reading. A
    /// manual clock ignores `instant` and reads its hand, so tests still
    /// move time by hand.
    pub fn at(&self, instant: Instant) -> Time {
        match &self.0 {
            Source::System(origin) => Time::ZERO + instant.saturating_duration_since(*origin),
            Source::Manual(nanos) => Time::from_nanos(nanos.load(Ordering::Acquire)),
        }
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it: for
/// tests of expiry, which then need no sleeps. Clones share one hand.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the time on by `by` (saturating at "never").
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |nanos| {
                Some(nanos.saturating_add(by))
            });
    }

    /// The [`Clock`] this hand moves, for the service.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(Arc::clone(&self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let hand = ManualClock::new();
        let clock = hand.clock();
        assert_eq!(clock.now(), Time::ZERO);
        hand.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Time::ZERO + Duration::from_millis(1500));
        hand.advance(Duration::MAX);
        assert_eq!(clock.now(), Time::from_nanos(u64::MAX));
    }

    #[test]
    fn the_system_clock_counts_from_its_making() {
        let clock = Clock::system();
        let first = clock.now();
        assert!(first < Time::ZERO + Duration::from_secs(60));
        assert!(clock.now() >= first);
    }

    #[test]
    fn a_reading_taken_elsewhere_converts_to_the_same_time() {
        let clock = Clock::system();
        let before = clock.now();
        let instant = Instant::now();
        let after = clock.now();
        let at = clock.at(instant);
        assert!(before <= at && at <= after);
        let hand = ManualClock::new();
        hand.advance(Duration::from_secs(3));
        assert_eq!(
            hand.clock().at(instant),
            Time::ZERO + Duration::from_secs(3)
        );
    }
}
