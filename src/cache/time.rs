//! Time as the cache sees it: a number of nanoseconds the caller reads off
//! its own clock (the proxy's is `crate::clock::Clock`).
//!
//! An `Instant` is 16 bytes and turning one into anything comparable costs a
//! subtraction with a borrow and a normalisation. A [`Time`] is 8 bytes, the
//! expiry in every node, and compares as one integer; the caller reads its
//! clock once, before it takes the lock around the cache, so the lock
//! covers integer compares only.

use std::ops::Add;
use std::time::Duration;

/// A moment, in nanoseconds after some origin the caller fixed (a
/// clock's, or zero in tests that drive time by hand). `u64::MAX`, 584
/// years on, stands for "never".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The origin itself.
    pub const ZERO: Time = Time(0);

    /// The moment `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    /// The nanoseconds after the origin.
    pub(super) const fn nanos(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_duration_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;

    /// Saturates at "never" rather than wrapping.
    fn add(self, duration: Duration) -> Time {
        Time(self.0.saturating_add(nanos(duration)))
    }
}

/// `duration` in nanoseconds, saturating at `u64::MAX`.
pub(super) fn nanos(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(duration.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_saturates_at_never_and_durations_do_not_go_negative() {
        let never = Time::from_nanos(u64::MAX);
        assert_eq!(never + Duration::from_secs(1), never);
        assert_eq!(Time::ZERO + Duration::MAX, never);
        let t = Time::ZERO + Duration::from_millis(1500);
        assert_eq!(
            t.saturating_duration_since(Time::ZERO),
            Duration::from_millis(1500)
        );
        assert_eq!(Time::ZERO.saturating_duration_since(t), Duration::ZERO);
    }
}
