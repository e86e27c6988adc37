//! An entry's stamp: when it stops being fresh and, for a key with a TTL in
//! Redis, when the key ends there, in the 8 bytes the expiry alone took.
//!
//! A key whose TTL in Redis ends before the cache's lifetime must not be
//! served past that TTL, and stale-if-error must not serve it either once
//! Redis has dropped it. That is a second moment per entry; a second
//! [`Time`] would grow every node by 8 bytes (docs/performance.md counts
//! them). Instead the stamp's low bits carry it:
//!
//! - bit 0 clear: the stamp is the expiry itself (rounded down to an even
//!   nanosecond); the key had no TTL in Redis, or none was asked.
//! - bit 0 set: bits 1 to 20 hold how long after the fill the key ends in
//!   Redis, in whole seconds (rounded down, at most about 12 days); the
//!   expiry is the stamp with those bits in it, always rounded down so it
//!   is never later than asked (by at most ~4 ms).
//!
//! Either way the stamp compares with a [`Time`] as one integer, so a hit
//! costs what it did.

use std::time::Duration;

use super::Time;

/// Set on a stamp that carries its key's end in Redis.
const ENDS: u64 = 1;
/// Bits holding the seconds from the fill to the key's end in Redis.
const SECS_BITS: u32 = 20;
/// The low bits a stamp with an end uses for it (flag and seconds).
const LOW: u64 = (1 << (SECS_BITS + 1)) - 1;
/// The most seconds kept; a later end is kept as this (earlier: safe).
const MAX_SECS: u64 = (1 << SECS_BITS) - 1;

/// When an entry stops being fresh, and when its key ends in Redis if it
/// has a TTL there. See the module docs for the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp(u64);

impl Stamp {
    /// Fresh until `expires` (to within a nanosecond); no end in Redis.
    pub(super) fn plain(expires: Time) -> Stamp {
        Stamp(expires.nanos() & !ENDS)
    }

    /// Fresh until `expires` at the latest, for a key that ends in Redis
    /// `ends_after` its fill.
    pub(super) fn ending(expires: Time, ends_after: Duration) -> Stamp {
        Stamp::with_code(expires, ends_after.as_secs().min(MAX_SECS))
    }

    fn with_code(expires: Time, secs: u64) -> Stamp {
        let code = (secs << 1) | ENDS;
        // Rounded down past a whole block, so adding the code never makes
        // the stamp later than `expires`. Within the clock's first ~2 ms
        // there is no such block: the entry is born expired.
        match expires.nanos().checked_sub(LOW) {
            Some(base) => Stamp((base & !LOW) | code),
            None => Stamp(ENDS),
        }
    }

    /// When the entry stops being fresh: never later than asked.
    #[inline]
    pub(super) fn expires_at(self) -> Time {
        Time::from_nanos(self.0)
    }

    /// How long after its fill the key ends in Redis (whole seconds,
    /// rounded down), if it has a TTL there.
    pub(super) fn ends_after(self) -> Option<Duration> {
        (self.0 & ENDS != 0).then(|| Duration::from_secs((self.0 & LOW) >> 1))
    }

    /// The stamp made no later than `now`, keeping what it knows of the
    /// key's end in Redis.
    pub(super) fn at_most(self, now: Time) -> Stamp {
        if self.expires_at() <= now {
            return self;
        }
        match self.ends_after() {
            None => Stamp::plain(now),
            Some(after) => Stamp::with_code(now, after.as_secs()),
        }
    }

    /// How long the entry was fresh for when filled: the cache's lifetime,
    /// or less when the key ended sooner in Redis.
    pub(super) fn life(self, lifetime: Duration) -> Duration {
        self.ends_after()
            .map_or(lifetime, |after| after.min(lifetime))
    }

    /// How long the entry may be kept past its expiry as stale: `stale_if_error`,
    /// but never past the key's end in Redis.
    pub(super) fn stale_window(self, lifetime: Duration, stale_if_error: Duration) -> Duration {
        match self.ends_after() {
            None => stale_if_error,
            Some(after) => stale_if_error.min(after.saturating_sub(lifetime)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_plain_stamp_is_its_expiry() {
        let at = Time::ZERO + Duration::from_millis(1500);
        let stamp = Stamp::plain(at);
        assert_eq!(stamp.expires_at(), at);
        assert_eq!(stamp.ends_after(), None);
        assert_eq!(stamp.life(60 * SEC), 60 * SEC);
        assert_eq!(stamp.stale_window(60 * SEC, 5 * SEC), 5 * SEC);
    }

    #[test]
    fn an_ending_stamp_is_never_later_than_asked_and_keeps_whole_seconds() {
        for ms in [3u64, 300, 999, 1_000, 1_001, 59_999, 3_600_000] {
            let at = Time::ZERO + Duration::from_secs(1000) + Duration::from_millis(ms);
            let stamp = Stamp::ending(at, Duration::from_millis(ms));
            assert!(stamp.expires_at() <= at, "{ms}");
            assert!(stamp.expires_at() + Duration::from_millis(5) > at, "{ms}");
            assert_eq!(stamp.ends_after(), Some(Duration::from_secs(ms / 1000)));
        }
        // Far ends are kept as about 12 days: earlier than true, so safe.
        let far = Stamp::ending(Time::ZERO + 60 * SEC, 10_000_000 * SEC);
        assert_eq!(far.ends_after(), Some(Duration::from_secs(MAX_SECS)));
        // In the clock's first milliseconds: born expired.
        let early = Stamp::ending(Time::from_nanos(1_000), SEC);
        assert!(early.expires_at() <= Time::from_nanos(1_000));
    }

    #[test]
    fn life_and_grace_end_with_the_key_in_redis() {
        let at = Time::ZERO + 100 * SEC;
        // Ends in Redis before the lifetime: that is its life, no grace.
        let short = Stamp::ending(at, 7 * SEC);
        assert_eq!(short.life(60 * SEC), 7 * SEC);
        assert_eq!(short.stale_window(60 * SEC, 30 * SEC), Duration::ZERO);
        // Ends 10 s after the lifetime: grace up to then.
        let long = Stamp::ending(at, 70 * SEC);
        assert_eq!(long.life(60 * SEC), 60 * SEC);
        assert_eq!(long.stale_window(60 * SEC, 30 * SEC), 10 * SEC);
        assert_eq!(long.stale_window(60 * SEC, 5 * SEC), 5 * SEC);
    }

    #[test]
    fn at_most_moves_the_expiry_earlier_and_keeps_the_end() {
        let at = Time::ZERO + 100 * SEC;
        let now = Time::ZERO + 50 * SEC;
        let plain = Stamp::plain(at).at_most(now);
        assert_eq!(plain.expires_at(), now);
        let ending = Stamp::ending(at, 70 * SEC).at_most(now);
        assert!(ending.expires_at() <= now);
        assert_eq!(ending.ends_after(), Some(70 * SEC));
        let past = Stamp::plain(Time::ZERO + SEC);
        assert_eq!(past.at_most(now), past);
    }
}
